"""``mhpo-bench launch``: run a training launcher sized to the job: processes = GPUs, a free port, threads per rank
(the library is :mod:`mhpo.training.launch`)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from mhpo.training.launch import plan


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpus", type=int, default=1, help="GPUs of the job = processes to start (0 counts as 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of the job (default: $SLURM_CPUS_PER_TASK, else all CPUs)")
    parser.add_argument("--dry-run", action="store_true", help="print the command and its thread variables as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command (e.g. accelerate launch ...)")


def main(args) -> int:
    try:
        argv, env = plan(args.command, args.gpus, args.threads)
    except ValueError as e:
        print(f"mhpo-bench launch: error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps({"argv": argv, "env": env}))
        return 0
    os.environ.update(env)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 127  # not reached
