"""Metrics against hand-computed values, and `mhpo-bench evaluate` end to end (files, resume, errors)."""

from __future__ import annotations

import argparse
import json
from math import comb
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import catalog, evaluate, metrics
from benchmarks.generation import Sampling, make_generator
from benchmarks.tiny_model import build_tiny_llama
from mhpo.cli import evaluate as evaluate_cli
from mhpo.common import io

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
RECORD_FIELDS = {"run", "model", "checkpoint", "step", "benchmark", "problem_id", "sample", "completion",
                 "extracted", "correct", "n_tokens"}
SUMMARY_FIELDS = {"benchmark", "k", "n_problems", "metrics", "sampling", "versions", "model", "wall_time_s"}


# ------------------------------------------------------------------------------------------- metrics
def test_pass_at_k_hand_values():
    assert metrics.pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert metrics.pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)
    assert metrics.pass_at_k(5, 0, 3) == 0.0
    assert metrics.pass_at_k(5, 3, 3) == 1.0  # n - c < k: some correct sample is always drawn
    assert metrics.pass_at_k(8, 2, 1) == pytest.approx(2 / 8)  # pass@1 is the plain accuracy


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_the_binomial_formula(nck):
    n, c, k = nck
    assert metrics.pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-9)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="0 <= c <= n"):
        metrics.pass_at_k(3, 4, 1)


def test_maj_at_k_votes_with_normalisation_and_earliest_tie_break():
    assert metrics.maj_at_k(["1/2", "3", "\\frac{1}{2}", "\\dfrac{1}{2}"], [True, False, True, True]) == 1.0
    assert metrics.maj_at_k(["5", "6", "6", None, None], [True, False, False, False, False]) == 0.0
    assert metrics.maj_at_k(["5", "6"], [True, False]) == 1.0  # tie: the earliest answer wins
    assert metrics.maj_at_k([None, None], [False, False]) == 0.0
    assert metrics.maj_at_k(["6", "6", "5"], [False, False, True], k=1) == 0.0


def test_summarize_hand_computed():
    samples = {
        "p1": [("1", True), ("1", True), ("2", False), ("2", False)],  # avg .5, pass@4 1, maj tie -> "1" correct
        "p2": [("3", False), (None, False), ("3", False), ("4", True)],  # avg .25, pass@4 1, maj "3" wrong
        "p3": [("7", False)] * 4,  # 0, 0, 0
    }
    s = metrics.summarize(samples, k=4, seed=0)
    assert s["avg@k"]["mean"] == pytest.approx(0.25)
    assert s["pass@k"]["mean"] == pytest.approx(2 / 3)
    assert s["maj@k"]["mean"] == pytest.approx(1 / 3)
    for m in metrics.METRICS:
        assert 0 <= s[m]["ci_low"] <= s[m]["mean"] <= s[m]["ci_high"] <= 1
    assert metrics.summarize(samples, k=4, seed=0) == s  # seeded bootstrap: reproducible
    assert metrics.summarize(samples, k=2, seed=0)["pass@k"]["mean"] == pytest.approx((5 / 6 + 1 / 2) / 3)


def test_bootstrap_ci_narrows_with_more_problems():
    wide = metrics.bootstrap_ci([0, 1] * 5, seed=1)
    narrow = metrics.bootstrap_ci([0, 1] * 500, seed=1)
    assert wide["mean"] == narrow["mean"] == 0.5
    assert narrow["ci_high"] - narrow["ci_low"] < wide["ci_high"] - wide["ci_low"]
    assert metrics.bootstrap_ci([0.3]) == {"mean": 0.3, "ci_low": 0.3, "ci_high": 0.3}


def test_macro_average_weighs_benchmarks_equally_and_seeds():
    macro = metrics.macro_average({"small": [1.0, 1.0], "large": [0.0] * 98}, seed=0)
    assert macro["mean"] == pytest.approx(0.5)  # not the pooled 2/100
    assert macro["ci_low"] <= 0.5 <= macro["ci_high"]
    seeds = metrics.across_seeds([0.40, 0.44, 0.42], seed=0)
    assert seeds["mean"] == pytest.approx(0.42) and 0.40 <= seeds["ci_low"] <= seeds["ci_high"] <= 0.44


def test_too_few_samples_is_an_error():
    with pytest.raises(ValueError, match="fewer than k=4"):
        metrics.summarize({"p": [("1", True)] * 3}, k=4)


# ------------------------------------------------------------------------------------------ evaluate
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "checkpoint-40")


def _args(model, out, *extra):
    parser = argparse.ArgumentParser()
    evaluate_cli.configure(parser)
    return parser.parse_args(["--model", str(model), "--out", str(out), "--data-dir", str(FIXTURES),
                              "--max-tokens", "12", "--workers", "1", *extra])


def test_evaluate_writes_records_and_summary_per_interfaces(tiny, tmp_path):
    args = _args(tiny, tmp_path, "--benchmarks", "math500,gsm8k", "--k", "3", "--label", "tiny/grpo/seed0")
    assert evaluate_cli.main(args) == 0
    for name, n in (("math500", 3), ("gsm8k", 2)):
        rows = io.read_jsonl(tmp_path / f"{name}.jsonl")
        assert len(rows) == 3 * n and all(set(r) == RECORD_FIELDS for r in rows)
        assert [(r["problem_id"], r["sample"]) for r in rows][:3] == [(rows[0]["problem_id"], s) for s in range(3)]
        assert all(r["run"] == "tiny/grpo/seed0" and r["checkpoint"] == "checkpoint-40" and r["step"] == 40
                   for r in rows)
        assert all(1 <= r["n_tokens"] <= 12 and isinstance(r["correct"], bool) for r in rows)
        summary = json.loads((tmp_path / f"{name}.summary.json").read_text())
        assert SUMMARY_FIELDS <= set(summary) and summary["k"] == 3 and summary["n_problems"] == n
        assert summary["sampling"] == {"temperature": 0.6, "top_p": 0.95, "max_tokens": 12, "n": 3, "seed": 0,
                                       "backend": "hf", "scheme": "per-sample-gumbel-v1", "dtype": "float32",
                                       "device": "cpu"}
        assert set(summary["metrics"]) == {"avg@k", "pass@k", "maj@k"}
        acc = sum(r["correct"] for r in rows) / len(rows)
        assert summary["metrics"]["avg@k"]["mean"] == pytest.approx(acc)
        recomputed = metrics.summarize(metrics.samples_from_records(rows), k=3, seed=0)
        assert recomputed == summary["metrics"]  # the records alone reproduce the summary
    assert not list(tmp_path.glob(".*progress*")), "the progress file is removed once complete"


def test_greedy_samples_are_identical_and_sampling_is_seeded(tiny):
    gen = make_generator("hf", str(tiny))
    prompts = [gen.encode("What is 2+2?", True)]
    greedy = gen.generate(prompts, Sampling(0.0, 1.0, 10, 3, 0))[0]
    assert greedy[0] == greedy[1] == greedy[2]
    a = gen.generate(prompts, Sampling(1.0, 1.0, 10, 3, 5))
    assert a == gen.generate(prompts, Sampling(1.0, 1.0, 10, 3, 5))
    assert a != gen.generate(prompts, Sampling(1.0, 1.0, 10, 3, 6))


class _Interrupting:
    """The real HF generator, interrupted (like Ctrl-C or a kill) after ``after`` batches."""

    def __init__(self, gen, after):
        self.gen, self.after, self.calls, self.name = gen, after, 0, gen.name

    def encode(self, *a):
        return self.gen.encode(*a)

    def generate(self, prompts, sampling, problem_ids=None):
        if self.calls == self.after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.gen.generate(prompts, sampling, problem_ids)

    def identity(self):
        return self.gen.identity()


def test_interrupted_evaluation_resumes_without_partial_rows(tiny, tmp_path):
    bench = catalog.get("math500")
    args = _args(tiny, tmp_path, "--benchmarks", "math500", "--k", "2", "--batch-size", "1")
    gen = make_generator("hf", str(tiny))
    with pytest.raises(KeyboardInterrupt):
        evaluate.evaluate_benchmark(_Interrupting(gen, after=2), bench, args, str(tiny), tmp_path)
    assert not (tmp_path / "math500.jsonl").exists() and not (tmp_path / "math500.summary.json").exists()
    progress = tmp_path / ".math500.progress.jsonl"
    first_two = io.read_jsonl(progress)
    assert [r["problem_id"] for r in first_two] == ["test/prealgebra/1.json", "test/precalculus/2.json"]
    with open(progress, "a") as fh:  # a torn line from a writer killed mid-append
        fh.write('{"fingerprint": "x", "problem_id": "test/pre')

    resumed = _Interrupting(gen, after=99)
    summary = evaluate.evaluate_benchmark(resumed, bench, args, str(tiny), tmp_path)
    assert resumed.calls == 1  # only the third problem was generated
    rows = io.read_jsonl(tmp_path / "math500.jsonl")
    assert summary["n_problems"] == 3 and len(rows) == 6
    for old in first_two:  # completed problems keep their samples
        kept = [r["completion"] for r in rows if r["problem_id"] == old["problem_id"]]
        assert kept == [s[0] for s in old["samples"]]
    assert not progress.exists()

    again = _Interrupting(gen, after=0)  # complete with the same settings: skipped, nothing generated
    assert (evaluate.evaluate_benchmark(again, bench, args, str(tiny), tmp_path)["fingerprint"]
            == summary["fingerprint"])


def test_resume_ignores_samples_from_other_settings(tiny, tmp_path):
    bench = catalog.get("aime24")
    gen = make_generator("hf", str(tiny))
    args = _args(tiny, tmp_path, "--benchmarks", "aime24", "--k", "2", "--batch-size", "1")
    with pytest.raises(KeyboardInterrupt):
        evaluate.evaluate_benchmark(_Interrupting(gen, after=1), bench, args, str(tiny), tmp_path)
    other = _args(tiny, tmp_path, "--benchmarks", "aime24", "--k", "2", "--batch-size", "1", "--temperature", "0")
    counting = _Interrupting(gen, after=99)
    evaluate.evaluate_benchmark(counting, bench, other, str(tiny), tmp_path)
    assert counting.calls == 4  # nothing reused: the sampling differs


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--benchmarks", "math5000"], "unknown benchmark 'math5000'"),
        (["--benchmarks", "aime24", "--k", "0"], "--k must be >= 1"),
        (["--benchmarks", "aime24", "--data-dir", "/nonexistent/bench"], "looked in /nonexistent/bench/aime24"),
    ],
)
def test_bad_input_is_a_clear_error(tiny, tmp_path, capsys, extra, message):
    args = _args(tiny, tmp_path, *extra)
    assert evaluate_cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_run_directory_means_its_final_policy_and_last_step(tiny, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny, run / "final")
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)))
    args = _args(run, tmp_path / "eval", "--benchmarks", "aime24", "--k", "1", "--limit", "1")
    assert evaluate_cli.main(args) == 0
    row = io.read_jsonl(tmp_path / "eval" / "aime24.jsonl")[0]
    assert (row["checkpoint"], row["step"]) == ("final", 3)


def test_model_dir_without_config_is_a_clear_error(tmp_path, capsys):
    args = _args(tmp_path, tmp_path / "out", "--benchmarks", "aime24")
    assert evaluate_cli.main(args) == 2
    assert "has no config.json" in capsys.readouterr().err
