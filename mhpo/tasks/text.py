"""Synthetic arithmetic tasks, generated offline from a seed, sized so a ~1M-parameter char model learns them on CPU.

    from mhpo.tasks import text as tasks
    tasks.available()                       # ['add', 'add_words', 'arith', 'arith2']
    rows = tasks.load("add", "train", n=1000, seed=0)
    rows[0]  # {'id': 'add-train-s0-0', 'problem': '37+45=', 'answer': '82'}

* ``add``: ``a+b=`` with a, b in 0..99; answer the sum (10,000 distinct problems).
* ``add_words``: ``What is a + b?`` with a in 0..29, b in 0..19 (600 problems: 500 test, 100 train), phrased for
  an instruction-tuned model asked through its chat template (the SmolLM2-135M tier, benchmark ``smol_add``).
* ``arith``: ``a+b=`` or ``a-b=`` with a, b in 0..99; the answer may be negative (20,000 problems).
* ``arith2``: two steps, ``a+b-c=`` style with a, b, c in 0..20 and ``+``/``-`` evaluated left to right
  (37,044 problems).

Prompts and answers are a few characters, so a character-level model sees the whole problem in ~10 tokens and
the gold is a plain integer that the shared scorer (:func:`benchmarks.scoring.is_correct`) compares exactly.

Splits. Each task enumerates its whole (finite) problem space and shuffles it once with a stream that depends
only on the task name; the first ``TEST_SIZE`` problems are the ``test`` split, the rest are the ``train`` pool.
So ``test`` is the same for every ``seed`` and ``n`` (``n`` takes a prefix) and never overlaps ``train``;
``seed`` only changes which train problems are drawn and in which order.

A Countdown-style task (reach a target with given numbers) is deliberately not included: it has many correct
answers, and the project has one scorer that compares a completion with a single gold answer.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random

SPLITS = ("train", "test")
TEST_SIZE = 500


def _space_add() -> list[tuple[str, str]]:
    return [(f"{a}+{b}=", str(a + b)) for a in range(100) for b in range(100)]


def _space_arith() -> list[tuple[str, str]]:
    return [(f"{a}{op}{b}=", str(a + b if op == "+" else a - b))
            for a in range(100) for b in range(100) for op in "+-"]


def _space_arith2() -> list[tuple[str, str]]:
    out = []
    for a, b, c in itertools.product(range(21), repeat=3):
        for op1, op2 in itertools.product("+-", repeat=2):
            ab = a + b if op1 == "+" else a - b
            out.append((f"{a}{op1}{b}{op2}{c}=", str(ab + c if op2 == "+" else ab - c)))
    return out


def _space_add_words() -> list[tuple[str, str]]:
    return [(f"What is {a} + {b}?", str(a + b)) for a in range(30) for b in range(20)]


TASKS = {"add": _space_add, "add_words": _space_add_words, "arith": _space_arith, "arith2": _space_arith2}


def available() -> list[str]:
    """Names of the synthetic tasks, sorted."""
    return sorted(TASKS)


def _stable_seed(*parts) -> int:
    # sha256, not hash(): Python salts str hashes per process and rows must match across processes.
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


@functools.cache
def _split_pools(task: str) -> tuple[tuple, tuple]:
    space = TASKS[task]()
    random.Random(_stable_seed("mhpo.tasks", task, "split")).shuffle(space)
    return tuple(space[:TEST_SIZE]), tuple(space[TEST_SIZE:])


def _check(name: str, split: str, n) -> None:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available tasks: {', '.join(available())}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for task {name!r}; use one of: {', '.join(SPLITS)}")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise ValueError(f"n must be a non-negative int or None (all rows), got {n!r}")


def size(name: str, split: str) -> int:
    """How many distinct problems ``split`` of task ``name`` holds."""
    _check(name, split, None)
    test, train = _split_pools(name)
    return len(test if split == "test" else train)


def load(name: str, split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """Rows ``{"id", "problem", "answer"}`` of ``split`` (``train`` or ``test``) of task ``name``.

    ``n=None`` returns the whole split. ``test`` ignores ``seed`` (it is one fixed set); ``train`` is a
    seed-dependent shuffle of the remaining problems, without repeats.
    """
    _check(name, split, n)
    test, train = _split_pools(name)
    if split == "test":
        pool, prefix = list(test), f"{name}-test"
    else:
        pool, prefix = list(train), f"{name}-train-s{seed}"
        random.Random(_stable_seed("mhpo.tasks", name, "train", seed)).shuffle(pool)
    if n is not None and n > len(pool):
        raise ValueError(f"task {name!r} split {split!r} has {len(pool)} distinct problems, asked for n={n}; "
                         f"use n <= {len(pool)} or n=None")
    pool = pool if n is None else pool[:n]
    return [{"id": f"{prefix}-{i}", "problem": p, "answer": a} for i, (p, a) in enumerate(pool)]
