"""Unclipped importance-weighted policy gradient: the positive control of the stability study (docs/stability.md).

    λ_t = −r_t·Â,  r_t = π_θ(o_t)/π_old(o_t)          ∂λ/∂logπ = −r_t·Â  (unbounded in r)
    aggregation: seq-mean-token-mean (as grpo, so that the clip is the only difference)

This is the "conservative policy iteration" surrogate L^CPI of Kakade & Langford (ICML 2002), the first-order
surrogate of TRPO (Schulman et al., arXiv 1502.05477) and the objective PPO (Schulman et al., arXiv 1707.06347,
eq. 6) shows to be unstable without its clip or trust region: far off-policy, a few tokens with large r dominate
the step. On-policy (r = 1) its gradient equals REINFORCE with a baseline (Williams 1992) and equals grpo's.
Defaults: no parameters, β = 0. TRL: ``loss_type="grpo"`` with ε → ∞.
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, register


@register("is_pg")
class ISPG(Objective):
    __doc__ = __doc__
    aggregation = "seq-mean-token-mean"

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        return -b.ratio * b.advantages
