"""``mhpo-bench tiny-model``: build the tiny offline model (char tokenizer + SFT warm start; --kind vl: VLM) (the
library is :mod:`mhpo.models.tiny`)."""

from __future__ import annotations

import argparse
import json
import sys

from mhpo.models.tiny import WARM_START_STEPS, _copy_into, build, cached, info
from mhpo.tasks import text as tasks


# ------------------------------------------------------------------------------------------------ CLI
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    parser.add_argument("--kind", choices=("text", "vl"), default="text",
                        help="text: the char-level causal LM (default); vl: the tiny LLaVA VLM (mhpo.models.tiny_vl)")
    parser.add_argument("--vl", dest="kind", action="store_const", const="vl", help="same as --kind vl")
    parser.add_argument("--task", default=None,
                        help=f"task to warm-start on: text {', '.join(tasks.available())} (default add); "
                             "vl: comma-separated visual tasks of mhpo.tasks.vl (default count)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and warm start (default 0)")
    parser.add_argument("--steps", "--warm-start-steps", type=int, default=None, dest="steps",
                        help=f"supervised warm-start steps (default per task: {WARM_START_STEPS}; vl: 160)")
    parser.add_argument("--no-cache", action="store_true",
                        help="text: build from scratch, not a copy of the cached identical build ($MHPO_CACHE_DIR)")


def main(args) -> int:
    if args.kind == "vl":
        return _main_vl(args)
    task = args.task or "add"
    try:
        if args.no_cache:
            out = build(args.out, task=task, seed=args.seed, warm_start_steps=args.steps)
        else:
            out = _copy_into(cached(task, args.seed, args.steps), args.out)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = info(out)
    ws = data["warm_start"]
    acc = "not measured" if ws["test_greedy_accuracy"] is None else f"{ws['test_greedy_accuracy']:.1%}"
    print(f"wrote {out}: {data['n_params']:,} parameters, warm start {ws['steps']} steps on {ws['task']!r}, "
          f"greedy test accuracy {acc} ({ws['test_eval_size']} problems), {data['build_seconds']:.0f} s")
    return 0


def _main_vl(args) -> int:
    from mhpo.models import tiny_vl as vl_tiny  # the VL builder pulls in PIL and the visual tasks: only for --kind vl

    names = [t for t in (args.task or "count").split(",") if t]
    steps = vl_tiny.WARM_START_STEPS if args.steps is None else args.steps
    try:
        info = vl_tiny.build(args.out, task=names if len(names) > 1 else names[0], seed=args.seed,
                             warm_start_steps=steps)
    except (ValueError, FileExistsError) as e:  # unknown task, or --out holds something
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2))
    return 0
