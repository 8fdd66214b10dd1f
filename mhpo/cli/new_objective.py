"""``mhpo-bench new-objective``: write a starter objective file in baselines/ plus a test stub (the library is
:mod:`mhpo.workflow.scaffold`)."""

from __future__ import annotations

import sys

from mhpo.workflow.scaffold import target_dirs, write


def configure(parser) -> None:
    parser.add_argument("name", help="objective name: a lower-case Python identifier, e.g. my_obj")
    parser.add_argument("--baselines-dir", default=None,
                        help="where the objective goes (default: ./baselines, which must exist)")
    parser.add_argument("--tests-dir", default=None,
                        help="where its test stub goes (default: ./tests if it exists, else the baselines dir)")


def main(args) -> int:

    try:
        paths = write(args.name, *target_dirs(args.baselines_dir, args.tests_dir))
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    print(f"next: edit {paths[0]}, then run pytest {paths[1]}", file=sys.stderr)
    return 0
