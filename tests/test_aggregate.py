"""mhpo-bench aggregate: tables (CIs, paper reference), stability statistics and figures from real files."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import metrics
from mhpo.analysis import aggregate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "perf"))


def write_eval(root: Path, model: str, label: str, seed: int, ck: str, bench: str, correct: list[list[bool]],
               step=None):
    d = root / "evals" / model / label / f"seed{seed}" / ck
    d.mkdir(parents=True, exist_ok=True)
    k = len(correct[0])
    with open(d / f"{bench}.jsonl", "w") as fh:
        for i, row in enumerate(correct):
            for s, ok in enumerate(row):
                fh.write(json.dumps({"run": label, "model": model, "checkpoint": ck, "step": step, "benchmark": bench,
                                     "problem_id": f"p{i}", "sample": s, "completion": "", "extracted": "1",
                                     "correct": ok, "n_tokens": 3}) + "\n")
    per = [sum(r) / k for r in correct]
    (d / f"{bench}.summary.json").write_text(json.dumps({
        "benchmark": bench, "k": k, "n_problems": len(correct),
        "metrics": {"avg@k": metrics.bootstrap_ci(per), "pass@k": metrics.bootstrap_ci(per),
                    "maj@k": metrics.bootstrap_ci(per)},
        "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 16, "n": k, "seed": 0, "backend": "hf"},
        "versions": {"math-verify": "0.9.0"}, "model": f"/models/{model}", "wall_time_s": 0.1}))
    return per


def write_metrics(root: Path, model: str, label: str, seed: int, grad, entropy=None, rmin=0.8, rmax=1.25):
    d = root / "runs" / model / label / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "metrics.jsonl", "w") as fh:
        for t, g in enumerate(grad, 1):
            fh.write(json.dumps({"step": t, "reward/mean": 0.1 * t, "grad_norm": g,
                                 "entropy": None if entropy is None else entropy[t - 1],
                                 "ratio/p1": 0.9, "ratio/p99": 1.1,
                                 "ratio/min": rmin, "ratio/max": rmax, "completion_length": 10.0}) + "\n")


def rand_correct(rng, n, k, p):
    return [[bool(rng.random() < p) for _ in range(k)] for _ in range(n)]


def read_csv(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_single_seed_ci_matches_benchmarks_metrics(tmp_path):
    rng = np.random.default_rng(1)
    per = write_eval(tmp_path, "m", "grpo", 0, "final", "math500", rand_correct(rng, 40, 4, 0.4))
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    rows = {(r["objective"], r["benchmark"]): r for r in read_csv(tmp_path / "out" / "tables" / "main.csv")}
    r = rows[("grpo", "math500")]
    ref = metrics.bootstrap_ci(per)  # the evaluation summary's own CI (seed 0, 2000 resamples)
    assert float(r["avg_at_k"]) == pytest.approx(np.mean(per))
    assert float(r["ci_low"]) == pytest.approx(ref["ci_low"]) and float(r["ci_high"]) == pytest.approx(ref["ci_high"])
    assert int(r["n_seeds"]) == 1 and int(r["n_problems"]) == 40 and r["k"] == "4"


def test_multi_seed_hierarchical_ci_and_average(tmp_path):
    rng = np.random.default_rng(2)
    per_seed, means = [], []
    for seed, p in ((0, 0.2), (1, 0.5), (2, 0.8)):  # large seed-to-seed spread
        a = write_eval(tmp_path, "m", "mhpo", seed, "final", "aime24", rand_correct(rng, 30, 4, p))
        b = write_eval(tmp_path, "m", "mhpo", seed, "final", "amc23", rand_correct(rng, 20, 4, p))
        per_seed.append(a)
        means.append((np.mean(a), np.mean(b)))
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    rows = {(r["objective"], r["benchmark"]): r for r in read_csv(tmp_path / "out" / "tables" / "main.csv")}
    r = rows[("mhpo", "aime24")]
    assert float(r["avg_at_k"]) == pytest.approx(np.mean([m[0] for m in means]))
    assert int(r["n_seeds"]) == 3
    lo, hi = float(r["ci_low"]), float(r["ci_high"])
    assert lo < float(r["avg_at_k"]) < hi
    # Over seeds too: far wider than the problem-only interval of the same data (the per-problem scores
    # averaged over seeds, bootstrapped over problems), which ignores the seed-to-seed spread.
    problems_only = metrics.bootstrap_ci(np.mean(per_seed, axis=0))
    assert problems_only["mean"] == pytest.approx(float(r["avg_at_k"]))
    assert hi - lo > 2 * (problems_only["ci_high"] - problems_only["ci_low"])
    # and about as wide as the spread of the seed means (0.2 .. 0.8 by construction)
    assert lo < min(m[0] for m in means) + 0.1 and hi > max(m[0] for m in means) - 0.1
    avg = rows[("mhpo", "average")]
    assert float(avg["avg_at_k"]) == pytest.approx(np.mean([np.mean(m) for m in zip(*means)]))
    assert float(avg["ci_low"]) < float(avg["avg_at_k"]) < float(avg["ci_high"])


def test_paper_reference_only_for_matching_model(tmp_path):
    rng = np.random.default_rng(3)
    for model in ("qwen2.5-7b-instruct", "tiny"):
        for label in ("base", "mhpo", "gspo"):
            write_eval(tmp_path, model, label, 0, "base" if label == "base" else "final", "math500",
                       rand_correct(rng, 10, 2, 0.5))
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    rows = {(r["model"], r["objective"], r["benchmark"]): r
            for r in read_csv(tmp_path / "out" / "tables" / "main.csv")}
    r = rows[("qwen2.5-7b-instruct", "mhpo", "math500")]
    assert float(r["paper"]) == pytest.approx(0.821)
    assert float(r["delta"]) == pytest.approx(float(r["avg_at_k"]) - 0.821)
    assert float(rows[("qwen2.5-7b-instruct", "base", "average")]["paper"]) == pytest.approx(0.296)
    assert rows[("qwen2.5-7b-instruct", "gspo", "math500")]["paper"] == ""  # GSPO is not in the 7B table
    assert rows[("tiny", "mhpo", "math500")]["paper"] == ""  # other model: no paper numbers
    md = (tmp_path / "out" / "tables" / "main.md").read_text()
    assert "paper 82.1" in md and "secondary digest of the paper" in md and "not like for like" in md
    tex = (tmp_path / "out" / "tables" / "main.tex").read_text()
    assert "\\begin{tabular}" in tex and "qwen2.5-7b-instruct" in tex


def test_stability_statistics(tmp_path):
    grad = [1.0] * 10 + [5.0] + [1.0] * 5 + [3.5] + [1.0] * 3  # two spikes (> 3x running median 1.0)
    entropy = [2.0] * 10 + [1.0] * 10
    write_metrics(tmp_path, "m", "grpo", 0, grad, entropy, rmin=np.exp(-1.5), rmax=np.exp(0.5))
    write_metrics(tmp_path, "m", "grpo", 1, [1.0] * 20, entropy)
    write_metrics(tmp_path, "m", "mhpo", 0, [1.0] * 20, [2.0] * 20)
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    rows = {r["objective"]: r for r in read_csv(tmp_path / "out" / "tables" / "training_signals.csv")}
    assert float(rows["grpo"]["grad_norm_spikes"]) == 1.0  # (2 + 0) / 2 seeds
    assert float(rows["grpo"]["entropy_drop"]) == pytest.approx(1.0)
    assert float(rows["grpo"]["max_abs_log_ratio"]) == pytest.approx((1.5 + np.log(1.25)) / 2)
    assert float(rows["mhpo"]["grad_norm_spikes"]) == 0 and float(rows["mhpo"]["entropy_drop"]) == 0
    assert int(rows["grpo"]["n_seeds"]) == 2
    assert "grad-norm spikes" in (tmp_path / "out" / "tables" / "training_signals.md").read_text()


def test_nonfinite_steps_are_the_counter_total_and_skipped_steps_are_spikes(tmp_path):
    """``nonfinite_skipped`` is the trainer's cumulative counter: 2 skipped steps are 2 (not the counter's sum),
    and a skipped step (null grad norm, the counter rising) is a grad-norm spike, as in the stability study."""
    d = tmp_path / "runs" / "m" / "grpo" / "seed0"
    d.mkdir(parents=True)
    counter = [0] * 8 + [1, 1, 2] + [2] * 9
    with open(d / "metrics.jsonl", "w") as fh:
        for t, c in enumerate(counter, 1):
            skipped = t in (9, 11)
            fh.write(json.dumps({"step": t, "grad_norm": None if skipped else 1.0, "nonfinite_skipped": c,
                                 "entropy": 1.0, "ratio/min": 0.9, "ratio/max": 1.1}) + "\n")
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    row = read_csv(tmp_path / "out" / "tables" / "training_signals.csv")[0]
    assert float(row["nonfinite_skipped"]) == 2 and float(row["grad_norm_spikes"]) == 2


def test_cli_writes_every_output_and_filters_experiments(tmp_path):
    rng = np.random.default_rng(4)
    for label in ("grpo", "mhpo", "stale"):
        for seed in (0, 1):
            write_eval(tmp_path, "tiny", label, seed, "final", "synth_arith", rand_correct(rng, 8, 2, 0.5), step=4)
            write_eval(tmp_path, "tiny", label, seed, "checkpoint-2", "synth_arith", rand_correct(rng, 8, 2, 0.3),
                       step=2)
            write_metrics(tmp_path, "tiny", label, seed, [1.0, 1.2, 0.9, 1.1], [1.0, 0.9, 0.8, 0.7])
    write_eval(tmp_path, "tiny", "base", 0, "base", "synth_arith", rand_correct(rng, 8, 2, 0.1), step=0)
    cmd = [sys.executable, "-m", "mhpo.cli", "aggregate", "--runs", str(tmp_path / "runs"), "--evals",
           str(tmp_path / "evals"), "--out", str(tmp_path / "res")]
    for e in ("tiny/base", "tiny/grpo", "tiny/mhpo"):
        cmd += ["--experiment", e]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for name in ("main", "training_signals"):
        for ext in ("md", "csv", "tex"):
            assert (tmp_path / "res" / "tables" / f"{name}.{ext}").stat().st_size > 0
    for ext in ("png", "pdf"):
        assert (tmp_path / "res" / "figures" / f"training_tiny.{ext}").stat().st_size > 1000
    objs = {r["objective"] for r in read_csv(tmp_path / "res" / "tables" / "main.csv")}
    assert objs == {"base", "grpo", "mhpo"}  # "stale" is not a configured experiment
    curves = aggregate.heldout_curves(aggregate.discover_evals(tmp_path / "evals"))
    assert [s for s, _ in curves["tiny"]["grpo"][0]] == [0, 2, 4]


def test_aggregates_10000_records(tmp_path):
    from aggregate import make_fixture  # perf/aggregate.py

    n = make_fixture(tmp_path, 10_000)
    assert n >= 9_000
    res = aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    assert res["counts"]["evaluations"] == 55
    rows = read_csv(tmp_path / "out" / "tables" / "main.csv")
    assert {r["objective"] for r in rows} == {"base", "grpo", "dapo", "sapo", "gspo", "mhpo"}
    assert all(0 <= float(r["ci_low"]) <= float(r["avg_at_k"]) <= float(r["ci_high"]) <= 1 for r in rows)


def test_truncated_record_file_is_tolerated(tmp_path):
    rng = np.random.default_rng(5)
    write_eval(tmp_path, "m", "grpo", 0, "final", "math500", rand_correct(rng, 5, 2, 0.5))
    f = tmp_path / "evals" / "m" / "grpo" / "seed0" / "final" / "math500.jsonl"
    f.write_text(f.read_text() + '{"problem_id": "p9", "sam')  # killed writer
    ids, scores, _ = aggregate.read_records(f)
    assert len(ids) == 5 and not math.isnan(scores.mean())
