"""GSPO (Zheng et al., Qwen, arXiv 2507.18071): the clipped surrogate on a length-normalised sequence ratio.

    s_i = exp((1/|o_i|) Σ_t log r_it)              (geometric mean of the token ratios)
    λ_i = −min(s_i·Â_i, clip(s_i, 1−ε_low, 1+ε_high)·Â_i)
    aggregation: sequence (mean over sequences)

``gspo_token``: s_it = sg[s_i]·π_θ(o_it)/sg[π_θ(o_it)], same value and gradient as GSPO for sequence-level Â,
and defined for per-token Â (aggregation seq-mean-token-mean).
Defaults (paper v2 §5.1): ε_low = 3e-4, ε_high = 4e-4, β = 0 (tiny, because s_i is a geometric mean).
TRL: ``importance_sampling_level="sequence"``, ``loss_type="grpo"``, ``epsilon=3e-4``, ``epsilon_high=4e-4``.
"""

from __future__ import annotations

import torch

from baselines.grpo import GRPO, clipped_surrogate
from mhpo.objectives import Batch, register


@register("gspo")
class GSPO(GRPO):
    __doc__ = __doc__
    aggregation = "sequence"
    eps_low = 3e-4
    eps_high = 4e-4

    def seq_log_ratio(self, b: Batch) -> torch.Tensor:
        return b.seq_log_ratio

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        return clipped_surrogate(self, b, self.eps_low, self.eps_high, ratio=torch.exp(self.seq_log_ratio(b)))


@register("gspo_token")
class GSPOToken(GSPO):
    __doc__ = __doc__
    aggregation = "seq-mean-token-mean"

    def seq_log_ratio(self, b: Batch) -> torch.Tensor:
        return b.seq_log_ratio.detach() + b.log_ratio - b.log_ratio.detach()
