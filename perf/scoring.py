"""Scorer throughput: the parallel process-pool scorer vs plain sequential math-verify judging.

    python perf/scoring.py [--n 20000] [--workers N] [--eval-limit 10] [--skip-eval]

Builds N realistic completions from the real benchmark golds (../shared/benchmarks, else the test fixtures):
reasoning text ending in the gold (boxed, "####", "The answer is", or an equivalent rewrite such as 0.5 for
1/2) or in another problem's gold. Baseline: ``benchmarks.scoring.judge`` called in a loop in this process
(extraction + plain ``math_verify.parse``/``verify``, no timeout). Measured: ``score_many`` (worker processes
with per-answer timeout). Prints answers/s, the speed-up and the agreement (must be 100%).

Then times ``mhpo-bench evaluate`` of a tiny random Llama (hidden 64, 2 layers, char tokenizer) on MATH500
with k=4 on this machine's CPU (all 500 problems unless ``--eval-limit N``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import catalog, scoring  # noqa: E402

FILLER = (
    "Let us work through the problem step by step. First we set up the relevant quantities and "
    "simplify the expression. Substituting the known values and collecting terms gives a cleaner form; "
    "checking the boundary cases confirms the computation. "
)


def completions(n: int, seed: int = 0) -> list[tuple[str, str]]:
    data_dir = catalog.data_dirs()[0] if catalog.data_dirs() else ROOT / "tests" / "fixtures" / "benchmarks"
    golds = []
    for name in catalog.available():
        bench = catalog.get(name)
        if bench.task is None and bench.local_path(data_dir):
            golds += [r["gold"] for r in bench.load(data_dir)]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        gold = rng.choice(golds)
        r = rng.random()
        if r < 0.35:
            ending = f"Therefore the final answer is $\\boxed{{{gold}}}$."
        elif r < 0.45:
            ending = f"The answer is {gold}." if gold.lstrip("-").isdigit() else f"So \\boxed{{{gold}}}"
        elif r < 0.55:
            ending = f"#### {gold}" if gold.isdigit() else f"\\boxed{{ {gold} }}"
        elif r < 0.65 and gold.lstrip("-").isdigit():
            ending = f"\\boxed{{\\frac{{{2 * int(gold)}}}{{2}}}}"  # an equivalent rewrite
        else:
            ending = f"Thus $\\boxed{{{rng.choice(golds)}}}$."  # (usually) another problem's answer
        out.append((FILLER * rng.randint(1, 4) + ending, gold))
    return out


def bench_scoring(n: int, workers: int | None) -> None:
    pairs = completions(n)
    scoring.judge("\\boxed{1}", "1")  # import math-verify/sympy outside the timed region
    t = time.perf_counter()
    sequential = [scoring.judge(c, g) for c, g in pairs]
    t_seq = time.perf_counter() - t
    t = time.perf_counter()
    parallel = scoring.score_many(pairs, workers=workers, progress=False)
    t_par = time.perf_counter() - t  # includes starting the worker processes
    agree = sum(a == b for a, b in zip(sequential, parallel)) / n
    w = workers or os.cpu_count()
    print(f"scoring {n} completions ({sum(sequential) / n:.1%} correct), {os.cpu_count()} CPUs")
    print(f"  sequential math-verify judge : {t_seq:8.2f} s  {n / t_seq:8.0f} answers/s")
    print(f"  score_many ({w} workers)      : {t_par:8.2f} s  {n / t_par:8.0f} answers/s (incl. worker start)")
    print(f"  speed-up {t_seq / t_par:.2f}x, agreement {agree:.2%}")


def bench_eval(limit: int | None, k: int = 4, max_tokens: int = 256) -> None:
    from benchmarks.tiny_model import build_tiny_llama
    from mhpo.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_llama(Path(tmp) / "tiny")
        t = time.perf_counter()
        rc = cli(["evaluate", "--model", str(model), "--benchmarks", "math500", "--k", str(k),
                  *(["--limit", str(limit)] if limit else []), "--max-tokens", str(max_tokens),
                  "--out", str(Path(tmp) / "eval")])
        dt = time.perf_counter() - t
        summary = json.loads((Path(tmp) / "eval" / "math500.summary.json").read_text())
        rows = [json.loads(line) for line in open(Path(tmp) / "eval" / "math500.jsonl")]
    assert rc == 0
    n = summary["n_problems"]
    tokens = sum(r["n_tokens"] for r in rows)
    print(f"evaluate tiny Llama (h64, 2 layers) on MATH500, {n} problems, k={k}, max_tokens={max_tokens}, CPU:")
    print(f"  {dt:.1f} s wall incl. model load and scoring ({n * k / dt:.1f} samples/s, {tokens / dt:.0f} generated "
          f"tokens/s, mean {tokens / len(rows):.0f} tokens/sample)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--eval-limit", type=int, default=None, help="problems of MATH500 to evaluate (default: all)")
    p.add_argument("--skip-eval", action="store_true")
    a = p.parse_args()
    from mhpo.common import env

    env.setup()
    bench_scoring(a.n, a.workers)
    if not a.skip_eval:
        bench_eval(a.eval_limit)


if __name__ == "__main__":
    main()
