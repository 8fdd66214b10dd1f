"""Vision-language track: tiny VLM (build, offline load, warm start), synthetic visual tasks, a real GRPO run
through the objective contract on images, VL benchmarks in the one registry (loading from fixtures), answer
scoring by type, and VL evaluation through the same `evaluate` / `aggregate` / `tiny-model` commands as text.

Everything runs offline on CPU. The tiny VLM is built once per session (160 warm-start steps, a few seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import benchmarks
from benchmarks import choice, scoring, vl
from benchmarks.catalog import ANSWER_TYPES, BenchmarkError
from mhpo.common import io
from mhpo.models import tiny_vl as tiny
from mhpo.tasks import vl as vl_tasks

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"), pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vl"
# docs/interfaces.md, plus the VL gap
REQUIRED = ("step", "reward/mean", "reward/std", "accuracy", "completion_length", "frac_zero_std", "entropy",
            "grad_norm", "loss", "lr", "ratio/p1", "ratio/p50", "ratio/p99", "ratio/min", "ratio/max",
            "ratio/mean_abs_log", "kl_old", "step_time", "tokens_per_s", "rollout/logp_gap")


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-vlm")
    info = tiny.build(out, task="count", seed=0)
    return out, info


# ------------------------------------------------------------------------------------------------ tasks
@pytest.mark.parametrize("name", vl_tasks.available())
def test_visual_task_is_deterministic_and_checkable(name):
    a = vl_tasks.load(name, "train", n=20, seed=3)
    b = vl_tasks.load(name, "train", n=20, seed=3)
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert all(x["image"].tobytes() == y["image"].tobytes() and x["answer"] == y["answer"] for x, y in zip(a, b))
    c = vl_tasks.load(name, "train", n=20, seed=4)
    assert any(x["image"].tobytes() != y["image"].tobytes() for x, y in zip(a, c))  # the seed matters
    for r in a:
        assert r["image"].size == (vl_tasks.SIZE, vl_tasks.SIZE) and r["image"].mode == "RGB"
    if name == "count":  # the gold is what was drawn: one shape per listed cell, 1..5 of them
        for r in a:
            assert r["answer"] == str(len(r["meta"]["cells"])) and 1 <= int(r["answer"]) <= 5
    else:
        for r in a:
            ha, hb = r["meta"]["heights"]
            assert r["answer"] == ("A" if ha > hb else "B") and r["choices"] == ["A", "B"]


def test_count_test_split_has_no_train_image():
    train = {r["image"].tobytes() for r in vl_tasks.load("count", "train", seed=0)}
    test = vl_tasks.load("count", "test", n=64, seed=0)
    assert not any(r["image"].tobytes() in train for r in test)


def test_visual_task_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="available: bars, count"):
        vl_tasks.load("nope", "train")
    with pytest.raises(ValueError, match="split must be one of"):
        vl_tasks.load("count", "validation")


# ------------------------------------------------------------------------------------------- tiny VLM
def test_tiny_vlm_builds_warm_starts_and_loads_offline(tiny_vlm):
    from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration

    path, info = tiny_vlm
    ws = info["warm_start"]
    assert ws["final_loss"] < ws["first_loss"] / 3
    # RL must start from a non-zero, unsaturated reward: chance is 0.2 (five answers)
    assert 0.3 <= ws["test_greedy_accuracy"] < 1.0, ws
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert isinstance(model, LlavaForConditionalGeneration)
    assert type(processor.image_processor).__name__ == "CLIPImageProcessorPil"  # no torchvision needed
    acc = tiny.greedy_accuracy(model, processor, vl_tasks.load("count", "test", n=64, seed=0))
    assert acc == pytest.approx(ws["test_greedy_accuracy"])  # the saved weights are the warm-started ones
    # The chat template renders TRL's multimodal message form; "<image>" expands to one token per patch.
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}]}],
        add_generation_prompt=True)
    assert text == "U:<image>How many shapes?\nA:"
    enc = processor(text=[text], images=[vl_tasks.load("count", "test", n=1)[0]["image"]], return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids(tiny.IMAGE_TOKEN)
    assert int((enc["input_ids"] == image_id).sum()) == (tiny.IMAGE_SIZE // tiny.PATCH) ** 2
    assert tuple(enc["pixel_values"].shape) == (1, 3, tiny.IMAGE_SIZE, tiny.IMAGE_SIZE)


def test_tiny_vlm_build_is_deterministic(tmp_path):
    a = tiny.build(tmp_path / "a", seed=1, warm_start_steps=3)
    b = tiny.build(tmp_path / "b", seed=1, warm_start_steps=3)
    assert a["warm_start"]["final_loss"] == b["warm_start"]["final_loss"]
    from safetensors.torch import load_file

    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # written through a temp dir and a rename: nothing else is left beside the outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    # an existing, non-empty output is refused before any work and left as it was
    before = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    with pytest.raises(FileExistsError, match="already exists and is not empty"):
        tiny.build(tmp_path / "a", seed=2, warm_start_steps=3)
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == before


# ------------------------------------------------------------------------------------------------- RL
@pytest.mark.parametrize("objective", ["mhpo", "dapo"])
def test_vl_rl_run_end_to_end(tiny_vlm, tmp_path, objective):
    """Real GRPO on images: TRL generation with pixel_values, the VL reward, the objective contract, off-policy
    second step, rollout/train log-prob gap, checkpoints and a final VLM directory."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mhpo.training import train_vl as vl_train

    path, _ = tiny_vlm
    out = tmp_path / "run"
    summary = vl_train.run(objective, out, model_dir=str(path), max_steps=4, seed=0, threads=1)
    rows = io.read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert math.isfinite(r["loss"]) and r["grad_norm"] > 0 and 0 <= r["reward/mean"] <= 1
        missing = [k for k in REQUIRED if k not in r]
        assert not missing, f"step {r['step']} lacks {missing}"
    if objective == "mhpo":
        assert {"mhpo/survival", "mhpo/mult_mean"} <= set(rows[0])
    assert summary["reward_first"] > 0  # warm start: RL starts from a non-zero reward
    # updates_per_rollout = 2: step 1 of each rollout is on-policy (r == 1), step 2 is not
    assert rows[0]["ratio/max"] == pytest.approx(1.0) and rows[0]["ratio/min"] == pytest.approx(1.0)
    assert rows[1]["ratio/max"] > 1.0 or rows[1]["ratio/min"] < 1.0
    # the gap is measured on rollout-starting steps only; HF generation on CPU fp32: old == current log-probs
    assert rows[0]["rollout/logp_gap"] is not None and rows[1]["rollout/logp_gap"] is None
    assert 0.0 <= rows[0]["rollout/logp_gap"] < 1e-4
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["track"] == "vl" and man["objective"] == objective
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    AutoProcessor.from_pretrained(out / "final")
    model = AutoModelForImageTextToText.from_pretrained(out / "final")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_vl_run_resumes_from_its_last_complete_checkpoint(tiny_vlm, tmp_path):
    """A VL run interrupted after checkpoint-2 (the state a kill leaves: manifest `running`, later metric rows,
    no final/) resumes through the same `mhpo-bench train` command, with every step logged exactly once."""
    import shutil

    from mhpo import cli
    from mhpo.training import manifest

    path, _ = tiny_vlm
    out = tmp_path / "run"
    argv = ["train", "--config", "tiny-vl", "--objective", "grpo", "--seed", "0", "--out", str(out),
            "--max-steps", "4", "--set", f"model.path={path}"]
    # a run stopped right after checkpoint-2 (the newest checkpoint keeps the training state; older ones do not)
    assert cli.main([*argv[:-4], "--max-steps", "2", *argv[-2:]]) == 0
    shutil.rmtree(out / "final")
    man = manifest.read(out / "manifest.json")
    manifest.write(out / "manifest.json", {**man, "status": "running"})
    assert cli.main(argv) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["resumed_from"] == ["checkpoint-2"] and man["attempts"] == 2
    assert [r["step"] for r in io.read_jsonl(out / "metrics.jsonl")] == [1, 2, 3, 4]
    assert ((out / "final" / "preprocessor_config.json").is_file()
            or (out / "final" / "processor_config.json").is_file())


def test_vl_reward_reads_conversational_completions():
    from mhpo.training.rewards_vl import vl_correctness_reward

    comps = [[{"role": "assistant", "content": "3"}], [{"role": "assistant", "content": "4"}],
             [{"role": "assistant", "content": "(B)"}], "B"]
    got = vl_correctness_reward(comps, answer=["3", "3", "B", "A"],
                                answer_type=["free_form", "free_form", "multi_choice", "multi_choice"],
                                choices=[[], [], ["A", "B"], ["A", "B"]])
    assert got == [1.0, 0.0, 1.0, 0.0]


# ------------------------------------------------------------------------------------------- scoring
C4 = ["90°", "145°", "30", "60"]


@pytest.mark.parametrize("completion,gold,choices,expected", [
    ("The answer is (B).", "B", None, True),
    ("\\boxed{C}", "C", ["a", "b", "c"], True),
    ("B. 145°", "145°", C4, True),              # gold given as option text, mapped to its letter
    ("(A)", "90°", C4, True),
    ("145", "145°", C4, True),                  # no letter: the option's value still counts (degrees dropped)
    ("\\boxed{145^\\circ}", "145°", C4, True),
    ("it is 90", "145°", C4, False),
    ("E", "90°", C4, False),                    # a letter past the last option is no answer
    ("A triangle has three sides, so \\boxed{D}", "D", C4, True),
    ("A triangle has 3 sides.", "A", C4, False),  # the article "A" is not an option
    ("Answer: (b)", "B", ["x", "y"], True),
    ("Choices:\n(A) 1\n(B) 2\nThe answer is B", "B", None, True),
    ("yes", "A", ["yes", "no"], True),
    ("I pick yes", "B", ["yes", "no"], False),
])
def test_multiple_choice_normalisation(completion, gold, choices, expected):
    assert scoring.is_correct_typed(completion, gold, "multi_choice", choices) is expected


@pytest.mark.parametrize("completion,gold,expected", [
    ("\\boxed{\\frac{1}{2}}", "0.5", True), ("so x = 5", "5", True), ("\\boxed{3}", "4", False),
])
def test_free_form_goes_through_math_verify(completion, gold, expected):
    assert scoring.is_correct_typed(completion, gold, "free_form") is expected


def test_scoring_bad_input_is_explained():
    with pytest.raises(ValueError, match="answer_type must be"):
        scoring.is_correct_typed("A", "A", "mcq")
    with pytest.raises(ValueError, match="neither a letter nor one of the choices"):
        scoring.is_correct_typed("A", "7", "multi_choice", ["1", "2"])


def test_resize_rule():
    from PIL import Image

    big = vl.resize_image(Image.new("L", (3000, 1000)), max_side=1024)
    assert big.size == (1024, 341) and big.mode == "RGB"
    small = vl.resize_image(Image.new("RGB", (40, 30)), max_side=1024)
    assert small.size == (40, 30)  # never upscaled
    assert vl.resize_rule(512) == {"rule": vl.resize_rule()["rule"], "max_side": 512}


# ------------------------------------------------------------------------------------------ benchmarks
PAPER_VL = ["geometry3k", "mathverse", "mathvision", "mathvista", "wemath"]


def test_one_registry_lists_text_and_vl_benchmarks_with_their_modality():
    names = benchmarks.available()
    assert set(PAPER_VL + ["synth_vl_count", "synth_vl_bars", "math500", "aime24", "synth_arith"]) <= set(names)
    assert benchmarks.available("vl") == PAPER_VL + ["synth_vl_bars", "synth_vl_count"]
    assert set(benchmarks.available("text")) == set(names) - set(benchmarks.available("vl"))
    assert {benchmarks.get(n).modality for n in names} == {"text", "vl"}
    assert benchmarks.get("math500").modality == "text" and benchmarks.get("synth_vl_bars").modality == "vl"
    for name in PAPER_VL:
        b = benchmarks.get(name)
        assert b.hub and b.hub["dataset"] and b.split and b.fields["image"] and b.answer_type in ANSWER_TYPES
        assert b.k == 8 and b.chat_template and b.sampling["max_tokens"] == 2048  # from `include: _vl.yaml`
    assert benchmarks.get("mathvista").hub["split"] == "testmini"
    assert benchmarks.get("geometry3k").hub["split"] == "test"
    from benchmarks import catalog

    assert catalog.parse_names("all") == [n for n in names if n in catalog._static() and n not in PAPER_VL]
    assert catalog.parse_names("all", modality="vl") == PAPER_VL


def test_registry_include_merges_and_is_checked(tmp_path, monkeypatch):
    from benchmarks import catalog

    (tmp_path / "vl").mkdir()
    (tmp_path / "vl" / "_base.yaml").write_text("modality: vl\nk: 3\ngold_rule: field\nchat_template: true\n")
    (tmp_path / "vl" / "pics.yaml").write_text(
        "include: _base.yaml\nname: pics\ndescription: d\nfile: pics/test.jsonl\nfields: {problem: q, gold: a}\n"
        "prompt: '{problem}'\nk: 5\nsampling: {temperature: 1.0, top_p: 1.0, max_tokens: 4}\n")
    monkeypatch.setattr(catalog, "REGISTRY_DIR", tmp_path)
    monkeypatch.setattr(catalog, "VL_REGISTRY_DIR", tmp_path / "vl")
    catalog._static.cache_clear()
    try:
        with pytest.raises(BenchmarkError, match="a VL benchmark needs fields.image"):
            catalog._static()
        entry = catalog._entry(tmp_path / "vl" / "pics.yaml")
        assert entry["k"] == 5 and entry["modality"] == "vl" and entry["chat_template"] is True  # own keys win
        (tmp_path / "vl" / "pics.yaml").write_text("include: _nope.yaml\n")
        with pytest.raises(BenchmarkError, match="include '_nope.yaml' not found"):
            catalog._entry(tmp_path / "vl" / "pics.yaml")
    finally:
        catalog._static.cache_clear()


@pytest.mark.parametrize("name", ["geometry3k", "mathverse", "mathvision", "mathvista", "wemath"])
def test_fixture_loads_in_each_schema(name):
    rows = benchmarks.get(name).load(FIXTURES)
    assert len(rows) == 3
    for r in rows:
        assert r["image"].mode == "RGB" and max(r["image"].size) <= vl.DEFAULT_MAX_SIDE
        assert "<image>" not in r["problem"] and r["prompt"].startswith(r["problem"])
        if r["answer_type"] == "multi_choice":
            assert choice.option_letter(r["gold"], r["choices"]) is not None
    kinds = {r["answer_type"] for r in rows}
    assert kinds == {"geometry3k": {"free_form"}, "wemath": {"multi_choice"}}.get(name, {"free_form", "multi_choice"})


def test_fixture_details():
    vista = benchmarks.get("mathvista").load(FIXTURES)
    assert vista[1]["choices"] == ["1", "2", "4", "5"]
    assert choice.option_letter(vista[1]["gold"], vista[1]["choices"]) == "B"
    we = benchmarks.get("wemath").load(FIXTURES)
    assert we[0]["choices"] == ["1", "2", "3", "4"] and "(C) 3" in we[0]["prompt"]
    geo = benchmarks.get("geometry3k").load(FIXTURES)
    assert geo[1]["image"].size == (1024, 512)  # 1600 x 800 fixture, resized by the documented rule
    assert benchmarks.get("geometry3k").load(FIXTURES, max_side=100)[1]["image"].size == (100, 50)


def test_missing_benchmark_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MHPO_ONLINE", raising=False)
    with pytest.raises(BenchmarkError) as e:
        benchmarks.get("mathvision").load(tmp_path)
    msg = str(e.value)
    assert "mathvision/test.jsonl" in msg and "--data-dir" in msg and "benchmarks.vl export" in msg
    with pytest.raises(BenchmarkError, match="unknown benchmark 'mathvista2'; available: .*mathvista"):
        benchmarks.get("mathvista2")


def _evaluate(model, benches: str, out, *extra: str) -> int:
    from mhpo import cli

    return cli.main(["evaluate", "--model", str(model), "--benchmarks", benches, "--out", str(out),
                     "--data-dir", str(FIXTURES), *extra])


def test_vl_evaluation_writes_records_and_summary(tiny_vlm, tmp_path, capsys):
    path, _ = tiny_vlm
    out = tmp_path / "eval"
    assert _evaluate(path, "mathvista,wemath", out, "--k", "2", "--max-tokens", "4", "--seed", "0") == 0
    for name in ("mathvista", "wemath"):
        s = json.loads((out / f"{name}.summary.json").read_text())
        assert s["data"] == str((FIXTURES / name).resolve()) and s["sampling"]["backend"] == "hf"
        assert s["k"] == 2 and s["n_problems"] == 3 and s["image_resize"]["max_side"] == vl.DEFAULT_MAX_SIDE
        assert set(s["metrics"]) == {"avg@k", "pass@k", "maj@k"} and s["throughput"]["samples_per_s"] > 0
        recs = io.read_jsonl(out / f"{name}.jsonl")
        assert len(recs) == 6 and {r["benchmark"] for r in recs} == {name}
        for r in recs:  # every record's verdict is the scorer's verdict on its completion
            p = next(x for x in benchmarks.get(name).load(FIXTURES) if x["id"] == r["problem_id"])
            assert r["correct"] == scoring.is_correct_typed(r["completion"], p["gold"], p["answer_type"], p["choices"])
        # The summary's metrics are those of its records, recomputed here: per problem, avg@k = mean of the k
        # verdicts and pass@k (k = n) = any verdict correct; then the mean over problems.
        by_problem = {}
        for r in recs:
            by_problem.setdefault(r["problem_id"], []).append(r)
        assert all(sorted(x["sample"] for x in rows) == [0, 1] for rows in by_problem.values())
        verdicts = [[x["correct"] for x in rows] for rows in by_problem.values()]
        assert s["metrics"]["avg@k"]["mean"] == pytest.approx(sum(sum(v) / 2 for v in verdicts) / 3)
        assert s["metrics"]["pass@k"]["mean"] == pytest.approx(sum(any(v) for v in verdicts) / 3)
        assert 0 <= s["metrics"]["maj@k"]["mean"] <= s["metrics"]["pass@k"]["mean"]
    # resume and fingerprints are the text path's: a rerun with the same settings skips both benchmarks
    capsys.readouterr()
    assert _evaluate(path, "mathvista,wemath", out, "--k", "2", "--max-tokens", "4", "--seed", "0") == 0
    assert capsys.readouterr().err.count("already complete") == 2


def test_evaluate_on_vl_samples_exactly_as_a_direct_processor_generate(tiny_vlm, tmp_path):
    """`evaluate` on a VL benchmark = what the separate VL evaluator did: per problem, the processor's chat turn
    (image + prompt) as k identical rows, sample j seeded by sample_seed(seed, problem id, j), cut at EOS, and
    scored by answer type. Recomputed here with transformers directly, record by record."""
    from transformers import LogitsProcessorList

    from benchmarks.generation import sample_seed, seeded_sampler

    path, _ = tiny_vlm
    out = tmp_path / "eval"
    assert _evaluate(path, "mathvista,synth_vl_bars", out, "--k", "3", "--max-tokens", "6", "--limit", "3",
                     "--temperature", "1.0", "--top-p", "0.9", "--seed", "5", "--batch-size", "2") == 0
    model, processor = tiny.load(path)
    model.eval()
    eos = model.generation_config.eos_token_id
    for name in ("mathvista", "synth_vl_bars"):
        recs = io.read_jsonl(out / f"{name}.jsonl")
        assert len(recs) == 9 and all(r["answer_type"] in ("multi_choice", "free_form") for r in recs)
        for p in benchmarks.get(name).load(FIXTURES, limit=3):
            msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p["prompt"]}]}]
            text = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            enc = processor(text=[text] * 3, images=[p["image"]] * 3, return_tensors="pt", padding=True)
            sampler = seeded_sampler([sample_seed(5, p["id"], j) for j in range(3)], 1.0, 0.9, "cpu")
            with torch.inference_mode():
                gen = model.generate(**enc, max_new_tokens=6, do_sample=False, temperature=None, top_p=None,
                                     top_k=None, pad_token_id=processor.tokenizer.pad_token_id,
                                     logits_processor=LogitsProcessorList([sampler]))
            mine = [r for r in recs if r["problem_id"] == p["id"]]
            for j, toks in enumerate(gen[:, enc["input_ids"].shape[1]:].tolist()):
                toks = toks[: next((t + 1 for t, x in enumerate(toks) if x == eos), len(toks))]
                completion = processor.tokenizer.decode(toks, skip_special_tokens=True)
                assert (mine[j]["sample"], mine[j]["completion"], mine[j]["n_tokens"]) == (j, completion, len(toks))
                assert mine[j]["correct"] == scoring.is_correct_typed(completion, p["gold"], p["answer_type"],
                                                                      p["choices"])
                assert mine[j]["answer_type"] == p["answer_type"]


def test_evaluate_refuses_mixed_modalities_and_vllm_for_vl(tiny_vlm, tmp_path, capsys):
    path, _ = tiny_vlm
    assert _evaluate(path, "mathvista,synth_arith", tmp_path / "a") == 2
    assert "mixes text and VL benchmarks (mathvista are VL)" in capsys.readouterr().err
    assert _evaluate(path, "mathvista", tmp_path / "b", "--backend", "vllm") == 2
    assert "pass --backend hf" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_old_vl_command_names_are_aliases_with_a_deprecation_line(tiny_vlm, tmp_path, capsys):
    """`evaluate-vl evaluate`, `aggregate-vl` and `tiny-vlm` still work for one release: one line on stderr
    names the unified command, and the result is the unified command's."""
    from mhpo import cli

    path, _ = tiny_vlm
    argv = ["--model", str(path), "--benchmarks", "wemath", "--data-dir", str(FIXTURES), "--k", "2",
            "--max-tokens", "3", "--limit", "2"]
    assert cli.main(["evaluate-vl", "evaluate", *argv, "--out", str(tmp_path / "old")]) == 0
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if "deprecated" in ln] == [
        "mhpo-bench evaluate-vl is deprecated and will be removed in the next release; use mhpo-bench evaluate "
        "(same options; the benchmarks' modality picks the VL path)"]
    assert cli.main(["evaluate", *argv, "--out", str(tmp_path / "new")]) == 0
    assert (tmp_path / "old" / "wemath.jsonl").read_bytes() == (tmp_path / "new" / "wemath.jsonl").read_bytes()
    assert "deprecated" not in capsys.readouterr().err

    assert cli.main(["tiny-vlm", "--out", str(tmp_path / "vlm"), "--warm-start-steps", "2", "--seed", "3"]) == 0
    assert "use mhpo-bench tiny-model --kind vl" in capsys.readouterr().err
    info = json.loads((tmp_path / "vlm" / tiny.INFO_FILE).read_text())
    assert info["warm_start"]["steps"] == 2 and info["seed"] == 3

    assert cli.main(["aggregate-vl", "--evals", str(tmp_path / "none"), "--out", str(tmp_path)]) == 0
    assert "use mhpo-bench aggregate --track vl" in capsys.readouterr().err
    assert "No VL evaluations found" in (tmp_path / "tables" / "vl.md").read_text()


# ------------------------------------------------------------------------------ the shared CLI and workflow plan
def test_vl_recipe_trains_evaluates_and_tabulates_through_the_cli(tiny_vlm, tmp_path, capsys):
    """The VL track through the same commands as text: `train --config tiny-vl` (data.image_field), `evaluate`
    on the synthetic test split and the benchmark fixtures, `aggregate` writing the VL table (the paper's VL
    averages beside) because it finds VL evaluations."""
    from mhpo import cli

    path, _ = tiny_vlm
    run = tmp_path / "runs" / "tiny-vl" / "mhpo" / "seed0"
    assert cli.main(["train", "--config", "tiny-vl", "--objective", "mhpo", "--seed", "0", "--out", str(run),
                     "--max-steps", "2", "--set", f"model.path={path}"]) == 0
    man = json.loads((run / "manifest.json").read_text())
    assert man["status"] == "complete" and man["track"] == "vl" and man["config"]["data"]["image_field"] == "image"
    assert [r["step"] for r in io.read_jsonl(run / "metrics.jsonl")] == [1, 2]
    # the same policy evaluated as two models: ours (tiny-vl) and under the paper model's label, so the paper's
    # numbers (mhpo/resources/reference/paper_qwen2.5-vl-7b.json) must appear beside the latter's average only
    for model in ("tiny-vl", "qwen2.5-vl-7b-instruct"):
        ev = tmp_path / "evals" / model / "mhpo" / "seed0" / "final"
        assert cli.main(["evaluate", "--model", str(run / "final"), "--benchmarks",
                         "synth_vl_count,mathvista,wemath", "--data-dir", str(FIXTURES), "--k", "2", "--limit", "8",
                         "--max-tokens", "4", "--out", str(ev)]) == 0
        s = json.loads((ev / "synth_vl_count.summary.json").read_text())
        assert s["n_problems"] == 8 and s["data"].startswith("mhpo.tasks.vl:count")
        assert (json.loads((ev / "mathvista.summary.json").read_text())["data"]
                == str((FIXTURES / "mathvista").resolve()))
    capsys.readouterr()
    assert cli.main(["aggregate", "--runs", str(tmp_path / "runs"), "--evals", str(tmp_path / "evals"), "--out",
                     str(tmp_path), "--n-boot", "200", "--no-figures"]) == 0
    assert (tmp_path / "tables" / "main.md").is_file()
    md = (tmp_path / "tables" / "vl.md").read_text()
    assert "## tiny-vl" in md and "## qwen2.5-vl-7b-instruct" in md
    assert "| objective | mathvista | wemath | synth_vl_count | average | synthetic |" in md
    tiny_row = next(ln for ln in md.split("## tiny-vl")[1].splitlines() if ln.startswith("| mhpo |"))
    paper_row = next(ln for ln in md.split("## qwen2.5-vl-7b-instruct")[1].splitlines() if ln.startswith("| mhpo |"))
    assert "paper" not in tiny_row and "(paper 53.0, Δ" in paper_row
    assert "DAPO 52.3 (derived)" in md and "53.0 - 0.7" in md  # the reference section, with provenance
    rows = list(__import__("csv").DictReader((tmp_path / "tables" / "vl.csv").open()))
    got = {(r["model"], r["objective"], r["benchmark"]): r for r in rows}
    recs = io.read_jsonl(tmp_path / "evals" / "tiny-vl" / "mhpo" / "seed0" / "final" / "synth_vl_count.jsonl")
    assert float(got[("tiny-vl", "mhpo", "synth_vl_count")]["avg_at_k"]) == pytest.approx(
        sum(r["correct"] for r in recs) / len(recs))
    assert float(got[("qwen2.5-vl-7b-instruct", "mhpo", "average")]["paper"]) == pytest.approx(0.53)
    assert ("paper:Qwen/Qwen2.5-VL-7B-Instruct", "dapo", "average") in got
    assert (tmp_path / "tables" / "vl.tex").read_text().count("\\begin{table}") == 2


def test_vl_paper_recipe_dry_run_builds_the_config_without_weights(capsys):
    from mhpo import cli

    assert cli.main(["train", "--config", "qwen2.5-vl-7b-instruct", "--objective", "dapo", "--seed", "0",
                     "--out", "/nonexistent/vl/{seed}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    plan = json.loads(out[out.index("{"):])
    rec, cfg = plan["recipe"], plan["grpo_config"]
    assert rec["model"]["path"] == "Qwen/Qwen2.5-VL-7B-Instruct" and rec["data"]["image_field"] == "images"
    assert rec["data"]["hf_dataset"] == "hiyouga/geometry3k" and rec["data"]["prompt_format"] == "chat"
    assert cfg["max_completion_length"] == 2048 and cfg["bf16"] is True and cfg["use_vllm"] is True
    assert plan["objective"] == "dapo" and not Path("/nonexistent").exists()


def test_vl_recipe_rules_and_dataset():
    from mhpo.training import recipe, train

    with pytest.raises(recipe.RecipeError, match="'data.prompt_format' must be 'chat' when data.image_field"):
        recipe.load("tiny-vl", overrides={"data.prompt_format": "plain"})
    with pytest.raises(recipe.RecipeError, match="'dapo.dynamic_sampling' is not supported with image inputs"):
        recipe.load("tiny-vl", overrides={"dapo.dynamic_sampling": True})
    rec = recipe.load("tiny-vl", overrides={"data.n_train": 6, "data.task": "bars"})
    ds = train.dataset(rec)
    assert len(ds) == 6 and set(ds.column_names) >= {"prompt", "image", "answer", "answer_type", "choices"}
    row = ds[0]
    assert row["prompt"] == [{"role": "user", "content": "Which bar is taller? A or B"}]
    assert row["image"].size == (vl_tasks.SIZE, vl_tasks.SIZE) and row["answer"] in ("A", "B")
    assert row["answer_type"] == "multi_choice" and row["choices"] == ["A", "B"]
    assert [f.__name__ for f in train.reward_funcs(rec)] == ["vl_correctness_reward"]


def test_synthetic_vl_benchmark_is_the_task_test_split():
    b = benchmarks.get("synth_vl_count")
    rows = b.load(limit=5)
    ref = vl_tasks.load("count", "test", n=5, seed=0)
    assert ([r["id"] for r in rows] == [r["id"] for r in ref]
            and [r["gold"] for r in rows] == [r["answer"] for r in ref])
    assert rows[0]["prompt"] == "How many shapes?" and b.modality == "vl" and b.answer_type == "free_form"
    assert benchmarks.get("synth_vl_bars").answer_type == "multi_choice"
    assert benchmarks.get("synth_arith").modality == "text"
    with pytest.raises(BenchmarkError, match="available: .*synth_vl_bars, synth_vl_count"):
        benchmarks.get("synth_vl_nope")


def test_workflow_plan_routes_vl_experiments():
    """default.yaml's `vl_tiny` study: built with `tiny-model --kind vl`, evaluated with `evaluate` (the text
    commands), kept out of the main experiments; a text model given a VL benchmark is refused with the key named."""
    from mhpo.workflow import config

    _, plan = config.load("workflow/config/default.yaml")
    assert plan.vl_models() == [] and "tiny-vl" not in " ".join(plan.experiments())
    study = plan.studies["vl_tiny"]
    assert study.vl_models() == ["tiny-vl"] and len(study.train_runs("vl")) == 10 and study.train_runs("text") == []
    assert plan.tiny_command("tiny-vl", "M").startswith("mhpo-bench tiny-model --kind vl --out M --task count")
    cmd = plan.eval_command("tiny-vl", "mhpo", 0, "final")
    assert cmd.startswith("mhpo-bench evaluate --model ") and "--data-dir tests/fixtures/vl" in cmd
    assert "synth_vl_count,mathvista,mathverse,mathvision,geometry3k,wemath" in cmd and "--backend hf" in cmd
    text_cmd = plan.eval_command(*next((j.model, j.label, j.seed, j.checkpoint) for j in plan.eval_jobs("text")))
    assert text_cmd.split(" --model ")[0] == cmd.split(" --model ")[0] == "mhpo-bench evaluate"
    bad = {"models": {"tiny": {"tiny_model": {"task": "arith"}}},
           "experiments": [{"model": "tiny", "objective": "mhpo", "recipe": "tiny", "seeds": [0],
                            "evaluation": {"benchmarks": ["synth_arith", "synth_vl_count"]}}]}
    with pytest.raises(config.ConfigError,
                       match=r"experiments\[0\].evaluation.benchmarks: \['synth_vl_count'\] are VL"):
        config.load(bad)
    missing = {"experiments": [{"model": "m", "label": "ext", "checkpoints": {"0": "org/model"},
                                "evaluation": {"benchmarks": ["mathvision"], "data_dir": "/nonexistent"}}]}
    with pytest.raises(config.ConfigError, match="no data for VL benchmark 'mathvision'.*require_data: false"):
        config.load(missing)
    missing["experiments"][0]["evaluation"]["require_data"] = False
    _, p = config.load(missing)
    assert p.missing_data == ["mathvision"] and p.models["m"]["track"] == "vl"
