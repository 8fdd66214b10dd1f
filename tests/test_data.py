"""Training data in the layouts the recipes' datasets are published in.

The fixtures (tests/fixtures/data/, sources in its README) reproduce the columns, nesting, file layout and dataset
card of BytedTsinghua-SIA/DAPO-Math-17k, open-r1/DAPO-Math-17k-Processed and hiyouga/geometry3k; each is loaded
through the paper recipe that names it, with only ``data.hf_dataset`` pointed at the fixture. ~10 s in all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mhpo.training import data, recipe, train
from mhpo.workflow import config as mcfg

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "data"
DAPO = FIX / "BytedTsinghua-SIA" / "DAPO-Math-17k"
OPEN_R1 = FIX / "open-r1" / "DAPO-Math-17k-Processed"
GEO = FIX / "hiyouga" / "geometry3k"
GOLD = ["23", "12", "8", "15"]
BOXED = "Please reason step by step, and put your final answer within \\boxed{}."


def _user_text(prompt) -> str:
    assert isinstance(prompt, list) and prompt[-1]["role"] == "user", prompt
    return prompt[-1]["content"]


@pytest.mark.parametrize("name", ["qwen2.5-7b-instruct", "qwen3-4b-base"])
def test_paper_text_recipes_load_dapo_math_17k_layout(name):
    """The recipes' own fields read DAPO-Math-17k: prompt = chat messages, answer = reward_model.ground_truth; the
    dataset's "Answer:" wrapper is stripped so the prompt asks for \\boxed{} like the evaluation prompts do."""
    rec = recipe.load(name, overrides={"data.hf_dataset": str(DAPO)})
    ds = train.dataset(rec)
    assert ds["answer"] == GOLD
    text = _user_text(ds[0]["prompt"])
    assert text == "What is $3 + 4 \\cdot 5$?\n" + BOXED
    assert "Answer:" not in "".join(_user_text(p) for p in ds["prompt"])


def test_open_r1_processed_copy_and_jsonl_export_load_through_the_recipe():
    rec = recipe.load("qwen2.5-7b-instruct", overrides={
        "data.hf_dataset": str(OPEN_R1), "data.hf_config": "en", "data.answer_field": "solution"})
    ds = train.dataset(rec)
    assert ds["answer"] == GOLD and _user_text(ds[1]["prompt"]).startswith("Find the positive integer $n$")
    with pytest.raises(data.DataError, match=r"configs \['all', 'cn', 'en'\]"):  # three configs: one must be chosen
        data.text_rows({**rec["data"], "hf_config": None})
    rec = recipe.load("qwen2.5-7b-instruct", overrides={"data.hf_dataset": str(FIX / "dapo-math-17k.jsonl")})
    assert train.dataset(rec)["answer"] == GOLD


def test_vl_recipe_loads_geometry3k_layout():
    from PIL import Image

    rec = recipe.load("qwen2.5-vl-7b-instruct", overrides={"data.hf_dataset": str(GEO)})
    ds = train.dataset(rec)
    assert len(ds) == 2 and ds["answer"] == ["5", "45"]
    assert isinstance(ds[0]["image"], Image.Image)
    assert _user_text(ds[0]["prompt"]) == "Find x.\n" + BOXED  # "<image>" marker removed
    test_split = recipe.load("qwen2.5-vl-7b-instruct", overrides={"data.hf_dataset": str(GEO), "data.split": "test"})
    assert len(train.dataset(test_split)) == 1


def test_hub_id_is_read_from_the_site_hf_cache_offline(tmp_path):
    """A Hub id resolves to the snapshot in $HF_HOME/hub (as `mhpo-bench prefetch` leaves it), with the Hub off."""
    snap = tmp_path / "hf" / "hub" / "datasets--BytedTsinghua-SIA--DAPO-Math-17k"
    sha = "0" * 40
    shutil.copytree(DAPO, snap / "snapshots" / sha)
    (snap / "refs").mkdir()
    (snap / "refs" / "main").write_text(sha)
    code = ("from mhpo.training import recipe, train; r = recipe.load('qwen2.5-7b-instruct'); "
            "print(train.dataset(r)['answer'])")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "MHPO_ONLINE": "0"}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert str(GOLD) in out.stdout
    # not cached: a clear error naming the cache and the prefetch command
    env["HF_HOME"] = str(tmp_path / "empty")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "mhpo-bench prefetch" in out.stderr and str(tmp_path / "empty") in out.stderr


def _config(recipe_name: str, set_: dict, benchmarks=("math500",)) -> dict:
    return {"models": {"m": {"base": "Qwen/Qwen2.5-7B-Instruct", "evaluate_base": False}},
            "experiments": [{"model": "m", "recipe": recipe_name, "objective": "grpo", "seeds": [0], "set": set_,
                             "evaluation": {"benchmarks": list(benchmarks), "require_data": False}}]}


def test_wrong_field_name_fails_at_planning_with_the_columns_that_exist():
    cfg = _config("qwen2.5-7b-instruct", {"data.hf_dataset": str(DAPO)})
    mcfg.load(cfg)  # the recipe's own fields: plans
    bad = _config("qwen2.5-7b-instruct", {"data.hf_dataset": str(DAPO), "data.answer_field": "solution"})
    with pytest.raises(mcfg.ConfigError) as e:
        mcfg.load(bad)
    msg = str(e.value)
    assert msg.startswith("experiments[0].recipe") and "'solution'" in msg and "reward_model.ground_truth" in msg


def test_wrong_field_name_fails_snakemake_dry_run(tmp_path):
    cfg = _config("qwen2.5-7b-instruct", {"data.hf_dataset": str(DAPO), "data.problem_field": "problem"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    p = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path),
                        "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "data.problem_field: 'problem' is not a field" in out and "'prompt.content'" in out, out[-2000:]


def test_every_paper_model_trains_and_evaluates_on_one_prompt_format():
    """Row 8: Qwen3-4B-Base's recipe said `plain` while its benchmarks apply the chat template."""
    _, plan = mcfg.load(str(ROOT / "workflow" / "config" / "paper.yaml"))
    for run in plan.train_runs():
        rec = mcfg._load_recipe(run.recipe, run.set, run.where)
        for b in run.evaluation["resolved_benchmarks"]:
            assert mcfg._chat_template(b) == (rec["data"]["prompt_format"] == "chat"), (run.model, b["name"])
    mismatch = _config("qwen3-4b-base", {"data.prompt_format": "plain"})
    with pytest.raises(mcfg.ConfigError, match=r"'plain' prompts .* 'math500' is evaluated with the chat template"):
        mcfg.load(mismatch)
