"""Training signals of one run, each defined once.

The main aggregate (``mhpo.analysis.aggregate``: ``tables/training_signals.*``) and the stability study
(``mhpo.analysis.stability``: ``tables/stability*``) both compute their per-run signals with ``run_signals``; they
differ only in the windows and thresholds they pass (``Params``), and each table names them (``describe``).

Input: one run's ``metrics.jsonl`` rows (docs/interfaces.md) in step order, first occurrence of each step
(``clean_rows``), as columns (``series``): a float array per key, NaN where a value is missing or null
(``metrics.jsonl`` writes non-finite values as null). With ``T`` logged steps ``s_1 … s_T``:

* **grad-norm spikes**: the number of steps t with ``g_t > F · median(H_t)``, ``g_t`` = ``grad_norm`` (before
  clipping), ``H_t`` = the finite grad norms of the previous ``W`` steps (t−W … t−1), judged only once
  ``|H_t| ≥ m``; a step the trainer skipped as non-finite (its ``nonfinite_skipped`` counter rises; the logged
  norm is null) always counts (``grad_norms``, ``spike_mask``).
* **max |log r|**: ``max_t max(|log ratio/min_t|, |log ratio/max_t|)``, the farthest any token's ratio
  r = π_θ/π_old got from 1; log clamped to ±20 as in ``mhpo.objectives`` (an underflowed ratio ≤ 0 counts 20).
* **mean |log r|**: mean over steps of ``ratio/mean_abs_log``.
* **entropy drop**: ``mean(H_1..H_k) − mean(H_{T'−k+1}..H_{T'})`` over the ``T'`` finite values of the token
  entropy ``entropy`` (nats), with ``k = K`` steps or, given a fraction f, ``k = max(1, round(f · T'))``; either
  way ``k ≤ ⌊T'/2⌋`` (NaN when ``T' < 2``). Positive: entropy fell.
* **reward AUC**: ``Σ_{t<T} (r_t + r_{t+1}) / 2 · (s_{t+1} − s_t) / (s_T − s_1)`` of ``r_t`` = ``reward/mean``
  (trapezoid rule over steps divided by the step span: a time-averaged reward; ``r_1`` when T = 1).
* **collapse events**: with the running maximum ``M_t = max_{s≤t} r_s``, step t is collapsed when
  ``M_t ≥ m_r`` and ``r_t < ρ · M_t``; an event is a maximal run of ≥ ``L`` consecutive collapsed steps.
* **non-finite steps**: the steps the trainer skipped for a non-finite loss or gradient: the final value of its
  cumulative ``nonfinite_skipped`` counter.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

LOG_CLAMP = 20.0  # = mhpo.objectives.LOG_RATIO_CLAMP; keeps a ratio that underflowed to 0 finite
RATIO_EXTREMES = ("ratio/min", "ratio/max")


@dataclasses.dataclass(frozen=True)
class Params:
    """Windows and thresholds of the signals (module docstring): spikes F, W, m; entropy K (or the fraction f of
    the steps when ``entropy_fraction`` is set); collapse ρ, L, m_r; the reward key."""

    spike_factor: float = 3.0
    spike_window: int = 20
    spike_min_history: int = 5
    entropy_k: int = 5
    collapse_ratio: float = 0.5
    collapse_len: int = 6
    collapse_min_max: float = 0.1
    reward_key: str = "reward/mean"
    entropy_fraction: float | None = None


def describe(params: Params) -> dict[str, str]:
    """The name of each signal that has a window, with that window, for table headers and notes."""
    p = params
    ends = (f"first − last {p.entropy_fraction:.0%} of steps" if p.entropy_fraction is not None
            else f"mean of first − last {p.entropy_k} steps")
    return {
        "grad_spikes": f"grad-norm spikes (> {p.spike_factor:g}× running median, window {p.spike_window})",
        "entropy_drop": f"entropy drop ({ends})",
        "collapse_events": (f"collapse events (reward < {p.collapse_ratio:g}× running max "
                            f"for ≥ {p.collapse_len} steps)"),
    }


# ------------------------------------------------------------------------------------------ rows -> columns
def clean_rows(rows: Iterable[dict]) -> list[dict]:
    """Metric rows sorted by ``step``, first occurrence of each step kept (a resumed run may repeat steps)."""
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: int(r["step"])):
        if int(r["step"]) not in seen:
            seen.add(int(r["step"]))
            out.append(r)
    return out


def _num(v) -> float:
    if isinstance(v, (bool, int, float)):
        return float(v)
    return math.nan


def series(rows: Sequence[dict]) -> dict[str, np.ndarray]:
    """``{key: float array}`` for every numeric (or null) key of ``rows``; NaN where a row lacks the value."""
    keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float)) or v is None})
    return {key: np.array([_num(r.get(key)) for r in rows], dtype=float) for key in keys}


def _arr(values: Iterable) -> np.ndarray:
    """Floats with None -> NaN."""
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)


# ------------------------------------------------------------------------------------------ signals
def grad_norms(grad_norm: Sequence, nonfinite_skipped: Sequence | None = None) -> list[float | None]:
    """``grad_norm`` per step for ``spike_mask``: ``inf`` for a step the trainer skipped as non-finite (its
    cumulative ``nonfinite_skipped`` counter went up; the file holds null there), ``None`` for a missing value."""
    out, prev = [], 0.0
    counter = nonfinite_skipped if nonfinite_skipped is not None else [None] * len(grad_norm)
    for g, skipped in zip(grad_norm, counter):
        skipped = None if skipped is None or not math.isfinite(float(skipped)) else float(skipped)
        if skipped is not None and skipped > prev:
            g = math.inf
        elif g is not None and math.isnan(float(g)):
            g = None
        prev = skipped if skipped is not None else prev
        out.append(None if g is None else float(g))
    return out


def spike_mask(grad_norms: Sequence[float], factor: float = 3.0, window: int = 20, min_history: int = 5) -> np.ndarray:
    """Boolean per step: ``g_t > factor · median(finite g of the previous `window` steps)``, judged once at least
    ``min_history`` of those are finite; a non-finite ``g_t`` (NaN/inf: the step was skipped by the trainer's
    non-finite guard) is always a spike, a missing one (None: key absent) never is. ``grad_norms`` turns a run's
    logged columns into this form (a skipped step inf, a null value None)."""
    out = np.zeros(len(grad_norms), dtype=bool)
    g = list(grad_norms)
    for t, gt in enumerate(g):
        if gt is None:
            continue
        gt = float(gt)
        if not math.isfinite(gt):
            out[t] = True
            continue
        hist = [float(x) for x in g[max(0, t - window):t] if x is not None and math.isfinite(float(x))]
        if len(hist) >= min_history and gt > factor * float(np.median(hist)):
            out[t] = True
    return out


def max_abs_log_ratio(*ratios: Sequence[float]) -> float:
    """``max |log r|`` over every value of ``ratios`` (e.g. ``ratio/min``, ``ratio/max``); ratios ≤ 0 (underflow)
    and infinite ones count ``LOG_CLAMP``, missing (None/NaN) ones nothing; NaN when none is left."""
    vals = []
    for r in itertools.chain(*ratios):
        if r is None or math.isnan(float(r)):
            continue
        r = float(r)
        vals.append(LOG_CLAMP if r <= 0 or math.isinf(r) else min(abs(math.log(r)), LOG_CLAMP))
    return max(vals) if vals else math.nan


def mean_abs_log_ratio(mean_abs_log: Sequence[float]) -> float:
    """Mean over steps of ``ratio/mean_abs_log`` (NaN when no step has it)."""
    v = _arr(mean_abs_log)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def entropy_drop(entropy: Sequence[float], k: int = 5, fraction: float | None = None) -> float:
    """``mean(first k) − mean(last k)`` over the finite entries, ``k = max(1, round(fraction · T))`` when
    ``fraction`` is given, capped at ``⌊T/2⌋``; NaN if T < 2."""
    h = _arr(entropy)
    h = h[np.isfinite(h)]
    if fraction is not None:
        k = max(1, int(round(fraction * h.size)))
    k = min(k, h.size // 2)
    if k < 1:
        return math.nan
    return float(h[:k].mean() - h[-k:].mean())


def reward_auc(steps: Sequence[float], rewards: Sequence[float]) -> float:
    """Trapezoid area under ``rewards`` over ``steps`` divided by the step span (NaN rewards are dropped)."""
    s, r = _arr(steps), _arr(rewards)
    ok = np.isfinite(r)
    s, r = s[ok], r[ok]
    if r.size == 0:
        return math.nan
    if r.size == 1:
        return float(r[0])
    return float(np.sum((r[1:] + r[:-1]) / 2 * np.diff(s)) / (s[-1] - s[0]))


def collapse_events(rewards: Sequence[float], ratio: float = 0.5, min_len: int = 6,
                    min_max: float = 0.1) -> list[tuple[int, int]]:
    """``[(first, last), ...]`` step indices of each collapse event: a maximal run of ≥ ``min_len`` consecutive
    steps with ``r_t < ratio · M_t`` and ``M_t ≥ min_max`` (``M_t`` the running maximum; NaN steps break a run
    and do not raise the maximum)."""
    events, start, run_max = [], None, -math.inf
    r = _arr(rewards)
    for t, rt in enumerate(np.append(r, np.nan)):  # sentinel closes a trailing run
        if np.isfinite(rt):
            run_max = max(run_max, rt)
        collapsed = bool(np.isfinite(rt) and run_max >= min_max and rt < ratio * run_max)
        if collapsed and start is None:
            start = t
        elif not collapsed and start is not None:
            if t - start >= min_len:
                events.append((start, t - 1))
            start = None
    return events


def nonfinite_steps(nonfinite_skipped: Sequence[float] | None) -> float:
    """Steps skipped as non-finite: the largest value of the cumulative counter (0 when it was never logged)."""
    v = _arr(nonfinite_skipped if nonfinite_skipped is not None else [])
    return float(np.nanmax(v)) if np.isfinite(v).any() else 0.0


def run_signals(columns: Mapping[str, Sequence[float]], params: Params = Params()) -> dict[str, float]:
    """Every signal of one run from its columns (``series(clean_rows(rows))``)."""
    n = len(columns["step"]) if "step" in columns else max((len(v) for v in columns.values()), default=0)
    missing = np.full(n, np.nan)
    col = lambda key: columns.get(key, missing)  # noqa: E731
    rewards = col(params.reward_key)
    spikes = spike_mask(grad_norms(col("grad_norm"), columns.get("nonfinite_skipped")), params.spike_factor,
                        params.spike_window, params.spike_min_history)
    return {
        "steps": n,
        "reward_auc": reward_auc(col("step"), rewards),
        "grad_spikes": float(spikes.sum()) if n else math.nan,
        "max_abs_log_ratio": max_abs_log_ratio(*(col(k) for k in RATIO_EXTREMES)),
        "mean_abs_log_ratio": mean_abs_log_ratio(col("ratio/mean_abs_log")),
        "entropy_drop": entropy_drop(col("entropy"), params.entropy_k, params.entropy_fraction),
        "collapse_events": float(len(collapse_events(rewards, params.collapse_ratio, params.collapse_len,
                                                     params.collapse_min_max))) if n else math.nan,
        "nonfinite_steps": nonfinite_steps(columns.get("nonfinite_skipped")),
    }
