"""CISPO (MiniMax-M1, arXiv 2506.13585): clip the importance-sampling *weight*, never drop a token's gradient.

    λ_t = −sg(min(r_t, ε_high))·Â·logπ_θ(o_t)      ∂λ/∂logπ = −min(r, ε_high)·Â
    aggregation: token-mean (Σ λ m / N, N = ``num_tokens`` when given)

``eps_high`` is the ABSOLUTE cap on the weight (max weight = ε_high, not 1 + ε_high), exactly as TRL's
``epsilon_high`` for ``loss_type="cispo"``; there is no lower bound (the paper sets ε_low "large").
Default ε_high = 5.0, the value ScaleRL (arXiv 2510.13786) uses; the CISPO paper does not disclose its value.
β = 0. TRL: ``loss_type="cispo"``, ``epsilon_high=5.0``.
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, register


@register("cispo")
class CISPO(Objective):
    __doc__ = __doc__
    aggregation = "token-mean"
    eps_high: float = 5.0
    checks = (("eps_high", lambda e: e > 0,
               "eps_high is the absolute cap on the IS weight and must be > 0 (ScaleRL: 5.0)"),)

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        w = b.ratio.detach().clamp(max=self.eps_high)
        with torch.no_grad():
            self.log(clip_frac=b.masked_mean(((b.ratio > self.eps_high) & (b.advantages > 0)).to(w.dtype)))
        return -w * b.advantages * b.logps
