"""``mhpo-bench aggregate``: aggregate runs and evaluations into tables and figures (--track vl: VL table) (the library
is :mod:`mhpo.analysis.aggregate`)."""

from __future__ import annotations

import sys
from pathlib import Path

from mhpo.analysis import aggregate_vl as vl_aggregate
from mhpo.analysis.aggregate import N_BOOT, aggregate


def configure(parser) -> None:
    parser.add_argument("--runs", action="append", default=None,
                        help="runs directory (repeatable; default results/runs)")
    parser.add_argument("--evals", default="results/evals", help="evaluations directory (default results/evals)")
    parser.add_argument("--out", default="results", help="output root: OUT/tables and OUT/figures (default results)")
    parser.add_argument("--experiment", action="append", default=None, metavar="MODEL/LABEL",
                        help="only these experiments (repeatable; default: everything found)")
    parser.add_argument("--reference", action="append", default=None,
                        help="directory of paper reference JSON files (default OUT/reference, then the shipped "
                             "mhpo/resources/reference)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap resamples (default {N_BOOT})")
    parser.add_argument("--skipped", action="append", default=None, metavar="NAME=REASON",
                        help="a benchmark that was planned but skipped, and why (repeatable; listed under the table)")
    parser.add_argument("--track", choices=("text", "vl"), default=None,
                        help="text: the main tables only; vl: the vision-language table only (tables/vl.*, "
                             "mhpo.analysis.aggregate_vl); default: the main tables, plus the VL table when VL "
                             "evaluations exist")


def main(args) -> int:

    if args.track == "vl":
        return vl_aggregate.main(args)
    runs = [Path(r) for r in (args.runs or ["results/runs"])]
    if not Path(args.evals).is_dir():
        print(f"mhpo-bench aggregate: error: --evals {args.evals!r} is not a directory (expected "
              "EVALS/{model}/{label}/seed{N}/{checkpoint}/*.summary.json, as written by mhpo-bench evaluate)",
              file=sys.stderr)
        return 2
    try:
        skipped = dict(x.split("=", 1) if "=" in x else (x, "skipped") for x in args.skipped or [])
        res = aggregate(runs, Path(args.evals), Path(args.out), args.experiment,
                        [Path(r) for r in args.reference] if args.reference else None,
                        figures=not args.no_figures, n_boot=args.n_boot, skipped=skipped)
    except (ValueError, OSError) as e:
        print(f"mhpo-bench aggregate: error: {e}", file=sys.stderr)
        return 2
    c = res["counts"]
    print(f"aggregated {c['evaluations']} evaluations ({c['problems']} problem scores) and {c['runs']} training runs "
          f"in {c['seconds']:.2f} s")
    for p in res["tables"] + res["figures"]:
        print(f"  wrote {p}")
    if args.track is None and vl_aggregate.has_vl(Path(args.evals), args.experiment):
        return vl_aggregate.main(args)
    return 0
