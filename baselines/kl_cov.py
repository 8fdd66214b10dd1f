"""KL-Cov (Cui et al., "The Entropy Mechanism of RL for Reasoning LMs", arXiv 2505.22617).

    C_t = (Â_t − mean Â)·(logπ_t − mean logπ)          (token covariance over the batch's valid tokens)
    λ_t = −r·Â + k_t·β_kl·|log r|,  k_t = 1 on the top max(1, ⌊ρ·N⌋) tokens by C_t, else 0   (no ratio clip)
    aggregation: token-mean

Defaults (paper's 7B recipe): ρ = ``kl_cov_ratio`` 2e-3 (32B recipe and verl's yaml: 2e-4), β_kl = ``kl_coef``
1.0, β = 0. On-policy |log r| = 0 with zero gradient, so the vanilla policy gradient is recovered.
verl: ``loss_mode=kl_cov``. TRL: none.
"""

from __future__ import annotations

import torch

from baselines.clip_cov import token_covariance
from mhpo.objectives import Batch, Objective, register


@register("kl_cov")
class KLCov(Objective):
    __doc__ = __doc__
    aggregation = "token-mean"
    kl_cov_ratio: float = 2e-3
    kl_coef: float = 1.0
    checks = (("kl_cov_ratio", lambda x: 0 < x <= 1, "kl_cov_ratio is a fraction of tokens in (0, 1]"),
              ("kl_coef", lambda x: x >= 0, "kl_coef must be >= 0"))

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        with torch.no_grad():
            cov = token_covariance(b).flatten()
            n_valid = int(b.keep.sum())
            idx = cov.topk(min(max(int(self.kl_cov_ratio * n_valid), 1), n_valid)).indices
            sel = torch.zeros_like(cov).index_fill_(0, idx, 1.0).view_as(b.logps)
            self.log(kl_frac=b.masked_mean(sel))
        return -b.ratio * b.advantages + sel * self.kl_coef * b.log_ratio.abs()
