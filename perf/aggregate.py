"""Time ``mhpo-bench aggregate`` on synthetic evaluation records (docs/interfaces.md layout).

    python perf/aggregate.py                    # 10,000 and 100,000 records
    python perf/aggregate.py --records 10000    # one size

Layout per size: 5 objectives + base, 2 seeds, 5 benchmarks, k = 4; problems per benchmark chosen so that the
total record count matches. Training logs: 200 steps per run. Reports (best of --repeats): tables only
(in-process ``mhpo.analysis.aggregate.aggregate(figures=False)``), tables + figures in-process, and the full CLI
(``mhpo-bench aggregate``, interpreter start-up and imports included). Baseline in the same run: a plain
``json.loads`` pass over every record file (the I/O floor).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OBJECTIVES = ["grpo", "dapo", "sapo", "gspo", "mhpo"]
BENCHMARKS = ["math500", "hmmt25", "amc23", "aime25", "aime24"]


def make_fixture(root: Path, records: int, seeds=(0, 1), k: int = 4, steps: int = 200) -> int:
    rng = np.random.default_rng(0)
    labels = ["base"] + OBJECTIVES
    cells = sum(len(seeds) if lab != "base" else 1 for lab in labels) * len(BENCHMARKS)
    n_prob = max(1, records // (cells * k))
    total = 0
    for li, lab in enumerate(labels):
        for seed in (seeds if lab != "base" else (0,)):
            ck = "base" if lab == "base" else "final"
            d = root / "evals" / "perf-model" / lab / f"seed{seed}" / ck
            d.mkdir(parents=True, exist_ok=True)
            for bench in BENCHMARKS:
                p = 0.2 + 0.1 * li
                with open(d / f"{bench}.jsonl", "w") as fh:
                    for i in range(n_prob):
                        for s in range(k):
                            ok = bool(rng.random() < p)
                            fh.write(json.dumps({"run": f"{lab}/seed{seed}", "model": "m", "checkpoint": ck,
                                                 "step": 0 if lab == "base" else steps,
                                                 "benchmark": bench, "problem_id": str(i), "sample": s,
                                                 "completion": "The answer is \\boxed{42}.", "extracted": "42",
                                                 "correct": ok, "n_tokens": 12}) + "\n")
                            total += 1
                (d / f"{bench}.summary.json").write_text(json.dumps({
                    "benchmark": bench, "k": k, "n_problems": n_prob,
                    "metrics": {m: {"mean": p, "ci_low": p, "ci_high": p} for m in ("avg@k", "pass@k", "maj@k")},
                    "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 64, "n": k, "seed": 0,
                                 "backend": "hf"},
                    "versions": {"math-verify": "0.9.0"}, "model": "m", "wall_time_s": 1.0}))
            if lab != "base":
                r = root / "runs" / "perf-model" / lab / f"seed{seed}"
                r.mkdir(parents=True, exist_ok=True)
                with open(r / "metrics.jsonl", "w") as fh:
                    for t in range(1, steps + 1):
                        fh.write(json.dumps({"step": t, "reward/mean": 0.3 + t / steps * 0.3,
                                             "entropy": 1 - t / (2 * steps), "grad_norm": float(rng.lognormal(0, 0.5)),
                                             "ratio/p1": 0.9, "ratio/p99": 1.1, "ratio/min": 0.5, "ratio/max": 2.0,
                                             "completion_length": 100.0}) + "\n")
    return total


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, action="append", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from mhpo.analysis import aggregate

    for n in args.records or [10_000, 100_000]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            total = make_fixture(root, n)
            files = list((root / "evals").rglob("*.jsonl"))

            def floor():
                for f in files:
                    with open(f) as fh:
                        for line in fh:
                            json.loads(line)

            t_floor = best(floor, args.repeats)
            t_tables = best(lambda: aggregate.aggregate([root / "runs"], root / "evals", root / "out", figures=False),
                            args.repeats)
            t_all = best(lambda: aggregate.aggregate([root / "runs"], root / "evals", root / "out", figures=True),
                         args.repeats)
            cli = [sys.executable, "-m", "mhpo.cli", "aggregate", "--runs", str(root / "runs"), "--evals",
                   str(root / "evals"), "--out", str(root / "cli")]
            t_cli = best(lambda: subprocess.run(cli, check=True, capture_output=True), args.repeats)
            print(f"{total:>7} records: json.loads floor {t_floor:.2f} s | tables {t_tables:.2f} s | "
                  f"tables+figures {t_all:.2f} s | CLI (start-up + imports + tables + figures) {t_cli:.2f} s "
                  f"[best of {args.repeats}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
