"""The training signals (mhpo.analysis.signals), each defined once: worked-out values by hand, and the property that
the main aggregate and the stability study, given the same windows, read the same value from the same run."""

from __future__ import annotations

import json
import math
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mhpo.analysis import aggregate, signals, stability
from mhpo.analysis.signals import Params


# ------------------------------------------------------------------------------------------ definitions
def test_spikes_against_running_median():
    # steps 0-5 flat at 1.0; step 6 = 3.5 > 3 x median(1) -> spike; step 7 = 3.0 is not > 3 x median -> no spike;
    # step 8 NaN (skipped step) -> spike; step 9 = 10 (median of previous 5-window finite {1,1,1,3.5,3}=... see below)
    g = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.5, 3.0, float("nan"), 10.0, None]
    m = signals.spike_mask(g, factor=3.0, window=5, min_history=3)
    # t=9: previous 5 steps are idx 4..8 -> finite {1.0, 3.5, 3.0}, median 3.0, 10 > 9 -> spike
    # t=10: None -> missing, never a spike
    assert m.tolist() == [False] * 6 + [True, False, True, True, False]
    # too little history: a huge value at t=1 is not judged
    assert not signals.spike_mask([1.0, 100.0], window=20, min_history=2).any()
    # the window matters: with window 1 only the previous step is the baseline
    assert signals.spike_mask([1.0, 4.0, 13.0], factor=3.0, window=1, min_history=1).tolist() == [False, True, True]
    assert signals.spike_mask([1.0, 4.0, 11.0], factor=3.0, window=1, min_history=1).tolist() == [False, True, False]


def test_skipped_nonfinite_steps_count_as_spikes():
    # metrics.jsonl writes a non-finite grad norm as null; the trainer's counter marks the skipped steps (2 and 4)
    rows = [{"step": i + 1, "grad_norm": g, "nonfinite_skipped": k}
            for i, (g, k) in enumerate([(1.0, 0), (None, 1), (1.0, 1), (None, 2), (None, 2)])]
    assert signals.grad_norms([r["grad_norm"] for r in rows], [r["nonfinite_skipped"] for r in rows]) == [
        1.0, math.inf, 1.0, math.inf, None]
    cols = signals.series(rows)  # the same from columns, where null is NaN
    assert signals.grad_norms(cols["grad_norm"], cols["nonfinite_skipped"]) == [1.0, math.inf, 1.0, math.inf, None]
    assert stability.run_stats(rows)["grad_spikes"] == 2
    assert signals.run_signals(cols)["nonfinite_steps"] == 2  # the cumulative counter's last value, not its sum


def test_reward_auc_trapezoid_normalised():
    # trapezoid of (0,1,1,0) over steps 1..4: (0.5 + 1 + 0.5) / 3
    assert signals.reward_auc([1, 2, 3, 4], [0, 1, 1, 0]) == pytest.approx(2 / 3)
    # constant reward -> AUC = the constant, whatever the step spacing
    assert signals.reward_auc([1, 3, 10], [0.4, 0.4, 0.4]) == pytest.approx(0.4)
    # uneven spacing weighs intervals by their width: (0+1)/2*1 + (1+1)/2*3 over 4
    assert signals.reward_auc([1, 2, 5], [0, 1, 1]) == pytest.approx(3.5 / 4)
    assert signals.reward_auc([7], [0.3]) == 0.3
    assert math.isnan(signals.reward_auc([], []))


def test_max_abs_log_ratio():
    assert signals.max_abs_log_ratio([0.5, 0.9], [1.5, 3.0]) == pytest.approx(math.log(3.0))
    assert signals.max_abs_log_ratio([0.1, 0.9], [1.5, 3.0]) == pytest.approx(math.log(10.0))
    assert signals.max_abs_log_ratio([1.0], [1.0]) == 0.0
    assert signals.max_abs_log_ratio([0.0], [1.0]) == 20.0  # underflow clamps like the objectives
    assert signals.max_abs_log_ratio([float("nan")], [math.inf]) == 20.0
    assert math.isnan(signals.max_abs_log_ratio([None], [None]))


def test_entropy_drop():
    h = [2.0, 2.0, 2.0, 1.8, 1.5, 1.0, 0.6, 0.5, 0.5, 0.4]
    assert signals.entropy_drop(h, k=3) == pytest.approx(2.0 - (0.5 + 0.5 + 0.4) / 3)
    # k is capped at floor(T/2) so the windows never overlap: T=3 -> k=1
    assert signals.entropy_drop([3.0, 2.0, 1.0], k=5) == pytest.approx(2.0)
    assert math.isnan(signals.entropy_drop([1.0], k=5))
    # as a fraction of the steps: 20% of 10 -> the ends are 2 steps; never below 1 step
    assert signals.entropy_drop(h, fraction=0.2) == pytest.approx(2.0 - 0.45)
    assert signals.entropy_drop([3.0, None, 2.0, 1.0], fraction=0.01) == pytest.approx(2.0)  # None is dropped
    assert math.isnan(signals.entropy_drop([1.0], fraction=0.1))


def test_collapse_events():
    # running max reaches 0.8; 0.3 < 0.4 for steps 4-9 (6 steps) -> one event; recovery;
    # then 0.2 for 3 steps -> too short
    r = [0.2, 0.5, 0.8, 0.7, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.8, 0.2, 0.2, 0.2, 0.8]
    assert signals.collapse_events(r, ratio=0.5, min_len=6, min_max=0.1) == [(4, 9)]
    assert signals.collapse_events(r, ratio=0.5, min_len=3, min_max=0.1) == [(4, 9), (11, 13)]
    # a run that never recovers is one event, closed at the end
    assert signals.collapse_events([0.6, 0.1, 0.1, 0.1], min_len=3) == [(1, 3)]
    # noise near zero is not a collapse: the running max never reaches min_max
    assert signals.collapse_events([0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], min_len=3, min_max=0.1) == []
    # exactly half the running max is not below half
    assert signals.collapse_events([0.8, 0.4, 0.4, 0.4], min_len=3) == []


def test_clean_rows_orders_steps_and_keeps_the_first_of_each():
    rows = [{"step": 3, "x": 3}, {"step": 1, "x": 1}, {"step": 3, "x": 30}, {"step": 2, "x": 2}]
    assert [r["x"] for r in signals.clean_rows(rows)] == [1, 2, 3]


def test_describe_names_each_window():
    study, main = signals.describe(Params()), signals.describe(aggregate.SIGNALS)
    assert study["grad_spikes"] == "grad-norm spikes (> 3× running median, window 20)"
    assert main["grad_spikes"] == "grad-norm spikes (> 3× running median, window 50)"
    assert study["entropy_drop"] == "entropy drop (mean of first − last 5 steps)"
    assert main["entropy_drop"] == "entropy drop (first − last 10% of steps)"


# ------------------------------------------------------------------------------------------ one definition
def _write_run(root: Path, rows: list[dict]) -> None:
    path = root / "m" / "obj" / "seed0" / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12)


_value = st.one_of(st.none(), st.floats(0.05, 50.0))
_params = st.builds(Params, spike_factor=st.sampled_from([1.5, 2.0, 3.0]), spike_window=st.integers(1, 60),
                    spike_min_history=st.integers(1, 6), entropy_k=st.integers(1, 8),
                    entropy_fraction=st.one_of(st.none(), st.floats(0.01, 0.5)))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), params=st.one_of(st.just(Params()), st.just(aggregate.SIGNALS), _params))
def test_the_study_and_the_aggregate_read_the_same_signal_from_the_same_run(data, params):
    """A run with nulls, non-finite skipped steps, an underflowed ratio, steps out of order and a resumed
    (repeated) stretch: with the same windows the aggregate's row and the study's row agree on every signal."""
    n = data.draw(st.integers(1, 40), label="steps")
    grad = data.draw(st.lists(_value, min_size=n, max_size=n), label="grad_norm")
    entropy = data.draw(st.lists(_value, min_size=n, max_size=n), label="entropy")
    rmin = data.draw(st.lists(st.one_of(st.none(), st.just(0.0), st.floats(1e-6, 1.0)), min_size=n, max_size=n))
    rmax = data.draw(st.lists(st.one_of(st.none(), st.floats(1.0, 1e6)), min_size=n, max_size=n))
    skips = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="skipped")
    counter, rows = 0, []
    for t in range(n):
        counter += skips[t]
        rows.append({"step": t + 1, "grad_norm": None if skips[t] else grad[t], "entropy": entropy[t],
                     "ratio/min": rmin[t], "ratio/max": rmax[t], "nonfinite_skipped": counter,
                     "reward/mean": 0.1 * t})
    order = data.draw(st.randoms(use_true_random=False), label="order")
    shuffled = rows + [dict(r, grad_norm=999.0) for r in rows[n // 2:]]  # a resumed stretch, logged again
    order.shuffle(shuffled)
    shuffled.sort(key=lambda r: r["grad_norm"] == 999.0)  # the first occurrence of a step is the original
    with tempfile.TemporaryDirectory() as d:
        _write_run(Path(d), shuffled)
        main = aggregate.run_stability(aggregate.read_metrics([Path(d)])[("m", "obj")][0], params)
        study = stability.run_stats(stability.load_runs(d)[0].rows, params)
    assert main["n_steps"] == study["steps"] == n
    assert _same(main["grad_norm_spikes"], study["grad_spikes"])
    assert _same(main["entropy_drop"], study["entropy_drop"])
    assert _same(main["max_abs_log_ratio"], study["max_abs_log_ratio"])
    # and both equal the single definition applied to the run as logged
    ref = signals.run_signals(signals.series(rows), params)
    assert _same(study["grad_spikes"], ref["grad_spikes"]) and _same(study["entropy_drop"], ref["entropy_drop"])
    assert main["nonfinite_skipped"] == sum(skips)


def test_the_windows_differ_by_parameter_only_and_the_tables_name_them(tmp_path):
    rng = random.Random(0)
    grad = [1.0] * 40 + [2.0] * 20 + [5.0]  # the last step: 5 > 3 × 1 (median of 50 steps), not > 3 × 2 (of 20)
    rows = [{"step": t + 1, "grad_norm": g, "entropy": 2.0 - t / 70 + rng.uniform(0, 0.01), "ratio/min": 0.5,
             "ratio/max": 2.0, "reward/mean": 0.5} for t, g in enumerate(grad)]
    _write_run(tmp_path / "runs", rows)
    cols = signals.series(rows)
    study_w, main_w = signals.run_signals(cols, Params()), signals.run_signals(cols, aggregate.SIGNALS)
    assert (study_w["grad_spikes"], main_w["grad_spikes"]) == (0, 1)  # different windows, different counts ...
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    stability.analyze(tmp_path / "runs", None, tmp_path / "study", references=("obj",), plots=False)
    main_md = (tmp_path / "out" / "tables" / "training_signals.md").read_text()
    study_md = (tmp_path / "study" / "tables" / "stability.md").read_text()
    # ... each table computes with its windows and says which
    assert f"| m | obj | 1 | {len(rows)} | {main_w['grad_spikes']:.0f} |" in main_md
    assert "grad-norm spikes (> 3× running median, window 50)" in main_md
    assert "entropy drop (first − last 10% of steps)" in main_md
    assert f"| m | obj | 1 | – | 0.500 | {study_w['grad_spikes']:.2f} |" in study_md  # accuracy –, reward AUC
    assert "grad-norm spikes (> 3× running median, window 20)" in study_md
    assert "entropy drop (mean of first − last 5 steps)" in study_md
    assert not np.isclose(study_w["entropy_drop"], main_w["entropy_drop"])
