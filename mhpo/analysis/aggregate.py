"""``mhpo-bench aggregate``: evaluation records and training logs -> tables and stability figures.

    mhpo-bench aggregate --runs results/runs --evals results/evals --out results

Reads ``EVALS/{model}/{objective}/seed{seed}/{checkpoint}/{benchmark}.jsonl`` (+ ``.summary.json``) and
``RUNS/{model}/{objective}/seed{seed}/metrics.jsonl`` (docs/interfaces.md) and writes

* ``OUT/tables/main.{md,csv,tex}``: rows = objectives (``base`` = untrained model), columns = benchmarks +
  macro average; cells Avg@k (%) of the ``final`` checkpoint with a 95% CI (bootstrap over problems; with
  several seeds a two-level bootstrap over seeds and problems). Where the shipped
  ``mhpo/resources/reference/*.json`` holds the paper's numbers for the same model, they stand beside ours with
  the difference.
* ``OUT/tables/training_signals.{md,csv,tex}``: per objective (mean over seeds), the training signals of
  ``mhpo.analysis.signals`` with this table's windows ``SIGNALS``: grad-norm spikes (> 3x the running median of the
  previous 50 steps), entropy drop (first 10% of steps minus last 10%), max |log r|, non-finite steps.
* ``OUT/figures/training_{model}.{png,pdf}``: one panel per signal, every objective overlaid, seed bands
  (``mhpo.analysis.plots``).

Fast path: records are streamed line by line, only ``problem_id``, ``sample`` and ``correct`` are decoded into
numpy arrays; 10,000 records aggregate in well under a second (perf/aggregate.py).
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from mhpo import resources
from mhpo.analysis import compare, plots, signals, tables
from mhpo.common import io

N_BOOT = 2000
LEVEL = 0.95
BASE = "base"
FINAL = "final"
# The training-signal windows of this table (the stability study uses signals.Params' defaults): spikes against
# the median of the previous 50 steps, entropy ends of 10% of the steps, so short and long runs read alike.
SIGNALS = signals.Params(spike_window=50, entropy_fraction=0.1)
# Column order: the paper's five benchmarks first, then anything else alphabetically.
PREFERRED_ORDER = ["math500", "hmmt25", "amc23", "aime25", "aime24"]


# ------------------------------------------------------------------------------------------ reading
def _step_of(checkpoint: str) -> int | None:
    m = re.fullmatch(r"checkpoint-(\d+)", checkpoint)
    return int(m.group(1)) if m else (0 if checkpoint == BASE else None)


def read_records(path: Path, k: int | None = None) -> tuple[list[str], np.ndarray, int]:
    """Per-problem Avg@k of one ``{benchmark}.jsonl``: (problem ids, per-problem mean accuracy, step or -1).

    Only the first ``k`` samples of a problem count when ``k`` is given; a trailing partial line is ignored."""
    correct: dict[str, list[float]] = {}
    step = -1
    loads = json.loads
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            r = loads(line)
            s = r.get("sample", 0)
            if k is not None and s is not None and int(s) >= k:
                continue
            correct.setdefault(str(r["problem_id"]), []).append(1.0 if r["correct"] else 0.0)
            if step < 0 and r.get("step") is not None:
                step = int(r["step"])
    ids = list(correct)  # file order: the evaluation summary's bootstrap draws index problems in this order
    return ids, np.fromiter((sum(correct[i]) / len(correct[i]) for i in ids), float, len(ids)), step


class Cell:
    """One (model, label, seed, checkpoint, benchmark) evaluation."""

    __slots__ = ("model", "label", "seed", "checkpoint", "benchmark", "ids", "scores", "step", "summary")

    def __init__(self, model, label, seed, checkpoint, benchmark, ids, scores, step, summary):
        self.model, self.label, self.seed, self.checkpoint = model, label, seed, checkpoint
        self.benchmark, self.ids, self.scores, self.step, self.summary = benchmark, ids, scores, step, summary


def discover_evals(evals_dir: Path, experiments: set[tuple[str, str]] | None = None) -> list[Cell]:
    """Every evaluation under ``evals_dir`` (layout of docs/interfaces.md), optionally only ``experiments``."""
    cells = []
    if not evals_dir.is_dir():
        return cells
    for model_dir in sorted(p for p in evals_dir.iterdir() if p.is_dir()):
        for label_dir in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            if experiments is not None and (model_dir.name, label_dir.name) not in experiments:
                continue
            for seed_dir in sorted(p for p in label_dir.iterdir() if p.is_dir()):
                m = re.fullmatch(r"seed(\d+)", seed_dir.name)
                if not m:
                    continue
                for ck_dir in sorted(p for p in seed_dir.iterdir() if p.is_dir()):
                    for summ_path in sorted(ck_dir.glob("*.summary.json")):
                        bench = summ_path.name[: -len(".summary.json")]
                        with open(summ_path, encoding="utf-8") as fh:
                            summary = json.load(fh)
                        rec_path = ck_dir / f"{bench}.jsonl"
                        if rec_path.is_file():
                            ids, scores, step = read_records(rec_path, summary.get("k"))
                        else:  # summary only: the mean is known, per-problem values are not
                            ids, scores, step = None, None, -1
                        if step < 0:
                            step = _step_of(ck_dir.name)
                        cells.append(Cell(model_dir.name, label_dir.name, int(m.group(1)), ck_dir.name, bench,
                                          ids, scores, step, summary))
    return cells


def read_metrics(runs_dirs: list[Path], experiments: set[tuple[str, str]] | None = None) -> dict:
    """``{(model, label): {seed: {key: np.ndarray}}}`` from every ``metrics.jsonl`` (the first runs dir wins),
    in step order with each step once (``signals.clean_rows``)."""
    out: dict = defaultdict(dict)
    for runs_dir in runs_dirs:
        if not runs_dir.is_dir():
            continue
        for path in sorted(runs_dir.glob("*/*/seed*/metrics.jsonl")):
            model, label, seed_name = path.parts[-4], path.parts[-3], path.parts[-2]
            m = re.fullmatch(r"seed(\d+)", seed_name)
            if not m or (experiments is not None and (model, label) not in experiments):
                continue
            seed = int(m.group(1))
            if seed in out[(model, label)]:
                continue
            rows = signals.clean_rows(io.read_jsonl(path))
            if rows:
                out[(model, label)][seed] = signals.series(rows)
    return dict(out)


# ------------------------------------------------------------------------------------------ statistics
def hierarchical_ci(per_seed: list[np.ndarray], n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL,
                    rng: np.random.Generator | None = None,
                    seed_idx: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """Mean over seeds of the per-problem mean, with a two-level percentile bootstrap: seeds resampled with
    replacement, problems resampled within (the same problem draw for every seed: problems are shared).
    One seed reduces to the ordinary bootstrap over problems (benchmarks.metrics.bootstrap_ci).
    Returns ``({mean, ci_low, ci_high}, boot_means)``."""
    rng = rng or np.random.default_rng(seed)
    X = np.vstack(per_seed)  # (S, P), problems aligned
    S, P = X.shape
    mean = float(X.mean())
    if P == 1 and S == 1:
        return {"mean": mean, "ci_low": mean, "ci_high": mean}, np.full(n_boot, mean)
    pidx = rng.integers(0, P, size=(n_boot, P))  # first draw: identical to benchmarks.metrics.bootstrap_ci(seed=0)
    M = np.empty((S, n_boot))  # per-seed means under each problem resample, in chunks to bound memory
    step = max(1, 2_000_000 // max(1, S * P))
    for a in range(0, n_boot, step):
        M[:, a:a + step] = X[:, pidx[a:a + step]].mean(axis=2)
    if S > 1:
        sidx = seed_idx if seed_idx is not None else rng.integers(0, S, size=(n_boot, S))
        boots = M[sidx, np.arange(n_boot)[:, None]].mean(axis=1)
    else:
        boots = M[0]
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"mean": mean, "ci_low": float(min(lo, mean)), "ci_high": float(max(hi, mean))}, boots


def cell_stats(cells: list[Cell], n_boot: int = N_BOOT) -> tuple[dict, dict]:
    """Per-benchmark and macro-average statistics for the cells of one (model, label, checkpoint=final).

    Returns ``(per_benchmark, average)``, each ``{mean, ci_low, ci_high, n_seeds, n_problems}``."""
    by_bench: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        by_bench[c.benchmark].append(c)
    seeds = sorted({c.seed for c in cells})
    # Seeds are resampled identically for every benchmark (the seed effect is shared); problems with the
    # same generator as benchmarks.metrics, so a one-seed cell reproduces its evaluation summary's CI.
    seed_idx = np.random.default_rng(1).integers(0, len(seeds), size=(n_boot, len(seeds))) if len(seeds) > 1 else None
    per, boots_all, exact = {}, [], True
    for bench in sorted(by_bench):
        cs = sorted(by_bench[bench], key=lambda c: c.seed)
        if any(c.scores is None for c in cs):  # summaries only
            means = [c.summary["metrics"]["avg@k"]["mean"] for c in cs]
            mean = float(np.mean(means))
            if len(cs) == 1:
                s = cs[0].summary["metrics"]["avg@k"]
                per[bench] = {"mean": mean, "ci_low": s["ci_low"], "ci_high": s["ci_high"]}
            else:
                per[bench] = {"mean": mean, "ci_low": float(min(means)), "ci_high": float(max(means))}
            per[bench].update(n_seeds=len(cs), n_problems=cs[0].summary.get("n_problems"))
            exact = False
            continue
        shared = set.intersection(*(set(c.ids) for c in cs))
        common = [p for p in cs[0].ids if p in shared]
        arrays = []
        for c in cs:
            pos = {pid: i for i, pid in enumerate(c.ids)}
            arrays.append(c.scores if c.ids == common else c.scores[[pos[p] for p in common]])
        if not common:
            continue
        if len(cs) != len(seeds):
            exact = False
        stats, boots = hierarchical_ci(arrays, n_boot, rng=np.random.default_rng(0),
                                       seed_idx=seed_idx if len(cs) == len(seeds) else None)
        stats.update(n_seeds=len(cs), n_problems=len(common))
        per[bench] = stats
        boots_all.append(boots)
    avg = None
    if per:
        mean = float(np.mean([s["mean"] for s in per.values()]))
        if exact and boots_all:
            b = np.mean(boots_all, axis=0)
            lo, hi = np.quantile(b, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
            avg = {"mean": mean, "ci_low": float(min(lo, mean)), "ci_high": float(max(hi, mean))}
        else:
            avg = {"mean": mean, "ci_low": math.nan, "ci_high": math.nan}
        avg.update(n_seeds=len(seeds), n_problems=sum(s["n_problems"] or 0 for s in per.values()))
    return per, avg


# ------------------------------------------------------------------------------------------ reference
def _norm_model(name: str) -> str:
    return str(name).rstrip("/").split("/")[-1].lower()


def default_reference_dirs(out: Path) -> list[Path]:
    """``OUT/reference`` (a results dir's own), then the paper's numbers shipped as package data."""
    return [Path(out) / "reference", resources.reference_dir()]


def load_references(ref_dirs: list[Path]) -> list[dict]:
    refs = []
    for d in ref_dirs:
        for p in sorted(d.glob("*.json")) if d.is_dir() else []:
            try:
                with open(p, encoding="utf-8") as fh:
                    ref = json.load(fh)
            except (OSError, json.JSONDecodeError) as e:
                print(f"warning: ignoring reference {p}: {e}", file=sys.stderr)
                continue
            ref["_path"] = str(p)
            refs.append(ref)
        if refs:
            break  # the first directory that has references wins
    return refs


def match_reference(refs: list[dict], model: str, base_model: str | None) -> dict | None:
    names = {_norm_model(model)} | ({_norm_model(base_model)} if base_model else set())
    for ref in refs:
        aliases = {_norm_model(a) for a in [ref.get("model", "")] + list(ref.get("model_aliases", []))}
        if names & aliases:
            return ref
    return None


def reference_value(ref: dict, label: str, bench: str | None) -> float | None:
    """The paper's number (fraction) for our ``label`` (objective) and ``bench`` (None: the average)."""
    row_name = ref.get("objective_map", {}).get(label)
    if row_name is None:
        return None
    row = ref.get("rows", {}).get(row_name)
    if row is None:
        return None
    col = "average" if bench is None else ref.get("benchmark_map", {}).get(bench, bench)
    v = row.get(col)
    return None if v is None else float(v) / 100.0


# ------------------------------------------------------------------------------------------ stability
def run_stability(series: dict[str, np.ndarray], params: signals.Params = SIGNALS) -> dict:
    """One run's training signals (``signals.run_signals``) under this table's column names."""
    s = signals.run_signals(series, params)
    return {"grad_norm_spikes": s["grad_spikes"], "entropy_drop": s["entropy_drop"],
            "max_abs_log_ratio": s["max_abs_log_ratio"], "n_steps": s["steps"],
            "nonfinite_skipped": s["nonfinite_steps"]}


# ------------------------------------------------------------------------------------------ formatting
def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _cell_text(s: dict | None, ref: float | None, tex: bool = False) -> str:
    if s is None:
        text = "–"
    else:
        ci = "" if math.isnan(s["ci_low"]) else (f" [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}]")
        text = f"{_pct(s['mean'])}{ci}"
    if ref is not None:
        delta = "" if s is None else f", Δ {100 * (s['mean'] - ref):+.1f}"
        text += f" (paper {100 * ref:.1f}{delta})"
    if tex:
        text = text.replace("Δ", "$\\Delta$").replace("–", "--").replace("%", "\\%")
    return text


def _order_benchmarks(names) -> list[str]:
    names = set(names)
    return [b for b in PREFERRED_ORDER if b in names] + sorted(names - set(PREFERRED_ORDER))


def _order_labels(labels) -> list[str]:
    labels = list(labels)
    return ([BASE] if BASE in labels else []) + sorted(l for l in labels if l != BASE)


# ------------------------------------------------------------------------------------------ tables
def _meta(cells: list[Cell]) -> dict:
    ks, samplings, versions, base_models = set(), set(), {}, set()
    for c in cells:
        s = c.summary
        if s.get("k") is not None:
            ks.add(int(s["k"]))
        samp = {k: v for k, v in (s.get("sampling") or {}).items()
                if k in ("temperature", "top_p", "max_tokens", "backend")}
        samplings.add(json.dumps(samp, sort_keys=True))
        for k, v in (s.get("versions") or {}).items():
            versions.setdefault(k, v)
        if c.label == BASE and s.get("model"):
            base_models.add(str(s["model"]))
    return {"k": sorted(ks), "sampling": [json.loads(x) for x in sorted(samplings)], "versions": versions,
            "base_model": sorted(base_models)}


def main_table(cells: list[Cell], refs: list[dict], n_boot: int = N_BOOT) -> dict:
    """Build the main table data:
    ``{model: {"meta", "benchmarks", "rows": [(label, per, avg, ref_per, ref_avg)], "ref"}}``."""
    final = [c for c in cells if (c.checkpoint == FINAL) or (c.label == BASE and c.checkpoint == BASE)]
    by_model: dict[str, list[Cell]] = defaultdict(list)
    for c in final:
        by_model[c.model].append(c)
    out = {}
    for model in sorted(by_model):
        mc = by_model[model]
        meta = _meta(mc)
        benches = _order_benchmarks({c.benchmark for c in mc})
        ref = match_reference(refs, model, meta["base_model"][0] if meta["base_model"] else None)
        rows = []
        labels = _order_labels({c.label for c in mc})
        for label in labels:
            per, avg = cell_stats([c for c in mc if c.label == label], n_boot)
            ref_per = {b: reference_value(ref, label, b) for b in benches} if ref else {}
            ref_avg = reference_value(ref, label, None) if ref else None
            rows.append((label, per, avg, ref_per, ref_avg))
        out[model] = {"meta": meta, "benchmarks": benches, "rows": rows, "ref": ref,
                      "differences": differences(mc, labels, benches, n_boot),
                      "pass_maj": {label: pass_maj([c for c in mc if c.label == label]) for label in labels}}
    return out


REFERENCES = (BASE, "grpo")  # every method is compared with the untrained model and with GRPO


def differences(cells: list[Cell], labels: list[str], benches: list[str], n_boot: int = N_BOOT) -> dict:
    """``{reference: {label: {benchmark | "average": paired difference}}}`` (mhpo.analysis.compare),
    label - reference."""

    def scores(label, bench):
        return {c.seed: (c.ids, c.scores) for c in cells
                if c.label == label and c.benchmark == bench and c.scores is not None}

    out = {}
    for ref in REFERENCES:
        if ref not in labels:
            continue
        out[ref] = {}
        for label in labels:
            if label == ref or (ref != BASE and label == BASE):  # base - grpo is grpo - base, shown once
                continue
            per = {}
            for bench in benches:
                a, b = scores(label, bench), scores(ref, bench)
                if a and b:
                    d, boots = compare.paired_difference(a, b, n_boot)
                    if d is not None:
                        per[bench] = (d, boots)
            row = {bench: d for bench, (d, _) in per.items()}
            if len(per) == len(benches) and per:
                row["average"] = compare.macro_difference(per)
            out[ref][label] = row
    return out


def pass_maj(cells: list[Cell]) -> dict:
    """``{benchmark: {"pass@k": mean, "maj@k": mean, "n_seeds": n}}`` from the evaluation summaries (mean over
    seeds)."""
    out: dict = {}
    for bench in sorted({c.benchmark for c in cells}):
        cs = [c for c in cells if c.benchmark == bench]
        out[bench] = {m: float(np.mean([c.summary["metrics"][m]["mean"] for c in cs])) for m in ("pass@k", "maj@k")}
        out[bench]["n_seeds"] = len(cs)
    return out


def _diff_text(d: dict | None, tex: bool = False) -> str:
    if d is None:
        return "--" if tex else "–"
    text = (f"{100 * d['mean']:+.1f} [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}]"
            + ("*" if d["significant"] else ""))
    return text.replace("*", "$^*$").replace("%", "\\%") if tex else text


def _sizes(d: dict) -> str:
    n = {}
    for _, per, _, _, _ in d["rows"]:
        for b, st in per.items():
            n.setdefault(b, st.get("n_problems"))
    seeds = {label: (avg or {}).get("n_seeds") for label, _, avg, _, _ in d["rows"]}
    ks = ",".join(map(str, d["meta"]["k"])) or "?"
    by_seed = ", ".join(f"{label} {s}" for label, s in seeds.items())
    return (", ".join(f"{b} {n[b]} problems" for b in d["benchmarks"] if b in n)
            + f"; k = {ks} samples per problem; seeds per row: {by_seed}")


def conclusions(model: str, d: dict) -> list[str]:
    """What the table can and cannot tell, in words (the paired differences' significance)."""
    diffs = d["differences"]
    sig, total, widths = [], 0, []
    for ref, rows in diffs.items():
        for label, per in rows.items():
            for bench, x in per.items():
                if x is None:
                    continue
                total += 1
                widths.append(100 * (x["ci_high"] - x["ci_low"]) / 2)
                if x["significant"]:
                    sig.append(f"{label} − {ref} on {bench}: {_diff_text(x).rstrip('*')} points")
    if not total:
        return ["No paired comparison is possible: the table has no base model or GRPO row with per-problem "
                "records to compare against."]
    informative = [w for w in widths if w > 0]  # a zero-width CI: both rows identical on every problem (e.g. all 0)
    half = float(np.median(informative)) if informative else 0.0
    out = []
    if not sig:
        out.append(f"**None of the {total} paired differences (each method vs the base model and vs GRPO, per "
                   "benchmark and on average) is significant**: every 95% CI includes 0. This run does not show any "
                   "method to be better or worse than GRPO, nor any method to be better or worse than the base model; "
                   "differences in the means above are within sampling noise.")
    else:
        out.append(f"**Significant differences** (95% CI excludes 0; {len(sig)} of {total}): " + "; ".join(sig)
                   + f". Every other difference is compatible with no difference. With {total} comparisons at "
                   f"95%, about {total / 20:.1f} would exclude 0 by chance alone (no correction for multiple "
                   "comparisons), so a few marked differences are weak evidence on their own.")
    out.append(f"With these sample sizes a difference must be larger than about ±{half:.1f} points (median CI "
               "half-width) to be told apart from noise. The CIs cover the choice of problems and training seeds "
               "only: they say nothing about other models, benchmarks, hyper-parameters or training budgets than "
               f"`{model}`'s here.")
    return out


def write_main(data: dict, out_dir: Path, skipped: dict[str, str] | None = None) -> list[Path]:
    md, tex = ["# Main results: Avg@k (%) with 95% CI, paired differences, pass@k and maj@k\n"], []
    header_csv = ["model", "objective", "benchmark", "avg_at_k", "ci_low", "ci_high", "n_seeds", "n_problems",
                  "paper", "delta", "k", "sampling", "versions"]
    for ref in REFERENCES:
        header_csv += [f"minus_{ref}", f"minus_{ref}_ci_low", f"minus_{ref}_ci_high", f"minus_{ref}_significant"]
    header_csv += ["pass_at_k", "maj_at_k"]
    csv_rows = []
    for model, d in data.items():
        meta, benches, ref = d["meta"], d["benchmarks"], d["ref"]
        ks = ",".join(map(str, meta["k"])) or "?"
        samp = "; ".join(json.dumps(s, sort_keys=True) for s in meta["sampling"])
        vers = ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items()))
        md.append(f"\n## {model}\n")
        md.append(f"- model: `{model}`" + (f" (base: `{meta['base_model'][0]}`)" if meta["base_model"] else ""))
        md.append(f"- metric: Avg@{ks} (%), mean over problems (and seeds); brackets: 95% bootstrap CI")
        md.append(f"- sample sizes: {_sizes(d)}")
        md.append(f"- sampling: {samp}")
        md.append(f"- versions: {vers or 'unknown'}")
        if ref:
            md.append(f"- paper: {ref.get('source', '')}; provenance: {ref.get('provenance', '')}; "
                      f"metric {ref.get('metric', '')}"
                      + ("" if str(ref.get("k")) in meta["k"] or ref.get("k") in meta["k"]
                         else f" (paper k={ref.get('k')}, ours k={ks}: not like for like)"))
        md.append("")
        header = ["objective"] + benches + ["average"]
        md_rows, tex_rows = [], []
        diffs, pm = d["differences"], d["pass_maj"]
        for label, per, avg, ref_per, ref_avg in d["rows"]:
            md_rows.append([label] + [_cell_text(per.get(b), ref_per.get(b)) for b in benches]
                           + [_cell_text(avg, ref_avg)])
            tex_rows.append([tables.tex_escape(label)]
                            + [_cell_text(per.get(b), ref_per.get(b), tex=True) for b in benches]
                            + [_cell_text(avg, ref_avg, tex=True)])
            for b, s in list(per.items()) + [("average", avg)]:
                if s is None:
                    continue
                r = ref_avg if b == "average" else ref_per.get(b)
                row = [model, label, b, s["mean"], s["ci_low"], s["ci_high"], s["n_seeds"], s["n_problems"],
                       r, None if r is None else s["mean"] - r, ks, samp, vers]
                for rl in REFERENCES:
                    x = diffs.get(rl, {}).get(label, {}).get(b)
                    row += [None] * 4 if x is None else [x["mean"], x["ci_low"], x["ci_high"], x["significant"]]
                row += [pm.get(label, {}).get(b, {}).get(m) for m in ("pass@k", "maj@k")]
                csv_rows.append(row)
        md.append(tables.md_table(header, md_rows))
        tex.append(f"% model: {model}; Avg@{ks}; sampling: {samp}; versions: {vers}")
        tex.append(tables.tex_table(header, tex_rows, f"{tables.tex_escape(model)}: Avg@{ks} (\\%) with 95\\% CI.",
                                    raw=True))
        for rl, rows in diffs.items():
            title = "the base model (untrained)" if rl == BASE else "GRPO"
            md.append(f"\n### Difference from {title}: method − {rl} (percentage points)\n")
            md.append("Paired bootstrap 95% CI over problems and seeds (mhpo/analysis/compare.py); "
                      "`*`: the CI excludes 0.\n")
            body = [[label] + [_diff_text(per.get(b)) for b in benches + ["average"]] for label, per in rows.items()]
            md.append(tables.md_table([f"method − {rl}"] + benches + ["average"], body))
            tex.append(tables.tex_table([f"method - {rl}"] + benches + ["average"],
                                        [[tables.tex_escape(label)] + [_diff_text(per.get(b), tex=True)
                                                                       for b in benches + ["average"]]
                                         for label, per in rows.items()],
                                        f"{tables.tex_escape(model)}: method $-$ {tables.tex_escape(rl)} (points), "
                                        "paired bootstrap 95\\% CI; $^*$: CI excludes 0.", raw=True))
        md.append(f"\n### pass@{ks} and maj@{ks} (%)\n")
        md.append("Mean over seeds of each evaluation's pass@k (some sample correct) and maj@k (the majority answer "
                  "correct).\n")
        pm_header = ["objective"] + [f"{b} {m}@{ks}" for b in benches for m in ("pass", "maj")]
        md.append(tables.md_table(pm_header, [[label] + [_pct(pm[label].get(b, {}).get(m)) for b in benches
                                                   for m in ("pass@k", "maj@k")] for label in pm]))
        md.append("\n### What can and cannot be concluded\n")
        md += [p + "\n" for p in conclusions(model, d)]
    if skipped:
        md.append("\n## Skipped benchmarks\n")
        md += [f"- `{name}`: {reason}" for name, reason in sorted(skipped.items())]
        md.append("")
    if not data:
        md.append("\nNo evaluations found.\n")
    return tables.write(out_dir / "main", "\n".join(md) + "\n", tables.csv_text(header_csv, csv_rows),
                        "\n".join(tex) if tex else "% no evaluations found\n")


def stability_table(metrics: dict) -> list[dict]:
    rows = []
    for (model, label), seeds in sorted(metrics.items()):
        per = [run_stability(s) for _, s in sorted(seeds.items())]
        row = {"model": model, "objective": label, "n_seeds": len(per)}
        for key in ("grad_norm_spikes", "entropy_drop", "max_abs_log_ratio", "n_steps", "nonfinite_skipped"):
            vals = np.array([p[key] for p in per], dtype=float)
            row[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
        rows.append(row)
    return rows


def write_stability(rows: list[dict], out_dir: Path, params: signals.Params = SIGNALS) -> list[Path]:
    header = ["model", "objective", "n_seeds", "n_steps", "grad_norm_spikes", "entropy_drop", "max_abs_log_ratio",
              "nonfinite_skipped"]
    names = signals.describe(params)
    pretty = ["model", "objective", "seeds", "steps", names["grad_spikes"], names["entropy_drop"], "max |log r|",
              "non-finite steps"]

    def fmt(v, key):
        if isinstance(v, float) and math.isnan(v):
            return "–"
        if key in ("grad_norm_spikes", "nonfinite_skipped", "n_steps"):
            return f"{v:.1f}" if v != int(v) else f"{int(v)}"
        if key in ("entropy_drop", "max_abs_log_ratio"):
            return f"{v:.3f}"
        return str(v)

    body = [[fmt(r[k], k) for k in header] for r in rows]
    f = params.entropy_fraction
    ends = f"{f:.0%} of steps" if f is not None else f"{params.entropy_k} steps"
    md = ("# Training stability (mean over seeds)\n\n"
          "Signals as defined in docs/stability.md (mhpo.analysis.signals), with "
          f"this table's windows. Grad-norm spikes: steps whose gradient norm exceeds {params.spike_factor:g}× the "
          f"median of the finite norms of the preceding {params.spike_window} steps (once at least "
          f"{params.spike_min_history}), and steps the trainer skipped as non-finite. Entropy drop: mean entropy of "
          f"the first {ends} minus the last {ends}. "
          "Max |log r|: largest |log| of the importance ratio's min/max over all steps (clamped to 20). Non-finite "
          "steps: steps skipped for a non-finite loss or gradient.\n\n" + tables.md_table(pretty, body))
    if not rows:
        md += "\nNo training logs found.\n"
    # not "stability.*": that name is the stability study's (mhpo.analysis.stability, docs/stability.md)
    return tables.write(out_dir / "training_signals", md,
                        tables.csv_text(header, [[r[k] for k in header] for r in rows]),
                        tables.tex_table(pretty, body, "Training stability per objective (mean over seeds)."))


# ------------------------------------------------------------------------------------------ curves
def heldout_curves(cells: list[Cell]) -> dict:
    """``{model: {label: {seed: [(step, accuracy)]}}}``: mean Avg@k over the curve benchmarks (those evaluated
    on intermediate checkpoints; all benchmarks when there are none) at base (step 0), checkpoints and final."""
    out: dict = {}
    for model in sorted({c.model for c in cells}):
        mc = [c for c in cells if c.model == model]
        curve_benches = ({c.benchmark for c in mc if c.checkpoint.startswith("checkpoint-")}
                         or {c.benchmark for c in mc})
        base = defaultdict(list)
        for c in mc:
            if c.label == BASE and c.benchmark in curve_benches:
                base[c.seed].append(_mean(c))
        base_acc = float(np.mean([np.mean(v) for v in base.values()])) if base else None
        res: dict = {}
        points: dict = defaultdict(lambda: defaultdict(list))
        for c in mc:
            if c.label == BASE or c.benchmark not in curve_benches or c.step is None or c.step < 0:
                continue
            points[(c.label, c.seed)][c.step].append(_mean(c))
        for (label, seed), steps in points.items():
            pts = sorted((s, float(np.mean(v))) for s, v in steps.items())
            if base_acc is not None:
                pts = [(0, base_acc)] + [p for p in pts if p[0] != 0]
            res.setdefault(label, {})[seed] = pts
        out[model] = res
    return out


def _mean(c: Cell) -> float:
    return (float(c.scores.mean()) if c.scores is not None and c.scores.size
            else float(c.summary["metrics"]["avg@k"]["mean"]))


# ------------------------------------------------------------------------------------------ code identity
def check_same_code(cells: list[Cell], runs_dirs: list[Path]) -> None:
    """Refuse to put runs of different code under one label: the training manifests' ``code_hash`` (objective,
    contract, trainer) and the evaluation summaries' ``code_hash`` must each be the same for every seed of a
    (model, label). Runs written before code hashes were recorded carry none and are not compared."""
    seen: dict[tuple[str, str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        h = c.summary.get("code_hash")
        if h and c.checkpoint in (FINAL, BASE):
            seen[(c.model, c.label, "evaluation")][h].append(f"seed{c.seed}/{c.checkpoint}/{c.benchmark}")
    for model, label in {(c.model, c.label) for c in cells if c.label != BASE}:
        for seed in sorted({c.seed for c in cells if (c.model, c.label) == (model, label)}):
            for d in runs_dirs:
                man = d / model / label / f"seed{seed}" / "manifest.json"
                if man.is_file():
                    h = json.loads(man.read_text(encoding="utf-8")).get("code_hash")
                    if h:
                        seen[(model, label, "training")][h].append(f"seed{seed}")
                    break
    for (model, label, stage), hashes in sorted(seen.items()):
        if len(hashes) > 1:
            which = "; ".join(f"{h}: {', '.join(v)}" for h, v in sorted(hashes.items()))
            raise ValueError(f"{model}/{label}: its {stage} runs come from different code ({which}); rerun the stale "
                             "ones (snakemake reruns jobs whose code changed) or give them different labels")


def parse_experiments(experiments: list[str] | None) -> set[tuple[str, str]] | None:
    """``--experiment MODEL/LABEL`` values as ``{(model, label)}``; None (every experiment) when none are given."""
    if not experiments:
        return None
    out = set()
    for e in experiments:
        if "/" not in e:
            raise ValueError(f"--experiment {e!r} must look like MODEL/LABEL")
        model, label = e.split("/", 1)
        out.add((model, label))
    return out


# ------------------------------------------------------------------------------------------ entry point
def aggregate(runs_dirs: list[Path], evals_dir: Path, out: Path, experiments: list[str] | None = None,
              reference_dirs: list[Path] | None = None, figures: bool = True, n_boot: int = N_BOOT,
              skipped: dict[str, str] | None = None) -> dict:
    """Write every table (and figure); returns ``{"tables": [...], "figures": [...], "counts": {...}}``."""
    exp = parse_experiments(experiments)
    t0 = time.perf_counter()
    cells = discover_evals(evals_dir, exp)
    check_same_code(cells, runs_dirs)
    metrics = read_metrics(runs_dirs, exp)
    refs = load_references(reference_dirs or default_reference_dirs(out))
    data = main_table(cells, refs, n_boot)
    tables = write_main(data, out / "tables", skipped) + write_stability(stability_table(metrics), out / "tables")
    figs = []
    if figures:

        curves = heldout_curves(cells)
        models = sorted({m for m, _ in (exp or set())} | {c.model for c in cells} | {m for m, _ in metrics})
        for model in models:
            figs += plots.training_signals(model, {l: s for (m, l), s in metrics.items() if m == model},
                                           curves.get(model, {}), out / "figures")
    n_records = sum(0 if c.scores is None else int(c.scores.size) for c in cells)
    return {"tables": tables, "figures": figs,
            "counts": {"evaluations": len(cells), "problems": n_records, "runs": sum(len(v) for v in metrics.values()),
                       "seconds": time.perf_counter() - t0}}
