"""Conformance of every registered objective to the contract in ``mhpo/objectives/__init__.py``.

Parametrised over ``objectives.available()`` at collection time, so a new file in ``baselines/`` is checked
without editing this file: ``pytest tests/test_conformance.py -k my_obj``. ``check_objective(name)`` runs
the same checks for one objective (the scaffolded test stubs call it).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mhpo import objectives
from mhpo.objectives import AGGREGATIONS, Batch, ObjectiveError

NAMES = objectives.available()
DT = torch.float64


def inputs(seed=0, B=5, T=7, drift=0.3, lengths=None, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(B, T, generator=g, dtype=dtype) * 4
    old = logps + drift * torch.randn(B, T, generator=g, dtype=dtype)
    if lengths is None:
        lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None] < torch.as_tensor(lengths)[:, None]).to(dtype)
    adv = torch.randn(B, generator=g, dtype=dtype)
    return logps, old, adv, mask


def run(name, logps, old, adv, mask, params=None, **call):
    """Loss, gradient w.r.t. logps and metrics of a fresh instance (fresh: clip_cov's draw restarts)."""
    leaf = logps.detach().clone().requires_grad_(True)
    out = objectives.get(name, **(params or {}))(logps=leaf, old_logps=old, advantages=adv, mask=mask, **call)
    out.loss.backward()
    return out.loss.detach(), leaf.grad, out.metrics


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def ref_aggregate(loss: torch.Tensor, mask: torch.Tensor, mode: str, max_len: int | None = None) -> torch.Tensor:
    """The aggregations of /work/shared/reference/objectives.md §1, one sequence at a time (independent of
    ``mhpo.objectives.aggregate``): λ (B, T) per token, m the mask, |o_i| = Σ_t m_it."""
    B, T = loss.shape
    rows = [[loss[i, t] * mask[i, t] for t in range(T)] for i in range(B)]
    lengths = [float(mask[i].sum()) for i in range(B)]
    if mode in ("seq-mean-token-mean", "sequence"):  # (1/B) Σ_i (1/|o_i|) Σ_t λ m; an empty row counts 0
        return sum(sum(r) / max(n, 1.0) for r, n in zip(rows, lengths)) / B
    if mode == "token-mean":  # Σ λ m / Σ m
        return sum(sum(r) for r in rows) / max(sum(lengths), 1.0)
    if mode == "seq-mean-token-sum":  # (1/B) Σ_i Σ_t λ m
        return sum(sum(r) for r in rows) / B
    if mode == "seq-mean-token-sum-norm":  # Σ λ m / (B·L), L the maximum length (T when not given)
        return sum(sum(r) for r in rows) / (B * (T if max_len is None else max_len))
    raise AssertionError(mode)


# ---------------------------------------------------------------------------------------------- checks
def check_finite_and_masked(name):
    logps, old, adv, mask = inputs(1)
    loss, grad, metrics = run(name, logps, old, adv, mask)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.isfinite(grad).all()
    assert (grad[mask == 0] == 0).all(), "gradient leaked to padding"
    assert grad.abs().sum() > 0, "no gradient at all"
    assert metrics and all(isinstance(k, str) and isinstance(v, float) for k, v in metrics.items())
    own = [k for k in metrics if "/" in k and not k.startswith(("ratio/",))]
    assert all(k.startswith(f"{name}/") for k in own), f"objective metrics must be named '{name}/<key>': {own}"


def check_nan_padding(name):
    logps, old, adv, mask = inputs(2)
    clean = run(name, logps, old, adv[:, None].expand_as(logps), mask)
    pad = mask == 0
    dirty = [t.clone() for t in (logps, old, adv[:, None].expand_as(logps))]
    for t, v in zip(dirty, (math.nan, math.inf, -math.inf)):
        t[pad] = v
    loss, grad, _ = run(name, *dirty, mask)
    close(loss, clean[0])
    close(grad, clean[1])


def check_fully_masked(name):
    logps, old, adv, mask = inputs(3, lengths=[7, 0, 3, 0, 5])
    loss, grad, metrics = run(name, logps, old, adv, mask)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert (grad[1] == 0).all() and (grad[3] == 0).all()
    loss, grad, metrics = run(name, logps, old, adv, torch.zeros_like(mask))
    assert loss.item() == 0.0 and (grad == 0).all()
    assert all(math.isfinite(v) for v in metrics.values())


def check_extreme_ratios(name):
    for dtype in (torch.float32, DT):
        logps, _, adv, mask = inputs(4, dtype=dtype)
        sign = torch.where(torch.rand(logps.shape, generator=torch.Generator().manual_seed(0)) > 0.5, 1.0, -1.0)
        loss, grad, metrics = run(name, logps, logps + 1e4 * sign.to(dtype), adv, mask)
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), dtype
        assert all(math.isfinite(v) for v in metrics.values())


def check_advantage_shapes(name):
    logps, old, adv, mask = inputs(5)
    a = run(name, logps, old, adv, mask)
    b = run(name, logps, old, adv[:, None].expand_as(logps).clone(), mask)
    close(a[0], b[0])
    close(a[1], b[1])


def check_on_policy_identity(name):
    """old_logps = logps.detach() ⇒ gradient = −scale·Â·∇logπ, aggregated the objective's way."""
    params = objectives.get_class(name).on_policy_params  # clip_cov: a covariance window no token reaches
    obj = objectives.get(name, **params)
    logps, _, adv, mask = inputs(6)
    loss, grad, _ = run(name, logps, logps, adv, mask, params, max_len=11)  # (num_tokens: see test_parity_trl.py)
    leaf = logps.clone().requires_grad_(True)
    vanilla = -torch.exp(leaf - leaf.detach()) * adv[:, None]  # value −Â, gradient −Â·∇logπ
    ref_aggregate(vanilla, mask, obj.aggregation, max_len=11).backward()
    torch.testing.assert_close(grad, obj.on_policy_scale() * leaf.grad, rtol=1e-9, atol=1e-12)


def check_aggregation_override(name):
    """Every aggregation, set as a parameter, reduces the objective's per-token loss as ref_aggregate does."""
    logps, old, adv, mask = inputs(7)
    losses = {}
    for mode in AGGREGATIONS:
        loss, _, _ = run(name, logps, old, adv, mask, params={"aggregation": mode}, max_len=11)
        obj = objectives.get(name, aggregation=mode)
        per_token = obj.per_token_loss(Batch(logps, old, adv, mask))
        if per_token.dim() == 1:
            per_token = per_token[:, None].expand_as(logps)
        close(loss, ref_aggregate(per_token.detach(), mask, mode, max_len=11))
        losses[mode] = loss.item()
    # The modes differ on this batch (rows of unequal length), so a parameter that is ignored cannot pass.
    assert len({round(v, 12) for k, v in losses.items() if k != "sequence"}) == 4, losses
    with pytest.raises(ObjectiveError, match="aggregation"):
        objectives.get(name, aggregation="token-sum")


def check_parameter_errors(name):
    with pytest.raises(ObjectiveError, match="not_a_param"):
        objectives.get(name, not_a_param=1.0)
    cls = objectives.get_class(name)
    for f in dataclasses.fields(cls):
        if f.type in (float, "float"):
            with pytest.raises(ObjectiveError, match=repr(f.name)):
                objectives.get(name, **{f.name: "1.0"})
            with pytest.raises(ObjectiveError, match=repr(f.name)):
                objectives.get(name, **{f.name: math.nan})
    for key, pred, _ in cls.checks:
        bad = next((v for v in (-1.0, 0.0, 1.0, 1e9, -1e9) if not pred(v)), None)
        if bad is not None:
            with pytest.raises(ObjectiveError, match=repr(key)):
                objectives.get(name, **{key: bad})


def check_kl_term(name):
    logps, old, adv, mask = inputs(8)
    with pytest.raises(ValueError, match="ref_logps"):
        run(name, logps, old, adv, mask, params={"beta": 0.1})
    ref = logps + 0.5
    base, g0, _ = run(name, logps, old, adv, mask)
    loss, g1, metrics = run(name, logps, old, adv, mask, params={"beta": 0.1}, ref_logps=ref)
    assert loss > base and "kl_ref" in metrics  # k3 ≥ 0, > 0 when ref ≠ logps
    assert not torch.equal(g0, g1)


def check_bad_shapes(name):
    logps, old, adv, mask = inputs(9)
    obj = objectives.get(name)
    with pytest.raises(ValueError, match="mask"):
        obj(logps=logps, old_logps=old, advantages=adv, mask=mask[:, :-1])
    with pytest.raises(ValueError, match="advantages"):
        obj(logps=logps, old_logps=old, advantages=adv[:-1], mask=mask)


CHECKS = [check_finite_and_masked, check_nan_padding, check_fully_masked, check_extreme_ratios,
          check_advantage_shapes, check_on_policy_identity, check_aggregation_override,
          check_parameter_errors, check_kl_term, check_bad_shapes]


def check_objective(name: str) -> None:
    """Every conformance check for one objective (used by scaffolded ``tests/test_objective_<name>.py``)."""
    for check in CHECKS:
        check(name)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__[6:] for c in CHECKS])
@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, check):
    check(name)


# ------------------------------------------------------------------------------------ property tests
@st.composite
def batches(draw):
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    vals = st.floats(-8.0, 0.0, allow_nan=False)
    logps = torch.tensor(draw(st.lists(st.lists(vals, min_size=T, max_size=T), min_size=B, max_size=B)), dtype=DT)
    drift = torch.tensor(draw(st.lists(st.floats(-30.0, 30.0), min_size=B * T, max_size=B * T)), dtype=DT).view(B, T)
    mask = torch.tensor(draw(st.lists(st.booleans(), min_size=B * T, max_size=B * T)), dtype=DT).view(B, T)
    adv = torch.tensor(draw(st.lists(st.floats(-3.0, 3.0), min_size=B, max_size=B)), dtype=DT)
    return logps, logps + drift, adv, mask


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=batches())
def test_property_finite_and_no_padding_gradient(name, data):
    logps, old, adv, mask = data
    loss, grad, metrics = run(name, logps, old, adv, mask)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert (grad[mask == 0] == 0).all()
    assert all(math.isfinite(v) for v in metrics.values())


def test_clip_cov_is_deterministic_given_seed():
    # Covariances in (1, 5) need large |Â|·|logπ| deviations: build some.
    logps, old, adv, mask = inputs(10, B=16, T=32, drift=0.05)
    adv = adv * 4
    runs = [run("clip_cov", logps, old, adv, mask, params={"seed": s, "cov_ratio": 0.05}) for s in (0, 0, 1)]
    close(runs[0][1], runs[1][1])
    assert runs[0][2]["clip_cov/cov_drop_frac"] > 0
    assert not torch.equal(runs[0][1], runs[2][1])


def test_bnpo_ignores_global_token_count():
    logps, old, adv, mask = inputs(11)
    a = run("bnpo", logps, old, adv, mask)
    b = run("bnpo", logps, old, adv, mask, num_tokens=torch.tensor(1e3, dtype=DT))
    c = run("dapo", logps, old, adv, mask, params={"eps_high": 0.2}, num_tokens=torch.tensor(1e3, dtype=DT))
    close(a[0], b[0])
    assert not torch.allclose(a[0], c[0])


def test_inherited_parameter_redefault_is_a_field_default():
    assert objectives.get("dapo").eps_high == 0.28  # re-defaulted in the subclass without an annotation
    assert objectives.get("gspo").eps_low == 3e-4
    assert objectives.get("dapo").aggregation == "token-mean"


def test_unknown_objective_names_the_choices():
    with pytest.raises(ObjectiveError, match="unknown objective 'nope'.*grpo"):
        objectives.get("nope")
