"""Clip-Cov (Cui et al., "The Entropy Mechanism of RL for Reasoning LMs", arXiv 2505.22617).

    C_t = (Â_t − mean Â)·(logπ_t − mean logπ)   (covariance over the batch's valid tokens)
    λ_t = −min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)·(1 − d_t), aggregation token-mean, where d_t = 1 for
    max(1, ⌊ρ·N⌋) random tokens among those not already clipped with ω_low < C_t < ω_high (verl: × 0)

Defaults (paper code, verl ``loss_mode=clip_cov``): ρ = ``cov_ratio`` 2e-4, ω = (1, 5), ε = 0.2 (the paper's
scripts use ε = 1, i.e. no ordinary clip), β = 0. The draw uses a generator seeded by ``seed`` and advanced
every call: deterministic for a given seed and call sequence. TRL: none.
"""

from __future__ import annotations

import torch

from baselines.grpo import GRPO, clipped_surrogate
from mhpo.objectives import Batch, ObjectiveError, register


@torch.no_grad()
def token_covariance(b: Batch) -> torch.Tensor:
    """(Â − mean Â)·(logπ − mean logπ) per token, means over valid tokens; −inf outside the mask."""
    cov = (b.advantages - b.masked_mean(b.advantages)) * (b.logps - b.masked_mean(b.logps))
    return cov.masked_fill(~b.keep, -torch.inf)


@register("clip_cov")
class ClipCov(GRPO):
    __doc__ = __doc__
    aggregation = "token-mean"
    cov_ratio: float = 2e-4
    cov_lb: float = 1.0
    cov_ub: float = 5.0
    seed: int = 0
    checks = GRPO.checks + (("cov_ratio", lambda x: 0 < x <= 1, "cov_ratio is a fraction of tokens in (0, 1]"),)
    # By design it drops a random share of high-covariance tokens from the gradient, even on-policy; with the
    # covariance window above any covariance it drops none and is the vanilla policy gradient.
    on_policy_params = {"cov_lb": 1e300, "cov_ub": 1.7e308}

    def __post_init__(self):
        super().__post_init__()
        if not self.cov_lb < self.cov_ub:
            raise ObjectiveError(f"clip_cov: parameters 'cov_lb'={self.cov_lb} and 'cov_ub'={self.cov_ub}: "
                                 "need cov_lb < cov_ub")
        self._generator = torch.Generator().manual_seed(self.seed)

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        loss = clipped_surrogate(self, b, self.eps_low, self.eps_high)
        with torch.no_grad():
            cov = token_covariance(b)
            unclipped = -b.ratio * b.advantages >= loss  # verl: the surrogate's min did not pick the clip
            cand = ((cov > self.cov_lb) & (cov < self.cov_ub) & unclipped).flatten().nonzero().squeeze(1)
            n = max(int(self.cov_ratio * b.mask.sum().item()), 1)
            pick = cand[torch.randperm(cand.numel(), generator=self._generator, device="cpu")[:n].to(cand.device)]
            keep = torch.ones_like(loss).flatten().index_fill_(0, pick, 0.0).view_as(loss)
            self.log(cov_drop_frac=b.masked_mean(1.0 - keep))
        return loss * keep
