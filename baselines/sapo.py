"""SAPO (Soft Adaptive Policy Optimization, Qwen, arXiv 2511.20347): a smooth sigmoid gate instead of a clip.

    λ_t = −f_τ(r_t)·Â,   f_τ(r) = σ(τ·(r − 1))·4/τ,   τ = τ+ if Â > 0 else τ−
    ∂λ/∂logπ = −sech²(τ(r−1)/2)·r·Â   (1 at r = 1, smooth decay away from it)
    aggregation: seq-mean-token-mean

Defaults (paper): τ+ = 1.0, τ− = 1.05 (the paper recommends τ− > τ+), β = 0.
TRL: ``loss_type="sapo"``, ``sapo_temperature_pos=1.0``, ``sapo_temperature_neg=1.05``.
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, positive, register


@register("sapo")
class SAPO(Objective):
    __doc__ = __doc__
    aggregation = "seq-mean-token-mean"
    tau_pos: float = 1.0
    tau_neg: float = 1.05
    checks = positive("tau_pos", "tau_neg")

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        tau = torch.where(b.advantages > 0, self.tau_pos, self.tau_neg).to(b.ratio.dtype)
        return -torch.sigmoid(tau * (b.ratio - 1.0)) * (4.0 / tau) * b.advantages
