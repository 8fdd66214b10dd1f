"""Paired differences between two rows of the main table (a method and the base model, or a method and GRPO).

For one benchmark, with per-problem accuracies ``A[s, p]`` (method, seed ``s``) and ``B[s', p]`` (reference) on
the same problems ``p``, the difference is ``mean(A) - mean(B)``. Its 95% CI is a percentile bootstrap that
resamples problems once for both sides (pairing by problem) and seeds with replacement: jointly when both rows
have the same seeds (a seed fixes the start and the data order of every method, so seeds pair too), otherwise
independently on each side (e.g. a single base evaluation against trained seeds). The macro average over
benchmarks averages the per-benchmark bootstrap draws. A difference is *significant* when its CI excludes 0.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.95


def _problem_means(X: np.ndarray, pidx: np.ndarray) -> np.ndarray:
    """(S, n_boot): each seed's mean over the resampled problems, in chunks to bound memory."""
    S, P = X.shape
    n_boot = pidx.shape[0]
    out = np.empty((S, n_boot))
    step = max(1, 2_000_000 // max(1, S * P))
    for a in range(0, n_boot, step):
        out[:, a:a + step] = X[:, pidx[a:a + step]].mean(axis=2)
    return out


def _seed_means(M: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    S, n_boot = M.shape
    if S == 1:
        return M[0]
    sidx = rng.integers(0, S, size=(n_boot, S))
    return M[sidx, np.arange(n_boot)[:, None]].mean(axis=1)


def paired_difference(a: dict[int, tuple[list[str], np.ndarray]], b: dict[int, tuple[list[str], np.ndarray]],
                      n_boot: int = 2000, seed: int = 0) -> tuple[dict | None, np.ndarray | None]:
    """``a``, ``b``: ``{seed: (problem ids, per-problem accuracy)}`` of one benchmark. Returns
    ``({mean, ci_low, ci_high, significant, n_problems, n_seeds}, bootstrap draws)``, or ``(None, None)`` when
    the two rows share no problem."""
    shared = set.intersection(*(set(ids) for ids, _ in list(a.values()) + list(b.values())))
    first = next(iter(a.values()))[0]
    common = [p for p in first if p in shared]
    if not common:
        return None, None

    def matrix(rows):
        out = []
        for _, (ids, scores) in sorted(rows.items()):
            pos = {pid: i for i, pid in enumerate(ids)}
            out.append(np.asarray(scores, dtype=float)[[pos[p] for p in common]])
        return np.vstack(out)

    A, B = matrix(a), matrix(b)
    rng = np.random.default_rng(seed)
    pidx = rng.integers(0, len(common), size=(n_boot, len(common)))
    if sorted(a) == sorted(b):  # same seeds: pair them
        boots = _seed_means(_problem_means(A - B, pidx), rng)
    else:
        boots = _seed_means(_problem_means(A, pidx), rng) - _seed_means(_problem_means(B, pidx), rng)
    return summarize(float(A.mean() - B.mean()), boots, len(common), (len(a), len(b))), boots


def summarize(mean: float, boots: np.ndarray, n_problems: int, n_seeds) -> dict:
    lo, hi = np.quantile(boots, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    lo, hi = float(min(lo, mean)), float(max(hi, mean))
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "significant": bool(lo > 0 or hi < 0),
            "n_problems": n_problems, "n_seeds": n_seeds}


def macro_difference(per_bench: dict[str, tuple[dict, np.ndarray]]) -> dict | None:
    """The mean over benchmarks of the differences, with the averaged bootstrap draws as its CI."""
    if not per_bench:
        return None
    mean = float(np.mean([d["mean"] for d, _ in per_bench.values()]))
    boots = np.mean([b for _, b in per_bench.values()], axis=0)
    n_seeds = next(iter(per_bench.values()))[0]["n_seeds"]
    return summarize(mean, boots, sum(d["n_problems"] for d, _ in per_bench.values()), n_seeds)
