"""Workflow configs, the public entry point: ``load`` (read, validate, plan), ``ConfigError``, and the
``mhpo-bench validate-config`` command.

    mhpo-bench validate-config workflow/config/default.yaml         # resolved config + job counts, exit 0
    mhpo-bench validate-config my.yaml --jobs                      # also list every job

The work is split by job, one flat module each: :mod:`mhpo.schema` (JSON Schema check, preparation, site
layer), :mod:`mhpo.plan` (the job plan), :mod:`mhpo.commands` (the command lines the rules run) and
:mod:`mhpo.objective_cache` (the on-disk cache of objective checks). This module re-exports their public names.
"""

from __future__ import annotations

import sys

import yaml

from mhpo import schema
from mhpo.plan import (  # noqa: F401  (re-exported: the Snakefile, mhpo.cost, mhpo.prefetch and tests use them)
    BASE_CHECKPOINT,
    BASE_LABEL,
    DEFAULT_RESOURCES,
    EVAL_DEFAULTS,
    FINAL,
    LABEL_RE,
    EvalJob,
    Plan,
    Run,
    _chat_template,
    _load_recipe,
    _looks_like_hub_id,
    load,
)
from mhpo.schema import SCHEMA_PATH, SITE_ENV, ConfigError, apply_site, prepare, validate_schema  # noqa: F401


def configure(parser) -> None:
    parser.description = ("Validate a workflow config (workflow/config/*.yaml: `experiments`, `models`, ...) and print "
                          "it resolved with its job plan, or a training recipe (mhpo/resources/recipes/*.yaml: `model`, "
                          "`optim`, `rollout`, ...) and print it with every default filled in. The kind is recognised "
                          "from the file's keys.")
    parser.add_argument("file", help="workflow config YAML (workflow/config/*.yaml) or recipe YAML (mhpo/resources/recipes/*.yaml)")
    parser.add_argument("--jobs", action="store_true", help="workflow configs: also list every planned job")


def _is_recipe(path) -> bool:
    """A recipe (mhpo.recipe) rather than a workflow config: a mapping without `experiments` with more recipe
    sections than workflow-config keys among its keys (so that a typo in either still gets that kind's message)."""
    from mhpo import recipe as recipes

    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(raw, dict) or "experiments" in raw:
        return False
    config_keys = set(schema._schema().get("properties", {}))
    return len(set(raw) & set(recipes.SCHEMA)) > len(set(raw) & config_keys)


def _validate_recipe(path) -> int:
    from mhpo import recipe as recipes

    try:
        rec = recipes.load(path)
        recipes.check_objective_params(rec, str(path))
    except recipes.RecipeError as e:
        print(f"mhpo-bench validate-config: {path}: error: {e}", file=sys.stderr)
        return 2
    print(yaml.safe_dump({"kind": "recipe", "resolved": rec}, sort_keys=False, allow_unicode=True), end="")
    return 0


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
