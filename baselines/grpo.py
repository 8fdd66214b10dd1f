"""GRPO (Shao et al., DeepSeekMath, arXiv 2402.03300): PPO's clipped surrogate with group-normalised advantages.

    λ_t = −min(r_t·Â, clip(r_t, 1−ε_low, 1+ε_high)·Â) + β·k3(π_θ‖π_ref)
    aggregation: seq-mean-token-mean, (1/G) Σ_i (1/|o_i|) Σ_t λ_it

Defaults: ε = 0.2 (conventional; the paper does not state it), β = 0 here (paper: 0.04; set ``beta``).
TRL: ``loss_type="grpo"``.
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, register


def clipped_surrogate(obj: Objective, b: Batch, eps_low: float, eps_high: float, ratio=None) -> torch.Tensor:
    """Per-token PPO-clip loss −min(r·Â, clip(r)·Â), logging how often the clipped branch is active."""
    r = b.ratio if ratio is None else ratio
    adv = b.advantages
    loss = -torch.min(r * adv, r.clamp(1 - eps_low, 1 + eps_high) * adv)
    with torch.no_grad():
        low = ((r < 1 - eps_low) & (adv < 0)).to(r.dtype)
        high = ((r > 1 + eps_high) & (adv > 0)).to(r.dtype)
        obj.log(clip_low=b.masked_mean(low), clip_high=b.masked_mean(high), clip_frac=b.masked_mean(low + high))
    return loss


@register("grpo")
class GRPO(Objective):
    __doc__ = __doc__
    aggregation = "seq-mean-token-mean"
    eps_low: float = 0.2
    eps_high: float = 0.2
    checks = (("eps_low", lambda e: 0 <= e < 1, "ε_low must be in [0, 1)"),
              ("eps_high", lambda e: e >= 0, "ε_high must be >= 0"))

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        return clipped_surrogate(self, b, self.eps_low, self.eps_high)
