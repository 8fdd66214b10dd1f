"""``mhpo-bench train``: its arguments, without importing the trainer (torch, transformers, TRL), so that
``mhpo-bench train --help`` answers at once; :func:`main` hands over to :mod:`mhpo.training.train`."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="recipe name (mhpo/resources/recipes/NAME.yaml) or YAML path")
    parser.add_argument("--objective", required=True, help="registered objective (mhpo-bench objectives)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V",
                        help="objective parameter override, e.g. --param c=2.0 (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="recipe override by dotted key, e.g. --set optim.lr=2e-6 (repeatable)")
    parser.add_argument("--seed", default=None, help="seed or comma-separated seeds (default: the recipe's seeds)")
    parser.add_argument("--out", required=True, help="run directory; may contain {seed} and {objective}")
    parser.add_argument("--max-steps", type=int, default=None, help="override optim.max_steps")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the recipe and build the full GRPOConfig without loading weights or data")


def main(args) -> int:
    from mhpo.training import train  # deferred for start-up time: it imports torch, transformers and TRL

    return train.main(args)
