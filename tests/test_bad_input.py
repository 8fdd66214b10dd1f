"""Bad input fails fast with a message that names the problem and the fix, and leaves nothing behind
(docs/reliability.md). One test per case, through the real CLI entry points.

Covered elsewhere and not repeated here: recipe key typos and types (tests/test_recipes.py), workflow-config keys,
types and benchmark names (tests/test_config.py, tests/test_workflow.py::test_bad_config_fails_before_anything_runs),
malformed benchmark JSONL (tests/test_benchmarks.py), truncated safetensors in ``load_policy``
(tests/test_tiny.py), non-finite steps skipped and counted (tests/test_trainer.py), and adversarial completions
(nested exponents, megabyte strings, invalid LaTeX, non-UTF-8 bytes) scored incorrect within the timeout
(tests/test_scoring.py::test_adversarial_completions_score_false).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import yaml

from benchmarks.tiny_model import build_tiny_llama
from mhpo import cli, objectives
from mhpo.common import io
from mhpo.workflow import config as mcfg

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "workflow" / "config"


def _train(out: Path, *extra: str) -> int:
    return cli.main(["train", "--config", "tiny", "--seed", "0", "--out", str(out), *extra])


def _evaluate(model, out: Path, *extra: str) -> int:
    return cli.main(["evaluate", "--model", str(model), "--benchmarks", "synth_arith", "--limit", "2", "--k", "1",
                     "--max-tokens", "4", "--workers", "1", "--out", str(out), *extra])


def _snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


# ------------------------------------------------------------------------------------------ objectives (CLI)
@pytest.mark.parametrize(
    "args, message",
    [
        (["--objective", "mhpoo"], ["unknown objective 'mhpoo'", "available:", "mhpo"]),
        (["--objective", "mhpo", "--param", "lambda=1"], ["no parameter 'lambda'", "lam_pos", "lam_neg"]),
        (["--objective", "mhpo", "--param", "c=0"], ["'c'=0", "must be > 0"]),
        (["--objective", "mhpo", "--param", "c=-1.5"], ["'c'=-1.5", "must be > 0"]),
        (["--objective", "mhpo", "--param", "k_pos=0"], ["'k_pos'=0", "must be > 0"]),
        (["--objective", "mhpo", "--param", "lam_neg=0"], ["'lam_neg'=0", "must be > 0"]),
        (["--objective", "mhpo", "--param", "lam_pos=-2"], ["'lam_pos'=-2", "must be > 0"]),
        (["--objective", "mhpo", "--param", "c=abc"], ["'c'", "must be float", "'abc'"]),
        (["--objective", "mhpo", "--param", "c=.nan"], ["'c'", "must be finite"]),
        (["--objective", "mhpo", "--param", "c"], ["'c'", "KEY=VALUE"]),
    ],
    ids=["unknown-objective", "unknown-param", "c=0", "c<0", "k=0", "lambda=0", "lambda<0", "c-wrong-type", "c-nan",
         "param-without-value"],
)
def test_bad_objective_on_the_cli(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert _train(out, *args) == 2
    err = capsys.readouterr().err
    assert all(m in err for m in message), err
    assert not out.exists()  # nothing written


# ------------------------------------------------------------------------------------------ objectives (config)
@pytest.mark.parametrize(
    "params, message",
    [
        ({"c": 0}, "'c'=0"),
        ({"k_pos": 0.0}, "'k_pos'=0.0"),
        ({"lam_pos": -1}, "'lam_pos'=-1"),
        ({"lam_neg": 0}, "'lam_neg'=0"),
        ({"c": "big"}, "must be float"),
        ({"lambda": 1.0}, "no parameter 'lambda'"),
    ],
)
def test_bad_objective_parameter_in_a_workflow_config(params, message):
    cfg = yaml.safe_load((CONFIGS / "default.yaml").read_text())
    cfg["experiments"][0]["params"] = params
    with pytest.raises(mcfg.ConfigError) as e:
        mcfg.load(cfg)
    assert str(e.value).startswith("experiments[0].params:") and message in str(e.value)


def test_unknown_objective_parameter_in_a_recipe(tmp_path, capsys):
    recipe = yaml.safe_load((ROOT / "mhpo" / "resources" / "recipes" / "tiny.yaml").read_text())
    recipe.setdefault("objective_params", {})["mhpo"] = {"k": 2.0}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    assert cli.main(["train", "--config", str(path), "--objective", "mhpo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no parameter 'k'" in err and "k_pos" in err and not out.exists()


# ------------------------------------------------------------------------------------------ config files
def test_recipe_missing_a_required_key(tmp_path, capsys):
    recipe = yaml.safe_load((ROOT / "mhpo" / "resources" / "recipes" / "tiny.yaml").read_text())
    del recipe["model"]["path"]
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert cli.main(["train", "--config", str(path), "--objective", "mhpo", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "model.path" in err and str(path) in err and not (tmp_path / "run").exists()


def test_recipe_that_is_not_yaml(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("model: {path: tiny\noptim: [\n")
    assert cli.main(["train", "--config", str(path), "--objective", "mhpo", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML" in err and str(path) in err and not (tmp_path / "run").exists()


def test_workflow_config_that_is_not_yaml(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("experiments:\n  - {model: tiny, objective: mhpo\n")
    assert cli.main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML" in err and str(path) in err


def test_workflow_config_missing_a_required_key():
    cfg = yaml.safe_load((CONFIGS / "default.yaml").read_text())
    del cfg["experiments"][0]["model"]
    with pytest.raises(mcfg.ConfigError) as e:
        mcfg.load(cfg)
    assert "experiments[0]" in str(e.value) and "model" in str(e.value)


def test_recipe_override_with_the_wrong_type(tmp_path, capsys):
    assert _train(tmp_path / "run", "--objective", "mhpo", "--set", "optim.max_steps=many") == 2
    err = capsys.readouterr().err
    assert "optim.max_steps" in err and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------ data and models
def test_benchmark_data_missing_offline(tiny, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = cli.main(["evaluate", "--model", str(tiny), "--benchmarks", "aime24", "--data-dir", str(tmp_path / "nodata"),
                   "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "aime24" in err and str(tmp_path / "nodata") in err
    assert "MHPO_BENCHMARK_DIR" in err or "--data-dir" in err  # says how to provide the data
    assert not out.exists()


def test_evaluate_model_path_that_does_not_exist(tmp_path, capsys):
    out = tmp_path / "eval"
    assert _evaluate(tmp_path / "no" / "such" / "model", out) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "no/such/model" in err and not out.exists()


def test_train_model_path_that_does_not_exist(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--objective", "grpo", "--set", f"model.path={tmp_path}/missing") == 2
    err = capsys.readouterr().err
    assert "model.path" in err and "does not exist" in err and not out.exists()


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_evaluate_truncated_checkpoint(tiny, tmp_path, capsys):
    model = tmp_path / "checkpoint-8"
    shutil.copytree(tiny, model)
    _truncate(model / "model.safetensors")
    out = tmp_path / "eval"
    assert _evaluate(model, out) == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "truncated" in err and "re-copy" in err and not out.exists()


def test_train_truncated_model(tiny, tmp_path, capsys):
    model = tmp_path / "base"
    shutil.copytree(tiny, model)
    _truncate(model / "model.safetensors", keep=0.9)
    out = tmp_path / "run"
    assert _train(out, "--objective", "grpo", "--set", f"model.path={model}") == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "model.safetensors" in err and not out.exists()


@pytest.mark.parametrize("damage", ["truncated-weights", "corrupt-trainer-state"])
def test_train_resume_from_a_corrupt_checkpoint_changes_nothing(tiny, tmp_path, capsys, damage):
    """The latest checkpoint is damaged (e.g. a copy cut short): resuming refuses, names the file and the fix
    (delete it to resume from the one before), and leaves the run directory byte for byte as it was."""
    run = tmp_path / "run"
    for step in (4, 8):
        shutil.copytree(tiny, run / "checkpoints" / f"checkpoint-{step}")
        (run / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"global_step": step}))
    bad = run / "checkpoints" / "checkpoint-8"
    if damage == "truncated-weights":
        _truncate(bad / "model.safetensors")
    else:
        (bad / "trainer_state.json").write_text('{"global_step": 8, "log_hist')
    io.write_jsonl(run / "metrics.jsonl", [{"step": s, "loss": 0.1} for s in range(1, 11)])
    io.write_json(run / "manifest.json", {"status": "running", "attempts": 1})
    before = _snapshot(run)
    assert _train(run, "--objective", "grpo", "--set", "wandb.enabled=false") == 2
    err = capsys.readouterr().err
    assert f"cannot resume from {bad}" in err and f"delete {bad} to resume from checkpoint-4" in err, err
    assert _snapshot(run) == before  # metrics past checkpoint-8 kept, manifest untouched, nothing deleted


# ------------------------------------------------------------------------------------------ non-finite loss
class NanFromStep3(objectives.Objective):
    """GRPO-style surrogate that turns NaN from optimizer step 3 on (2 micro-batches per step below)."""

    calls = 0

    def per_token_loss(self, b):
        step = NanFromStep3.calls // 2 + 1
        NanFromStep3.calls += 1
        loss = -b.ratio * b.advantages
        return loss * math.nan if step >= 3 else loss


@pytest.fixture
def nan_from_step_3():
    NanFromStep3.calls = 0
    objectives.register("test_nan_from_step_3")(NanFromStep3)
    yield
    objectives.unregister("test_nan_from_step_3")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning")
def test_consecutive_nonfinite_steps_abort_and_keep_the_last_good_checkpoint(nan_from_step_3, tmp_path, capsys):
    from mhpo.models.loading import check_checkpoint
    from mhpo.training.trainer import complete_checkpoints

    os.environ.setdefault("MHPO_CACHE_DIR", str(ROOT / ".cache" / "tests"))
    out = tmp_path / "run"
    rc = _train(out, "--objective", "test_nan_from_step_3", "--max-steps", "8", "--set", "checkpoint.every=2",
                "--set", "optim.max_consecutive_nonfinite=2", "--set", "wandb.enabled=false",
                "--set", "rollout.group_size=8", "--set", "rollout.prompts_per_rollout=4",
                "--set", "rollout.micro_batch_size=8")
    assert rc == 1
    captured = capsys.readouterr()
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "failed" and "NonFiniteLossError" in man["error"]
    assert "2 consecutive" in man["error"] and "last complete checkpoint is kept" in man["error"]
    assert "lower the learning rate" in man["error"].lower() and "max_consecutive_nonfinite" in man["error"]
    assert "update skipped" in captured.out
    ckpts = complete_checkpoints(out / "checkpoints")
    assert [c.name for c in ckpts] == ["checkpoint-2"]  # the last good one; no checkpoint of NaN steps
    check_checkpoint(ckpts[0])
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(ckpts[0])
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not (out / "final").exists()
    steps = [r["step"] for r in io.read_jsonl(out / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[:2] == [1, 2]


# ------------------------------------------------------------------- wrong paths and files
def test_train_out_pointing_at_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("keep me")
    assert _train(f, "--objective", "mhpo") == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file, not a directory" in err and "Traceback" not in err
    assert f.read_text() == "keep me"


@pytest.mark.parametrize("command", [["atlas"], ["lm-eval-tasks"], ["tiny-model"], ["aggregate", "--evals", "."],
                                     ["evaluate", "--model", "x/y", "--benchmarks", "synth_arith"]])
def test_every_out_pointing_at_a_file_is_refused(tmp_path, capsys, command):
    f = tmp_path / "afile"
    f.write_text("keep me")
    assert cli.main([*command, "--out", str(f)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err and f.read_text() == "keep me"


def test_validate_config_on_a_directory_and_on_a_recipe(tmp_path, capsys):
    assert cli.main(["validate-config", str(tmp_path)]) == 2
    assert "is a directory, not a file" in capsys.readouterr().err
    assert cli.main(["validate-config", str(ROOT / "mhpo" / "resources" / "recipes" / "tiny.yaml")]) == 0
    assert "kind: recipe" in capsys.readouterr().out


def test_aggregate_evals_that_do_not_exist(tmp_path, capsys):
    assert cli.main(["aggregate", "--evals", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "--evals" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_evaluate_checkpoint_with_nonfinite_weights(tiny, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "nan-model"
    shutil.copytree(tiny, bad)
    weights = bad / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name][0] = float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    out = tmp_path / "eval"
    assert _evaluate(bad, out, "--temperature", "1.0") == 2
    err = capsys.readouterr().err
    assert "NaN/inf weights" in err and name in err and "Traceback" not in err
    assert not out.exists()  # no empty output folder left behind
    assert torch.isnan(load_file(weights)[name]).any()


def test_benchmark_row_without_problem(tiny, tmp_path, capsys):
    d = tmp_path / "bench" / "math500"
    d.mkdir(parents=True)
    (d / "test.jsonl").write_text(json.dumps({"problem": "1+1", "answer": "2"}) + "\n"
                                  + json.dumps({"question": "2+2", "answer": "4"}) + "\n")
    out = tmp_path / "eval"
    rc = cli.main(["evaluate", "--model", str(tiny), "--benchmarks", "math500", "--data-dir", str(tmp_path / "bench"),
                   "--k", "1", "--max-tokens", "4", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "row 1" in err and "has no field 'problem'" in err and "question" in err
    assert not out.exists()
