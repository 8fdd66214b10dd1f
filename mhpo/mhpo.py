"""MHPO: Modulated Hazard-aware Policy Optimization (Wang et al., arXiv 2603.16929), and its ablations.

Per token, with log r = logπ_θ − logπ_old (clamped to ±20, never exponentiated on its own):

    Log-Fidelity Modulator     ψ(r) = c · tanh(log r / c)                               ∈ (−c, c)
    Decoupled Hazard Penalty   ζ(r) = (s(sg[ψ]) / λ+)^k+ + (s(−sg[ψ]) / λ−)^k−           s = softplus
    objective (maximised)      J = exp(ψ(r) − sg[ζ(r)]) · Â                              no clip, no min
    gradient multiplier        ∂(−loss)/∂logπ = M(r)·Â,  M(r) = exp(ψ − ζ) · sech²(log r / c)

Theorem 1 of the paper (as reported): 0 < M(r) ≤ e^c for every r, because ψ < c, sech² ≤ 1 and ζ ≥ 0.

Defaults (paper §4.1, via two secondary sources): c = 1.5, k+ = 1.5, λ+ = 1.0, k− = 2.0, λ− = 0.8,
seq-mean-token-mean aggregation, no KL.

Open question kept visible: softplus(0) = log 2, so taken literally ζ(1) ≈ 1.33 and every on-policy token is
scaled by exp(−ζ(1)) ≈ 0.265 (a ~3.8× smaller effective step than GRPO). ``centered=True`` subtracts ζ(1) so
that the on-policy scale is 1; then ζ dips slightly below 0 near r ≈ 1.2 and the bound becomes
e^(c − min ζ_centered) ≈ e^(c+0.06). The default stays literal, as the formula is published.

Ablations (paper §5): ``mhpo_lfm`` (LFM only, no DHP), ``mhpo_dhp`` (DHP only: raw log r in place of ψ) and
``mhpo_sym`` (symmetric DHP: one k and λ for both sides, k = 1.5, λ = 1.0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mhpo.objectives import Batch, Objective, register

_positive = lambda x: x > 0  # noqa: E731


def hazard(x: torch.Tensor, k_pos: float, lam_pos: float, k_neg: float, lam_neg: float) -> torch.Tensor:
    """Weibull cumulative hazards of the positive and negative shift: (s(x)/λ+)^k+ + (s(−x)/λ−)^k−."""
    return (F.softplus(x) / lam_pos) ** k_pos + (F.softplus(-x) / lam_neg) ** k_neg


@register("mhpo")
class MHPO(Objective):
    __doc__ = __doc__
    aggregation = "seq-mean-token-mean"
    c: float = 1.5
    k_pos: float = 1.5
    lam_pos: float = 1.0
    k_neg: float = 2.0
    lam_neg: float = 0.8
    use_lfm: bool = True   # False: DHP-only ablation (log r in place of ψ)
    use_dhp: bool = True   # False: LFM-only ablation (ζ ≡ 0)
    centered: bool = False  # True: subtract ζ(1) so the on-policy scale is 1 (see module docstring)

    checks = (("c", _positive, "c must be > 0 (the modulator's bound)"),
              ("k_pos", _positive, "Weibull shape k+ must be > 0"), ("lam_pos", _positive, "Weibull scale λ+ must be > 0"),
              ("k_neg", _positive, "Weibull shape k− must be > 0"), ("lam_neg", _positive, "Weibull scale λ− must be > 0"))

    def zeta(self, x: torch.Tensor) -> torch.Tensor:
        z = hazard(x, self.k_pos, self.lam_pos, self.k_neg, self.lam_neg)
        if self.centered:
            z = z - hazard(torch.zeros((), dtype=x.dtype), self.k_pos, self.lam_pos, self.k_neg, self.lam_neg)
        return z

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        lr = b.log_ratio
        psi = self.c * torch.tanh(lr / self.c) if self.use_lfm else lr
        zeta = self.zeta(psi.detach()) if self.use_dhp else torch.zeros_like(psi)
        with torch.no_grad():  # diagnostics; computed from values already at hand
            keep = b.keep
            sech2 = 1.0 - torch.tanh(lr / self.c) ** 2 if self.use_lfm else torch.ones_like(lr)
            mult = torch.exp(psi - zeta) * sech2
            self.log(survival=b.masked_mean(torch.exp(-zeta)),
                     saturation=b.masked_mean((lr.abs() > self.c).to(lr.dtype)),
                     mult_mean=b.masked_mean(mult),
                     mult_max=torch.where(keep, mult, 0.0).max())
        return -torch.exp(psi - zeta) * b.advantages


@register("mhpo_lfm")
class MHPOLfmOnly(MHPO):
    """MHPO ablation, LFM only: J = exp(c·tanh(log r / c))·Â (no hazard penalty). arXiv 2603.16929 §5."""
    use_dhp: bool = False


@register("mhpo_dhp")
class MHPODhpOnly(MHPO):
    """MHPO ablation, DHP only: J = exp(log r − sg[ζ(log r)])·Â = r·exp(−sg[ζ])·Â. arXiv 2603.16929 §5."""
    use_lfm: bool = False


@register("mhpo_sym")
class MHPOSymmetric(MHPO):
    """MHPO ablation, symmetric DHP: one (k, λ) = (1.5, 1.0) on both sides. arXiv 2603.16929 §5."""
    k_neg: float = 1.5
    lam_neg: float = 1.0


def multiplier_bound(obj: MHPO) -> float:
    """Upper bound of M(r): e^c for the literal form (ζ ≥ 0); e^(c − min ζ) when centered."""
    if not obj.use_dhp or not obj.centered:
        return math.exp(obj.c if obj.use_lfm else math.inf)
    x = torch.linspace(-obj.c, obj.c, 20001, dtype=torch.float64)
    return math.exp(obj.c - min(0.0, obj.zeta(x).min().item()))
