"""Small-scale stability study: does MHPO's stability claim hold across seeds, with confidence intervals?

Pure analysis over finished runs. Input layout (``docs/interfaces.md``, with the recipe name as ``{model}``,
here called the *regime*)::

    RUNS/{regime}/{method}/seed{seed}/metrics.jsonl      (+ manifest.json)
    EVALS/{regime}/{method}/seed{seed}/{checkpoint}/{benchmark}.summary.json

Per-run statistics: ``final_accuracy``, the held-out ``avg@k`` mean of the evaluation of the final policy
(checkpoint ``final``, else the highest ``checkpoint-N``), averaged over the benchmarks found (or those asked for),
and the training signals of ``mhpo.analysis.signals`` (reward AUC, grad-norm spikes, max and mean |log r|, entropy
drop, collapse events; their formulas are there and in ``docs/stability.md``), with the study's windows ``Params``:
spikes F = 3, W = 20, m = 5; entropy drop over K = 5 steps at each end; collapse ρ = 0.5, L = 6 (> updates per
rollout, so one bad rollout, whose statistics repeat over its U steps, is not an event), m_r = 0.1 (noise around
a zero reward is not a collapse). The main aggregate computes the same signals with its own windows.

Per method × regime: mean over seeds with a 95% Student-t interval ``mean ± t_{0.975,n−1} · s/√n`` (the
headline interval; with n = 3 seeds the percentile bootstrap can take only 10 distinct values and is far too
narrow) and the seeded percentile bootstrap of ``benchmarks.metrics.across_seeds`` (reported alongside).

Paired comparisons against a reference method (same seed → same initial policy and data order): per seed
``d_i = x_method,i − x_ref,i``; mean, t-interval and bootstrap interval of ``d``; two p-values:

* the paired t-test, ``t = d̄ / (s_d/√n)`` with n−1 degrees of freedom (two-sided) — the decision rule by
  default (``--test t``); when s_d = 0 (identical differences, e.g. equal spike counts) t is undefined and the
  sign-flip p-value below is used instead;
* the exact sign-flip permutation test: ``p = #{σ ∈ {±1}^n : |mean(σ·d)| ≥ |d̄|} / 2^n`` (all 2^n sign vectors
  for n ≤ 20, else 2^16 seeded random ones); distribution-free but its smallest attainable p is ``2/2^n``
  (0.25 for 3 seeds), so it can only decide with n ≥ 6 seeds (``--test permutation``).

Holm's step-down adjustment over the methods compared to one reference within each (regime, metric) family is
reported as ``p_holm`` / ``significant_holm``.

Outputs (atomic, ``mhpo.common.io``; the main workflow's per-run summary is ``tables/training_signals.*``, another
name): ``OUT/tables/stability.{md,csv,tex}`` (method × regime), ``stability_paired.{md,csv,tex}``,
``stability_runs.csv`` (per run), ``OUT/stability_summary.md`` and
``OUT/figures/stability_{reward,grad_norm,ratio,entropy}.{png,pdf}`` (mean ± 1 s.d. across seeds).

CLI: ``mhpo-bench stability --runs DIR --evals DIR --out DIR --reference grpo`` (or ``python -m mhpo.cli.stability``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.metrics import across_seeds
from mhpo.analysis import signals, stability_plots, tables
from mhpo.analysis.signals import Params  # the study's windows are Params' defaults
from mhpo.common import io

# name -> (label, higher is better, decimals)
METRICS: dict[str, tuple[str, bool, int]] = {
    "final_accuracy": ("held-out avg@k", True, 3),
    "reward_auc": ("reward AUC", True, 3),
    "grad_spikes": ("grad-norm spikes", False, 2),
    "max_abs_log_ratio": ("max |log r|", False, 3),
    "mean_abs_log_ratio": ("mean |log r|", False, 4),
    "entropy_drop": ("entropy drop (nats)", False, 3),
    "collapse_events": ("collapse events", False, 2),
}

# The paper's stability claims (paper-notes §5) and the statistic that tests each.
CLAIMS = (
    ("better held-out accuracy", "final_accuracy"),
    ("higher reward during training", "reward_auc"),
    ("no grad-norm spikes", "grad_spikes"),
    ("ratios kept near 1", "max_abs_log_ratio"),
    ("no entropy collapse", "entropy_drop"),
    ("no policy erosion (reward collapse)", "collapse_events"),
)

ABLATIONS = {"mhpo_lfm": "LFM only", "mhpo_dhp": "DHP only", "mhpo_sym": "symmetric DHP"}

CURVE_KEYS = ("reward/mean", "grad_norm", "entropy", "ratio/p1", "ratio/p50", "ratio/p99")


# ------------------------------------------------------------------------------------------ per-run statistics
STUDY_PARAMS = Params()  # the study's signal windows (mhpo.analysis.signals.Params defaults)
RUN_STATS = ("steps", "reward_auc", "grad_spikes", "max_abs_log_ratio", "mean_abs_log_ratio", "entropy_drop",
             "collapse_events")


def run_stats(rows: Sequence[dict], params: Params = STUDY_PARAMS) -> dict[str, float]:
    """Every per-run statistic except ``final_accuracy`` from one run's metric rows (``mhpo.analysis.signals``)."""
    s = signals.run_signals(signals.series(signals.clean_rows(rows)), params)
    return {k: s[k] for k in RUN_STATS}


# ------------------------------------------------------------------------------------------------ discovery
@dataclasses.dataclass
class Run:
    regime: str
    method: str
    seed: int
    path: Path
    status: str
    rows: list[dict]


def load_runs(runs_dir: str | Path, regimes: Sequence[str] | None = None,
              methods: Sequence[str] | None = None) -> list[Run]:
    """Every ``RUNS/{regime}/{method}/seed{N}/metrics.jsonl``, sorted by (regime, method, seed)."""
    out = []
    for p in sorted(Path(runs_dir).glob("*/*/seed*/metrics.jsonl")):
        run_dir = p.parent
        m = re.fullmatch(r"seed(\d+)", run_dir.name)
        regime, method = run_dir.parent.parent.name, run_dir.parent.name
        if not m or (regimes and regime not in regimes) or (methods and method not in methods):
            continue
        status = "unknown"
        if (run_dir / "manifest.json").is_file():
            status = json.loads((run_dir / "manifest.json").read_text()).get("status", "unknown")
        out.append(Run(regime, method, int(m.group(1)), run_dir, status, signals.clean_rows(io.read_jsonl(p))))
    out.sort(key=lambda r: (r.regime, r.method, r.seed))
    return out


def final_accuracy(evals_dir: str | Path, regime: str, method: str, seed: int,
                   benchmarks: Sequence[str] | None = None, metric: str = "avg@k") -> float:
    """Mean over benchmarks of ``metrics[metric].mean`` of the final policy's summaries (``final/``, else the
    highest ``checkpoint-N``); NaN when none is there."""
    base = Path(evals_dir) / regime / method / f"seed{seed}"
    ckpt = base / "final"
    if not ckpt.is_dir():
        numbered = [(int(m.group(1)), d) for d in base.glob("checkpoint-*")
                    if (m := re.fullmatch(r"checkpoint-(\d+)", d.name))]
        if not numbered:
            return math.nan
        ckpt = max(numbered)[1]
    vals = []
    for f in sorted(ckpt.glob("*.summary.json")):
        s = json.loads(f.read_text())
        if benchmarks and s.get("benchmark") not in benchmarks:
            continue
        vals.append(float(s["metrics"][metric]["mean"]))
    return float(np.mean(vals)) if vals else math.nan


# ------------------------------------------------------------------------------------------------ statistics
def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """``mean ± t_{(1+level)/2, n−1} · s/√n`` (NaN for n < 2; the mean itself when s = 0)."""
    from scipy import stats  # lazy: start-up time

    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean() - half), float(v.mean() + half)


def paired_t_pvalue(d: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of mean(d) = 0; NaN for n < 2; when s_d = 0 (t undefined) the exact
    sign-flip p-value instead."""
    from scipy import stats  # lazy: start-up time

    d = np.asarray(d, dtype=float)
    if d.size < 2:
        return math.nan
    sd = d.std(ddof=1)
    if sd == 0 or not np.isfinite(sd):
        # t is undefined (identical differences, common for small counts such as spikes): a p of 0 would
        # overclaim with 3 seeds, so fall back to the distribution-free sign-flip p (2/2^n, or 1 for d = 0).
        return sign_flip_pvalue(d)
    t = d.mean() / (sd / math.sqrt(d.size))
    return float(2 * stats.t.sf(abs(t), d.size - 1))


def sign_flip_pvalue(d: Sequence[float], max_exact: int = 20, n_random: int = 1 << 16, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value of mean(d) = 0: the fraction of sign vectors σ (all 2^n when
    n ≤ ``max_exact``, else ``n_random`` seeded draws) with ``|mean(σ·d)| ≥ |mean(d)|``."""
    d = np.asarray(d, dtype=float)
    if d.size == 0:
        return math.nan
    if d.size <= max_exact:
        signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(n_random, d.size))
    stat = np.abs(signs @ d) / d.size
    return float(np.mean(stat >= abs(d.mean()) - 1e-12 * max(1.0, abs(d.mean()))))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaNs stay NaN and do not count towards the family size)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.size, np.nan)
    idx = [i for i in np.argsort(p, kind="stable") if np.isfinite(p[i])]
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - rank) * p[i]))
        out[i] = running
    return out.tolist()


def per_run_table(runs: Sequence[Run], evals_dir: str | Path | None, params: Params = STUDY_PARAMS,
                  benchmarks: Sequence[str] | None = None) -> list[dict]:
    rows = []
    for r in runs:
        acc = final_accuracy(evals_dir, r.regime, r.method, r.seed, benchmarks) if evals_dir else math.nan
        rows.append({"regime": r.regime, "method": r.method, "seed": r.seed, "status": r.status,
                     "final_accuracy": acc, **run_stats(r.rows, params)})
    return rows


def group_table(per_run: Sequence[dict], level: float = 0.95, n_boot: int = 2000) -> list[dict]:
    """One row per (regime, method, metric): n, mean, sd, t-interval, bootstrap interval (seeded)."""
    out = []
    keys = sorted({(r["regime"], r["method"]) for r in per_run})
    for regime, method in keys:
        group = [r for r in per_run if r["regime"] == regime and r["method"] == method]
        for metric in METRICS:
            v = np.asarray([r[metric] for r in group], dtype=float)
            v = v[np.isfinite(v)]
            row = {"regime": regime, "method": method, "metric": metric, "n": int(v.size),
                   "n_runs": len(group), "n_failed": sum(r["status"] == "failed" for r in group)}
            if v.size:
                b = across_seeds(v, n_boot=n_boot, seed=0)
                lo, hi = t_interval(v, level)
                row.update(mean=float(v.mean()), sd=float(v.std(ddof=1)) if v.size > 1 else math.nan,
                           t_low=lo, t_high=hi, boot_low=b["ci_low"], boot_high=b["ci_high"])
            else:
                row.update(mean=math.nan, sd=math.nan, t_low=math.nan, t_high=math.nan, boot_low=math.nan,
                           boot_high=math.nan)
            out.append(row)
    return out


def paired_table(per_run: Sequence[dict], references: Sequence[str], alpha: float = 0.05, test: str = "t",
                 n_boot: int = 2000) -> list[dict]:
    """Paired differences (method − reference, matched by seed) per regime, metric and method, with both
    p-values, the decision of ``test`` at ``alpha`` and Holm's adjustment within each (regime, reference,
    metric) family."""
    if test not in ("t", "permutation"):
        raise ValueError(f"test must be 't' or 'permutation', got {test!r}")
    index = {(r["regime"], r["method"], r["seed"]): r for r in per_run}
    out = []
    for ref in references:
        for regime in sorted({r["regime"] for r in per_run}):
            methods = sorted({r["method"] for r in per_run if r["regime"] == regime} - {ref})
            if not any(k[0] == regime and k[1] == ref for k in index):
                continue
            for metric in METRICS:
                family = []
                for method in methods:
                    seeds = sorted(s for (g, m, s) in index if g == regime and m == method and (g, ref, s) in index)
                    pairs = [(index[(regime, method, s)][metric], index[(regime, ref, s)][metric]) for s in seeds]
                    seeds = [s for s, (a, b) in zip(seeds, pairs) if np.isfinite(a) and np.isfinite(b)]
                    d = np.asarray([a - b for a, b in pairs if np.isfinite(a) and np.isfinite(b)], dtype=float)
                    row = {"regime": regime, "reference": ref, "method": method, "metric": metric, "n": int(d.size),
                           "seeds": " ".join(map(str, seeds))}
                    if d.size:
                        b = across_seeds(d, n_boot=n_boot, seed=0)
                        lo, hi = t_interval(d, 1 - alpha)
                        p_t, p_perm = paired_t_pvalue(d), sign_flip_pvalue(d)
                        row.update(mean_diff=float(d.mean()), t_low=lo, t_high=hi, boot_low=b["ci_low"],
                                   boot_high=b["ci_high"], p_t=p_t, p_perm=p_perm,
                                   p_perm_min=2.0 / 2 ** d.size if d.size <= 20 else math.nan)
                    else:
                        row.update(mean_diff=math.nan, t_low=math.nan, t_high=math.nan, boot_low=math.nan,
                                   boot_high=math.nan, p_t=math.nan, p_perm=math.nan, p_perm_min=math.nan)
                    row["p"] = row["p_t"] if test == "t" else row["p_perm"]
                    row["significant"] = bool(np.isfinite(row["p"]) and row["p"] < alpha)
                    family.append(row)
                for row, ph in zip(family, holm([r["p"] for r in family])):
                    row["p_holm"] = ph
                    row["significant_holm"] = bool(np.isfinite(ph) and ph < alpha)
                out.extend(family)
    return out


# ------------------------------------------------------------------------------------------ stability frontier
def stress(run: Run) -> tuple[int, float] | None:
    """(updates per rollout, learning rate) of a run, from its ``manifest.json``'s resolved recipe."""
    f = run.path / "manifest.json"
    if not f.is_file():
        return None
    cfg = json.loads(f.read_text()).get("config") or {}
    try:
        return int(cfg["rollout"]["updates_per_rollout"]), float(cfg["optim"]["lr"])
    except (KeyError, TypeError, ValueError):
        return None


def base_accuracy(evals_dir: str | Path | None, regimes: Sequence[str], benchmarks: Sequence[str] | None = None,
                  metric: str = "avg@k") -> float:
    """Held-out accuracy of the untrained starting policy: the mean of its evaluations
    (``EVALS/{regime}/base/seed*/base/*.summary.json``) over the regimes that have one; NaN if none."""
    vals = []
    for regime in regimes if evals_dir else ():
        for f in sorted(Path(evals_dir).glob(f"{regime}/base/seed*/base/*.summary.json")):
            s = json.loads(f.read_text())
            if not benchmarks or s.get("benchmark") in benchmarks:
                vals.append(float(s["metrics"][metric]["mean"]))
    return float(np.mean(vals)) if vals else math.nan


def frontier_table(per_run: Sequence[dict], stresses: dict[str, tuple[int, float]], base: float,
                   drop: float = 0.10) -> list[dict]:
    """Per (method, lr, updates per rollout U): seeds, mean final accuracy, how many seeds *collapsed* (final
    held-out accuracy < the base model's − ``drop``: RL left the policy clearly worse than it started) and whether
    the method *survived* (no seed collapsed).
    The method's *frontier* at that lr (on every row) is the largest U such that it survived at every U' ≤ U
    (0: it collapsed at the smallest U; NaN when the base accuracy is unknown)."""
    cells: dict[tuple[str, float, int], list[float]] = {}
    for r in per_run:
        if r["regime"] in stresses:
            u, lr = stresses[r["regime"]]
            cells.setdefault((r["method"], lr, u), []).append(r["final_accuracy"])
    rows = []
    for (method, lr, u), accs in sorted(cells.items()):
        a = np.asarray(accs, dtype=float)
        collapsed = int(np.sum(a < base - drop)) if np.isfinite(base) else 0
        rows.append({"method": method, "lr": lr, "updates_per_rollout": u, "n": int(a.size),
                     "mean_accuracy": float(np.nanmean(a)) if np.isfinite(a).any() else math.nan,
                     "collapsed": collapsed, "survived": bool(np.isfinite(base) and collapsed == 0 and a.size),
                     "base_accuracy": base, "threshold": base - drop})
    for method, lr in {(r["method"], r["lr"]) for r in rows}:
        line = sorted((r for r in rows if r["method"] == method and r["lr"] == lr),
                      key=lambda r: r["updates_per_rollout"])
        front = 0
        for r in line:
            if not r["survived"]:
                break
            front = r["updates_per_rollout"]
        for r in line:
            r["frontier"] = front if np.isfinite(base) else math.nan
    return rows


def frontier_text(rows: Sequence[dict]) -> str:
    """Markdown: one line per (method, lr) with its accuracy at each U (collapsed seeds marked) and its frontier."""
    if not rows:
        return "No run had a readable (updates per rollout, lr) in its manifest: no frontier.\n"
    us = sorted({r["updates_per_rollout"] for r in rows})
    base = rows[0]["base_accuracy"]
    header = ["method", "lr"] + [f"U={u}" for u in us] + ["frontier (largest U survived)"]
    body = []
    for method, lr in sorted({(r["method"], r["lr"]) for r in rows}):
        line = {r["updates_per_rollout"]: r for r in rows if r["method"] == method and r["lr"] == lr}
        cells = []
        for u in us:
            r = line.get(u)
            cells.append("–" if r is None else f"{r['mean_accuracy']:.3f}" + (f" ({r['collapsed']}/{r['n']} collapsed)"
                                                                                if r["collapsed"] else ""))
        front = next(iter(line.values()))["frontier"]
        body.append([method, f"{lr:g}"] + cells
                    + ["–" if not np.isfinite(front) else (str(front) if front else "none")])
    note = (f"Mean final held-out accuracy over seeds at each number of updates per rollout U. A seed *collapsed* "
            f"when its accuracy fell below {rows[0]['threshold']:.3f} (the base model's {base:.3f} minus "
            f"{base - rows[0]['threshold']:.2f}); a method "
            "survives a stress when no seed collapsed; its frontier is the largest U it survives at every smaller U.")
    return note + "\n\n" + tables.md_table(header, body)


# ----------------------------------------------------------------------------------------------- rendering
def _fmt(x: float, dec: int) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{dec}f}"


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _p_eq(p: float) -> str:
    """'p < 0.001' / 'p = 0.012' for running text."""
    f = _fmt_p(p)
    return f"p {f[0]} {f[1:]}" if f.startswith("<") else f"p = {f}"


def _wide(groups: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the method × regime table: 'mean [t_low, t_high]' per metric."""
    by = {(g["regime"], g["method"], g["metric"]): g for g in groups}
    header = ["regime", "method", "seeds"] + [METRICS[m][0] for m in METRICS]
    rows = []
    for regime, method in sorted({(g["regime"], g["method"]) for g in groups}):
        first = by[(regime, method, next(iter(METRICS)))]
        seeds = f"{first['n_runs']}" + (f" ({first['n_failed']} failed)" if first["n_failed"] else "")
        cells = []
        for m, (_, _, dec) in METRICS.items():
            g = by[(regime, method, m)]
            cell = _fmt(g["mean"], dec)
            if np.isfinite(g["t_low"]):
                cell += f" [{_fmt(g['t_low'], dec)}, {_fmt(g['t_high'], dec)}]"
            cells.append(cell)
        rows.append([regime, method, seeds] + cells)
    return header, rows


def _paired_rows(paired: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["regime", "reference", "method", "metric", "n", "mean diff [CI]", "p (t)", "p (sign-flip)",
              "p (Holm)", "significant"]
    rows = []
    for r in paired:
        dec = METRICS[r["metric"]][2]
        ci = _fmt(r["mean_diff"], dec)
        if np.isfinite(r["t_low"]):
            ci += f" [{_fmt(r['t_low'], dec)}, {_fmt(r['t_high'], dec)}]"
        sig = "yes" if r["significant"] else "no"
        if r["significant"] and not r["significant_holm"]:
            sig += " (not after Holm)"
        rows.append([r["regime"], r["reference"], r["method"], METRICS[r["metric"]][0], str(r["n"]), ci,
                     _fmt_p(r["p_t"]), _fmt_p(r["p_perm"]), _fmt_p(r["p_holm"]), sig])
    return header, rows


def _direction(metric: str, diff: float) -> str:
    better = (diff > 0) == METRICS[metric][1]
    return "better" if better else "worse"


def summary_text(groups: Sequence[dict], paired: Sequence[dict], alpha: float, test: str, level: float = 0.95) -> str:
    """Plain-language summary: which paired differences are significant, which are not, and the verdict on each
    of the paper's claims for every MHPO-family method against each reference."""
    regimes = sorted({g["regime"] for g in groups})
    ns = sorted({g["n"] for g in groups if g["metric"] == "reward_auc"})
    test_name = ("two-sided paired t-test" if test == "t" else "exact two-sided sign-flip permutation test")
    lines = ["# Stability study: summary", "",
             "Auto-generated by `mhpo.analysis.stability` from the runs' `metrics.jsonl` and evaluation summaries; "
             "definitions in `docs/stability.md`.", "",
             f"- Regimes: {', '.join(regimes) or 'none'}; methods: "
             f"{', '.join(sorted({g['method'] for g in groups})) or 'none'}; seeds per group: "
             f"{', '.join(map(str, ns)) or '0'}.",
             f"- Intervals: {level:.0%} Student-t over seeds (table); percentile bootstrap in the CSVs.",
             f"- Decision: {test_name} at α = {alpha} per comparison (paired by seed); Holm-adjusted p-values over "
             "the methods compared with one reference are in `tables/stability_paired.*`."]
    small = sorted({r["n"] for r in paired if r["n"]})
    if small and min(small) < 6:
        lines.append(f"- With n = {min(small)} paired seeds the exact sign-flip test cannot go below "
                     f"p = {2 / 2 ** min(small):.3g}; the t-test's decision rests on near-normal seed differences. "
                     "Treat single significant results as indicative, not conclusive.")
    failed = [g for g in groups if g["metric"] == "reward_auc" and g["n_failed"]]
    for g in failed:
        lines.append(f"- {g['regime']}/{g['method']}: {g['n_failed']} of {g['n_runs']} runs failed (non-finite "
                     "loss); their statistics cover the steps they ran, accuracy is missing.")
    for ref in sorted({r["reference"] for r in paired}):
        for regime in regimes:
            rows = [r for r in paired if r["reference"] == ref and r["regime"] == regime and r["n"]]
            if not rows:
                continue
            lines += ["", f"## {regime}: each method vs `{ref}`", ""]
            sig = [r for r in rows if r["significant"]]
            if sig:
                lines.append("Significant differences:")
                for r in sig:
                    dec = METRICS[r["metric"]][2]
                    holm_note = "" if r["significant_holm"] else "; not after Holm"
                    lines.append(f"- `{r['method']}` {METRICS[r['metric']][0]}: "
                                 f"{_direction(r['metric'], r['mean_diff'])} ({r['mean_diff']:+.{dec}f}, "
                                 f"CI [{_fmt(r['t_low'], dec)}, {_fmt(r['t_high'], dec)}],"
                                 f" {_p_eq(r['p'])}{holm_note})")
            else:
                lines.append("No significant differences.")
            ns_rows = [r for r in rows if not r["significant"]]
            if ns_rows:
                by_method: dict[str, list[str]] = {}
                for r in ns_rows:
                    by_method.setdefault(r["method"], []).append(METRICS[r["metric"]][0])
                lines.append("")
                lines.append("Not significant: "
                             + "; ".join(f"`{m}`: {', '.join(v)}" for m, v in by_method.items()) + ".")
    # Verdicts on the paper's claims for MHPO itself
    claim_rows = [r for r in paired if r["method"] == "mhpo" and r["n"]]
    if claim_rows:
        body = []
        for r in sorted(claim_rows, key=lambda r: (r["regime"], r["reference"])):
            for claim, metric in CLAIMS:
                if r["metric"] != metric:
                    continue
                if not r["significant"]:
                    verdict = f"not shown (difference {r['mean_diff']:+.{METRICS[metric][2]}f}, {_p_eq(r['p'])})"
                elif _direction(metric, r["mean_diff"]) == "better":
                    verdict = f"supported ({_p_eq(r['p'])})"
                else:
                    verdict = f"contradicted: MHPO significantly worse ({_p_eq(r['p'])})"
                body.append([r["regime"], r["reference"], claim, METRICS[metric][0], verdict])
        lines += ["", "## The paper's claims, MHPO vs each reference", "",
                  tables.md_table(["regime", "reference", "claim", "statistic", "verdict"], body).rstrip("\n")]
    # The paper's ablation claim: each ablation reaches lower accuracy than full MHPO (paper-notes §5)
    abl = [r for r in paired if r["reference"] == "mhpo" and r["method"] in ABLATIONS
           and r["metric"] == "final_accuracy" and r["n"]]
    if abl:
        body = []
        for r in sorted(abl, key=lambda r: (r["regime"], r["method"])):
            diff = f"{r['mean_diff']:+.3f} [{_fmt(r['t_low'], 3)}, {_fmt(r['t_high'], 3)}]"
            if not r["significant"]:
                verdict = f"not shown ({_p_eq(r['p'])})"
            elif r["mean_diff"] < 0:
                verdict = f"supported ({_p_eq(r['p'])})"
            else:
                verdict = f"contradicted: the ablation is significantly more accurate ({_p_eq(r['p'])})"
            body.append([r["regime"], f"{r['method']} ({ABLATIONS[r['method']]})", diff, verdict])
        lines += ["", "## The paper's ablation claim: each ablation is less accurate than MHPO", "",
                  tables.md_table(["regime", "ablation", "accuracy − MHPO [CI]", "verdict"], body).rstrip("\n")]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- orchestration
def curves(runs: Sequence[Run]) -> dict[tuple[str, str], dict[int, dict[str, np.ndarray]]]:
    """``{(regime, method): {seed: {"step": ..., key: ...}}}`` for the plotted keys."""
    out: dict = {}
    for r in runs:
        cols = signals.series(r.rows)
        c = {"step": cols["step"]}
        for k in CURVE_KEYS:
            c[k] = cols.get(k, np.full(len(r.rows), np.nan))
        out.setdefault((r.regime, r.method), {})[r.seed] = c
    return out


def analyze(runs_dir, evals_dir, out_dir, references: Sequence[str] = ("grpo",), alpha: float = 0.05,
            test: str = "t", params: Params = STUDY_PARAMS, regimes=None, methods=None, benchmarks=None,
            plots: bool = True, n_boot: int = 2000, collapse_drop: float = 0.10) -> dict[str, Path]:
    """Compute everything and write the tables, summary and figures under ``out_dir``; returns the paths."""
    runs = load_runs(runs_dir, regimes, methods)
    if not runs:
        raise FileNotFoundError(f"no runs found under {runs_dir} "
                                "(expected {regime}/{method}/seed{N}/metrics.jsonl)")
    missing = [r for r in references if not any(x.method == r for x in runs)]
    if missing:
        raise ValueError(f"reference method(s) {missing} have no runs under {runs_dir}")
    per_run = per_run_table(runs, evals_dir, params, benchmarks)
    groups = group_table(per_run, n_boot=n_boot)
    paired = paired_table(per_run, references, alpha, test, n_boot=n_boot)
    out = Path(out_dir)
    paths = {
        "table_md": out / "tables" / "stability.md", "table_csv": out / "tables" / "stability.csv",
        "table_tex": out / "tables" / "stability.tex",
        "paired_md": out / "tables" / "stability_paired.md",
        "paired_csv": out / "tables" / "stability_paired.csv",
        "paired_tex": out / "tables" / "stability_paired.tex",
        "runs_csv": out / "tables" / "stability_runs.csv", "summary": out / "stability_summary.md",
    }
    header, rows = _wide(groups)
    names = signals.describe(params)
    note = ("Mean over seeds [95% Student-t interval]. Definitions: docs/stability.md. Windows: "
            f"{names['grad_spikes']}; {names['collapse_events']}; {names['entropy_drop']}.")
    tables.write(out / "tables" / "stability", "# Stability study (method × regime)\n\n" + note + "\n\n"
                 + tables.md_table(header, rows), tables.csv_records(groups),
                 tables.tex_table(header, rows, "Stability study. " + note, label_cols=2))
    ph, pr = _paired_rows(paired)
    pnote = (f"Paired by seed: method − reference. CI: {1 - alpha:.0%} t-interval of the mean difference; "
             f"decision: {'paired t-test' if test == 't' else 'exact sign-flip test'} at α = {alpha}.")
    tables.write(out / "tables" / "stability_paired", "# Stability study: paired comparisons\n\n" + pnote + "\n\n"
                 + tables.md_table(ph, pr), tables.csv_records(paired),
                 tables.tex_table(ph, pr, "Paired comparisons. " + pnote, label_cols=2))
    io.write_text(paths["runs_csv"], tables.csv_records(per_run))
    stresses = {r.regime: st for r in runs if (st := stress(r)) is not None}
    base = base_accuracy(evals_dir, sorted({r.regime for r in runs}), benchmarks)
    front = frontier_table(per_run, stresses, base, collapse_drop)
    paths["frontier_md"] = out / "tables" / "stability_frontier.md"
    paths["frontier_csv"] = out / "tables" / "stability_frontier.csv"
    front_md = frontier_text(front)
    io.write_text(paths["frontier_md"], "# Stability study: stability frontier\n\n" + front_md)
    io.write_text(paths["frontier_csv"], tables.csv_records(front))
    io.write_text(paths["summary"],
                  summary_text(groups, paired, alpha, test) + "\n## Stability frontier\n\n" + front_md)
    if plots:

        for name, p in stability_plots.plot_all(curves(runs), out / "figures", references[0]).items():
            paths[f"figure_{name}"] = p
        for name, p in stability_plots.plot_frontier(front, out / "figures", references[0]).items():
            paths[f"figure_{name}"] = p
    return paths


def _split(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None
