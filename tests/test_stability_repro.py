"""Determinism of the stability study end to end ("re-running with the same seeds reproduces the table
exactly on the same machine"): a 2-run study (two methods, one seed) is trained, evaluated and analysed twice
from scratch with the commands the workflow runs; every table and the summary must be byte-identical."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mhpo import cli
from mhpo.training import train as train_mod
from mhpo.training.recipe import load as load_recipe

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

# Small rollouts (32 completions) and 4 steps keep this in the suite's budget; the model (the default tiny warm
# start, built once per cache and shared with tests/test_trainer.py) and the structure (updates_per_rollout 2:
# an off-policy step per rollout; sampled evaluation with a fixed seed) are the study's.
SETS = {"rollout.group_size": 8, "rollout.prompts_per_rollout": 4, "rollout.micro_batch_size": 8,
        "optim.max_steps": 4, "checkpoint.every": 2, "data.n_train": 64, "wandb.enabled": "false"}
METHODS = ("grpo", "mhpo")


def study(root: Path, model: Path) -> Path:
    sets = [a for k, v in {**SETS, "model.path": model}.items() for a in ("--set", f"{k}={v}")]
    for method in METHODS:
        run = root / "runs" / "tiny" / method / "seed0"
        assert cli.main(["train", "--config", "tiny", "--objective", method, "--seed", "0", "--out", str(run),
                         *sets]) == 0
        assert cli.main(["evaluate", "--model", str(run / "final"), "--benchmarks", "synth_add", "--limit", "16",
                         "--k", "2", "--temperature", "3.0", "--max-tokens", "8", "--seed", "0", "--batch-size", "32",
                         "--backend", "hf", "--workers", "1",
                         "--out", str(root / "evals" / "tiny" / method / "seed0" / "final")]) == 0
    assert cli.main(["stability", "--runs", str(root / "runs"), "--evals", str(root / "evals"), "--out", str(root),
                     "--reference", "grpo", "--no-plots"]) == 0
    return root


def test_rerunning_the_study_with_the_same_seeds_reproduces_the_tables(tmp_path):
    model = Path(train_mod.model_path(load_recipe("tiny")))  # the default tiny model, cached as in test_trainer.py
    a, b = study(tmp_path / "a", model), study(tmp_path / "b", model)
    files = ["tables/stability.md", "tables/stability.csv", "tables/stability.tex", "tables/stability_paired.csv",
             "tables/stability_runs.csv", "stability_summary.md"]
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    with open(a / "tables" / "stability_runs.csv") as fh:
        runs = list(csv.DictReader(fh))
    assert {r["method"] for r in runs} == set(METHODS)
    for r in runs:  # the runs really trained and were evaluated: the statistics are numbers, not blanks
        assert r["final_accuracy"] != "" and float(r["max_abs_log_ratio"]) > 0, r
