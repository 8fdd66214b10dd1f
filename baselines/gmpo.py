"""GMPO (Geometric-Mean Policy Optimization, Zhao et al., arXiv 2507.20673).

    ℓ̃_t = min(ℓ_t, clip(ℓ_t, −ε_low, ε_high)) if Â > 0 else max(ℓ_t, clip(ℓ_t, −ε_low, ε_high))  (log space)
    λ_i = −exp((1/|o_i|) Σ_t ℓ̃_t)·Â_i        (geometric mean of the clipped token ratios)
    aggregation: sequence (mean over sequences)

Â_i is the sequence's advantage (masked mean of per-token advantages). Defaults (paper): ε_low = ε_high = 0.4
in log space (ratio band (e^−0.4, e^0.4)), β = 0. TRL: ``trl.experimental.gmpo.GMPOTrainer`` (``epsilon=0.4``).
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, positive, register


@register("gmpo")
class GMPO(Objective):
    __doc__ = __doc__
    aggregation = "sequence"
    eps_low: float = 0.4
    eps_high: float = 0.4
    checks = positive("eps_low", "eps_high")  # log-space bounds

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        adv = (b.advantages * b.mask).sum(-1) / b.lengths.clamp(min=1.0)  # (B,)
        lr, pos = b.log_ratio, (adv > 0)[:, None]
        c = lr.clamp(-self.eps_low, self.eps_high)
        clipped = torch.where(pos, torch.minimum(lr, c), torch.maximum(lr, c))
        with torch.no_grad():
            self.log(clip_frac=b.masked_mean((clipped != lr).to(lr.dtype)))
        return -torch.exp((clipped * b.mask).sum(-1) / b.lengths.clamp(min=1.0)) * adv
