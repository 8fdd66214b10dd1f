"""The pinned scorer: extraction rules, equivalences, adversarial input, timeouts, threads and processes."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import scoring
from benchmarks.scoring import JudgePool, extract_answer, is_correct, judge, score_many

TOWER = "\\boxed{9^{9^{9^{9^{9^{9}}}}}}"  # sympy would evaluate this for ages


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("so the answer is \\boxed{42}.", "42"),
        ("first \\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # the last box wins
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),  # nested braces
        ("\\boxed{7} and then a truncated \\boxed{\\frac{1", "7"),  # last box unbalanced: previous complete one
        ("\\fbox{12}", "12"),
        ("\\boxed 5 is it", "5"),
        ("Natalia sold 48/2 = 24 clips.\n#### 72", "72"),  # GSM8K style
        ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
        ("We get 3 apples and then 17 pears", "17"),  # last-number fallback
        ("The total is -2.5.", "-2.5"),
        ("no digits at all", None),
        ("", None),
        (None, None),
        ("\\boxed{}", None),
    ],
)
def test_extraction_rules(completion, expected):
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        ("\\boxed{\\frac{1}{2}}", "0.5", True),
        ("\\boxed{0.5}", "\\frac{1}{2}", True),
        ("\\boxed{\\dfrac{1}{2}}", "\\frac12", True),
        ("#### 1,000", "1000", True),
        ("\\boxed{1000}", "1,000", True),
        ("\\boxed{10}", "10.0", True),
        ("\\boxed{025}", "25", True),  # AIME answers are sometimes zero padded
        ("\\boxed{2^{25} \\cdot 26!}", "2^{25} \\cdot 26!", True),
        ("\\boxed{\\sqrt{23} - 2\\sqrt{3}}", "\\sqrt{23}-2 \\sqrt{3}", True),
        ("\\boxed{(1, 2)}", "(1,2)", True),
        ("\\boxed{x = 3}", "3", True),
        ("\\boxed{10\\text{ cm}}", "10", True),
        ("\\boxed{41}", "42", False),
        ("\\boxed{\\frac{1}{3}}", "0.5", False),
        ("\\boxed{x}", "y", False),
        ("no answer here", "42", False),
    ],
)
def test_equivalences(completion, gold, expected):
    assert is_correct(completion, gold) is expected
    assert judge(completion, gold) is expected  # the in-process body agrees with the pooled path


ADVERSARIAL = [
    TOWER,
    "\\boxed{9^9^9^9^9^9^9^9^9}",
    "x" * 1_000_000 + "\\boxed{5",  # 1 MB, unbalanced
    "\\boxed{" * 50_000,
    "}" * 10_000 + "{" * 10_000,
    "\\boxed{\\frac{\\sqrt{}{}}}}}\\begin{matrix}",  # invalid LaTeX
    "\x00\x01\x02\\boxed{\x07\x1b}",
    "\ud800\udfff\\boxed{\ud83d}",  # lone surrogates
    b"\xff\xfe\xfa\\boxed{\x80}",  # not UTF-8
    "9" * 100_000,  # 100k-digit number
    "\\boxed{" + "(" * 5000 + "}",
]


@pytest.mark.parametrize("completion", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_completions_score_false(completion):
    assert is_correct(completion, "5", timeout=2) is False


def test_timeout_kills_and_replaces_the_worker():
    with JudgePool(workers=1, timeout=1.0) as pool:
        got = pool.run([("c", TOWER, "3"), ("c", "\\boxed{\\frac{2}{4}}", "0.5")])
        assert got == [False, True]  # the worker after the timeout still scores
        assert pool.timeouts == 1


def test_is_correct_works_off_the_main_thread():
    out = {}

    def body():  # math-verify's own signal.alarm timeout raises ValueError here
        out["a"] = is_correct("\\boxed{\\frac{6}{8}}", "0.75")
        out["b"] = is_correct(TOWER, "3", timeout=1)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert out == {"a": True, "b": False}


def _score_in_child(args):
    return is_correct(*args, timeout=2)


def test_is_correct_works_in_daemonic_worker_processes():
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:  # pool workers are daemonic: they may not use multiprocessing children
        got = pool.map(_score_in_child, [("\\boxed{\\frac{6}{8}}", "0.75"), (TOWER, "3")])
    assert got == [True, False]


def test_score_many_matches_sequential_judging_in_order():
    pairs = [(f"work... \\boxed{{\\frac{{{i}}}{{4}}}}", str(i / 4)) for i in range(12)]
    pairs += [(f"\\boxed{{{i}}}", str(i + 1)) for i in range(6)]
    pairs.append((b"\xff\\boxed{2}", "2"))
    expected = [judge(c, g) for c, g in pairs]  # in-process, no timeout: only benign inputs here
    assert expected.count(True) == 13
    pairs.insert(5, (TOWER, "3"))  # overruns the timeout: False, and later answers keep their places
    expected.insert(5, False)
    assert score_many(pairs, workers=2, timeout=2, progress=False) == expected


def test_score_iter_streams_in_order_and_matches_score_many():
    """score_iter reads at most one chunk ahead of what it has yielded (bounded memory; perf/stress.py) and gives
    score_many's results in input order, timeouts included."""
    pairs = [(f"\\boxed{{\\frac{{{i}}}{{2}}}}", str(i / 2)) for i in range(9)] + [(TOWER, "3"), ("\\boxed{1}", "2")]
    read = []

    def lazy():
        for i, pair in enumerate(pairs):
            read.append(i)
            yield pair

    stream = scoring.score_iter(lazy(), workers=2, timeout=2, chunk=4)
    first = next(stream)
    assert len(read) == 4  # one chunk consumed, not the whole input
    got = [first, *stream]
    assert got == score_many(pairs, workers=2, timeout=2, progress=False) == [True] * 9 + [False, False]
    with pytest.raises(ValueError, match="chunk"):
        next(scoring.score_iter(iter(pairs), chunk=0))


def test_gold_is_parsed_once():
    scoring._parse_gold.cache_clear()
    for answer in ("0.5", "0.25", "\\frac{1}{3}"):
        scoring._verify_answer(answer, "\\frac{1}{2}")
    info = scoring._parse_gold.cache_info()
    assert info.misses == 1 and info.hits == 2


def test_non_text_completion_is_a_type_error():
    with pytest.raises(TypeError, match="completion must be str or bytes"):
        is_correct(12, "12")


def test_bad_timeout_is_rejected():
    with pytest.raises(ValueError, match="timeout must be a positive"):
        JudgePool(timeout=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.sampled_from(["42", "\\frac{1}{2}", "x+1", "(1,2)"]))
def test_arbitrary_text_never_raises(text, gold):
    assert isinstance(is_correct(text, gold, timeout=2), bool)
    assert is_correct(f"{text}\\boxed{{{gold}}}", gold, timeout=2) is True
