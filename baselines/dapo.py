"""DAPO (Yu et al., arXiv 2503.14476): clip-higher and a token-level loss.

    λ_t = −min(r_t·Â, clip(r_t, 1−ε_low, 1+ε_high)·Â)
    aggregation: token-mean over every token of the batch, Σ λ m / N (N = ``num_tokens`` when given)

Defaults (paper §4.1): ε_low = 0.2, ε_high = 0.28, β = 0. Dynamic sampling and overlong reward shaping are
data/reward-side parts of DAPO, not part of the loss. TRL: ``loss_type="dapo"``, ``epsilon_high=0.28``.
"""

from __future__ import annotations

from baselines.grpo import GRPO
from mhpo.objectives import register


@register("dapo")
class DAPO(GRPO):
    __doc__ = __doc__
    aggregation = "token-mean"
    eps_high = 0.28
