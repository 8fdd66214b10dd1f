"""The package's architecture, checked: layer contracts (import-linter, pyproject.toml), no import cycle, few
imports inside functions (each one listed here and commented where it stands), ruff clean (docs/architecture.md)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mhpo", "baselines", "benchmarks")

# Imports that stay inside functions, per file: heavy or optional packages that the module does not import at its
# top, so that `mhpo-bench --help`, `mhpo-bench COMMAND --help` and planning never load them, and a few of our
# modules whose name means something else in that module. Every one carries a comment on its line (or the line above).
# Third-party ones are listed by top-level package, ours by module. Remove an entry when its import goes; add one
# only for the same reason, with the comment.
LAZY: dict[str, set[str]] = {
    "mhpo/analysis/atlas.py": {"matplotlib", "mhpo.objectives", "torch"},
    "mhpo/analysis/plots.py": {"matplotlib"},
    "mhpo/analysis/stability.py": {"scipy"},
    "mhpo/analysis/stability_plots.py": {"matplotlib"},
    "mhpo/cli/__init__.py": {"benchmarks.vl"},
    "mhpo/cli/atlas.py": {"mhpo.objectives"},
    "mhpo/cli/objectives.py": {"mhpo.objectives"},
    "mhpo/cli/prefetch.py": {"tqdm"},
    "mhpo/cli/tiny_model.py": {"mhpo.models.tiny_vl"},
    "mhpo/cli/train.py": {"mhpo.training.train"},
    "mhpo/models/loading.py": {"huggingface_hub", "torch", "transformers"},
    "mhpo/models/tiny.py": {"tokenizers", "torch", "tqdm", "transformers"},
    "mhpo/models/tiny_vl.py": {"torch", "transformers"},
    "mhpo/training/data.py": {"datasets", "huggingface_hub", "pyarrow"},
    "mhpo/training/manifest.py": {"torch"},
    "mhpo/training/objective_cache.py": {"mhpo.objectives"},
    "mhpo/training/train.py": {"accelerate", "datasets", "deepspeed", "mhpo.models.tiny", "mhpo.models.tiny_vl",
                               "mhpo.tasks.vl", "mhpo.training.rewards_vl", "mhpo.training.trainer", "tqdm",
                               "transformers", "trl", "wandb"},
    "mhpo/training/train_vl.py": {"mhpo.models.tiny_vl"},
    "mhpo/workflow/plan.py": {"benchmarks", "benchmarks.catalog"},
    "mhpo/workflow/prefetch.py": {"huggingface_hub"},
    "mhpo/workflow/scaffold.py": {"mhpo.objectives"},
    "mhpo/workflow/schema.py": {"jsonschema"},
    "benchmarks/catalog.py": {"datasets", "mhpo.tasks.text", "mhpo.tasks.vl"},
    "benchmarks/evaluate.py": {"tqdm"},
    "benchmarks/generation.py": {"torch", "transformers", "vllm"},
    "benchmarks/images.py": {"PIL"},
    "benchmarks/scoring.py": {"math_verify", "tqdm"},
    "benchmarks/tiny_model.py": {"torch", "transformers"},
    "benchmarks/vl.py": {"torch", "transformers"},
}


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _names(node: ast.Import | ast.ImportFrom) -> set[str]:
    """What an import brings in: third-party ones by top-level package, ours by module."""
    if isinstance(node, ast.Import):
        mods = [a.name for a in node.names]
    else:
        mods = [f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}") else node.module
                for a in node.names]
    return {m if m.split(".")[0] in PACKAGES else m.split(".")[0] for m in mods}


def _imports_in_functions() -> dict[str, list[tuple[int, set[str], bool]]]:
    """file -> [(line, imported names, has a comment on the statement or the line above)]."""
    found: dict[str, list[tuple[int, set[str], bool]]] = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            text = f.read_text(encoding="utf-8")
            lines = text.splitlines()
            for fn in ast.walk(ast.parse(text)):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        span = lines[max(node.lineno - 2, 0):node.end_lineno]
                        commented = any("#" in ln for ln in span)
                        found.setdefault(str(f.relative_to(ROOT)), []).append((node.lineno, _names(node), commented))
    return found


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.is_file() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]' (the dev extra pins it)"
    return found


def test_layer_contracts_hold():
    """import-linter's contracts in pyproject.toml: a lower layer never imports a higher one."""
    p = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 broken" in p.stdout


def test_no_import_cycle_between_our_modules():
    """No module of ours reaches itself through imports, counting the ones inside functions."""
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    g = nx.DiGraph()
    for m in graph.modules:
        g.add_node(m)
        g.add_edges_from((m, t) for t in graph.find_modules_directly_imported_by(m) if t != m)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"
    # nor do the units of the layers (mhpo's subpackages, benchmarks, baselines) import each other both ways
    unit = {m: ".".join(m.split(".")[:2]) if m.startswith("mhpo.") else m.split(".")[0] for m in g}
    units = nx.DiGraph((unit[a], unit[b]) for a, b in g.edges if unit[a] != unit[b])
    cycles = [sorted(c) for c in nx.strongly_connected_components(units) if len(c) > 1]
    assert not cycles, f"import cycles between packages: {cycles}"


def test_the_objective_contract_imports_nothing_of_ours():
    tree = ast.parse((ROOT / "mhpo" / "objectives" / "__init__.py").read_text(encoding="utf-8"))
    ours = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            and any(m.split(".")[0] in PACKAGES for m in _names(n))]
    assert not ours, ours


def test_imports_inside_functions_are_the_listed_lazy_ones_and_commented():
    found = _imports_in_functions()
    unlisted = {f: sorted(set().union(*(n for _, n, _ in rows)) - LAZY.get(f, set())) for f, rows in found.items()}
    unlisted = {f: v for f, v in unlisted.items() if v}
    assert not unlisted, (f"imports inside functions that are not in tests/test_architecture.py's LAZY list: "
                          f"{unlisted}; move them to the module's top, or (a heavy package kept out of start-up) "
                          f"list them and comment why")
    bare = [f"{f}:{line}" for f, rows in found.items() for line, _, commented in rows if not commented]
    assert not bare, f"imports inside functions without a comment saying why: {bare}"
    gone = {f: sorted(v - set().union(*(n for _, n, _ in found.get(f, [])))) for f, v in LAZY.items()}
    gone = {f: v for f, v in gone.items() if v}
    assert not gone, f"LAZY lists imports that are no longer inside functions, remove them: {gone}"


def test_ruff_is_clean():
    p = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
