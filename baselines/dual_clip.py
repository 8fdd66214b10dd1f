"""Dual-clip PPO (Ye et al., arXiv 1912.09729): PPO-clip plus a floor on negative-advantage objectives.

    λ_t = −min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)                for Â ≥ 0
    λ_t = −max(min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â), c·Â)      for Â < 0  (zero gradient once r > c)
    aggregation: seq-mean-token-mean (as GRPO)

Defaults: ε = 0.2, c = 3 (paper, verl ``clip_ratio_c``), β = 0. TRL: no flag of that name, but
``loss_type="grpo"`` with ``delta=c`` (INTELLECT-2 two-sided clipping) is the same loss whenever c > 1 + ε_high.
"""

from __future__ import annotations

import torch

from baselines.grpo import GRPO, clipped_surrogate
from mhpo.objectives import Batch, register


@register("dual_clip")
class DualClip(GRPO):
    __doc__ = __doc__
    clip_c: float = 3.0
    checks = GRPO.checks + (("clip_c", lambda c: c > 1, "dual-clip bound c must be > 1 (usually 3)"),)

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        loss = clipped_surrogate(self, b, self.eps_low, self.eps_high)
        floor = -self.clip_c * b.advantages  # λ ≤ −c·Â for Â < 0
        with torch.no_grad():
            self.log(dual_clip_frac=b.masked_mean(((b.advantages < 0) & (loss > floor)).to(loss.dtype)))
        return torch.where(b.advantages < 0, torch.minimum(loss, floor), loss)
