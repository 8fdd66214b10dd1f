"""Dr. GRPO (Liu et al., "Understanding R1-Zero-Like Training", arXiv 2503.20783): GRPO without its two biases.

    λ_t = −min(r_t·Â, clip(r_t, 1−ε, 1+ε)·Â),   Â = R − mean_G R  (no division by the group std)
    aggregation: seq-mean-token-sum-norm, Σ_{i,t} λ m / (B·L) with the constant L = max completion length

Defaults: ε = 0.2, β = 0. The objective takes ``max_len`` (L) per call; without it L = T, the padded width,
which is not constant across batches: pass the configured maximum length.
``scale_adv`` = False: the advantage without std lives in the trainer, which reads this flag when it
normalises rewards; the loss itself never sees rewards.
TRL: ``loss_type="dr_grpo"`` with ``scale_rewards="none"``.
"""

from __future__ import annotations

from baselines.grpo import GRPO
from mhpo.objectives import register


@register("dr_grpo")
class DrGRPO(GRPO):
    __doc__ = __doc__
    aggregation = "seq-mean-token-sum-norm"
    scale_adv: bool = False  # read by the trainer: Â = R − mean R (True would divide by the group std)
