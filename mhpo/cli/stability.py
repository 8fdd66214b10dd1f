"""``mhpo-bench stability``: stability study: per-run statistics, seed CIs, paired tests, figures, summary (the library
is :mod:`mhpo.analysis.stability`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mhpo.analysis.signals import Params
from mhpo.analysis.stability import __doc__ as _library_doc
from mhpo.analysis.stability import _split, analyze


# ----------------------------------------------------------------------------------------------------- CLI
def configure(parser: argparse.ArgumentParser) -> None:
    p, d = parser, Params()
    p.add_argument("--runs", required=True, help="runs root: {regime}/{method}/seed{N}/metrics.jsonl")
    p.add_argument("--evals", default=None,
                   help="evaluations root: {regime}/{method}/seed{N}/{checkpoint}/*.summary.json")
    p.add_argument("--out", required=True, help="output root (writes tables/, figures/, stability_summary.md)")
    p.add_argument("--reference", default="grpo", help="reference method(s) for paired comparisons, comma-separated")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--test", choices=("t", "permutation"), default="t",
                   help="decision rule: paired t-test (default) or exact sign-flip permutation test")
    p.add_argument("--regimes", default=None, help="comma-separated regimes to include (default: all found)")
    p.add_argument("--methods", default=None, help="comma-separated methods to include (default: all found)")
    p.add_argument("--benchmarks", default=None, help="benchmarks for final accuracy (default: all summaries found)")
    p.add_argument("--spike-factor", type=float, default=d.spike_factor,
                   help="grad-norm spike: > this × the running median")
    p.add_argument("--spike-window", type=int, default=d.spike_window, help="steps in the running median of spikes")
    p.add_argument("--spike-min-history", type=int, default=d.spike_min_history,
                   help="steps before spikes are counted")
    p.add_argument("--entropy-k", type=int, default=d.entropy_k,
                   help="steps averaged at each end for the entropy drop")
    p.add_argument("--collapse-ratio", type=float, default=d.collapse_ratio,
                   help="collapse: reward below this × its running max")
    p.add_argument("--collapse-len", type=int, default=d.collapse_len, help="collapse: for at least this many steps")
    p.add_argument("--collapse-min-max", type=float, default=d.collapse_min_max,
                   help="collapse: only once the running max exceeds this")
    p.add_argument("--collapse-drop", type=float, default=0.10,
                   help="stability frontier: a run collapsed when its final accuracy < base accuracy - this")
    p.add_argument("--no-plots", action="store_true", help="tables and summary only")


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    if args is None or not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m mhpo.cli.stability", description=_library_doc.split("\n")[0])
        configure(parser)
        args = parser.parse_args(None if args is None else list(args))
    params = Params(args.spike_factor, args.spike_window, args.spike_min_history, args.entropy_k, args.collapse_ratio,
                    args.collapse_len, args.collapse_min_max)
    try:
        paths = analyze(args.runs, args.evals, args.out, _split(args.reference) or ["grpo"], args.alpha, args.test,
                        params, _split(args.regimes), _split(args.methods), _split(args.benchmarks),
                        plots=not args.no_plots, collapse_drop=args.collapse_drop)
    except (FileNotFoundError, ValueError) as e:
        print(f"mhpo-bench stability: {e}", file=sys.stderr)
        return 2
    for p in paths.values():
        print(p)
    return 0


if __name__ == "__main__":
    from mhpo.common import env

    env.setup()
    sys.exit(main(sys.argv[1:]))
