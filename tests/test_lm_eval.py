"""The generated lm-eval tasks score like the native evaluator: same prompts, same completions, same accuracy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from benchmarks import catalog, lm_eval_tasks
from benchmarks.scoring import score_many
from benchmarks.tiny_model import build_tiny_llama
from mhpo.cli import evaluate as evaluate_cli

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def _teach_constant_answer(model_dir: Path, prompts: list[str], answer: str, steps: int = 80) -> None:
    """Fine-tune the random tiny model until greedy decoding answers ``answer`` + EOS to every prompt, so the
    fixture benchmark (golds 7, 7, 12, 3) has a known accuracy of exactly 0.5."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    seqs, labels = [], []
    for p in prompts:
        p_ids, a_ids = tok(p)["input_ids"], tok(answer)["input_ids"] + [tok.eos_token_id]
        seqs.append(p_ids + a_ids)
        labels.append([-100] * len(p_ids) + a_ids)
    width = max(map(len, seqs))
    ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in seqs])
    lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(s) for s in seqs])[:, None]).long()
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=lab).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(model_dir)


@pytest.fixture(scope="module")
def answering_model(tmp_path_factory) -> Path:
    path = build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")
    bench = catalog.get("aime24")
    prompts = [row["prompt"] for row in bench.load(FIXTURES)]
    _teach_constant_answer(path, prompts, "\\boxed{7}")
    return path


def _native(model: Path, out: Path) -> list[dict]:
    parser = argparse.ArgumentParser()
    evaluate_cli.configure(parser)
    args = parser.parse_args(
        ["--model", str(model), "--benchmarks", "aime24", "--k", "1", "--temperature", "0", "--max-tokens", "16",
         "--data-dir", str(FIXTURES), "--out", str(out), "--workers", "1"]
    )
    assert evaluate_cli.main(args) == 0
    return [json.loads(line) for line in (out / "aime24.jsonl").read_text().splitlines()]


def test_task_yamls_use_absolute_paths_and_our_hooks(tmp_path):
    written = lm_eval_tasks.write_tasks(tmp_path / "tasks", ["aime24", "gsm8k"], data_dir=FIXTURES)
    text = written["gsm8k"].read_text()
    assert "!function mhpo_hooks.process_results_gsm8k" in text
    data = yaml.load(text.replace("!function ", ""), Loader=yaml.SafeLoader)
    data_file = Path(data["dataset_kwargs"]["data_files"]["test"])
    assert data_file.is_absolute() and data_file == (FIXTURES / "gsm8k" / "test.jsonl").resolve()
    assert data["generation_kwargs"]["until"] == [] and data["task"] == "mhpo_gsm8k"


def test_lm_eval_accuracy_equals_native_on_same_greedy_completions(answering_model, tmp_path):
    import lm_eval
    from lm_eval.tasks import TaskManager

    records = _native(answering_model, tmp_path / "native")
    native_acc = sum(r["correct"] for r in records) / len(records)
    assert native_acc == 0.5  # the model answers \boxed{7}; two of the four golds are 7

    tasks_dir = tmp_path / "tasks"
    lm_eval_tasks.write_tasks(tasks_dir, ["aime24"], data_dir=FIXTURES, max_gen_toks=16)
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(answering_model), "dtype": "float32", "device": "cpu"},
        tasks=["mhpo_aime24"],
        task_manager=TaskManager(include_path=str(tasks_dir)),
        batch_size=4,
        log_samples=True,
    )
    assert out["results"]["mhpo_aime24"]["acc,none"] == native_acc

    samples = sorted(out["samples"]["mhpo_aime24"], key=lambda s: s["doc_id"])
    lm_completions = [s["resps"][0][0] for s in samples]
    native_completions = [r["completion"] for r in sorted(records, key=lambda r: int(r["problem_id"]))]
    assert [c.strip() for c in lm_completions] == [c.strip() for c in native_completions]
    golds = [row["gold"] for row in catalog.get("aime24").load(FIXTURES)]
    rescored = score_many(zip(lm_completions, golds), workers=1, progress=False)
    assert sum(rescored) / len(rescored) == native_acc
