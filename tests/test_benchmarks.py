"""The benchmark registry: declarative entries, gold rules, data lookup, clear errors, real copies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import benchmarks
from benchmarks import catalog
from benchmarks.catalog import BenchmarkError, gold_of

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
NAMES = ["aime24", "aime25", "amc23", "gsm8k", "hmmt25", "math500", "minerva_math", "olympiadbench"]


def test_every_paper_benchmark_is_registered():
    assert set(NAMES) <= set(benchmarks.available())
    for name in NAMES:
        b = benchmarks.get(name)
        assert b.name == name and b.k >= 1 and b.chat_template is True
        assert "\\boxed{}" in b.format_prompt("P") and b.format_prompt("P").startswith("P\n")
        assert {"temperature", "top_p", "max_tokens"} <= set(b.sampling)


def test_registry_entries_are_data(tmp_path):
    for path in catalog.REGISTRY_DIR.glob("*.yaml"):
        entry = yaml.safe_load(path.read_text())
        assert entry["gold_rule"] in catalog.GOLD_RULES, path


def test_prompt_keeps_latex_braces():
    b = benchmarks.get("math500")
    assert b.format_prompt("Find $\\frac{1}{2}$ of {x}.").startswith("Find $\\frac{1}{2}$ of {x}.\n")


@pytest.mark.parametrize(
    "value, rule, gold",
    [
        ("42", "field", "42"),
        ("She has 3 + 4 = <<3+4=7>>7.\n#### 7", "after_hashes", "7"),
        ("First \\boxed{2/4}, so \\boxed{\\frac{1}{2}}.", "last_boxed", "\\frac{1}{2}"),
        (["$\\frac{5}{6}$"], "first_of_list", "$\\frac{5}{6}$"),
    ],
)
def test_gold_rules(value, rule, gold):
    assert gold_of(value, rule) == gold


def test_missing_gold_is_a_clear_error():
    with pytest.raises(BenchmarkError, match="no gold answer under rule 'after_hashes'"):
        gold_of("no hashes here", "after_hashes", where="gsm8k row 3")


def test_fixture_layouts_load_with_each_field_mapping():
    gsm = benchmarks.get("gsm8k").load(FIXTURES)
    assert [(r["id"], r["gold"]) for r in gsm] == [("0", "7"), ("1", "750")]
    assert gsm[0]["prompt"].startswith("Ann has 3 apples")
    minerva = benchmarks.get("minerva_math").load(FIXTURES)
    assert [(r["id"], r["gold"]) for r in minerva] == [("0", "6"), ("1", "\\frac{1}{2}")]
    olymp = benchmarks.get("olympiadbench").load(FIXTURES)
    assert [(r["id"], r["gold"]) for r in olymp] == [("11", "$2,-2$"), ("12", "$\\frac{5}{6}$")]
    math = benchmarks.get("math500").load(FIXTURES, limit=2)
    assert [r["id"] for r in math] == ["test/prealgebra/1.json", "test/precalculus/2.json"]


def test_data_dir_from_environment(monkeypatch):
    monkeypatch.setenv("MHPO_BENCHMARK_DIR", str(FIXTURES))
    assert len(benchmarks.get("aime24").load()) == 4


def test_missing_data_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("MHPO_ONLINE", raising=False)
    with pytest.raises(BenchmarkError) as err:
        benchmarks.get("aime25").load(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "aime25" / "test.jsonl") in msg
    assert "--data-dir" in msg and "MHPO_BENCHMARK_DIR" in msg and "MHPO_ONLINE=1" in msg


def test_malformed_jsonl_names_file_and_line(tmp_path):
    (tmp_path / "aime24").mkdir()
    (tmp_path / "aime24" / "test.jsonl").write_text('{"problem": "a", "answer": "1"}\n{"problem": oops}\n')
    with pytest.raises(BenchmarkError, match=r"test.jsonl:2: not valid JSON"):
        benchmarks.get("aime24").load(tmp_path)


def test_unknown_benchmark_lists_the_known_ones():
    with pytest.raises(BenchmarkError, match="unknown benchmark 'math5000'; available: .*math500"):
        benchmarks.get("math5000")
    with pytest.raises(BenchmarkError, match="--limit must be a positive"):
        benchmarks.get("aime24").load(FIXTURES, limit=0)


def test_real_copies_match_their_documented_sizes(shared_benchmarks):
    for name in NAMES:
        b = benchmarks.get(name)
        rows = b.load(shared_benchmarks)
        assert len(rows) == b.size, name
        assert len({r["id"] for r in rows}) == len(rows), f"{name}: problem ids must be unique"
        assert all(r["gold"] and r["problem"] for r in rows), name


def test_synthetic_benchmarks_follow_mhpo_tasks():
    from mhpo.tasks import text as tasks
    for task in tasks.available():
        b = benchmarks.get(f"synth_{task}")
        rows = b.load(limit=5, seed=0)
        expected = tasks.load(task, "test", n=5, seed=0)
        assert [(r["id"], r["problem"], r["gold"]) for r in rows] == [
            (e["id"], e["problem"], e["answer"]) for e in expected
        ]
        assert rows[0]["prompt"] == expected[0]["problem"] and b.chat_template is False
