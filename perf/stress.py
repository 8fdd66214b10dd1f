"""Stress test: stream N synthetic completions through the parallel scorer and report peak memory.

    flock /tmp/mhpo-cpu.lock python perf/stress.py                          # 25k, 50k, 100k, 200k
    python perf/stress.py --counts 25000,50000 --baseline-counts 25000      # smaller

Each count runs in a fresh child process (so its peak RSS is its own): completions are generated lazily and scored
with ``benchmarks.scoring.score_iter`` (chunks of ``--chunk``; one worker process per CPU, 5 s per-answer timeout).
Reported per count: wall time, answers/s, peak RSS of the parent (``ru_maxrss``) and the largest worker peak
(``VmHWM``), and agreement with the label each synthetic completion was built with. Baseline in the same run:
the list-based ``score_many`` on the same completions (all held in memory at once, as a caller with a list does)
at ``--baseline-counts``. Flat memory means: streaming peak RSS at the largest count ÷ at the smallest ≈ 1.

Synthetic mix (deterministic in the index): 60% right integers, 20% wrong integers (both decided by the fast path),
10% fractions against decimals and 10% surds (both go through math-verify), each after ~600 characters of
"reasoning" text that differs per completion.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

FILLER = "We add the numbers carefully, checking each carry twice before moving on. "


def completion(i: int) -> tuple[str, str, bool]:
    """``(completion, gold, expected)`` for index ``i``."""
    kind = i % 10
    text = f"Problem {i}. " + FILLER * 8 + f"(step {i * 7 % 1000}) "
    a = i % 997
    if kind < 6:
        return text + f"So the answer is \\boxed{{{a}}}.", str(a), True
    if kind < 8:
        return text + f"So the answer is \\boxed{{{a + 1}}}.", str(a), False
    if kind == 8:
        return text + f"Therefore \\boxed{{\\frac{{{a}}}{{4}}}}", str(a / 4), True
    return text + f"Therefore \\boxed{{{1 + a % 5}\\sqrt{{2}}}}", f"\\sqrt{{{2 * (1 + a % 5) ** 2}}}", True


def _worker_peaks_kib(pool) -> list[int]:
    peaks = []
    for w in pool._workers:
        try:
            with open(f"/proc/{w.proc.pid}/status") as fh:
                peaks += [int(line.split()[1]) for line in fh if line.startswith("VmHWM:")]
        except OSError:
            pass
    return peaks


def child(n: int, mode: str, chunk: int, workers: int | None) -> dict:
    from benchmarks import scoring

    pool = scoring.shared_pool(workers)
    pool._start(pool.n)  # worker start-up is not part of the timing
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if mode == "stream":
        expected = bytearray()

        def pairs():
            for i in range(n):
                c, g, e = completion(i)
                expected.append(e)
                yield c, g

        got = scoring.score_iter(pairs(), workers=workers, chunk=chunk)
        agree = sum(int(g) == e for g, e in zip(got, _lazy(expected)))
    else:  # baseline: the whole list in memory, as score_many's callers hold it
        items = [completion(i) for i in range(n)]
        got = scoring.score_many([(c, g) for c, g, _ in items], workers=workers, progress=False)
        agree = sum(g == e for g, (_, _, e) in zip(got, items))
    wall = time.perf_counter() - t0
    return {"n": n, "mode": mode, "wall_s": round(wall, 2), "answers_per_s": round(n / wall),
            "agreement": agree / n,
            "parent_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "parent_after_start_mib": round(rss0 / 1024, 1),
            "worker_peak_mib": round(max(_worker_peaks_kib(pool), default=0) / 1024, 1),
            "workers": pool.n, "timeouts": pool.timeouts}


def _lazy(buf: bytearray):
    """Yield ``buf``'s items as they are appended (the generator above fills it one chunk ahead; n bytes in all)."""
    i = 0
    while True:
        if i < len(buf):
            yield bool(buf[i])
            i += 1
        else:
            return


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="25000,50000,100000,200000")
    ap.add_argument("--baseline-counts", default="25000,100000", help="counts for the list-based baseline ('' = none)")
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, n = args.child.split(":")
        print(json.dumps(child(int(n), mode, args.chunk, args.workers)))
        return 0

    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    runs = [("stream", int(n)) for n in args.counts.split(",") if n]
    runs += [("list", int(n)) for n in args.baseline_counts.split(",") if n]
    results = []
    for mode, n in runs:
        cmd = [sys.executable, __file__, "--child", f"{mode}:{n}", "--chunk", str(args.chunk)]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        print(json.dumps(r), flush=True)
    stream = [r for r in results if r["mode"] == "stream"]
    if len(stream) > 1:
        lo, hi = stream[0], stream[-1]
        print(f"streaming: parent peak RSS {hi['parent_peak_mib']} MiB at {hi['n']:,} vs {lo['parent_peak_mib']} "
              f"MiB at {lo['n']:,}: ratio {hi['parent_peak_mib'] / lo['parent_peak_mib']:.3f}; worker peak ratio "
              f"{hi['worker_peak_mib'] / max(lo['worker_peak_mib'], 1e-9):.3f}")
    for b in (r for r in results if r["mode"] == "list"):
        s = next((r for r in stream if r["n"] == b["n"]), None)
        if s:
            print(f"{b['n']:,}: list-based score_many peak {b['parent_peak_mib']} MiB vs streaming "
                  f"{s['parent_peak_mib']} MiB ({b['parent_peak_mib'] / s['parent_peak_mib']:.2f}x); throughput "
                  f"streaming/list {s['answers_per_s'] / b['answers_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
