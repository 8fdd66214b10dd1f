"""``mhpo-bench lm-eval-tasks``: write lm-eval task YAMLs for every registered benchmark (the library is
:mod:`benchmarks.lm_eval_tasks`)."""

from __future__ import annotations

import sys

from benchmarks import catalog
from benchmarks.lm_eval_tasks import write_tasks


def configure(parser) -> None:
    parser.add_argument("--out", required=True, help="directory for the YAMLs (pass it to lm_eval --include_path)")
    parser.add_argument("--benchmarks", default=None, help="comma-separated names (default: every registered one)")
    parser.add_argument("--data-dir", default=None,
                        help="benchmark copies <DIR>/<name>/test.jsonl (or MHPO_BENCHMARK_DIR)")
    parser.add_argument("--max-gen-toks", type=int, default=None, help="default: each benchmark's max_tokens")


def main(args) -> int:
    try:
        names = catalog.parse_names(args.benchmarks) if args.benchmarks else None
    except catalog.BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    written = write_tasks(args.out, names, args.data_dir, args.max_gen_toks)
    for name, path in written.items():
        print(f"mhpo_{name}\t{path}")
    if not written:
        print("error: no benchmark data found; see the messages above", file=sys.stderr)
        return 1
    return 0
