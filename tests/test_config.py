"""Workflow config validation and planning (mhpo.workflow.config): real configs, real errors naming the key."""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from mhpo.training import recipe
from mhpo.workflow import config as mcfg

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "workflow" / "config"


def _default() -> dict:
    return yaml.safe_load((CONFIGS / "default.yaml").read_text())


def _err(cfg: dict, tmp_path=None) -> str:
    with pytest.raises(mcfg.ConfigError) as e:
        mcfg.load(cfg, workdir=tmp_path or ".")
    return str(e.value)


def test_default_config_plans_tiny_matrix():
    cfg, plan = mcfg.load(CONFIGS / "default.yaml")
    labels = {r.label for r in plan.train_runs()}
    assert labels >= {"mhpo", "grpo", "dapo", "sapo", "gspo"}
    assert {r.seed for r in plan.train_runs()} == {0, 1}
    assert len(plan.train_runs()) == 5 * 2
    # final + checkpoint-24 per run, plus the base model
    assert len(plan.evals) == 5 * 2 * 2 + 1
    assert plan.models["tiny"]["tiny_model"] == {"task": "add", "seed": 0}
    assert plan.run("tiny", "mhpo", 0).path == "results/runs/tiny/mhpo/seed0"


def test_paper_config_plans_paper_matrix():
    cfg, plan = mcfg.load(CONFIGS / "paper.yaml")
    runs = plan.train_runs()
    by_model = {}
    for r in runs:
        by_model.setdefault(r.model, set()).add(r.label)
    assert by_model["qwen2.5-7b-instruct"] >= {"mhpo", "grpo", "dapo", "sapo", "gspo"}
    assert by_model["qwen3-4b-base"] >= {"mhpo", "grpo", "dapo", "sapo", "gspo"}
    assert by_model["qwen2.5-vl-7b-instruct"] == {"mhpo", "grpo", "dapo", "sapo", "gspo"}  # the VL experiment
    assert len(runs) == (8 + 5 + 5) * 3 and len(plan.train_runs("vl")) == 5 * 3
    vl_ev = plan.eval_job("qwen2.5-vl-7b-instruct", "dapo", 2, "final")
    assert [b["name"] for b in vl_ev.benchmarks] == ["mathvista", "mathverse", "mathvision", "geometry3k", "wemath"]
    assert plan.eval_command("qwen2.5-vl-7b-instruct", "dapo", 2, "final").startswith("mhpo-bench evaluate --model")
    ev = plan.eval_job("qwen2.5-7b-instruct", "mhpo", 0, "final")
    assert [b["name"] for b in ev.benchmarks] == ["math500", "hmmt25", "amc23", "aime25", "aime24"]
    assert ev.evaluation["k"] == 32
    assert plan.eval_job("qwen3-4b-base", "grpo", 1, "final").evaluation["sampling"]["max_tokens"] == 4096
    assert plan.resources["train"]["gpu"] >= 1 and plan.resources["evaluate"]["gpu"] >= 1
    cmd = shlex.split(plan.train_command("qwen2.5-7b-instruct", "mhpo", 0, "results/runs/x/final"))
    # the accelerate launcher runs under `mhpo-bench launch`: processes = the job's GPUs (mhpo.training.launch)
    assert cmd[:4] == ["mhpo-bench", "launch", "--gpus", str(plan.resources["train"]["gpu"])] and "train" in cmd
    assert cmd[cmd.index("--") + 1:][:2] == ["accelerate", "launch"]


SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def test_every_config_is_covered():
    assert {"default.yaml", "paper.yaml", "stability.yaml", "vl_tiny.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_plans_what_its_file_says(name):
    """The plan of every shipped config against its YAML read here: one training run per experiment and seed,
    each trained with its recipe, objective, seed and ``set`` overrides; benchmarks under an in-repo data_dir
    (the VL fixtures) are all found, none dropped as unavailable."""
    raw = yaml.safe_load((CONFIGS / name).read_text())
    if "models" not in raw:  # an overlay (smoke.yaml): merged over the default key by key, as Snakemake does
        base = yaml.safe_load((CONFIGS / "default.yaml").read_text())
        update_config(base, raw)  # in place
        raw = base
    _, plan = mcfg.load(raw, name=Path(name).stem)
    d = raw["defaults"]
    expected = {}
    for e in raw["experiments"]:
        if "from_runs" in e or "checkpoints" in e:
            continue
        for seed in e.get("seeds", d.get("seeds")):
            expected[e["model"], e.get("label", e["objective"]), seed] = e
    assert {(r.model, r.label, r.seed) for r in plan.train_runs()} == set(expected)
    for (model, label, seed), e in expected.items():
        argv = shlex.split(plan.train_command(model, label, seed, "out/final"))
        i = argv.index("train")
        flags = dict(zip(argv[i + 1::2], argv[i + 2::2]))
        # one resolved config file per job: the recipe with the experiment's `set` overrides, nothing re-parsed
        assert flags["--config"] == plan.resolved_recipe_path(model, label, seed) == \
            f"{plan.run(model, label, seed).path}/recipe.resolved.yaml"
        assert flags["--objective"] == e["objective"] and flags["--seed"] == str(seed)
        assert "--set" not in argv and "--param" not in argv
        resolved = plan.run(model, label, seed).resolved
        expected_rec = recipe.load(e.get("recipe", d.get("recipe")), {**(d.get("set") or {}), **(e.get("set") or {})})
        for key in {**(d.get("set") or {}), **(e.get("set") or {})}:
            assert recipe.get(resolved, key) == recipe.get(expected_rec, key), key
    data_dir = (d.get("evaluation") or {}).get("data_dir")
    if data_dir:  # a folder of this repository (vl_tiny: the VL fixtures), so every listed benchmark is found
        assert (ROOT / data_dir).is_dir(), data_dir
        listed = [b if isinstance(b, str) else b["name"] for b in d["evaluation"]["benchmarks"]]
        for r in plan.train_runs():
            assert [b["name"] for b in r.evaluation["resolved_benchmarks"]] == listed


def test_unknown_objective_names_the_key():
    cfg = _default()
    cfg["experiments"][2]["objective"] = "grpoo"
    msg = _err(cfg)
    assert msg.startswith("experiments[2].objective:") and "grpoo" in msg and "available" in msg


def test_bad_objective_param_names_the_key():
    cfg = _default()
    cfg["experiments"][0]["params"] = {"not_a_param": 1.0}
    msg = _err(cfg)
    assert msg.startswith("experiments[0].params:") and "not_a_param" in msg


def test_unknown_key_names_the_key():
    cfg = _default()
    cfg["experiments"][1]["seedz"] = [0]
    assert _err(cfg).startswith("experiments[1]: unknown key 'seedz'; known keys: checkpoints, evaluation")
    cfg = _default()
    cfg["defaults"]["evaluation"]["kk"] = 3
    assert "defaults.evaluation: unknown key 'kk'" in _err(cfg)


def test_wrong_type_names_the_key():
    cfg = _default()
    cfg["defaults"]["seeds"] = "0,1"
    assert _err(cfg).startswith("defaults.seeds:")


def test_unknown_benchmark_names_the_key():
    cfg = _default()
    cfg["defaults"]["evaluation"]["benchmarks"] = ["synth_arith", "math5000"]
    msg = _err(cfg)
    assert "evaluation.benchmarks[1]" in msg and "math5000" in msg


def test_label_with_slash_is_refused():
    cfg = _default()
    cfg["experiments"][0]["label"] = "a/b"
    assert _err(cfg).startswith("experiments[0].label:")


def test_duplicate_experiment_is_refused():
    cfg = _default()
    cfg["experiments"].append(copy.deepcopy(cfg["experiments"][0]))
    assert "already defined by experiments[0]" in _err(cfg)


def test_eval_every_must_match_checkpoints():
    cfg = _default()
    cfg["defaults"]["evaluation"]["eval_every"] = 5
    assert "eval_every" in _err(cfg) and "checkpoint.every" in _err(cfg)


def test_bad_recipe_override_names_the_key():
    cfg = _default()
    cfg["defaults"]["set"]["rollout.grup_size"] = 4
    msg = _err(cfg)
    assert msg.startswith("experiments[0].recipe/set:") and "grup_size" in msg


def test_shell_metacharacters_are_quoted():
    cfg = _default()
    evil = "mhpo c=2; touch PWNED $(touch PWNED2) `x` 'q' \"r\" & | > <"
    cfg["experiments"][0]["label"] = evil
    cfg["experiments"][0]["params"] = {"c": 2.0}
    _, plan = mcfg.load(cfg)
    out = f"results/runs/tiny/{evil}/seed0/final"
    argv = shlex.split(plan.train_command("tiny", evil, 0, out))
    assert argv[argv.index("--out") + 1] == f"results/runs/tiny/{evil}/seed0"
    assert argv[argv.index("--config") + 1] == f"results/runs/tiny/{evil}/seed0/recipe.resolved.yaml"
    assert plan.run("tiny", evil, 0).resolved["objective_params"] == {"mhpo": {"c": 2.0}}
    ev = shlex.split(plan.eval_command("tiny", evil, 0, "final").split(" && ")[0])
    assert ev[ev.index("--out") + 1] == f"results/evals/tiny/{evil}/seed0/final"
    assert ev[ev.index("--label") + 1] == f"tiny/{evil}/seed0"


def test_from_runs_and_checkpoints_evaluate_only(tmp_path):
    run = tmp_path / "old" / "tiny" / "grpo" / "seed3"
    (run / "final").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-24").mkdir(parents=True)
    model = tmp_path / "some-model"
    model.mkdir()
    cfg = _default()
    cfg["experiments"] = [
        {"model": "tiny", "objective": "grpo", "from_runs": str(tmp_path / "old"), "seeds": [3]},
        {"model": "tiny", "label": "external", "checkpoints": {"0": str(model)}},
    ]
    _, plan = mcfg.load(cfg, workdir=tmp_path)
    assert plan.train_runs() == []
    keys = set(plan.evals)
    assert ("tiny", "grpo", 3, "final") in keys and ("tiny", "grpo", 3, "checkpoint-24") in keys
    assert ("tiny", "external", 0, "final") in keys
    assert plan.eval_job("tiny", "external", 0, "final").model_path == str(model)
    assert plan.eval_job("tiny", "grpo", 3, "final").inputs == []  # existing runs are never rebuilt
    cfg["experiments"][0]["seeds"] = [4]
    assert "no finished run" in _err(cfg, tmp_path)


def test_validate_config_cli(tmp_path):
    bad = _default()
    bad["experiments"][0]["objective"] = "nope"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    p = subprocess.run([sys.executable, "-m", "mhpo.cli", "validate-config", str(path)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "experiments[0].objective" in p.stderr
    p = subprocess.run([sys.executable, "-m", "mhpo.cli", "validate-config", str(CONFIGS / "default.yaml"), "--jobs"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "train: 10" in p.stdout
    assert "mhpo-bench train --config results/runs/tiny/mhpo/seed0/recipe.resolved.yaml --objective mhpo" in p.stdout


def test_studies_are_planned_apart_from_the_main_experiments():
    cfg, plan = mcfg.load(CONFIGS / "default.yaml")
    study = plan.studies["stability"]
    assert len(study.train_runs()) == 3 * 6 * 3  # methods x (updates per rollout x lr) x seeds
    assert {r.model for r in study.train_runs()} == {f"u{u}-lr{lr}" for u in (1, 4, 16) for lr in ("5e-4", "2e-3")}
    # the default target's runs, evaluations and experiments stay the main ones only
    assert {r.model for r in plan.train_runs()} == {"tiny"} and {j.model for j in plan.evals.values()} == {"tiny"}
    assert all(e.startswith("tiny/") for e in plan.experiments())
    # rules look jobs up through the main plan: study jobs resolve to the study's settings and paths
    cmd = shlex.split(plan.train_command("u16-lr2e-3", "is_pg", 2, "results/runs/u16-lr2e-3/is_pg/seed2/final"))
    assert cmd[cmd.index("--config") + 1] == "results/runs/u16-lr2e-3/is_pg/seed2/recipe.resolved.yaml"
    rec = plan.run("u16-lr2e-3", "is_pg", 2).resolved
    assert (rec["rollout"]["updates_per_rollout"], rec["optim"]["max_steps"], rec["data"]["n_train"]) == (16, 128, 512)
    assert rec["model"]["path"] == "results/models/u16-lr2e-3"
    assert plan.eval_job("u1-lr5e-4", "base", 0, "base").model_path == "results/models/u1-lr5e-4"
    assert plan.run("u1-lr5e-4", "mhpo", 1).path == "results/runs/u1-lr5e-4/mhpo/seed1"
    assert study.results_dir == plan.results_dir


def test_study_errors_name_the_key(tmp_path):
    cfg = _default()
    cfg["studies"] = {"stability": "nope/missing.yaml"}
    assert _err(cfg, tmp_path).startswith("studies.stability: study config 'nope/missing.yaml' not found")
    study = yaml.safe_load((CONFIGS / "stability.yaml").read_text())
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**study, "results_dir": "elsewhere"}))
    cfg["studies"] = {"stability": "s.yaml"}
    msg = _err(cfg, tmp_path)
    assert msg.startswith("studies.stability: s.yaml sets results_dir") and "main config" in msg
    clash = copy.deepcopy(study)
    clash["models"]["tiny"] = clash["models"].pop("u1-lr5e-4")
    for e in clash["experiments"]:
        e["model"] = "tiny" if e["model"] == "u1-lr5e-4" else e["model"]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(clash))
    msg = _err(cfg, tmp_path)
    assert msg.startswith("studies.stability: model label(s) ['tiny']") and "own model labels" in msg
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**study, "defaults": {**study["defaults"], "seeds": []}}))
    assert _err(cfg, tmp_path).startswith("studies.stability (s.yaml): defaults.seeds:")


def test_each_training_job_reads_one_resolved_recipe_file(tmp_path, capsys, monkeypatch):
    """The planner writes RUN_DIR/recipe.resolved.yaml (recipe + `set` + `params` + the workflow's model path) and
    the train command passes only that file; rewriting an unchanged plan leaves the files (and mtimes) alone."""
    import hashlib
    import os

    from mhpo import cli
    from mhpo.training.train import _keep_resolved_recipe

    cfg = _default()
    cfg["experiments"][0]["params"] = {"c": 2.0}
    _, plan = mcfg.load(cfg, workdir=tmp_path)
    written = plan.write_resolved_recipes()
    assert len(written) == len(plan.train_runs()) + sum(len(s.train_runs()) for s in plan.studies.values())
    path = tmp_path / plan.resolved_recipe_path("tiny", "mhpo", 0)
    assert str(path) in written
    rec = recipe.load(path)  # a complete recipe, read as is by `mhpo-bench train --config`
    assert rec == plan.run("tiny", "mhpo", 0).resolved
    assert rec["objective_params"] == {"mhpo": {"c": 2.0}} and rec["model"]["path"] == "results/models/tiny"
    assert rec["optim"]["max_steps"] == cfg["defaults"]["set"]["optim.max_steps"]
    mtime = os.stat(path).st_mtime_ns
    assert plan.write_resolved_recipes() == [] and os.stat(path).st_mtime_ns == mtime
    # the job: the file is the whole configuration (no --set / --param), and the manifest keeps its hash
    argv = shlex.split(plan.train_command("tiny", "mhpo", 0, str(path.parent / "final")))
    assert "--set" not in argv and "--param" not in argv
    monkeypatch.chdir(tmp_path)  # the workflow's directory: paths in the plan are relative to it
    assert cli.main(argv[1:] + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    start = 0 if out.startswith("{") else out.index("\n{") + 1  # after any start-up lines
    assert json.loads(out[start:])["objective_params"]["c"] == 2.0
    kept = _keep_resolved_recipe(rec, path.parent, path)
    assert kept["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and os.stat(path).st_mtime_ns == mtime
    other = tmp_path / "cli-run"
    kept = _keep_resolved_recipe(rec, other, recipe.path_for("tiny"))  # a human's `train --config tiny --set ...`
    assert recipe.load(other / "recipe.resolved.yaml") == rec and kept["source"].endswith("tiny.yaml")
