"""mhpo.tasks.text: deterministic, disjoint splits with correct gold answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from mhpo.tasks import text as tasks


def _value(problem: str) -> int:
    # problems are integers joined by + and -, evaluated left to right, ending in "="
    assert re.fullmatch(r"\d+(?:[+-]\d+)+=", problem), problem
    nums = [int(x) for x in re.findall(r"\d+", problem)]
    ops = re.findall(r"[+-]", problem)
    total = nums[0]
    for op, x in zip(ops, nums[1:]):
        total = total + x if op == "+" else total - x
    return total


def test_available_lists_the_tasks():
    assert tasks.available() == ["add", "add_words", "arith", "arith2"]


@pytest.mark.parametrize("name", ["add", "arith", "arith2"])
def test_rows_have_the_contract_keys_and_correct_answers(name):
    for split in ("train", "test"):
        rows = tasks.load(name, split, n=300, seed=1)
        assert len(rows) == 300
        for r in rows:
            assert set(r) == {"id", "problem", "answer"}
            assert all(isinstance(v, str) for v in r.values())
            assert int(r["answer"]) == _value(r["problem"])
            assert len(r["problem"]) <= 9 and len(r["answer"]) <= 3  # short, for a char model
        assert len({r["id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("name", ["add", "arith", "arith2"])
def test_train_and_test_are_disjoint_for_any_seed(name):
    test = {r["problem"] for r in tasks.load(name, "test")}
    assert len(test) == tasks.TEST_SIZE
    for seed in (0, 1, 7):
        train = [r["problem"] for r in tasks.load(name, "train", n=3000, seed=seed)]
        assert len(set(train)) == len(train)  # no repeats within the train split
        assert not test & set(train)
    full_train = {r["problem"] for r in tasks.load(name, "train")}
    assert len(full_train) == tasks.size(name, "train")
    assert not test & full_train


def test_test_split_is_fixed_regardless_of_n_and_seed():
    full = tasks.load("arith", "test")
    assert tasks.load("arith", "test", n=50) == full[:50]
    assert tasks.load("arith", "test", seed=3) == full


def test_train_split_depends_on_seed_only():
    a = tasks.load("add", "train", n=100, seed=0)
    assert a == tasks.load("add", "train", n=100, seed=0)
    assert tasks.load("add", "train", n=40, seed=0) == a[:40]
    b = tasks.load("add", "train", n=100, seed=1)
    assert [r["problem"] for r in a] != [r["problem"] for r in b]


def test_rows_are_identical_across_processes_with_different_hash_seeds():
    code = ("import json; from mhpo.tasks import text as tasks; "
            "print(json.dumps(tasks.load('arith2', 'train', n=20, seed=5)))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == tasks.load("arith2", "train", n=20, seed=5)


def test_bad_input_gives_errors_that_list_the_options():
    with pytest.raises(ValueError, match="available tasks: add, add_words, arith, arith2"):
        tasks.load("countdown", "train")
    with pytest.raises(ValueError, match="use one of: train, test"):
        tasks.load("add", "validation")
    with pytest.raises(ValueError, match="has 500 distinct problems"):
        tasks.load("add", "test", n=501)
    with pytest.raises(ValueError, match="non-negative int"):
        tasks.load("add", "train", n=-1)
