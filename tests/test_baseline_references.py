"""Off-policy reference values for the baselines TRL has no loss type for: gpg, topr, kl_cov, clip_cov and
gspo_token. Each reference is computed here in plain Python, token by token, from the paper's formula as
/work/shared/reference/objectives.md gives it (never from our code); loss and gradient w.r.t. logπ must agree.
The other baselines are checked against TRL's own ``_compute_loss`` (tests/test_parity_trl.py), MHPO against
the paper notes and an independent closed form (tests/test_mhpo.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from mhpo import objectives

DT = torch.float64

# Three sequences of lengths 4, 2 and 3 (T = 4), off-policy: log r = logπ − logπ_old ranges over ±0.5.
LOGPS = [[-0.9, -2.1, -0.3, -1.7], [-3.2, -0.6, 0.0, 0.0], [-1.1, -0.2, -2.6, 0.0]]
OLD = [[-1.2, -1.9, -0.35, -1.4], [-2.7, -0.65, 0.0, 0.0], [-1.0, -0.55, -2.5, 0.0]]
MASK = [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]]
ADV = [1.3, -0.8, -0.4]


def tokens():
    """(i, t) of every valid token, row by row."""
    return [(i, t) for i in range(len(MASK)) for t in range(len(MASK[0])) if MASK[i][t]]


def ours(name, params=None, adv=None, logps=LOGPS, old=OLD, **call):
    leaf = torch.tensor(logps, dtype=DT, requires_grad=True)
    a = torch.tensor(ADV if adv is None else adv, dtype=DT)
    out = objectives.get(name, **(params or {}))(logps=leaf, old_logps=torch.tensor(old, dtype=DT), advantages=a,
                                                 mask=torch.tensor(MASK, dtype=DT), **call)
    out.loss.backward()
    return out.loss.item(), leaf.grad.tolist(), out.metrics


def check(got, loss, grad):
    g_loss, g_grad, _ = got
    assert g_loss == pytest.approx(loss, rel=1e-12, abs=1e-15)
    for i, row in enumerate(grad):
        assert g_grad[i] == pytest.approx(row, rel=1e-12, abs=1e-15), f"row {i}"


def zeros():
    return [[0.0] * len(MASK[0]) for _ in MASK]


# ------------------------------------------------------------------------------------------------- GPG
def test_gpg_is_plain_policy_gradient_at_any_ratio():
    """GPG (arXiv 2504.02546): λ = −Â·logπ, token-mean; the ratio plays no part."""
    n = len(tokens())
    loss = sum(-ADV[i] * LOGPS[i][t] for i, t in tokens()) / n
    grad = zeros()
    for i, t in tokens():
        grad[i][t] = -ADV[i] / n
    check(ours("gpg"), loss, grad)
    assert loss == pytest.approx((-1.3 * (-5.0) + 0.8 * (-3.8) + 0.4 * (-3.9)) / 9)  # the sums by hand: 1.9/9


# ------------------------------------------------------------------------------------------------ TOPR
def test_topr_tapers_only_negative_trajectories():
    """TOPR (arXiv 2503.14286): λ_i = −sg(ρ_i)·Â_i·Σ_t logπ, ρ_i = 1 if Â_i ≥ 0 else min(1, Π_t r_it); (1/B) Σ_i."""
    B = len(MASK)
    rho = []
    for i in range(B):
        log_w = sum(LOGPS[i][t] - OLD[i][t] for t in range(len(MASK[0])) if MASK[i][t])
        rho.append(1.0 if ADV[i] >= 0 else min(1.0, math.exp(log_w)))
    # Â_0 > 0: no weight; Σ log r = −0.5 + 0.05 for row 1 (truncated) and +0.15 for row 2 (capped at 1).
    assert rho == pytest.approx([1.0, math.exp(-0.45), 1.0], rel=1e-12)
    loss = sum(-rho[i] * ADV[i] * LOGPS[i][t] for i, t in tokens()) / B
    grad = zeros()
    for i, t in tokens():
        grad[i][t] = -rho[i] * ADV[i] / B
    check(ours("topr"), loss, grad)


# ---------------------------------------------------------------------------------------------- KL-Cov
def covariances():
    """C_t = (Â_t − mean Â)·(logπ_t − mean logπ), means over the valid tokens (arXiv 2505.22617)."""
    toks = tokens()
    mean_a = sum(ADV[i] for i, _ in toks) / len(toks)
    mean_l = sum(LOGPS[i][t] for i, t in toks) / len(toks)
    return {(i, t): (ADV[i] - mean_a) * (LOGPS[i][t] - mean_l) for i, t in toks}


def test_kl_cov_penalises_the_top_covariance_tokens():
    """KL-Cov: λ = −r·Â + k_t·β·|log r|, k_t = 1 on the top max(1, ⌊ρN⌋) tokens by C, no clip; token-mean."""
    ratio, beta = 0.25, 0.7  # ⌊0.25·9⌋ = 2 tokens
    cov = covariances()
    top = sorted(cov, key=cov.get, reverse=True)[:2]
    assert cov[top[1]] > sorted(cov.values())[-3]  # no tie at the cut
    n = len(cov)
    loss, grad = 0.0, zeros()
    for i, t in tokens():
        lr = LOGPS[i][t] - OLD[i][t]
        sel = (i, t) in top
        loss += (-math.exp(lr) * ADV[i] + (beta * abs(lr) if sel else 0.0)) / n
        grad[i][t] = (-math.exp(lr) * ADV[i] + (beta * math.copysign(1.0, lr) if sel else 0.0)) / n
    got = ours("kl_cov", {"kl_cov_ratio": ratio, "kl_coef": beta})
    check(got, loss, grad)
    assert got[2]["kl_cov/kl_frac"] == pytest.approx(2 / 9)


# --------------------------------------------------------------------------------------------- Clip-Cov
def clip_cov_reference(eps, lb, ub, ratio, seed):
    """Clip-Cov (arXiv 2505.22617, verl ``compute_policy_loss_clip_cov``): the PPO surrogate
    max(−r·Â, −clip(r)·Â), times 0 on n = max(1, ⌊ρN⌋) tokens drawn at random among those with lb < C < ub
    that the surrogate did not clip (−r·Â ≥ −clip(r)·Â); token-mean. The draw is verl's
    ``torch.randperm(len(candidates))[:n]`` over the candidates in row-major order, here from a generator
    seeded with ``seed``. Returns loss, gradient, dropped tokens."""
    cov = covariances()
    toks = tokens()
    pg = {}
    for i, t in toks:
        r = math.exp(LOGPS[i][t] - OLD[i][t])
        pg1, pg2 = -ADV[i] * r, -ADV[i] * min(max(r, 1 - eps), 1 + eps)
        pg[i, t] = (max(pg1, pg2), pg1 >= pg2, r)  # (loss, the unclipped branch is the max, r)
    cand = [k for k in toks if lb < cov[k] < ub and pg[k][1]]
    n = max(1, int(ratio * len(toks)))
    pick = torch.randperm(len(cand), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    dropped = {cand[j] for j in pick}
    loss, grad = 0.0, zeros()
    for k in toks:
        if k in dropped:
            continue
        value, unclipped, r = pg[k]
        loss += value / len(toks)
        grad[k[0]][k[1]] = (-ADV[k[0]] * r if unclipped else 0.0) / len(toks)
    return loss, grad, dropped, cand


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_clip_cov_drops_a_seeded_draw_of_window_tokens(seed):
    # C here ranges over (−0.87, 1.91): ω = (−0.85, 1) leaves one token below, two above, and ε = 0.2 clips
    # one inside; ρ = 0.25 drops 2 of the remaining 5 candidates.
    params = {"eps_low": 0.2, "eps_high": 0.2, "cov_lb": -0.85, "cov_ub": 1.0, "cov_ratio": 0.25, "seed": seed}
    loss, grad, dropped, cand = clip_cov_reference(0.2, -0.85, 1.0, 0.25, seed)
    assert len(cand) == 5 and len(dropped) == 2  # a real draw: more candidates than dropped tokens
    got = ours("clip_cov", params)
    check(got, loss, grad)
    assert got[2]["clip_cov/cov_drop_frac"] == pytest.approx(2 / 9)


def test_clip_cov_drops_every_candidate_when_the_share_allows():
    """No randomness: ⌊ρN⌋ ≥ number of candidates, so exactly the window's unclipped tokens lose their gradient."""
    loss, grad, dropped, cand = clip_cov_reference(0.2, -0.85, 1.0, 1.0, 0)
    assert dropped == set(cand) == {(0, 1), (0, 3), (2, 0), (2, 1), (2, 2)}  # the covariances, by hand
    check(ours("clip_cov", {"cov_lb": -0.85, "cov_ub": 1.0, "cov_ratio": 1.0}), loss, grad)


# ------------------------------------------------------------------------------------------- GSPO-token
def test_gspo_token_with_per_token_advantages():
    """GSPO-token (arXiv 2507.18071 §4.3): s_it = sg[s_i]·π_θ(o_it)/sg[π_θ(o_it)], s_i = exp(mean_t log r_it);
    λ_it = −min(s_it·Â_it, clip(s_it, 1−ε_low, 1+ε_high)·Â_it); seq-mean-token-mean. Value s_i, and
    ∂s_it/∂logπ_it = s_i (no other token): the gradient is −Â_it·s_i where the unclipped branch is the min."""
    eps_low, eps_high = 0.05, 0.08
    adv = [[1.3, -0.5, 0.9, 0.2], [-0.8, 1.1, 0.0, 0.0], [-0.4, 0.6, -1.5, 0.0]]  # per token, both signs
    B = len(MASK)
    loss, grad = 0.0, zeros()
    clipped = 0
    for i in range(B):
        valid = [t for t in range(len(MASK[0])) if MASK[i][t]]
        s = math.exp(sum(LOGPS[i][t] - OLD[i][t] for t in valid) / len(valid))
        for t in valid:
            a = adv[i][t]
            unclipped, clip = s * a, min(max(s, 1 - eps_low), 1 + eps_high) * a
            loss += -min(unclipped, clip) / len(valid) / B
            if unclipped <= clip:
                grad[i][t] = -a * s / len(valid) / B
            else:
                clipped += 1
    assert 0 < clipped < len(tokens())  # both branches occur
    check(ours("gspo_token", {"eps_low": eps_low, "eps_high": eps_high}, adv=adv), loss, grad)
