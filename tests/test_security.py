"""Security guarantees (docs/reliability.md), each checked with real runs:

* ``trust_remote_code`` is off unless the user opts in per model (recipe ``model.trust_remote_code``, workflow
  ``models.<name>.trust_remote_code``, ``mhpo-bench evaluate --trust-remote-code``): a model directory that ships
  Python code is refused, and its code never runs, until then.
* Config values and names never reach a shell unquoted: a real Snakemake run with shell metacharacters in the
  model name and the label injects nothing.
* Model completions are only parsed, never executed.
* Secrets in the environment (``WANDB_API_KEY``, ``HF_TOKEN``, ...) appear in no file a run produces.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks import scoring
from benchmarks.tiny_model import build_tiny_llama
from mhpo import cli
from mhpo.common import io
from mhpo.workflow import config as mcfg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# A model repository's own code: subclasses of a transformers architecture, writing a sentinel when imported.
REMOTE_CODE = '''
from pathlib import Path
Path({sentinel!r}).write_text("the model's own code ran")
from transformers import {config}, {model}


class RemoteConfig({config}):
    model_type = {model_type!r}


class RemoteModel({model}):
    config_class = RemoteConfig
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def remote_model(tiny, tmp_path) -> tuple[Path, Path]:
    """A model directory whose config needs its own Python file (``auto_map``), which writes a sentinel on import."""
    model, sentinel = tmp_path / "remote-model", tmp_path / "REMOTE_CODE_RAN"
    shutil.copytree(tiny, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(model_type="mhpo_remote_llama", architectures=["RemoteModel"],
               auto_map={"AutoConfig": "remote_code.RemoteConfig", "AutoModelForCausalLM": "remote_code.RemoteModel"})
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "remote_code.py").write_text(REMOTE_CODE.format(sentinel=str(sentinel), config="LlamaConfig",
                                                             model="LlamaForCausalLM", model_type="mhpo_remote_llama"))
    return model, sentinel


def _evaluate(model, out: Path, *extra: str) -> int:
    return cli.main(["evaluate", "--model", str(model), "--benchmarks", "synth_arith", "--limit", "2", "--k", "1",
                     "--max-tokens", "4", "--workers", "1", "--out", str(out), *extra])


# ------------------------------------------------------------------------------------------ trust_remote_code
def test_evaluate_refuses_remote_code_unless_opted_in(remote_model, tmp_path, capsys):
    model, sentinel = remote_model
    out = tmp_path / "eval"
    assert _evaluate(model, out) == 2
    err = capsys.readouterr().err
    assert "--trust-remote-code" in err and "review" in err
    assert not sentinel.exists() and not out.exists()  # the code never ran, nothing was written

    assert _evaluate(model, out, "--trust-remote-code") == 0  # the explicit opt-in loads it
    assert sentinel.exists() and len(io.read_jsonl(out / "synth_arith.jsonl")) == 2


def test_evaluate_vl_refuses_remote_code_unless_opted_in(tmp_path, capsys):
    from mhpo.models import tiny_vl as vl_tiny

    model, sentinel, out = tmp_path / "remote-vlm", tmp_path / "REMOTE_CODE_RAN", tmp_path / "eval"
    vl_tiny.build(model, task="count", seed=0, warm_start_steps=0)
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(model_type="mhpo_remote_llava", architectures=["RemoteModel"],
               auto_map={"AutoConfig": "remote_code.RemoteConfig",
                         "AutoModelForImageTextToText": "remote_code.RemoteModel"})
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "remote_code.py").write_text(REMOTE_CODE.format(sentinel=str(sentinel), config="LlavaConfig",
                                                             model="LlavaForConditionalGeneration",
                                                             model_type="mhpo_remote_llava"))
    argv = ["evaluate", "--model", str(model), "--benchmarks", "synth_vl_count", "--limit", "2",
            "--k", "1", "--max-tokens", "4", "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--trust-remote-code" in err and "review" in err.lower()
    assert not sentinel.exists() and not out.exists()  # the code never ran, nothing was written

    assert cli.main([*argv, "--trust-remote-code"]) == 0  # the explicit opt-in loads it
    assert sentinel.exists() and len(io.read_jsonl(out / "synth_vl_count.jsonl")) == 2
    # the workflow passes the per-model opt-in to a VL model's evaluate as to a text model's
    cfg = yaml.safe_load((ROOT / "workflow/config/default.yaml").read_text())
    study = yaml.safe_load((ROOT / "workflow/config/vl_tiny.yaml").read_text())
    for opt_in in (False, True):
        study["models"]["tiny-vl"]["trust_remote_code"] = opt_in
        (tmp_path / "vl.yaml").write_text(yaml.safe_dump(study))
        _, plan = mcfg.load({**cfg, "studies": {"vl_tiny": str(tmp_path / "vl.yaml")}})
        cmd = plan.eval_command("tiny-vl", "grpo", 0, "final")
        assert cmd.startswith("mhpo-bench evaluate --model") and ("--trust-remote-code" in cmd) == opt_in


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning")
def test_train_refuses_remote_code_by_default(remote_model, tmp_path, capsys):
    model, sentinel = remote_model
    out = tmp_path / "run"
    rc = cli.main(["train", "--config", "tiny", "--objective", "grpo", "--seed", "0", "--out", str(out),
                   "--max-steps", "1", "--set", f"model.path={model}", "--set", "wandb.enabled=false"])
    assert rc == 1
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "failed" and "trust_remote_code" in man["error"], man.get("error")
    assert man["config"]["model"]["trust_remote_code"] is False
    assert not sentinel.exists() and not (out / "final").exists()
    capsys.readouterr()


def test_trust_remote_code_is_off_by_default_and_opt_in_per_model(tmp_path, capsys):
    """Recipe default, the GRPOConfig it becomes, and the workflow's per-model opt-in in the planned commands."""
    base = ["train", "--config", "tiny", "--objective", "mhpo", "--seed", "0", "--out", str(tmp_path / "r"),
            "--dry-run"]
    assert cli.main(base) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["recipe"]["model"]["trust_remote_code"] is False and plan["grpo_config"]["trust_remote_code"] is False
    assert cli.main([*base, "--set", "model.trust_remote_code=true"]) == 0
    assert json.loads(capsys.readouterr().out)["grpo_config"]["trust_remote_code"] is True

    cfg = yaml.safe_load((ROOT / "workflow" / "config" / "default.yaml").read_text())
    cfg["models"]["other"] = {"tiny_model": {"task": "arith"}, "trust_remote_code": True}
    cfg["experiments"].append({"model": "other", "objective": "grpo"})
    _, plan = mcfg.load(cfg)
    assert plan.run("tiny", "mhpo", 0).resolved["model"]["trust_remote_code"] is False
    assert "--trust-remote-code" not in plan.eval_command("tiny", "mhpo", 0, "final")
    assert plan.run("other", "grpo", 0).resolved["model"]["trust_remote_code"] is True
    assert "--trust-remote-code" in plan.eval_command("other", "grpo", 0, "final")


# ------------------------------------------------------------------------------------------ shell quoting
EVIL = "a;touch PWNED1 $(touch PWNED2) `touch PWNED3` && touch PWNED4 | x > PWNED5 'q' \"r\" & *"


def test_shell_metacharacters_in_names_are_not_executed_by_a_real_snakemake_run(tiny, tmp_path):
    wf = tmp_path / "wf"
    wf.mkdir()
    model_dir = tmp_path / "models" / "m;touch PWNED6"  # metacharacters in a path, too
    shutil.copytree(tiny, model_dir)
    evil_model = "m$(touch PWNED7)"
    cfg = {
        "results_dir": "results",
        "models": {evil_model: {"evaluate_base": False}},
        "defaults": {"evaluation": {"benchmarks": [{"name": "synth_arith", "limit": 2}], "k": 1,
                                    "sampling": {"max_tokens": 4, "seed": 0}, "batch_size": 2}},
        "experiments": [{"model": evil_model, "label": EVIL, "checkpoints": {"0": str(model_dir)}}],
        "report": {"atlas": False},
    }
    (wf / "evil.yaml").write_text(yaml.safe_dump(cfg))
    ev = wf / "results" / "evals" / evil_model / EVIL / "seed0" / "final"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MHPO_CACHE_DIR": str(wf / ".cache")}
    p = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(wf),
                        "--cores", "1", "--printshellcmds", str((ev / ".done").relative_to(wf)),
                        "--configfile", str(wf / "evil.yaml")],
                       cwd=wf, env=env, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "mhpo-bench evaluate" in out  # the command really went through the shell
    pwned = [q for d in (wf, tmp_path, ROOT, Path.cwd()) for q in d.glob("PWNED*")]
    assert not pwned and not list(wf.rglob("PWNED*")), pwned
    rows = io.read_jsonl(ev / "synth_arith.jsonl")
    assert {r["run"] for r in rows} == {f"{evil_model}/{EVIL}/seed0"}  # names arrive verbatim
    assert {r["model"] for r in rows} == {str(model_dir)}


# ------------------------------------------------------------------------------------------ completions
def test_model_completions_are_never_executed(tmp_path):
    marker = tmp_path / "EXECUTED"
    payloads = [
        f"\\boxed{{__import__('os').system('touch {marker}')}}",
        f"The answer is __import__('os').system('touch {marker}')",
        f"Answer: exec(\"open('{marker}', 'w')\")",
        f"\\boxed{{eval(compile('open(\"{marker}\",\"w\")', 's', 'exec'))}}",
        f"$(touch {marker}) `touch {marker}` \\boxed{{1; touch {marker}}}",
        f"\\boxed{{\\input{{{marker}}}\\immediate\\write18{{touch {marker}}}}}",
        f"#### lambda: __import__('subprocess').run(['touch', '{marker}'])",
    ]
    assert scoring.score_many([(p, "1") for p in payloads], workers=1, progress=False) == [False] * len(payloads)
    assert [scoring.judge(p, "1") for p in payloads] == [False] * len(payloads)  # the in-process path, too
    from mhpo.training import rewards  # the training reward scores completions the same way

    assert rewards.correctness_reward(completions=payloads, answer=["1"] * len(payloads)) == [0.0] * len(payloads)
    assert not marker.exists()


def test_no_code_path_executes_strings():
    """Static audit backing the test above: no eval/exec/os.system/shell=True anywhere in the package code."""
    bad = re.compile(r"(?<![\w.])(eval|exec)\(|os\.system\(|shell\s*=\s*True|os\.popen\(")
    hits = [f"{f.relative_to(ROOT)}:{i}: {line.strip()}"
            for d in ("mhpo", "benchmarks", "baselines") for f in sorted((ROOT / d).rglob("*.py"))
            for i, line in enumerate(f.read_text().splitlines(), 1) if bad.search(line)]
    assert not hits, hits


# ------------------------------------------------------------------------------------------ secrets
SECRETS = {"WANDB_API_KEY": "sentinel-wandb-3f9c1d2e8b7a", "HF_TOKEN": "hf_sentinelTOKEN4d7e1a9c",
           "HUGGING_FACE_HUB_TOKEN": "hf_sentinelHUB0b2c4e6f8a"}


@pytest.mark.slow
def test_secrets_never_reach_logs_manifests_or_results(tmp_path):
    # the session's MHPO_CACHE_DIR (tests/conftest.py), inherited: the tiny model is built once
    env = {**os.environ, **SECRETS, "WANDB_MODE": "offline",
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    run, ev = tmp_path / "run", tmp_path / "eval"
    train = subprocess.run(
        [sys.executable, "-m", "mhpo.cli", "train", "--config", "tiny", "--objective", "mhpo", "--seed", "0",
         "--out", str(run), "--max-steps", "2", "--set", "checkpoint.every=2", "--set", "rollout.group_size=8",
         "--set", "rollout.prompts_per_rollout=4", "--set", "rollout.micro_batch_size=8"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    assert list(run.glob("wandb/offline-run-*")), "wandb offline files are part of the check"
    evaluate = subprocess.run(
        [sys.executable, "-m", "mhpo.cli", "evaluate", "--model", str(run), "--benchmarks", "synth_arith",
         "--limit", "4", "--k", "2", "--max-tokens", "8", "--workers", "1", "--out", str(ev)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    (tmp_path / "train.log").write_text(train.stdout + train.stderr)
    (tmp_path / "evaluate.log").write_text(evaluate.stdout + evaluate.stderr)

    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert len(files) > 20
    leaks = [(str(f.relative_to(tmp_path)), name) for f in files for name, value in SECRETS.items()
             if value.encode() in f.read_bytes()]
    assert not leaks, leaks
