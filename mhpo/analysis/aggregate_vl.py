"""The VL table of ``mhpo-bench aggregate``: VL evaluation records -> ``OUT/tables/vl.{md,csv,tex}``.

    mhpo-bench aggregate --track vl --evals results/evals --out results [--experiment MODEL/LABEL ...]

(``mhpo-bench aggregate`` without ``--track`` writes it too, beside the main tables, when it finds VL evaluations.)
Reads the evaluation layout of docs/interfaces.md (``EVALS/{model}/{label}/seed{seed}/{checkpoint}/``), keeping only
benchmarks of modality ``vl`` (the registry's five and the synthetic ``synth_vl_<task>``). Per model:

* rows = objectives (``base`` = the untrained model, first); the ``final`` checkpoint of every seed;
* columns = the registry benchmarks in the paper's usual order (MathVista, MathVerse, MathVision, Geometry3K,
  WeMath), then synthetic tasks; cells avg@k (%) with a 95% CI, computed exactly as the main table
  (``mhpo.analysis.aggregate.cell_stats``: bootstrap over problems, two-level over seeds and problems with several
  seeds);
* ``average`` = mean over the registry benchmarks present, as the paper averages its VL benchmarks (over the
  synthetic tasks when a model has no registry benchmark); ``average_synthetic`` = mean over the synthetic tasks.

The paper's VL numbers (``mhpo/resources/reference/*.json`` whose ``track`` is ``vl``; only averages are known:
MHPO 53.0, DAPO ≈ 52.3 derived as 53.0 − 0.7) stand beside the matching model's average, and are always listed with
their provenance in a "Paper reference" section. Each summary's ``data`` (where the problems came from, e.g. the
3-problem test fixtures) is shown per benchmark, so fixture numbers are never mistaken for the real benchmark.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from benchmarks import catalog
from mhpo.analysis import aggregate as agg
from mhpo.analysis import tables

VL_ORDER = ["mathvista", "mathverse", "mathvision", "geometry3k", "wemath"]


def _is_synthetic(bench: str) -> bool:
    return bench.startswith(catalog.SYNTH_VL_PREFIX)


def _is_vl(bench: str) -> bool:
    return catalog.modality_of(bench) == "vl"


def has_vl(evals_dir: Path, experiments: list[str] | None = None) -> bool:
    """Whether ``evals_dir`` holds a VL evaluation (of ``experiments``, ``MODEL/LABEL``, when given)."""
    keep = {tuple(e.split("/", 1)) for e in experiments} if experiments else None
    for p in evals_dir.glob("*/*/seed*/*/*.summary.json"):
        rel = p.relative_to(evals_dir).parts
        if (keep is None or rel[:2] in keep) and _is_vl(p.name[: -len(".summary.json")]):
            return True
    return False


def _order(names) -> list[str]:
    names = set(names)
    return [b for b in VL_ORDER if b in names] + sorted(names - set(VL_ORDER))


def vl_references(refs: list[dict]) -> list[dict]:
    return [r for r in refs if r.get("track") == "vl"]


def vl_table(cells: list, refs: list[dict], n_boot: int = agg.N_BOOT) -> dict:
    """``{model: {"meta", "benchmarks", "data", "rows": [(label, per, avg, avg_synth, ref_avg)], "ref"}}``."""
    final = [c for c in cells if _is_vl(c.benchmark)
             and (c.checkpoint == agg.FINAL or (c.label == agg.BASE and c.checkpoint == agg.BASE))]
    by_model: dict[str, list] = defaultdict(list)
    for c in final:
        by_model[c.model].append(c)
    out = {}
    for model in sorted(by_model):
        mc = by_model[model]
        meta = agg._meta(mc)
        benches = _order({c.benchmark for c in mc})
        data = {}
        for c in mc:
            data.setdefault(c.benchmark, (c.summary.get("data"), c.summary.get("n_problems")))
        ref = agg.match_reference(vl_references(refs), model, meta["base_model"][0] if meta["base_model"] else None)
        rows = []
        for label in agg._order_labels({c.label for c in mc}):
            cs = [c for c in mc if c.label == label]
            real = [c for c in cs if not _is_synthetic(c.benchmark)]
            synth = [c for c in cs if _is_synthetic(c.benchmark)]
            per_r, avg_r = agg.cell_stats(real, n_boot) if real else ({}, None)
            per_s, avg_s = agg.cell_stats(synth, n_boot) if synth else ({}, None)
            ref_avg = agg.reference_value(ref, label, None) if ref else None
            rows.append((label, {**per_r, **per_s}, avg_r if real else avg_s, avg_s if real else None, ref_avg))
        out[model] = {"meta": meta, "benchmarks": benches, "data": data, "rows": rows, "ref": ref}
    return out


def _ref_lines(refs: list[dict]) -> list[str]:
    lines = ["\n## Paper reference (VL)\n"]
    if not refs:
        return lines + ["No VL reference file found (OUT/reference/, mhpo/resources/reference/).\n"]
    for ref in refs:
        rows = ref.get("rows", {})
        vals = ", ".join(f"{name} {row['average']:.1f}"
                         + (" (derived)" if f"{name}.average" in ref.get("derived", {}) else "")
                         for name, row in rows.items() if row.get("average") is not None)
        lines.append(f"- `{ref.get('model')}`: average {vals} ({ref.get('units', 'percent')}); "
                     f"source: {ref.get('source')}")
        lines.append(f"  - provenance: {ref.get('provenance')}")
        for k, v in ref.get("derived", {}).items():
            lines.append(f"  - derived: {k} = {v}")
        if ref.get("not_stated"):
            lines.append(f"  - not stated by the paper: {'; '.join(ref['not_stated'])}")
    return lines + [""]


def write_vl(data: dict, refs: list[dict], out_dir: Path) -> list[Path]:
    md = ["# Vision-language results: avg@k (%) with 95% CI\n",
          "`average`: mean over the registry VL benchmarks present (the paper averages its VL benchmarks); "
          "`synthetic`: mean over the synthetic visual tasks (`synth_vl_*`). Paper numbers beside the average where "
          "the model matches a reference (only averages are known for the VL setting)."]
    header_csv = ["model", "objective", "benchmark", "avg_at_k", "ci_low", "ci_high", "n_seeds", "n_problems", "paper",
                  "delta", "k", "data", "sampling", "versions"]
    csv_rows, tex = [], []
    for model, d in data.items():
        meta, benches = d["meta"], d["benchmarks"]
        ks = ",".join(map(str, meta["k"])) or "?"
        samp = "; ".join(json.dumps(s, sort_keys=True) for s in meta["sampling"])
        vers = ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items()))
        has_synth = any(r[3] is not None for r in d["rows"])
        md.append(f"\n## {model}\n")
        md.append(f"- model: `{model}`" + (f" (base: `{meta['base_model'][0]}`)" if meta["base_model"] else ""))
        md.append(f"- metric: avg@{ks} (%), final checkpoint, mean over problems (and seeds); "
                  "brackets: 95% bootstrap CI")
        md.append(f"- sampling: {samp}")
        md.append("- data: " + "; ".join(f"{b}: {d['data'][b][0]} ({d['data'][b][1]} problems)" for b in benches))
        if d["ref"]:
            md.append(f"- paper: {d['ref'].get('source')}; provenance: {d['ref'].get('provenance')}")
        md.append("")
        header = ["objective"] + benches + ["average"] + (["synthetic"] if has_synth else [])
        md_rows, tex_rows = [], []
        for label, per, avg, avg_s, ref_avg in d["rows"]:
            extra = [avg_s] if has_synth else []
            md_rows.append([label] + [agg._cell_text(per.get(b), None) for b in benches]
                           + [agg._cell_text(avg, ref_avg)] + [agg._cell_text(s, None) for s in extra])
            tex_rows.append([tables.tex_escape(label)] + [agg._cell_text(per.get(b), None, tex=True) for b in benches]
                            + [agg._cell_text(avg, ref_avg, tex=True)]
                            + [agg._cell_text(s, None, tex=True) for s in extra])
            for b, s in list(per.items()) + [("average", avg), ("average_synthetic", avg_s)]:
                if s is None:
                    continue
                r = ref_avg if b == "average" else None
                csv_rows.append([model, label, b, s["mean"], s["ci_low"], s["ci_high"], s["n_seeds"], s["n_problems"],
                                 r, None if r is None else s["mean"] - r, ks, d["data"].get(b, (None,))[0], samp,
                                 vers])
        md.append(tables.md_table(header, md_rows))
        tex.append(f"% model: {model}; avg@{ks}; sampling: {samp}; versions: {vers}")
        tex.append(tables.tex_table(header, tex_rows, f"{tables.tex_escape(model)}: VL avg@{ks} (\\%) with 95\\% CI.",
                                    raw=True))
    if not data:
        md.append("\nNo VL evaluations found.\n")
    md += _ref_lines(refs)
    for ref in refs:  # the paper's numbers as rows of their own, so the CSV alone carries them
        for name, row in ref.get("rows", {}).items():
            if row.get("average") is not None:
                csv_rows.append([f"paper:{ref.get('model')}", name.lower(), "average", row["average"] / 100.0,
                                 None, None, None, None, row["average"] / 100.0, None, ref.get("k"), ref.get("source"),
                                 None, None])
    return tables.write(out_dir / "vl", "\n".join(md) + "\n", tables.csv_text(header_csv, csv_rows),
                        "\n".join(tex) if tex else "% no VL evaluations found\n")


def aggregate_vl(evals_dir: Path, out: Path, experiments: list[str] | None = None,
                 reference_dirs: list[Path] | None = None, n_boot: int = agg.N_BOOT) -> dict:
    exp = agg.parse_experiments(experiments)
    cells = agg.discover_evals(evals_dir, exp)
    refs = vl_references(agg.load_references(reference_dirs or agg.default_reference_dirs(out)))
    data = vl_table(cells, refs, n_boot)
    tables = write_vl(data, refs, out / "tables")
    return {"tables": tables, "models": sorted(data),
            "evaluations": sum(1 for c in cells if c.checkpoint in (agg.FINAL, agg.BASE))}


def main(args) -> int:
    try:
        res = aggregate_vl(Path(args.evals), Path(args.out), args.experiment,
                           [Path(r) for r in args.reference] if args.reference else None, n_boot=args.n_boot)
    except (ValueError, OSError) as e:
        print(f"mhpo-bench aggregate --track vl: error: {e}", file=sys.stderr)
        return 2
    print(f"VL table for {len(res['models'])} model(s): {', '.join(res['models']) or 'none'}")
    for p in res["tables"]:
        print(f"  wrote {p}")
    return 0

