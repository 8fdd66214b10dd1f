"""``mhpo-bench validate-config``: validate a workflow or training config and print the resolved form (the library is
:mod:`mhpo.workflow.config`)."""

from __future__ import annotations

import sys

import yaml

from mhpo.workflow.config import _is_recipe, _validate_recipe
from mhpo.workflow.plan import load
from mhpo.workflow.schema import ConfigError


def configure(parser) -> None:
    parser.description = ("Validate a workflow config (workflow/config/*.yaml: `experiments`, `models`, ...) and "
                          "print it resolved with its job plan, or a training recipe (mhpo/resources/recipes/*.yaml: "
                          "`model`, `optim`, `rollout`, ...) and print it with every default filled in. The kind is "
                          "recognised from the file's keys.")
    parser.add_argument("file", help="workflow config YAML (workflow/config/*.yaml) or recipe YAML "
                                     "(mhpo/resources/recipes/*.yaml)")
    parser.add_argument("--jobs", action="store_true", help="workflow configs: also list every planned job")


def main(args) -> int:
    if _is_recipe(args.file):
        return _validate_recipe(args.file)
    try:
        cfg, plan = load(args.file)
    except ConfigError as e:
        print(f"mhpo-bench validate-config: {args.file}: error: {e}", file=sys.stderr)
        return 2
    print(yaml.safe_dump({"resolved": cfg, "plan": plan.summary()}, sort_keys=False, allow_unicode=True), end="")
    if args.jobs:
        for p in [plan, *plan.studies.values()]:
            tag = f" [study {p.study}]" if p.study else ""
            for r in p.train_runs():
                print(f"train    {r.model}/{r.label}/seed{r.seed}{tag}: "
                      f"{p.train_command(r.model, r.label, r.seed, r.path + '/final')}")
            for j in p.evals.values():
                print(f"evaluate {j.model}/{j.label}/seed{j.seed}/{j.checkpoint}{tag}: "
                      f"{p.eval_command(j.model, j.label, j.seed, j.checkpoint)}")
    return 0
