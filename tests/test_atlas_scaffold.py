"""``mhpo-bench atlas`` and ``mhpo-bench new-objective``. The scaffold writes into a temporary folder and the
objective is imported from there (and unregistered afterwards), so the repository is left unchanged."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
import torch

from mhpo import objectives
from mhpo.analysis.atlas import gradient_weights
from mhpo.cli import main as cli


def test_gradient_weights_grpo_shape():
    r = torch.tensor([0.5, 0.9, 1.0, 1.1, 1.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(gradient_weights("grpo", r, 1.0), torch.where(r < 1.2, r, 0.0))
    torch.testing.assert_close(gradient_weights("grpo", r, -1.0), torch.where(r > 0.8, -r, 0.0))


def test_gradient_weights_mhpo_and_sequence_objective():
    one = torch.ones(1, dtype=torch.float64)
    assert gradient_weights("mhpo", one, 1.0).item() == pytest.approx(math.exp(-objectives.get("mhpo").zeta(
        torch.zeros((), dtype=torch.float64)).item()))
    # One token per sequence: GSPO's sequence ratio is the token ratio, same as GRPO inside its tiny band.
    r = torch.tensor([1.0 + 1e-4, 1.5], dtype=torch.float64)
    torch.testing.assert_close(gradient_weights("gspo", r, 1.0), torch.tensor([1.0 + 1e-4, 0.0], dtype=torch.float64))


def test_atlas_cli_writes_png_and_pdf(tmp_path):
    assert cli(["atlas", "--out", str(tmp_path), "--name", "atlas"]) == 0
    png, pdf = tmp_path / "atlas.png", tmp_path / "atlas.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atlas.pdf", "atlas.png"]  # no temp files left


def test_atlas_cli_rejects_unknown_objective(tmp_path):
    with pytest.raises(objectives.ObjectiveError, match="unknown objective 'nope'"):
        cli(["atlas", "--out", str(tmp_path), "--objectives", "grpo,nope"])


@pytest.fixture
def scaffolded(tmp_path):
    name = "scaffold_probe"
    dirs = ["--baselines-dir", str(tmp_path / "b"), "--tests-dir", str(tmp_path / "t")]
    assert cli(["new-objective", name, *dirs]) == 0
    yield name, tmp_path / "b" / f"{name}.py", tmp_path / "t" / f"test_objective_{name}.py", dirs
    objectives.unregister(name)
    for mod in (f"_scaffolded_{name}", f"_scaffolded_test_{name}"):
        sys.modules.pop(mod, None)


def load(path, module_name):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_scaffold_writes_a_working_objective_and_test(scaffolded):
    name, src, test_src, _ = scaffolded
    assert len(src.read_text().splitlines()) < 40
    load(src, f"_scaffolded_{name}")
    assert name in objectives.available()
    stub = load(test_src, f"_scaffolded_test_{name}")
    from test_conformance import CHECKS

    for check in CHECKS:  # the stub's own test, run for every check it parametrises
        stub.__dict__[f"test_{name}_conformance"](check)
    assert gradient_weights(name, torch.ones(1, dtype=torch.float64), 1.0).item() == pytest.approx(1.0)


def test_scaffold_refuses_overwrite_and_bad_names(scaffolded, capsys):
    name, src, _, dirs = scaffolded
    before = src.read_text()
    assert cli(["new-objective", name, *dirs]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert src.read_text() == before
    for bad in ("9lives", "My-Obj", "class", "grpo"):
        assert cli(["new-objective", bad, *dirs]) == 2
        assert repr(bad) in capsys.readouterr().err
