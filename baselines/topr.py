"""TOPR (Tapered Off-Policy REINFORCE, Le Roux et al., arXiv 2503.14286).

    ρ_i = 1 if Â ≥ 0, else min(1, π_θ(o_i)/π_old(o_i)) = exp(min(0, Σ_t log r_it))  (trajectory level)
    λ_t = −sg(ρ_i)·Â·logπ_θ(o_t)
    aggregation: seq-mean-token-sum, (1/B) Σ_i Σ_t λ  (the trajectory log-likelihood, not length-normalised)

Positive trajectories get an SFT-like update with no importance weight; negative ones a truncated one.
Defaults: β = 0 (none needed). TRL, verl: none (ROLL: ``pg_variant: topr``, with token-level ratios).
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, register


@register("topr")
class TOPR(Objective):
    __doc__ = __doc__
    aggregation = "seq-mean-token-sum"

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        with torch.no_grad():
            seq = (b.log_ratio * b.mask).sum(-1, keepdim=True).clamp(max=0.0)
            rho = torch.where(b.advantages >= 0, 1.0, torch.exp(seq))
            self.log(weight_mean=b.masked_mean(rho))
        return -rho * b.advantages * b.logps
