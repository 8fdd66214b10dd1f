"""``mhpo-bench``: one entry point; each subcommand lives in its own module and is imported lazily,
so ``mhpo-bench --help`` starts fast and a broken optional stage cannot break the others.

A subcommand module defines ``configure(parser)`` (add arguments) and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "objectives": ("mhpo.cli_objectives", "list the registered objectives and their default parameters"),
    "atlas": ("mhpo.atlas", "draw the gradient-shape atlas of every registered objective"),
    "new-objective": ("mhpo.scaffold", "write a starter objective file in baselines/ plus a test stub"),
    "tiny-model": ("mhpo.tiny", "build the tiny offline model (char tokenizer + SFT warm start)"),
    "tiny-vlm": ("mhpo.vl.tiny", "build the tiny offline VLM (LLaVA, char processor, SFT warm start on a visual task)"),
    "launch": ("mhpo.launch", "run a training launcher sized to the job: processes = GPUs, a free port, threads per rank"),
    "prefetch": ("mhpo.prefetch", "download every model, dataset and benchmark of a workflow config into the site's cache"),
    "train": ("mhpo.train", "train one objective with TRL's GRPOTrainer (config, objective, seed)"),
    "evaluate": ("benchmarks.evaluate", "evaluate a model or checkpoint on registered benchmarks"),
    "lm-eval-tasks": ("benchmarks.lm_eval_tasks", "write lm-eval task YAMLs for every registered benchmark"),
    "evaluate-vl": ("benchmarks.vl", "evaluate a vision-language model on registered VL benchmarks"),
    "aggregate-vl": ("mhpo.vl.aggregate", "VL table: per-benchmark avg@k with CIs and the average, paper numbers beside"),
    "stability": ("mhpo.stability", "stability study: per-run statistics, seed CIs, paired tests, figures, summary"),
    "aggregate": ("mhpo.aggregate", "aggregate runs and evaluation records into tables and figures"),
    "validate-config": ("mhpo.config", "validate a workflow or training config and print the resolved form"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mhpo-bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only == name:
            importlib.import_module(module).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv and argv[0] in COMMANDS else None
    from mhpo import env

    env.setup()
    parser = build_parser(only=name)
    args = parser.parse_args(argv)
    if name is None:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
