"""``mhpo-bench objectives``: list registered objectives with their defaults."""

from __future__ import annotations

import json


def configure(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON mapping name -> parameters")


def main(args) -> int:
    from mhpo import objectives  # lazy: start-up time

    table = {name: objectives.parameters(name) for name in objectives.available()}
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        for name, params in table.items():
            print(f"{name:14s} " + ", ".join(f"{k}={v}" for k, v in params.items()))
    return 0
