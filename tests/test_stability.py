"""The stability study's statistics (mhpo.analysis.stability) on hand-built metrics.jsonl files whose answers are
worked out by hand, its paired tests on known differences, and the files it writes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from mhpo.analysis import stability
from mhpo.analysis.stability import Params
from mhpo.cli import stability as stability_cli
from mhpo.common import io


def write_run(root: Path, regime: str, method: str, seed: int, rows: list[dict], status: str = "complete") -> Path:
    run = root / regime / method / f"seed{seed}"
    io.write_jsonl(run / "metrics.jsonl", rows)
    io.write_json(run / "manifest.json", {"status": status, "objective": method, "seed": seed})
    return run


def write_eval(root: Path, regime: str, method: str, seed: int, acc: float, bench: str = "synth_arith",
               checkpoint: str = "final") -> None:
    io.write_json(root / regime / method / f"seed{seed}" / checkpoint / f"{bench}.summary.json",
                  {"benchmark": bench, "k": 4, "n_problems": 10,
                   "metrics": {m: {"mean": acc, "ci_low": acc, "ci_high": acc} for m in ("avg@k", "pass@k", "maj@k")}})


def rows_from(rewards, grad=None, entropy=None, rmin=None, rmax=None, mal=None):
    n = len(rewards)
    grad = grad or [1.0] * n
    entropy = entropy or [1.0] * n
    rmin = rmin or [1.0] * n
    rmax = rmax or [1.0] * n
    mal = mal or [0.0] * n
    return [{"step": i + 1, "reward/mean": rewards[i], "grad_norm": grad[i], "entropy": entropy[i],
             "ratio/min": rmin[i], "ratio/max": rmax[i], "ratio/mean_abs_log": mal[i],
             "ratio/p1": rmin[i], "ratio/p50": 1.0, "ratio/p99": rmax[i]} for i in range(n)]


# ------------------------------------------------------------------------------------------ per-run statistics
# The signals' definitions are tested in test_signals.py (mhpo.analysis.signals); here the study's use of them.
def test_run_stats_from_a_real_metrics_file(tmp_path):
    rewards = [0.2, 0.5, 0.8, 0.7, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.8, 0.8]
    grad = [1.0] * 7 + [5.0] + [1.0] * 4
    entropy = [2.0] * 5 + [1.0] * 7
    rmin = [1.0, 0.5] * 6
    rmax = [1.0, 2.5] * 6
    rows = rows_from(rewards, grad, entropy, rmin, rmax, mal=[0.0, 0.2] * 6)
    write_run(tmp_path / "runs", "tiny", "grpo", 0, rows[::-1] + rows[:2])  # out of order + duplicates
    write_eval(tmp_path / "evals", "tiny", "grpo", 0, 0.375)
    write_eval(tmp_path / "evals", "tiny", "grpo", 0, 0.125, bench="synth_other")
    runs = stability.load_runs(tmp_path / "runs")
    assert [(r.regime, r.method, r.seed, r.status, len(r.rows)) for r in runs] == [("tiny", "grpo", 0, "complete", 12)]
    s = stability.per_run_table(runs, tmp_path / "evals", Params(spike_window=20, spike_min_history=5, entropy_k=5))[0]
    assert s["final_accuracy"] == pytest.approx(0.25)  # mean of the two benchmarks
    assert s["reward_auc"] == pytest.approx(np.trapezoid(rewards) / 11)
    assert s["grad_spikes"] == 1
    assert s["max_abs_log_ratio"] == pytest.approx(math.log(2.5))
    assert s["mean_abs_log_ratio"] == pytest.approx(0.1)
    assert s["entropy_drop"] == pytest.approx(1.0)
    assert s["collapse_events"] == 1
    assert stability.final_accuracy(tmp_path / "evals", "tiny", "grpo", 0, ["synth_other"]) == 0.125
    assert math.isnan(stability.final_accuracy(tmp_path / "evals", "tiny", "grpo", 1))


def test_final_accuracy_falls_back_to_last_numbered_checkpoint(tmp_path):
    write_eval(tmp_path, "tiny", "mhpo", 0, 0.1, checkpoint="checkpoint-9")
    write_eval(tmp_path, "tiny", "mhpo", 0, 0.7, checkpoint="checkpoint-40")
    write_eval(tmp_path, "tiny", "mhpo", 0, 0.3, checkpoint="checkpoint-10")
    assert stability.final_accuracy(tmp_path, "tiny", "mhpo", 0) == 0.7


# ------------------------------------------------------------------------------------------ statistics
def test_t_interval_by_hand():
    lo, hi = stability.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half))
    assert all(math.isnan(x) for x in stability.t_interval([1.0]))


def test_paired_tests_on_known_differences():
    # consistent large improvement, 3 seeds: d = (1.0, 1.1, 0.9), mean 1, sd 0.1 -> t = 17.32, df 2
    d = [1.0, 1.1, 0.9]
    assert stability.paired_t_pvalue(d) == pytest.approx(0.003316, abs=1e-5)
    # sign flip with n=3: only the all-+ and all-- vectors reach |mean| = 1 -> p = 2/8, its floor
    assert stability.sign_flip_pvalue(d) == pytest.approx(0.25)
    # inconsistent: d = (1, 1, -0.5): mean 0.5, sd sqrt(0.75) -> t = 1, p = 1 - 1/sqrt(3) = 0.4226 (df 2);
    # sign sums ±1 ±1 ∓0.5 have magnitudes {1.5, 2.5, 0.5, 0.5} twice each: 4 of 8 reach 1.5 -> p = 0.5
    d0 = [1.0, 1.0, -0.5]
    assert stability.paired_t_pvalue(d0) == pytest.approx(1 - 1 / math.sqrt(3))
    assert stability.sign_flip_pvalue(d0) == pytest.approx(0.5)
    # with 7 seeds the sign flip can decide: all positive -> p = 2/128
    assert stability.sign_flip_pvalue([1, 2, 1, 3, 2, 1, 2]) == pytest.approx(2 / 128)
    # identical differences: t undefined -> the sign-flip p (no overclaiming from 3 equal spike counts)
    assert stability.paired_t_pvalue([1.0, 1.0, 1.0]) == pytest.approx(0.25)
    assert stability.paired_t_pvalue([0.0, 0.0, 0.0]) == 1.0
    assert stability.holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])


def _study(tmp_path: Path, n_seeds: int = 3) -> tuple[Path, Path]:
    """grpo: spiky, collapsing, low accuracy; mhpo: smooth, high accuracy; sapo = grpo + noise (no difference)."""
    runs, evals = tmp_path / "runs", tmp_path / "evals"
    rng = np.random.default_rng(1)
    for seed in range(n_seeds):
        base = [0.1 + 0.02 * t for t in range(30)]
        spiky = [1.0] * 30
        for t in ((10, 20, 25), (10, 15, 20, 25), (10, 20))[seed % 3]:  # 3, 4, 2 spikes
            spiky[t] = 8.0
        crash = base[:12] + [0.05] * 10 + base[22:]
        noise = float(rng.normal(0, 0.01))
        write_run(runs, "tiny", "grpo", seed, rows_from(crash, spiky, [2.0] * 15 + [1.0] * 15, [0.3] * 30, [4.0] * 30))
        write_run(runs, "tiny", "mhpo", seed, rows_from(base, [1.0 + 0.01 * seed] * 30, [2.0] * 30, [0.8] * 30,
                                                       [1.3] * 30))
        write_run(runs, "tiny", "sapo", seed, rows_from([c + noise for c in crash], spiky, [2.0] * 15 + [1.0] * 15,
                                                       [0.3] * 30, [4.0] * 30))
        write_eval(evals, "tiny", "grpo", seed, 0.30 + 0.01 * seed)
        write_eval(evals, "tiny", "mhpo", seed, 0.50 + 0.012 * seed)
        write_eval(evals, "tiny", "sapo", seed, 0.30 + (0.02, -0.03, 0.01, 0.0)[seed % 4])
    return runs, evals


def test_paired_table_and_summary_decide_correctly(tmp_path):
    runs, evals = _study(tmp_path)
    per_run = stability.per_run_table(stability.load_runs(runs), evals)
    paired = {(r["method"], r["metric"]): r for r in stability.paired_table(per_run, ["grpo"], alpha=0.05, test="t")}
    acc = paired[("mhpo", "final_accuracy")]
    assert acc["n"] == 3 and acc["seeds"] == "0 1 2"
    assert acc["mean_diff"] == pytest.approx(0.202) and acc["significant"]
    assert acc["p_perm"] == pytest.approx(0.25) and acc["p_perm_min"] == pytest.approx(0.25)
    # spikes: d = (-3, -4, -2), mean -3, sd 1 -> t = -5.196, p = 0.0351
    spikes = paired[("mhpo", "grad_spikes")]
    assert spikes["mean_diff"] == -3 and spikes["p_t"] == pytest.approx(0.03510, abs=1e-4) and spikes["significant"]
    # one collapse fewer on every seed: d = (-1, -1, -1) has no variance -> sign-flip p = 0.25, not significant
    collapse = paired[("mhpo", "collapse_events")]
    assert collapse["mean_diff"] == -1 and collapse["p_t"] == pytest.approx(0.25) and not collapse["significant"]
    # sapo's accuracy differs by (+0.02-0.00, -0.03-0.01, +0.01-0.02) = (0.02, -0.04, -0.01): not significant
    s = paired[("sapo", "final_accuracy")]
    assert s["mean_diff"] == pytest.approx(-0.01) and not s["significant"]
    assert not paired[("sapo", "grad_spikes")]["significant"]  # identical: d = 0, p = 1
    # the permutation decision cannot reject with 3 seeds
    perm = stability.paired_table(per_run, ["grpo"], alpha=0.05, test="permutation")
    assert not any(r["significant"] for r in perm)
    text = stability.summary_text(stability.group_table(per_run), list(paired.values()), 0.05, "t")
    assert "`mhpo` held-out avg@k: better" in text
    assert "`mhpo` grad-norm spikes: better" in text
    assert "| tiny | grpo | better held-out accuracy | held-out avg@k | supported (p < 0.001) |" in text
    assert ("| tiny | grpo | no policy erosion (reward collapse) | collapse events | "
            "not shown (difference -1.00, p = 0.250) |" in text)
    assert "`sapo`: held-out avg@k" in text  # listed as not significant
    assert "cannot go below p = 0.25" in text


def test_cli_writes_tables_figures_summary_and_is_deterministic(tmp_path):
    runs, evals = _study(tmp_path)
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    argv = ["--runs", str(runs), "--evals", str(evals), "--reference", "grpo,mhpo"]
    assert stability_cli.main(argv + ["--out", str(out1)]) == 0
    assert stability_cli.main(argv + ["--out", str(out2)]) == 0
    files = sorted(p.relative_to(out1).as_posix() for p in out1.rglob("*") if p.is_file())
    assert files == sorted(
        [f"tables/stability{s}.{e}" for s in ("", "_paired") for e in ("md", "csv", "tex")]
        + ["tables/stability_runs.csv", "stability_summary.md", "tables/stability_frontier.md",
           "tables/stability_frontier.csv"]
        + [f"figures/stability_{n}.{e}" for n in ("reward", "grad_norm", "ratio", "entropy", "frontier")
           for e in ("png", "pdf")])
    for f in files:  # same inputs -> byte-identical outputs (seeded bootstrap, fixed figure metadata)
        assert (out1 / f).read_bytes() == (out2 / f).read_bytes(), f
    assert not list(out1.rglob("*.tmp"))
    with open(out1 / "tables" / "stability.csv") as fh:
        rows = {(r["regime"], r["method"], r["metric"]): r for r in csv.DictReader(fh)}
    acc = rows[("tiny", "mhpo", "final_accuracy")]
    assert int(acc["n"]) == 3 and float(acc["mean"]) == pytest.approx(0.512)
    assert float(acc["t_low"]) < 0.512 < float(acc["t_high"])
    # bootstrap within the range
    assert float(acc["boot_low"]) >= 0.5 - 1e-9 and float(acc["boot_high"]) <= 0.524 + 1e-9
    md = (out1 / "tables" / "stability.md").read_text()
    assert "| tiny | mhpo | 3 | 0.512 [" in md
    assert "\\begin{tabular}" in (out1 / "tables" / "stability.tex").read_text()
    summary = (out1 / "stability_summary.md").read_text()
    assert "## tiny: each method vs `grpo`" in summary and "## tiny: each method vs `mhpo`" in summary
    assert "ablation claim" not in summary  # no ablation runs in this study
    assert (out1 / "figures" / "stability_ratio.png").stat().st_size > 1000


def test_stability_frontier_from_manifests_and_base_accuracy(tmp_path):
    # 2 methods x U in {1, 4, 16} at one lr, 2 seeds; base accuracy 0.6 -> collapse threshold 0.6 - 0.1 = 0.5.
    # grpo survives everywhere (frontier 16); is_pg has one collapsed seed at U=4 (frontier 1) and is fine again
    # at U=16, which must not extend its frontier (survival has to hold at every smaller U).
    runs, evals = tmp_path / "runs", tmp_path / "evals"
    acc = {("grpo", 1): (0.7, 0.7), ("grpo", 4): (0.6, 0.5), ("grpo", 16): (0.55, 0.5),
           ("is_pg", 1): (0.7, 0.7), ("is_pg", 4): (0.6, 0.1), ("is_pg", 16): (0.5, 0.5)}
    for (method, u), pair in acc.items():
        for seed, a in enumerate(pair):
            run = write_run(runs, f"u{u}", method, seed, rows_from([0.5, 0.5]))
            io.write_json(run / "manifest.json", {"status": "complete", "config": {
                "rollout": {"updates_per_rollout": u}, "optim": {"lr": 5e-4}}})
            write_eval(evals, f"u{u}", method, seed, a)
    io.write_json(evals / "u1" / "base" / "seed0" / "base" / "synth_add.summary.json",
                  {"benchmark": "synth_add", "metrics": {"avg@k": {"mean": 0.6}}})
    out = tmp_path / "out"
    assert stability_cli.main(["--runs", str(runs), "--evals", str(evals), "--out", str(out)]) == 0
    with open(out / "tables" / "stability_frontier.csv") as fh:
        rows = {(r["method"], int(r["updates_per_rollout"])): r for r in csv.DictReader(fh)}
    assert float(rows[("grpo", 1)]["base_accuracy"]) == pytest.approx(0.6)
    assert [rows[("grpo", u)]["survived"] for u in (1, 4, 16)] == ["True"] * 3
    assert [rows[("is_pg", u)]["collapsed"] for u in (1, 4, 16)] == ["0", "1", "0"]
    assert {rows[("grpo", u)]["frontier"] for u in (1, 4, 16)} == {"16"}
    assert {rows[("is_pg", u)]["frontier"] for u in (1, 4, 16)} == {"1"}
    md = (out / "tables" / "stability_frontier.md").read_text()
    assert "| is_pg | 0.0005 | 0.700 | 0.350 (1/2 collapsed) | 0.500 | 1 |" in md
    assert "## Stability frontier" in (out / "stability_summary.md").read_text()
    assert (out / "figures" / "stability_frontier.png").read_bytes()[:4] == b"\x89PNG"


def test_ablation_claim_verdicts(tmp_path):
    runs, evals = _study(tmp_path)
    for seed in range(3):  # LFM only: clearly less accurate than MHPO (0.5 + 0.012 seed) on every seed
        write_run(runs, "tiny", "mhpo_lfm", seed, rows_from([0.2] * 10))
        write_eval(evals, "tiny", "mhpo_lfm", seed, 0.40 + 0.011 * seed)
    assert stability_cli.main(["--runs", str(runs), "--evals", str(evals), "--out", str(tmp_path / "o"),
                           "--reference", "grpo,mhpo", "--no-plots"]) == 0
    summary = (tmp_path / "o" / "stability_summary.md").read_text()
    # d = (-0.100, -0.101, -0.102): mean -0.101, sd 0.001 -> t = -174.9, p < 0.001
    assert "| tiny | mhpo_lfm (LFM only) | -0.101 [" in summary and "supported (p < 0.001) |" in summary
    assert not (tmp_path / "o" / "figures").exists()


def test_cli_errors(tmp_path, capsys):
    assert stability_cli.main(["--runs", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    write_run(tmp_path / "runs", "tiny", "mhpo", 0, rows_from([0.1, 0.2]))
    assert stability_cli.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o"),
                               "--reference", "grpo"]) == 2
    assert "reference" in capsys.readouterr().err


def test_failed_run_is_counted_and_missing_accuracy_skipped(tmp_path):
    runs, evals = _study(tmp_path)
    write_run(runs, "tiny", "mhpo", 3, rows_from([0.5, 0.5, float("nan")], [1.0, 1.0, float("nan")]), status="failed")
    per_run = stability.per_run_table(stability.load_runs(runs), evals)
    groups = {(g["method"], g["metric"]): g for g in stability.group_table(per_run)}
    assert groups[("mhpo", "final_accuracy")]["n"] == 3  # the failed run has no evaluation
    assert groups[("mhpo", "reward_auc")]["n"] == 4 and groups[("mhpo", "reward_auc")]["n_failed"] == 1
    failed = next(r for r in per_run if r["method"] == "mhpo" and r["seed"] == 3)
    assert failed["reward_auc"] == pytest.approx(0.5)
    # seed 3 has no grpo partner: the paired comparison stays on the 3 common seeds
    paired = stability.paired_table(per_run, ["grpo"])
    assert {r["n"] for r in paired if r["method"] == "mhpo"} == {3}
