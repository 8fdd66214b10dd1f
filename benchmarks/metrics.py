"""Accuracy metrics over k samples per problem, with seeded bootstrap confidence intervals. Pure functions.

* ``avg@k``: mean over problems of the fraction of the k samples that are correct (the paper's Avg@32).
* ``pass@k``: unbiased estimator of P(at least one of k samples is correct) from n >= k samples with c correct,
  ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021, arXiv 2107.03374, eq. 1), computed as a stable product.
* ``maj@k``: the most frequent extracted answer among the first k samples (ties: the earliest) is correct;
  answers are grouped after light normalisation, samples with no answer do not vote.

CIs are percentile bootstrap intervals (95% by default) over problems, seeded, so a rerun reproduces them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from benchmarks.scoring import _norm

METRICS = ("avg@k", "pass@k", "maj@k")
N_BOOT = 2000


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples of which ``c`` are correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def avg_at_k(correct: Sequence[bool]) -> float:
    """Fraction of one problem's samples that are correct."""
    if not len(correct):
        raise ValueError("avg@k of a problem with no samples")
    return float(np.mean(np.asarray(correct, dtype=float)))


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int | None = None) -> float:
    """1.0 if the majority answer among the first ``k`` samples is correct, else 0.0."""

    k = len(answers) if k is None else k
    votes: Counter = Counter()
    first: dict[str, int] = {}
    for i, a in enumerate(answers[:k]):
        if a is None:
            continue
        key = _norm(a)
        votes[key] += 1
        first.setdefault(key, i)
    if not votes:
        return 0.0
    top = max(votes.values())
    winner = min((first[key] for key, v in votes.items() if v == top))  # tie -> earliest answer
    return float(bool(correct[winner]))


def per_problem_scores(samples: Mapping[str, Sequence[tuple[str | None, bool]]], k: int) -> dict[str, np.ndarray]:
    """``{problem_id: [(extracted, correct), ...]}`` (sample order) -> per-problem arrays of each metric."""
    if not samples:
        raise ValueError("no problems to score")
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for pid, rows in samples.items():
        if len(rows) < k:
            raise ValueError(f"problem {pid!r} has {len(rows)} samples, fewer than k={k}")
        answers = [a for a, _ in rows]
        correct = [bool(c) for _, c in rows]
        out["avg@k"].append(avg_at_k(correct))
        out["pass@k"].append(pass_at_k(len(correct), sum(correct), k))
        out["maj@k"].append(maj_at_k(answers, correct, k))
    return {m: np.asarray(v) for m, v in out.items()}


def bootstrap_ci(values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> dict:
    """``{mean, ci_low, ci_high}``: the mean of ``values`` and a seeded percentile bootstrap CI."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("bootstrap of no values")
    mean = float(v.mean())
    if v.size == 1:
        return {"mean": mean, "ci_low": mean, "ci_high": mean}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"mean": mean, "ci_low": float(min(lo, mean)), "ci_high": float(max(hi, mean))}


def summarize(samples, k: int, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Each metric of one benchmark with its bootstrap CI over problems."""
    scores = per_problem_scores(samples, k)
    return {m: bootstrap_ci(scores[m], n_boot, seed) for m in METRICS}


def macro_average(per_benchmark: Mapping[str, Sequence[float]], n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Mean over benchmarks of each benchmark's mean per-problem score, with a stratified bootstrap CI
    (problems resampled within each benchmark, so small benchmarks weigh as much as large ones)."""
    if not per_benchmark:
        raise ValueError("macro average of no benchmarks")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(v, dtype=float) for v in per_benchmark.values()]
    mean = float(np.mean([a.mean() for a in arrays]))
    boots = np.mean([a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1) for a in arrays], axis=0)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"mean": mean, "ci_low": float(min(lo, mean)), "ci_high": float(max(hi, mean))}


def across_seeds(run_means: Sequence[float], n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Mean over independent training seeds with a bootstrap CI over seeds (``mean`` alone for one seed)."""
    return bootstrap_ci(run_means, n_boot, seed)


def samples_from_records(rows) -> dict[str, list[tuple[str | None, bool]]]:
    """Evaluation records (``{benchmark}.jsonl`` rows) -> ``{problem_id: [(extracted, correct), ...]}`` in
    sample order, the input of :func:`summarize` and :func:`per_problem_scores` (e.g. for aggregation)."""
    out: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: int(r["sample"])):
        out.setdefault(str(r["problem_id"]), []).append((r["extracted"], bool(r["correct"])))
    return out
