"""Workflow configs, the public entry point: ``load`` (read, validate, plan), ``ConfigError``, and the
``mhpo-bench validate-config`` command.

    mhpo-bench validate-config workflow/config/default.yaml         # resolved config + job counts, exit 0
    mhpo-bench validate-config my.yaml --jobs                      # also list every job

The work is split by job, one flat module each: :mod:`mhpo.workflow.schema` (JSON Schema check, preparation, site
layer), :mod:`mhpo.workflow.plan` (the job plan), :mod:`mhpo.workflow.commands` (the command lines the rules run) and
:mod:`mhpo.training.objective_cache` (the on-disk cache of objective checks). This module re-exports their public
names.
"""

from __future__ import annotations

import sys

import yaml

from mhpo.training import recipe as recipes
from mhpo.workflow import schema
from mhpo.workflow.plan import (  # noqa: F401  (re-exported: Snakefile, cost, prefetch and tests use them)
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
from mhpo.workflow.schema import (  # noqa: F401
    SCHEMA_PATH,
    SITE_ENV,
    ConfigError,
    apply_site,
    prepare,
    validate_schema,
)


def _is_recipe(path) -> bool:
    """A recipe (mhpo.training.recipe) rather than a workflow config: a mapping without `experiments` with more recipe
    sections than workflow-config keys among its keys (so that a typo in either still gets that kind's message)."""

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

    try:
        rec = recipes.load(path)
        recipes.check_objective_params(rec, str(path))
    except recipes.RecipeError as e:
        print(f"mhpo-bench validate-config: {path}: error: {e}", file=sys.stderr)
        return 2
    print(yaml.safe_dump({"kind": "recipe", "resolved": rec}, sort_keys=False, allow_unicode=True), end="")
    return 0
