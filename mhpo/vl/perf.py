"""Measure the VL track on this machine: tiny-VLM warm start, RL optimizer-step time, VL evaluation throughput.

    python -m mhpo.vl.perf --out /tmp/vl-perf [--steps 10] [--k 8]

Prints one JSON object (also written to OUT/perf.json). Timings on a shared CPU are noisy: report the median
step time and the machine's load average, which are included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mhpo.vl.perf")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=10, help="RL optimizer steps")
    p.add_argument("--k", type=int, default=8, help="samples per problem for the evaluation throughput")
    a = p.parse_args(argv)
    import torch

    from benchmarks import vl
    from mhpo import io
    from mhpo.vl import tiny
    from mhpo.vl import train as vl_train

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}
    t0 = time.perf_counter()
    info = tiny.build(out / "model", task="count", seed=0)
    res["build_s"] = round(time.perf_counter() - t0, 2)
    res["warm_start"] = info["warm_start"]
    res["parameters"] = info["parameters"]

    summary = vl_train.run("mhpo", out / "run", model_dir=str(out / "model"), max_steps=a.steps, seed=0)
    rows = io.read_jsonl(out / "run" / "metrics.jsonl")
    u = 2  # tiny_vl.yaml: updates_per_rollout; odd steps generate, even steps reuse the rollout
    gen_steps = [r["step_time"] for r in rows if (r["step"] - 1) % u == 0]
    reuse_steps = [r["step_time"] for r in rows if (r["step"] - 1) % u != 0]
    res["rl"] = {"steps": len(rows), "completions_per_step": 16, "completions_per_rollout": 32,
                 "step_time_median_s": statistics.median(r["step_time"] for r in rows),
                 "step_time_with_generation_median_s": statistics.median(gen_steps),
                 "step_time_reused_rollout_median_s": statistics.median(reuse_steps) if reuse_steps else None,
                 "reward_first": summary["reward_first"], "reward_last": summary["reward_last"],
                 "rollout_logp_gap_mean": summary["logp_gap_mean"]}

    fixtures = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "vl"
    t0 = time.perf_counter()
    sums = vl.evaluate(str(out / "run" / "final"), vl.available(), out / "eval", k=a.k, data_dir=fixtures,
                       max_tokens=8, seed=0, batch_size=8)
    wall = time.perf_counter() - t0
    n_samples = sum(s["k"] * s["n_problems"] for s in sums.values())
    gen_s = sum(s["throughput"]["generation_s"] for s in sums.values())
    res["eval"] = {"benchmarks": len(sums), "problems": sum(s["n_problems"] for s in sums.values()), "k": a.k,
                   "max_tokens": 8, "samples": n_samples, "generation_samples_per_s": round(n_samples / gen_s, 1),
                   "end_to_end_samples_per_s": round(n_samples / wall, 1), "wall_s": round(wall, 2)}
    res["load_avg_end"] = os.getloadavg()
    io.write_json(out / "perf.json", res)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
