"""``mhpo-bench atlas``: draw the gradient-shape atlas of every registered objective (the library is
:mod:`mhpo.analysis.atlas`)."""

from __future__ import annotations

from pathlib import Path

from mhpo.analysis.atlas import draw


def configure(parser) -> None:
    parser.add_argument("--out", default="results/figures", help="output folder (default: results/figures)")
    parser.add_argument("--objectives", default=None, help="comma-separated names (default: every registered one)")
    parser.add_argument("--name", default="gradient_atlas", help="file stem (default: gradient_atlas)")


def main(args) -> int:
    from mhpo import objectives  # lazy: start-up time

    names = (objectives.available() if not args.objectives
             else [n.strip() for n in args.objectives.split(",") if n.strip()])
    for n in names:
        objectives.get_class(n)  # unknown name: clear error listing the choices
    for path in draw(names, Path(args.out), args.name):
        print(path)
    return 0
