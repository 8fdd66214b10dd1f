"""Content hashes of the code behind a job, so that Snakemake reruns exactly the jobs whose code changed.

A job's hash covers the source of every module of this repository that it can import (found statically: the
transitive closure of ``import``/``from … import`` statements, including ones inside functions), plus the
package version. The workflow passes it as a rule ``params`` value; Snakemake records params and reruns a job
whose params changed (``--rerun-triggers params``, on by default in Snakemake 9). Training manifests and
evaluation summaries record it too, and aggregation refuses to mix runs of different code under one label.

* training: the objective's own file (and what it imports, e.g. ``mhpo/objectives/__init__.py``, the contract), the
  trainer and training CLI (``mhpo/training/train.py``, ``mhpo/training/trainer.py`` and their imports). The objective
  registry discovers objective files dynamically (``importlib``), so editing one objective changes only its own hash.
* evaluation: ``benchmarks/evaluate.py`` with its imports (text and VL) and the benchmark registry.
* aggregation: ``mhpo/analysis/aggregate.py`` with its imports (the VL table's ``mhpo/analysis/aggregate_vl.py``
  among them).

Pure standard library (``ast``, ``hashlib``): planning never imports torch for this.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mhpo", "baselines", "benchmarks")  # this repository's top-level packages


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


@functools.cache
def _imports(path: Path) -> tuple[Path, ...]:
    """Repository files imported by ``path`` (one level), packages' ``__init__`` included."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError):
        return ()
    found: set[Path] = set()

    def add(module: str) -> None:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__, then a/b/c
            f = _module_file(".".join(parts[:i]))
            if f is not None:
                found.add(f)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            add(node.module)
            for a in node.names:  # `from mhpo import io` imports the submodule mhpo.common.io
                add(f"{node.module}.{a.name}")
    return tuple(sorted(found))


def closure(*files: Path, skip=()) -> list[Path]:
    """``files`` and every repository module they import, transitively; sorted. Modules in ``skip``
    (repository-relative paths or folder prefixes ending in "/") are neither included nor followed."""
    seen: set[Path] = set()
    todo = [Path(f).resolve() for f in files]
    while todo:
        f = todo.pop()
        rel = str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f)
        if f in seen or any(rel == x or (x.endswith("/") and rel.startswith(x)) for x in skip):
            continue
        seen.add(f)
        todo.extend(_imports(f))
    return sorted(seen)


# Not part of a training run's code: evaluation-only modules (the registry imports benchmarks/vl.py for images,
# which imports the generator), and, for a text run, the VL track's modules (train.py imports them only for a
# recipe with data.image_field).
EVAL_ONLY = ("benchmarks/evaluate.py", "benchmarks/generation.py", "benchmarks/metrics.py",
             "benchmarks/lm_eval_tasks.py", "benchmarks/lm_eval_hooks.py")
VL_ONLY = ("mhpo/tasks/vl.py", "mhpo/models/tiny_vl.py", "mhpo/training/rewards_vl.py",
           "mhpo/training/train_vl.py", "mhpo/analysis/aggregate_vl.py",
           "benchmarks/vl.py")


def package_version() -> str:
    try:
        return importlib.metadata.version("mhpo-bench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def _file_sha(path: Path) -> str:
    """One read per file and process: planning hashes the same files for every run."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest(files, extra: object = None) -> str:
    """sha256 (16 hex digits) of the files' repository-relative paths and contents, the package version and
    ``extra`` (any JSON-able value, e.g. a resolved recipe)."""

    h = hashlib.sha256()
    h.update(package_version().encode())
    for f in sorted(set(Path(x).resolve() for x in files)):
        rel = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f
        h.update(b"\0" + str(rel).encode() + b"\0" + _file_sha(f).encode())
    if extra is not None:
        h.update(b"\0extra\0" + json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


_REGISTER = re.compile(r"""@register\(\s*["']([^"']+)["']\s*\)""")


@functools.cache
def _objective_files() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in sorted((ROOT / "mhpo").rglob("*.py")) + sorted((ROOT / "baselines").glob("*.py")):
        for name in _REGISTER.findall(f.read_text(encoding="utf-8")):
            out[name] = f
    return out


def objective_file(name: str) -> Path | None:
    """The file that registers objective ``name`` (``@register("name")``), found without importing it."""
    return _objective_files().get(name)


def train_files(objective: str, vl: bool = False) -> list[Path]:
    own = objective_file(objective)
    return closure(ROOT / "mhpo" / "training" / "train.py", ROOT / "mhpo" / "training" / "trainer.py",
                   *([own] if own else []), skip=EVAL_ONLY + (() if vl else VL_ONLY))


def train_hash(objective: str, recipe: dict | None = None, vl: bool = False) -> str:
    """The code (and resolved recipe) that determines a training run of ``objective`` (``vl``: a VL recipe)."""
    return digest(train_files(objective, vl), recipe)


def eval_hash() -> str:
    """The evaluation code, text and VL alike (one path)."""
    entry = ROOT / "benchmarks" / "evaluate.py"
    registry = sorted((ROOT / "benchmarks" / "registry").rglob("*.yaml"))
    return digest(closure(entry) + registry)


def aggregate_hash() -> str:
    """The aggregation code; ``mhpo-bench aggregate`` writes the VL table too."""
    return digest(closure(ROOT / "mhpo" / "analysis" / "aggregate.py"))
