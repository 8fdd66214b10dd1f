"""GPG (Group Policy Gradient, Chu et al., arXiv 2504.02546): plain policy gradient, no ratio, no clip.

    λ_t = −Â·logπ_θ(o_t)          ∂λ/∂logπ = −Â  (at any r)
    aggregation: token-mean

Defaults: β = 0 (no KL, no reference model). verl: ``loss_mode=gpg``. TRL: none (``cispo`` with an infinite
cap on-policy is the same gradient).
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, register


@register("gpg")
class GPG(Objective):
    __doc__ = __doc__
    aggregation = "token-mean"

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        return -b.advantages * b.logps
