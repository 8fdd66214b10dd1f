"""TRL's ``loss_type="bnpo"``: the GRPO clipped surrogate with a *local* token-mean aggregation.

    λ_t = −min(r_t·Â, clip(r_t, 1−ε, 1+ε)·Â)
    aggregation: token-mean over the local (micro-)batch, Σ λ m / Σ m; a global ``num_tokens`` is ignored

Named after TRL's option; it is NOT the "Beta Normalization Policy Optimization" paper (arXiv 2506.02864),
which changes the advantage, not the loss. Results depend on the micro-batch size (equal to ``grpo`` for
one sequence per micro-batch). Defaults: ε = 0.2, β = 0. TRL: ``loss_type="bnpo"`` (TRL's default until 2025-08).
"""

from __future__ import annotations

from baselines.grpo import GRPO
from mhpo.objectives import Output, register


@register("bnpo")
class BNPO(GRPO):
    __doc__ = __doc__
    aggregation = "token-mean"

    def __call__(self, **inputs) -> Output:
        inputs.pop("num_tokens", None)  # local normaliser by definition
        return super().__call__(**inputs)
