"""MHPO (arXiv 2603.16929): Theorem 1 as a property, the derived table of /work/shared/reference/paper-notes.md
§1.5, the ablations and the stop-gradient on ζ. Every multiplier here is computed by autograd through the
objective itself, so the tests check the code, not a re-derivation of it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mhpo import objectives
from mhpo.mhpo import hazard, multiplier_bound

DT = torch.float64


def multiplier(obj, log_r: torch.Tensor, adv: float = 1.0) -> torch.Tensor:
    """M(r)·sign: ∂(−loss)/∂logπ per token, one token per sequence (B = len(log_r), T = 1)."""
    old = torch.zeros(len(log_r), 1, dtype=DT)
    lp = log_r.to(DT).reshape(-1, 1).clone().requires_grad_(True)
    out = obj(logps=lp, old_logps=old, advantages=torch.full((len(log_r),), adv, dtype=DT), mask=torch.ones_like(old))
    (-out.loss * len(log_r)).backward()  # undo the mean over sequences
    return lp.grad.reshape(-1)


def analytic(obj, log_r):
    """M(r) = exp(ψ − ζ)·sech²(log r / c), paper-notes §1.5."""
    t = torch.tanh(log_r / obj.c)
    psi = obj.c * t
    return torch.exp(psi - obj.zeta(psi)) * (1 - t * t)


GRID = torch.linspace(-20, 20, 4001, dtype=DT)  # log r over the whole clamped range


def test_theorem1_literal_defaults():
    m = multiplier(objectives.get("mhpo"), GRID)
    assert (m > 0).all() and (m <= math.exp(1.5)).all()


@settings(max_examples=40, deadline=None)
@given(c=st.floats(0.2, 3.0), k_pos=st.floats(0.5, 3.0), lam_pos=st.floats(0.3, 3.0),
       k_neg=st.floats(0.5, 3.0), lam_neg=st.floats(0.3, 3.0), log_r=st.floats(-20.0, 20.0))
def test_theorem1_property(c, k_pos, lam_pos, k_neg, lam_neg, log_r):
    params = dict(c=c, k_pos=k_pos, lam_pos=lam_pos, k_neg=k_neg, lam_neg=lam_neg)
    x = torch.tensor([log_r, -log_r, 0.0], dtype=DT)
    m = multiplier(objectives.get("mhpo", **params), x)
    assert (m >= 0).all() and (m <= math.exp(c) * (1 + 1e-12)).all()  # ≥ 0: exp(−ζ) may underflow
    centered = objectives.get("mhpo", centered=True, **params)
    assert (multiplier(centered, x) <= multiplier_bound(centered) * (1 + 1e-9)).all()


def test_centered_bound_is_attained_scale():
    obj = objectives.get("mhpo", centered=True)
    bound = multiplier_bound(obj)
    assert math.exp(1.5) < bound < math.exp(1.5 + 0.1)  # ζ_centered dips slightly below 0 (≈ −0.06)
    assert multiplier(obj, GRID).max() <= bound
    assert abs(multiplier(obj, torch.zeros(1))[0].item() - 1.0) < 1e-12  # on-policy scale 1


# r, ψ, ζ+, ζ−, exp(−ζ), w = exp(ψ − ζ), M  (paper-notes §1.5, defaults, rounded as printed there)
TABLE = [
    (0.05, -1.446, 0.097, 4.291, 0.012, 0.0029, 0.0002),
    (0.2, -1.186, 0.138, 3.296, 0.032, 0.0099, 0.0037),
    (0.5, -0.648, 0.273, 1.784, 0.128, 0.067, 0.054),
    (0.8, -0.222, 0.451, 1.025, 0.228, 0.183, 0.179),
    (1.0, 0.0, 0.577, 0.751, 0.265, 0.265, 0.265),
    (1.2, 0.181, 0.699, 0.575, 0.280, 0.335, 0.330),
    (2.0, 0.648, 1.105, 0.277, 0.251, 0.480, 0.391),
    (5.0, 1.186, 1.750, 0.111, 0.155, 0.509, 0.191),
    (100.0, 1.494, 2.209, 0.064, 0.103, 0.459, 0.004),
]


@pytest.mark.parametrize("row", TABLE, ids=[str(r[0]) for r in TABLE])
def test_paper_notes_table(row):
    r, psi, zp, zn, surv, w, m = row
    obj = objectives.get("mhpo")
    lr = torch.tensor([math.log(r)], dtype=DT)
    p = obj.c * torch.tanh(lr / obj.c)
    assert p.item() == pytest.approx(psi, abs=6e-4)
    assert (F.softplus(p) / obj.lam_pos).pow(obj.k_pos).item() == pytest.approx(zp, abs=6e-4)
    assert (F.softplus(-p) / obj.lam_neg).pow(obj.k_neg).item() == pytest.approx(zn, abs=6e-4)
    assert math.exp(-obj.zeta(p).item()) == pytest.approx(surv, abs=6e-4)
    assert math.exp((p - obj.zeta(p)).item()) == pytest.approx(w, abs=6e-4)
    assert multiplier(obj, lr).item() == pytest.approx(m, abs=6e-4)


def test_on_policy_scale_and_maximum():
    obj = objectives.get("mhpo")
    assert obj.on_policy_scale() == pytest.approx(0.265, abs=5e-4)
    assert multiplier(obj, torch.zeros(1)).item() == pytest.approx(obj.on_policy_scale(), rel=1e-12)
    fine = torch.linspace(0.0, 2.0, 20001, dtype=DT)
    m = multiplier(obj, fine)
    assert m.max().item() == pytest.approx(0.396, abs=1e-3)
    assert math.exp(fine[m.argmax()].item()) == pytest.approx(1.78, abs=0.01)


def test_stop_gradient_on_zeta_gives_exactly_M_times_advantage():
    obj = objectives.get("mhpo")
    lr = torch.linspace(-5, 5, 101, dtype=DT)
    for adv in (1.0, -0.7, 2.5):
        torch.testing.assert_close(multiplier(obj, lr, adv), adv * analytic(obj, lr), rtol=1e-12, atol=0)
    # Without the stop-gradient the multiplier would carry −ζ'(ψ)·ψ' as well: show that differs.
    x = lr.clone().requires_grad_(True)
    t = torch.tanh(x / obj.c)
    torch.exp(obj.c * t - obj.zeta(obj.c * t)).sum().backward()
    assert not torch.allclose(x.grad, analytic(obj, lr))


def test_ablation_lfm_only():
    obj = objectives.get("mhpo_lfm")
    assert not obj.use_dhp and obj.on_policy_scale() == 1.0
    lr = torch.linspace(-6, 6, 121, dtype=DT)
    t = torch.tanh(lr / obj.c)
    torch.testing.assert_close(multiplier(obj, lr), torch.exp(obj.c * t) * (1 - t * t), rtol=1e-12, atol=0)
    assert (multiplier(obj, GRID) <= math.exp(obj.c)).all()


def test_ablation_dhp_only():
    obj = objectives.get("mhpo_dhp")
    assert not obj.use_lfm
    lr = torch.linspace(-6, 6, 121, dtype=DT)
    expected = torch.exp(lr - obj.zeta(lr))  # r·exp(−ζ(log r)), no sech² and no bound on ψ
    torch.testing.assert_close(multiplier(obj, lr), expected, rtol=1e-12, atol=0)
    assert multiplier_bound(obj) == math.inf


def test_ablation_symmetric_hazard():
    obj = objectives.get("mhpo_sym")
    assert (obj.k_pos, obj.lam_pos) == (obj.k_neg, obj.lam_neg) == (1.5, 1.0)
    x = torch.linspace(-1.5, 1.5, 31, dtype=DT)
    torch.testing.assert_close(obj.zeta(x), obj.zeta(-x), rtol=1e-12, atol=0)
    literal = objectives.get("mhpo")
    assert not torch.allclose(literal.zeta(x), literal.zeta(-x))  # the default is asymmetric
    assert literal.zeta(torch.tensor(-1.0, dtype=DT)) > literal.zeta(torch.tensor(1.0, dtype=DT))  # erosion costs more


def test_centered_zeta_is_zero_on_policy_and_dips_below():
    obj = objectives.get("mhpo", centered=True)
    assert obj.zeta(torch.zeros((), dtype=DT)).item() == pytest.approx(0.0, abs=1e-15)
    x = torch.linspace(-1.5, 1.5, 3001, dtype=DT)
    z = obj.zeta(x)
    assert -0.1 < z.min().item() < 0
    assert 1.1 < math.exp(x[z.argmin()].item()) < 1.35  # near r ≈ 1.2


def test_hazard_is_weibull_of_softplus():
    x = torch.tensor([0.0, 0.5, -0.5], dtype=DT)
    expected = (F.softplus(x) / 1.0) ** 1.5 + (F.softplus(-x) / 0.8) ** 2.0
    torch.testing.assert_close(hazard(x, 1.5, 1.0, 2.0, 0.8), expected)
    assert hazard(torch.zeros((), dtype=DT), 1.5, 1.0, 2.0, 0.8).item() == pytest.approx(
        math.log(2) ** 1.5 + (math.log(2) / 0.8) ** 2)


def test_metrics_match_definitions():
    lr = torch.tensor([-0.5, 0.0, 0.4, 2.0], dtype=DT)
    obj = objectives.get("mhpo")
    lp = lr.reshape(1, -1)
    out = obj(logps=lp, old_logps=torch.zeros_like(lp), advantages=torch.ones(1, dtype=DT), mask=torch.ones_like(lp))
    psi = obj.c * torch.tanh(lr / obj.c)
    m = out.metrics
    assert m["mhpo/survival"] == pytest.approx(torch.exp(-obj.zeta(psi)).mean().item())
    assert m["mhpo/mult_mean"] == pytest.approx(analytic(obj, lr).mean().item())
    assert m["mhpo/mult_max"] == pytest.approx(analytic(obj, lr).max().item())
    assert m["mhpo/saturation"] == pytest.approx(0.25)  # |log r| = 2 > c


def test_invalid_parameters_are_named():
    for key in ("c", "k_pos", "lam_pos", "k_neg", "lam_neg"):
        with pytest.raises(objectives.ObjectiveError, match=f"'{key}'"):
            objectives.get("mhpo", **{key: 0.0})
    with pytest.raises(objectives.ObjectiveError, match="'centered'"):
        objectives.get("mhpo", centered="yes")
