"""``mhpo-bench``: one entry point; each subcommand lives in its own module and is imported lazily,
so ``mhpo-bench --help`` starts fast and a broken optional stage cannot break the others.

A command module (``mhpo/cli/<command>.py``) defines ``configure(parser)`` (add arguments) and ``main(args) -> int``;
the library code it calls holds no argparse code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from mhpo.common import env

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "objectives": ("mhpo.cli.objectives", "list the registered objectives and their default parameters"),
    "atlas": ("mhpo.cli.atlas", "draw the gradient-shape atlas of every registered objective"),
    "new-objective": ("mhpo.cli.new_objective", "write a starter objective file in baselines/ plus a test stub"),
    "tiny-model": ("mhpo.cli.tiny_model",
                   "build the tiny offline model (char tokenizer + SFT warm start; --kind vl: VLM)"),
    "launch": ("mhpo.cli.launch",
               "run a training launcher sized to the job: processes = GPUs, a free port, threads per rank"),
    "prefetch": ("mhpo.cli.prefetch",
                 "download every model, dataset and benchmark of a workflow config into the site's cache"),
    "train": ("mhpo.cli.train", "train one objective with TRL's GRPOTrainer (config, objective, seed)"),
    "evaluate": ("mhpo.cli.evaluate", "evaluate a model or checkpoint on registered benchmarks (text or VL)"),
    "lm-eval-tasks": ("mhpo.cli.lm_eval_tasks", "write lm-eval task YAMLs for every registered benchmark"),
    "stability": ("mhpo.cli.stability",
                  "stability study: per-run statistics, seed CIs, paired tests, figures, summary"),
    "aggregate": ("mhpo.cli.aggregate",
                  "aggregate runs and evaluations into tables and figures (--track vl: VL table)"),
    "validate-config": ("mhpo.cli.validate_config",
                        "validate a workflow or training config and print the resolved form"),
}

# Old command names, kept for one release: one deprecation line on stderr, then the unified command.
# name -> (argv prefix of the unified command, its spelling in the message)
ALIASES: dict[str, tuple[list[str], str]] = {
    "evaluate-vl": (["evaluate"], "mhpo-bench evaluate (same options; the benchmarks' modality picks the VL path)"),
    "aggregate-vl": (["aggregate", "--track", "vl"], "mhpo-bench aggregate --track vl"),
    "tiny-vlm": (["tiny-model", "--kind", "vl"], "mhpo-bench tiny-model --kind vl"),
}


def resolve_alias(argv: list[str]) -> list[str]:
    """``argv`` with a deprecated command name replaced by the unified command (a line on stderr says so)."""
    if not argv or argv[0] not in ALIASES:
        return argv
    prefix, spelled = ALIASES[argv[0]]
    rest = argv[1:]
    if argv[0] == "evaluate-vl" and rest[:1] == ["export"]:
        prefix, spelled, rest = ["vl-export"], "python -m benchmarks.vl export (or mhpo-bench prefetch)", rest[1:]
    elif argv[0] == "evaluate-vl" and rest[:1] == ["evaluate"]:
        rest = rest[1:]
    print(f"mhpo-bench {argv[0]} is deprecated and will be removed in the next release; use {spelled}",
          file=sys.stderr)
    return prefix + rest


DESCRIPTION = """\
mhpo-bench: reproducible benchmark and replication suite for MHPO (Modulated Hazard-aware Policy Optimization,
arXiv 2603.16929) against GRPO, DAPO, SAPO, GSPO and more, trained with TRL's GRPOTrainer.

Train one objective (train), evaluate checkpoints on text and vision-language math benchmarks (evaluate),
aggregate runs into tables and figures (aggregate), or run everything through the Snakemake workflow
(`snakemake --cores all`, see README.md). `mhpo-bench COMMAND --help` describes each command."""


def _version() -> str:

    try:
        return version("mhpo-bench")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mhpo-bench", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mhpo-bench {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only == name:
            importlib.import_module(module).configure(p)
    return parser


def check_out(args) -> str | None:
    """An ``--out`` that exists as a file is refused before any work (every command writes a directory there)."""
    out = getattr(args, "out", None)
    if isinstance(out, str) and os.path.exists(out) and not os.path.isdir(out):
        return (f"--out {out!r} is a file, not a directory; pass a directory path (it is created if missing) "
                "or move the file away")
    return None


def main(argv: list[str] | None = None) -> int:
    argv = resolve_alias(list(sys.argv[1:] if argv is None else argv))
    if argv[:1] == ["vl-export"]:  # the old `evaluate-vl export`
        from benchmarks import vl  # lazy: start-up time (the registry and the generator), only for vl-export

        return vl.main(["export"] + argv[1:])
    name = argv[0] if argv and argv[0] in COMMANDS else None

    env.setup()
    parser = build_parser(only=name)
    args = parser.parse_args(argv)
    if name is None:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    problem = check_out(args)
    if problem:
        print(f"mhpo-bench {name}: error: {problem}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileExistsError, NotADirectoryError, IsADirectoryError, FileNotFoundError, PermissionError) as e:
        # a wrong path given on the command line: say which, not a traceback
        what = {FileExistsError: "exists and is in the way", NotADirectoryError: "is not a directory",
                IsADirectoryError: "is a directory, not a file", FileNotFoundError: "does not exist",
                PermissionError: "is not accessible (permissions)"}[type(e)]
        print(f"mhpo-bench {name}: error: {e.filename or e}: {what} ({e.strerror or e}); check the paths "
              f"given to `mhpo-bench {name}` (--help lists them)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
