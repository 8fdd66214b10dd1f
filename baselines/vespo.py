"""VESPO (Variational Sequence-level Soft Policy Optimization, arXiv 2602.10693): a smooth, detached
reshaping of the un-normalised sequence importance weight, applied to a REINFORCE-style loss.

    W_i = exp(clamp(Σ_t log r_it, log 1e-8, 20)),   φ(W) = W^k·e^{λ(1−W)}  (φ(1) = 1)
    λ_t = −sg(φ(W_i))·Â·logπ_θ(o_t),   (k, λ) = (k+, λ+) if Â ≥ 0 else (k−, λ−)
    aggregation: token-mean

Defaults (paper, TRL): k+ = 2, λ+ = 3, k− = 3, λ− = 2, β = 0. TRL: ``loss_type="vespo"`` (TRL folds vLLM IS
ratios into W; here ``is_weights`` multiply the loss as for every objective).
"""

from __future__ import annotations

import math

import torch

from mhpo.objectives import Batch, Objective, positive, register


@register("vespo")
class VESPO(Objective):
    __doc__ = __doc__
    aggregation = "token-mean"
    k_pos: float = 2.0
    lam_pos: float = 3.0
    k_neg: float = 3.0
    lam_neg: float = 2.0
    checks = positive("k_pos", "lam_pos", "k_neg", "lam_neg")

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        with torch.no_grad():
            log_w = (b.log_ratio * b.mask).sum(-1, keepdim=True).clamp(math.log(1e-8), 20.0)
            nonneg = b.advantages >= 0
            k = torch.where(nonneg, self.k_pos, self.k_neg).to(log_w.dtype)
            lam = torch.where(nonneg, self.lam_pos, self.lam_neg).to(log_w.dtype)
            phi = torch.exp(lam + k * log_w - lam * torch.exp(log_w)).nan_to_num(0.0, 0.0, 0.0)
            self.log(phi_mean=b.masked_mean(phi))
        return -phi * b.advantages * b.logps
