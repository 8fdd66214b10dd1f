"""LUSPO (Length-Unbiased Sequence Policy Optimization, arXiv 2602.05261): GSPO with each sequence's loss
scaled by its length |o_i|, which removes GSPO's bias towards short sequences.

    λ_i = −|o_i|·min(s_i·Â_i, clip(s_i, 1−ε_low, 1+ε_high)·Â_i),   s_i = exp((1/|o_i|) Σ_t log r_it)
    aggregation: seq-mean-token-sum, (1/B) Σ_i Σ_t λ m  (the per-sequence loss summed over its tokens)

Defaults (paper): ε_low = 2e-3, ε_high = 2.5e-3, β = 0.
TRL: ``loss_type="luspo"`` with ``importance_sampling_level="sequence"``.
"""

from __future__ import annotations

from baselines.gspo import GSPO
from mhpo.objectives import register


@register("luspo")
class LUSPO(GSPO):
    __doc__ = __doc__
    aggregation = "seq-mean-token-sum"
    eps_low = 2e-3
    eps_high = 2.5e-3
