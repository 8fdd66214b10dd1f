"""The package stands alone: a wheel installed (not editable) into a fresh venv plans a workflow config and trains
the tiny recipe from a directory outside the repository, reading its recipes, schema and reference numbers as
package data (mhpo.resources).

How the fresh venv sees the dependencies but not this checkout: it is made WITHOUT system site-packages, and a
``deps.pth`` file lists the site-packages directories of the interpreter running the tests (a CI venv, or a venv
with system site-packages). A plain path line in a ``.pth`` file adds the directory to ``sys.path`` after the
venv's own site-packages, but the ``.pth`` files inside that directory are not run, so the editable install's
finder hook (``__editable__.mhpo_bench-*.pth``) never loads: ``import mhpo`` can only find the wheel. The test
checks that (``mhpo.__file__`` lies in the venv), runs with an empty ``PYTHONPATH`` and from a temporary working
directory, so that neither the checkout nor the current directory is on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mutation import scratch_copy

ROOT = Path(__file__).resolve().parents[1]


def _dependency_dirs() -> list[str]:
    """The running interpreter's site-packages directories (never the checkout itself)."""
    return [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
    scratch_copy(src)
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", str(src), "-w", str(dist)],
                       cwd=tmp, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    (wheel,) = dist.glob("mhpo_bench-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    p = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
                       cwd=tmp, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    outside = tmp / "elsewhere"
    outside.mkdir()
    return venv, Path(purelib), outside, env


def _run(installed, *argv, timeout=600):
    venv, _, outside, env = installed
    return subprocess.run([str(a) for a in argv], cwd=outside, capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_wheel_imports_from_the_venv_not_the_checkout(installed):
    venv, purelib, _, _ = installed
    p = _run(installed, venv / "bin" / "python", "-c",
             "import mhpo, benchmarks, baselines, mhpo.resources as r; "
             "print(mhpo.__file__); print(benchmarks.__file__); print(r.recipes_dir())")
    assert p.returncode == 0, p.stderr[-2000:]
    for line in p.stdout.split():
        assert Path(line).resolve().is_relative_to(purelib.resolve()), (line, purelib)
        assert not Path(line).resolve().is_relative_to(ROOT), line


def test_wheel_plans_and_trains_the_tiny_recipe_outside_the_repo(installed):
    venv, _, outside, _ = installed
    cli = venv / "bin" / "mhpo-bench"
    cfg = outside / "mini.yaml"
    cfg.write_text(yaml.safe_dump({
        "results_dir": "results",
        "models": {"tiny": {"tiny_model": {"task": "add", "seed": 0}}},
        "defaults": {"recipe": "tiny", "seeds": [0], "set": {"optim.max_steps": 2, "checkpoint.every": 2},
                     "evaluation": {"benchmarks": [{"name": "synth_add", "limit": 4}]}},
        "experiments": [{"model": "tiny", "objective": "grpo"}, {"model": "tiny", "objective": "mhpo"}],
    }))
    p = _run(installed, cli, "validate-config", cfg, "--jobs")
    assert p.returncode == 0, p.stderr[-3000:]
    plan = yaml.safe_load(p.stdout.split("\ntrain ")[0])
    assert plan["plan"]["jobs"]["train"] == 2
    p = _run(installed, cli, "validate-config", venv / "nonexistent.yaml")  # errors name the file
    assert p.returncode == 2 and "not found" in p.stderr
    out = outside / "run"
    p = _run(installed, cli, "train", "--config", "tiny", "--objective", "grpo", "--seed", "0", "--out", out,
             "--max-steps", "2", "--set", "rollout.group_size=4", "--set", "rollout.prompts_per_rollout=2",
             "--set", "rollout.micro_batch_size=4", "--set", "wandb.enabled=false", timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "final").is_dir() and (out / "metrics.jsonl").stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["git"] == {"sha": None, "dirty": None}  # an installed package is no git checkout
