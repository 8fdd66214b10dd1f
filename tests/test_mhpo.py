"""MHPO (arXiv 2603.16929) checked against an independent reference written here, not against its own code.

The reference (``ref_*`` below) is plain Python floats: softplus, the Weibull cumulative hazard H(x) = (x/λ)^k,
ψ = c·tanh(log r / c), ζ = H+(s(ψ)) + H−(s(−ψ)) and the closed-form multiplier
M(r) = exp(ψ − ζ)·sech²(log r / c) of /work/shared/reference/paper-notes.md §1.5. The code's side is always
obtained through the objective itself: M by autograd (∂(−loss)/∂logπ ÷ Â), the weight w = exp(ψ − ζ) from the
loss value, ζ from ``obj.zeta``. The reference is itself checked against the table of the paper notes.

tests/mutation.py applies the mutants it lists (c, k−, λ+ defaults; softplus(−x) → softplus(x);
softplus → relu) to a scratch copy and requires each to be killed by at least two tests of this file.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mhpo import objectives
from mhpo.mhpo import hazard, multiplier_bound

DT = torch.float64
PAPER = {"c": 1.5, "k_pos": 1.5, "lam_pos": 1.0, "k_neg": 2.0, "lam_neg": 0.8}  # paper §4.1 via paper-notes §1.3


# ------------------------------------------------------------------------------- independent reference
def ref_softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def ref_weibull_cumhaz(x: float, k: float, lam: float) -> float:
    """Weibull cumulative hazard H(x) = (x/λ)^k, x ≥ 0 (−log of the Weibull survival function)."""
    return (x / lam) ** k


def ref_zeta(psi: float, k_pos, lam_pos, k_neg, lam_neg, c=None) -> float:
    """ζ = H(s(ψ); k+, λ+) + H(s(−ψ); k−, λ−) with s the softplus (c is accepted and unused: ζ takes ψ)."""
    return (ref_weibull_cumhaz(ref_softplus(psi), k_pos, lam_pos)
            + ref_weibull_cumhaz(ref_softplus(-psi), k_neg, lam_neg))


def ref_psi(log_r: float, c: float) -> float:
    return c * math.tanh(log_r / c)


def ref_multiplier(log_r: float, c, k_pos, lam_pos, k_neg, lam_neg, *, lfm=True, dhp=True, centered=False) -> float:
    """M(r) = exp(ψ − ζ)·sech²(log r / c) (LFM + DHP); exp(ψ)·sech² (LFM only); r·exp(−ζ(log r)) (DHP only)."""
    p = {"c": c, "k_pos": k_pos, "lam_pos": lam_pos, "k_neg": k_neg, "lam_neg": lam_neg}
    psi = ref_psi(log_r, c) if lfm else log_r
    zeta = ref_zeta(psi, **p) - (ref_zeta(0.0, **p) if centered else 0.0) if dhp else 0.0
    sech2 = 1.0 / math.cosh(log_r / c) ** 2 if lfm else 1.0
    return math.exp(psi - zeta) * sech2


# ------------------------------------------------------------------------------------- the code's side
def multiplier(obj, log_r, adv: float = 1.0) -> torch.Tensor:
    """∂(−loss)/∂logπ ÷ Â per token by autograd, one token per sequence (B = len(log_r), T = 1)."""
    log_r = torch.as_tensor(log_r, dtype=DT).reshape(-1)
    old = torch.zeros(len(log_r), 1, dtype=DT)
    lp = log_r.reshape(-1, 1).clone().requires_grad_(True)
    out = obj(logps=lp, old_logps=old, advantages=torch.full((len(log_r),), adv, dtype=DT), mask=torch.ones_like(old))
    (-out.loss * len(log_r)).backward()  # undo the mean over sequences
    return lp.grad.reshape(-1) / adv


def weight(obj, log_r: float) -> float:
    """w(r) = −loss / Â for one single-token sequence: exp(ψ − ζ) for MHPO."""
    lp = torch.tensor([[log_r]], dtype=DT)
    return -obj(logps=lp, old_logps=torch.zeros_like(lp), advantages=torch.ones(1, dtype=DT),
                mask=torch.ones_like(lp)).loss.item()


def ref_grid(xs, **kw) -> torch.Tensor:
    return torch.tensor([ref_multiplier(float(x), **kw) for x in xs], dtype=DT)


# The code forms sech² as 1 − tanh², which loses relative precision where sech² is tiny (|log r| ≫ c):
# compare to 1e-9 relative, or 1e-12 absolute (M ≤ e^c ≤ e^3 here).
ATOL = 1e-12
GRID = torch.linspace(-20, 20, 801, dtype=DT)  # log r over the whole clamped range
params = st.fixed_dictionaries({"c": st.floats(0.2, 3.0), "k_pos": st.floats(0.5, 3.0), "lam_pos": st.floats(0.3, 3.0),
                                    "k_neg": st.floats(0.5, 3.0), "lam_neg": st.floats(0.3, 3.0)})


# ------------------------------------------------------------------------------- Theorem 1, closed form
@settings(max_examples=40, deadline=None)
@given(p=params, log_r=st.lists(st.floats(-20.0, 20.0), min_size=1, max_size=6), adv=st.sampled_from([1.0, -0.7, 2.5]))
def test_autograd_multiplier_is_the_closed_form_at_random_parameters(p, log_r, adv):
    """Exactly M(r)·Â (the stop-gradient on ζ: no −ζ'·ψ' term), for every sign of Â; and 0 ≤ M ≤ e^c."""
    got = multiplier(objectives.get("mhpo", **p), log_r, adv)
    want = torch.tensor([ref_multiplier(x, **p) for x in log_r], dtype=DT)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=ATOL)
    assert (got >= 0).all() and (got <= math.exp(p["c"])).all()  # ≥ 0: exp(−ζ) may underflow


@settings(max_examples=20, deadline=None)
@given(p=params, log_r=st.floats(-20.0, 20.0))
def test_ablations_and_centering_are_their_closed_forms_at_random_parameters(p, log_r):
    for name, kw in (("mhpo_lfm", {"dhp": False}), ("mhpo_dhp", {"lfm": False}), ("mhpo", {"centered": True})):
        extra = {"centered": True} if kw.get("centered") else {}
        got = multiplier(objectives.get(name, **p, **extra), [log_r]).item()
        assert got == pytest.approx(ref_multiplier(log_r, **p, **kw), rel=1e-9, abs=ATOL), name


def test_defaults_are_the_papers():
    obj = objectives.get("mhpo")
    assert {k: getattr(obj, k) for k in PAPER} == PAPER
    assert ((obj.use_lfm, obj.use_dhp, obj.centered, obj.aggregation, obj.beta)
            == (True, True, False, "seq-mean-token-mean", 0.0))


def test_multiplier_at_defaults_is_the_closed_form_with_the_papers_constants():
    torch.testing.assert_close(multiplier(objectives.get("mhpo"), GRID), ref_grid(GRID, **PAPER), rtol=1e-9, atol=ATOL)


def test_lfm_only_bound_is_tight_at_large_positive_log_r():
    """Theorem 1's e^c is the supremum of the LFM weight w = exp(ψ), approached as log r → +∞ (ψ → c); the
    multiplier M = w·sech² itself peaks lower, at tanh(log r/c) = (√(1+c²) − 1)/c (d log M / dt = c − 2t/(1−t²))."""
    obj = objectives.get("mhpo_lfm")
    c = PAPER["c"]
    assert weight(obj, 20.0) == pytest.approx(math.exp(c), rel=1e-9)  # ψ(e^20) = c − 3e-11·c
    assert weight(obj, 20.0) < math.exp(c)
    assert weight(obj, 5.0) == pytest.approx(math.exp(c * math.tanh(5.0 / c)), rel=1e-12)
    t = (math.sqrt(1 + c * c) - 1) / c
    peak = c * math.atanh(t)
    x = torch.linspace(peak - 1e-3, peak + 1e-3, 201, dtype=DT)
    m = multiplier(obj, x)
    assert m.max().item() == pytest.approx(math.exp(c * t) * (1 - t * t), rel=1e-9)  # ≈ 1.5925 < e^1.5 ≈ 4.48
    assert abs(x[m.argmax()].item() - peak) <= 1e-5
    assert (multiplier(obj, GRID) <= m.max() * (1 + 1e-12)).all()


@settings(max_examples=20, deadline=None)
@given(c=st.floats(0.2, 3.0))
def test_lfm_only_sup_at_random_c(c):
    obj = objectives.get("mhpo_lfm", c=c)
    assert weight(obj, 20.0) == pytest.approx(math.exp(c * math.tanh(20.0 / c)), rel=1e-12)
    t = (math.sqrt(1 + c * c) - 1) / c
    assert multiplier(obj, [c * math.atanh(t)]).item() == pytest.approx(math.exp(c * t) * (1 - t * t), rel=1e-9)


def test_centered_bound():
    """centered: M(1) = 1 and sup M ≤ e^(c − min ζ_centered), min taken over ψ ∈ (−c, c) by the reference."""
    obj = objectives.get("mhpo", centered=True)
    assert multiplier(obj, [0.0]).item() == pytest.approx(1.0, abs=1e-12)
    psis = [PAPER["c"] * (i / 5000 - 1) for i in range(10001)]
    z0 = ref_zeta(0.0, **PAPER)
    zmin = min(ref_zeta(p, **PAPER) - z0 for p in psis)
    assert -0.1 < zmin < 0  # ζ_centered dips slightly below 0 (paper-notes open item 1)
    bound = math.exp(PAPER["c"] - zmin)
    assert multiplier_bound(obj) == pytest.approx(bound, rel=1e-6)
    assert (multiplier(obj, GRID) <= bound).all()


# --------------------------------------------------------------- the table of paper-notes §1.5 (defaults)
# r, ψ, ζ+, ζ−, exp(−ζ), w = exp(ψ − ζ), M  (rounded as printed there)
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
    x = math.log(r)
    # The reference reproduces every column (so it is the formula the notes computed with) ...
    p = ref_psi(x, PAPER["c"])
    assert p == pytest.approx(psi, abs=6e-4)
    assert ref_weibull_cumhaz(ref_softplus(p), PAPER["k_pos"], PAPER["lam_pos"]) == pytest.approx(zp, abs=6e-4)
    assert ref_weibull_cumhaz(ref_softplus(-p), PAPER["k_neg"], PAPER["lam_neg"]) == pytest.approx(zn, abs=6e-4)
    # ... and the code, through its own outputs, reproduces ψ, exp(−ζ), w and M.
    obj = objectives.get("mhpo")
    assert math.log(weight(objectives.get("mhpo_lfm"), x)) == pytest.approx(psi, abs=6e-4)
    lp = torch.tensor([[x]], dtype=DT)
    out = obj(logps=lp, old_logps=torch.zeros_like(lp), advantages=torch.ones(1, dtype=DT), mask=torch.ones_like(lp))
    assert out.metrics["mhpo/survival"] == pytest.approx(surv, abs=6e-4)
    assert weight(obj, x) == pytest.approx(w, abs=6e-4)
    assert multiplier(obj, [x]).item() == pytest.approx(m, abs=6e-4)


def test_on_policy_scale_and_maximum():
    obj = objectives.get("mhpo")
    z1 = ref_zeta(0.0, **PAPER)  # (log 2)^1.5 + (log 2 / 0.8)^2
    assert obj.on_policy_scale() == pytest.approx(math.exp(-z1), rel=1e-12)
    assert obj.on_policy_scale() == pytest.approx(0.265, abs=5e-4)
    assert multiplier(obj, [0.0]).item() == pytest.approx(math.exp(-z1), rel=1e-12)
    fine = torch.linspace(0.0, 2.0, 2001, dtype=DT)
    m = multiplier(obj, fine)
    assert m.max().item() == pytest.approx(0.396, abs=1e-3)
    assert math.exp(fine[m.argmax()].item()) == pytest.approx(1.78, abs=0.01)


# ---------------------------------------------------------------------------------------- ablations
def test_ablation_flags():
    assert not objectives.get("mhpo_lfm").use_dhp and objectives.get("mhpo_lfm").on_policy_scale() == 1.0
    assert not objectives.get("mhpo_dhp").use_lfm and multiplier_bound(objectives.get("mhpo_dhp")) == math.inf
    sym = objectives.get("mhpo_sym")
    assert (sym.k_pos, sym.lam_pos, sym.k_neg, sym.lam_neg, sym.c) == (1.5, 1.0, 1.5, 1.0, 1.5)


@pytest.mark.parametrize("name, kw", [("mhpo_lfm", {"dhp": False}), ("mhpo_dhp", {"lfm": False}),
                                      ("mhpo_sym", {"k_neg": 1.5, "lam_neg": 1.0})])
def test_ablations_at_defaults(name, kw):
    xs = torch.linspace(-6, 6, 121, dtype=DT)
    p = {**PAPER, **{k: v for k, v in kw.items() if k in PAPER}}
    flags = {k: v for k, v in kw.items() if k not in PAPER}
    torch.testing.assert_close(multiplier(objectives.get(name), xs), ref_grid(xs, **p, **flags), rtol=1e-9, atol=ATOL)


def test_symmetric_hazard_is_even_and_the_default_is_not():
    x = torch.linspace(-1.5, 1.5, 31, dtype=DT)
    sym = objectives.get("mhpo_sym")
    torch.testing.assert_close(sym.zeta(x), sym.zeta(-x), rtol=1e-12, atol=0)
    literal = objectives.get("mhpo")
    assert (literal.zeta(-x[x > 0]) > literal.zeta(x[x > 0])).all()  # erosion (r < 1) costs more than expansion


# ----------------------------------------------------------------------------------- ζ and metrics
@settings(max_examples=30, deadline=None)
@given(p=params, psi=st.floats(-3.0, 3.0))
def test_hazard_is_the_weibull_cumulative_hazard_of_softplus(p, psi):
    got = hazard(torch.tensor(psi, dtype=DT), p["k_pos"], p["lam_pos"], p["k_neg"], p["lam_neg"]).item()
    assert got == pytest.approx(ref_zeta(psi, **p), rel=1e-12)


def test_centered_zeta_is_zero_on_policy_and_dips_below_near_r_1_2():
    obj = objectives.get("mhpo", centered=True)
    assert obj.zeta(torch.zeros((), dtype=DT)).item() == pytest.approx(0.0, abs=1e-15)
    x = torch.linspace(-1.5, 1.5, 3001, dtype=DT)
    z = obj.zeta(x)
    assert -0.1 < z.min().item() < 0
    assert 1.1 < math.exp(x[z.argmin()].item()) < 1.35


def test_metrics_match_definitions():
    lr = [-0.5, 0.0, 0.4, 2.0]
    obj = objectives.get("mhpo")
    lp = torch.tensor([lr], dtype=DT)
    out = obj(logps=lp, old_logps=torch.zeros_like(lp), advantages=torch.ones(1, dtype=DT), mask=torch.ones_like(lp))
    m = out.metrics
    assert m["mhpo/survival"] == pytest.approx(sum(math.exp(-ref_zeta(ref_psi(x, 1.5), **PAPER)) for x in lr) / 4,
                                               rel=1e-6)
    mult = [ref_multiplier(x, **PAPER) for x in lr]
    assert m["mhpo/mult_mean"] == pytest.approx(sum(mult) / 4, rel=1e-6)
    assert m["mhpo/mult_max"] == pytest.approx(max(mult), rel=1e-6)
    assert m["mhpo/saturation"] == pytest.approx(0.25)  # |log r| = 2 > c


def test_invalid_parameters_are_named():
    for key in PAPER:
        with pytest.raises(objectives.ObjectiveError, match=f"'{key}'"):
            objectives.get("mhpo", **{key: 0.0})
    with pytest.raises(objectives.ObjectiveError, match="'centered'"):
        objectives.get("mhpo", centered="yes")
