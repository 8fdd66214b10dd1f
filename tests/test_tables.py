"""The main table says what it shows: sample sizes, paired differences from the base model and from GRPO with
bootstrap CIs and significance marks, a sentence in words, pass@k/maj@k, skipped benchmarks. And the one table
writer (mhpo.analysis.tables) that every table goes through: Markdown, CSV and LaTeX escaping. About 5 s."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from mhpo.analysis import aggregate, compare, stability, tables
from mhpo.analysis import aggregate_vl as vl_aggregate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_aggregate import rand_correct, write_eval  # noqa: E402  (the same real evaluation files)


def test_paired_difference_of_a_row_with_itself_is_exactly_zero():
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(40)]
    x = {0: (ids, rng.random(40)), 1: (ids, rng.random(40))}
    d, _ = compare.paired_difference(x, x)
    assert d["mean"] == d["ci_low"] == d["ci_high"] == 0 and not d["significant"]


def test_pairing_by_problem_narrows_the_ci_of_a_constant_shift():
    """B = A + 0.05 on every problem: paired, the CI is exactly the shift; unpaired bootstraps would be wide."""
    rng = np.random.default_rng(1)
    ids = [f"p{i}" for i in range(50)]
    a = rng.random(50) * 0.9
    d, _ = compare.paired_difference({0: (ids, a + 0.05)}, {0: (ids[::-1], (a)[::-1])})  # order does not matter
    assert d["mean"] == pytest.approx(0.05) and d["ci_low"] == pytest.approx(0.05) and d["significant"]


def _table(tmp_path, p_by_label, n=30, seeds=(0, 1), skipped=None):
    rng = np.random.default_rng(7)
    for label, p in p_by_label.items():
        for s in ((0,) if label == "base" else seeds):
            write_eval(tmp_path, "tiny", label, s, "base" if label == "base" else "final", "synth_arith",
                       rand_correct(rng, n, 4, p))
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False, n_boot=500,
                        skipped=skipped)
    with open(tmp_path / "out" / "tables" / "main.csv") as fh:
        rows = {(r["objective"], r["benchmark"]): r for r in csv.DictReader(fh)}
    return (tmp_path / "out" / "tables" / "main.md").read_text(), rows


def test_no_significant_difference_is_said_in_words(tmp_path):
    md, rows = _table(tmp_path, {"base": 0.5, "grpo": 0.5, "mhpo": 0.5},
                      skipped={"math500": "no data file found at planning"})
    assert ("sample sizes: synth_arith 30 problems; k = 4 samples per problem; "
            "seeds per row: base 1, grpo 2, mhpo 2" in md)
    assert "Difference from the base model (untrained): method − base" in md and "Difference from GRPO" in md
    assert "| grpo | " in md.split("method − base (percentage points)")[1]  # the GRPO − base difference is shown
    assert "None of the" in md and "is significant" in md
    assert "pass@4 and maj@4" in md and "synth_arith pass@4" in md
    assert "## Skipped benchmarks" in md and "`math500`: no data file found at planning" in md
    r = rows[("grpo", "synth_arith")]
    assert float(r["minus_base_ci_low"]) <= float(r["minus_base"]) <= float(r["minus_base_ci_high"])
    assert r["minus_base_significant"] == "False" and r["pass_at_k"] and r["maj_at_k"]
    assert rows[("mhpo", "average")]["minus_grpo"] != ""


def test_a_large_difference_is_marked_significant(tmp_path):
    md, rows = _table(tmp_path, {"base": 0.1, "grpo": 0.1, "mhpo": 0.9}, n=40)
    assert rows[("mhpo", "synth_arith")]["minus_grpo_significant"] == "True"
    assert rows[("grpo", "synth_arith")]["minus_base_significant"] == "False"
    assert "**Significant differences**" in md and "mhpo − grpo on synth_arith" in md and "]*" in md


def test_runs_of_different_code_are_not_put_under_one_label(tmp_path):
    rng = np.random.default_rng(0)
    for s in (0, 1):
        write_eval(tmp_path, "tiny", "mhpo", s, "final", "synth_arith", rand_correct(rng, 5, 2, 0.5))
        run = tmp_path / "runs" / "tiny" / "mhpo" / f"seed{s}"
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(json.dumps({"objective": "mhpo", "code_hash": f"code{s}"}))
    with pytest.raises(ValueError, match=r"tiny/mhpo: its training runs come from different code \(code0: seed0; "
                                         r"code1: seed1\); rerun the stale ones"):
        aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False)
    assert not (tmp_path / "out" / "tables" / "main.md").exists()


# ------------------------------------------------------------------------------------------ the table writer
def test_tex_escape_maps_every_special_character_once():
    assert tables.tex_escape("a&b%c$d#e_f{g}h~i^j\\k|l–m±n") == (
        r"a\&b\%c\$d\#e\_f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k$|$l--m$\pm$n")
    assert tables.tex_escape("plain text, 1.5 [0.2, 3] (x) > y") == "plain text, 1.5 [0.2, 3] (x) > y"
    assert tables.tex_escape(3) == "3"


def test_md_table_escapes_pipes_in_header_and_cells():
    assert tables.md_table(["max |log r|", "b"], [["x|y", "1"]]) == (
        "| max \\|log r\\| | b |\n|---|---|\n| x\\|y | 1 |\n")


def test_tex_table_escapes_unless_raw_and_aligns_label_columns():
    t = tables.tex_table(["a_b", "c"], [["x_y", "50%"]], "cap_tion", label_cols=1)
    assert "\\begin{tabular}{lr}" in t and "a\\_b & c \\\\" in t and "x\\_y & 50\\% \\\\" in t
    assert "\\caption{cap\\_tion}" in t
    raw = tables.tex_table(["a_b", "c", "d"], [["$\\Delta$", "1"]], "$x$", label_cols=2, raw=True)
    assert "{llr}" in raw and "a\\_b & c & d" in raw and "$\\Delta$ & 1 \\\\" in raw and "\\caption{$x$}" in raw


def test_csv_text_writes_none_and_nan_as_given_and_floats_round_trip():
    text = tables.csv_text(["a", "b", "c", "d", "e"], [[None, math.nan, 0.1, np.float64(1 / 3), "x,y"]])
    assert text == "a,b,c,d,e\n,,0.1,0.3333333333333333,\"x,y\"\n"
    assert tables.csv_text(["a"], [[math.nan]], nan="nan") == "a\nnan\n"
    assert tables.csv_records([{"a": 1, "b": math.nan, "c": True}]) == "a,b,c\n1,nan,True\n"
    assert tables.csv_records([]) == ""


def test_every_table_escapes_a_label_the_same_way(tmp_path):
    """One label with LaTeX specials (``mhpo_lfm&x``) in the main, VL and stability tables: escaped once, alike."""
    label, esc = "mhpo_lfm&x", r"mhpo\_lfm\&x"
    rng = np.random.default_rng(0)
    for lab in ("base", "grpo", label):
        ck = "base" if lab == "base" else "final"
        write_eval(tmp_path, "tiny", lab, 0, ck, "synth_arith", rand_correct(rng, 6, 2, 0.5))
        write_eval(tmp_path, "tiny", lab, 0, ck, "synth_vl_count", rand_correct(rng, 6, 2, 0.5))
    aggregate.aggregate([tmp_path / "runs"], tmp_path / "evals", tmp_path / "out", figures=False, n_boot=100)
    vl_aggregate.aggregate_vl(tmp_path / "evals", tmp_path / "out", n_boot=100)
    for lab, seed in (("grpo", 0), (label, 0)):
        io_rows = [{"step": t, "reward/mean": 0.1 * t, "grad_norm": 1.0} for t in range(1, 6)]
        path = tmp_path / "runs" / "tiny" / lab / f"seed{seed}" / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in io_rows))
    stability.analyze(tmp_path / "runs", tmp_path / "evals", tmp_path / "st", references=("grpo",), plots=False,
                      n_boot=100)
    main = (tmp_path / "out" / "tables" / "main.tex").read_text()
    vl = (tmp_path / "out" / "tables" / "vl.tex").read_text()
    study = (tmp_path / "st" / "tables" / "stability.tex").read_text()
    for tex in (main, vl, study):
        assert f"{esc} &" in tex and label not in tex
    # the difference tables' headers are escaped once (a benchmark name with "_" is not escaped twice)
    assert "method - base & synth\\_arith & synth\\_vl\\_count & average" in main and "textbackslash" not in main
