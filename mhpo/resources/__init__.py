"""Package data: the shipped training recipes, the workflow-config JSON Schema and the paper's reference numbers.

Read with :mod:`importlib.resources`, so that an installed wheel finds them exactly as a checkout does; nothing
in the package reads files of the repository it was built from.

    recipes/NAME.yaml            training recipes (``mhpo-bench train --config NAME``, config ``recipe: NAME``)
    schemas/config.schema.yaml   JSON Schema of a workflow config (mhpo.workflow.config, the Snakefile's ``validate``)
    reference/*.json             the paper's reported numbers with their provenance (mhpo.analysis.aggregate)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _dir(name: str) -> Path:
    # a regular (unzipped) install: the traversable is a real directory (Snakemake and yaml read it by path)
    return Path(str(resources.files(__name__) / name))


def recipes_dir() -> Path:
    return _dir("recipes")


def schema_path() -> Path:
    return _dir("schemas") / "config.schema.yaml"


def reference_dir() -> Path:
    return _dir("reference")
