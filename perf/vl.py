"""VL track on this machine: tiny-VLM warm start, RL optimizer-step time and VL evaluation throughput, each next to
its text-track baseline measured in the same run (the tiny char-level Llama on ``arith``).

    python perf/vl.py [--steps 12] [--k 4] [--threads 1] [--out DIR] [--workflow]

Both tracks run through the same code path (``mhpo-bench train`` / ``mhpo.training.train.train``, ``evaluate`` on
text vs VL benchmarks via ``mhpo.cli``), with the same torch thread count and wandb off. Reported:

* RL: median optimizer-step time over steps 3.. (step 1-2 = first rollout, warm-up), split into steps that
  generate a rollout and steps that reuse it; ratio VL / text. Recipes: ``tiny-vl`` (32 completions per rollout,
  16 per step, 4 new tokens) and ``tiny`` (256 per rollout, 128 per step, 12 new tokens), i.e. not the same work
  per step: the step ratio says what a tiny VL step costs next to a tiny text step; the per-completion ratio
  (median step time / completions per step) is the fairer comparison of the two forward/backward paths.
* Evaluation: samples/s end to end (model load + generation + scoring, in-process CLI) and generation-only where
  the summary records it; VL on ``synth_vl_count`` (64 problems) + the five 3-problem fixtures, text on 64
  ``synth_arith`` problems; same k. Ratio VL / text.

* ``--workflow``: ``snakemake --cores 2 vl_tiny`` from scratch in a scratch copy of the workflow (Snakefile,
  workflow/, envs/, tests/fixtures/vl), then a no-op rerun (the baseline: planning alone); target < 180 s.

Prints one JSON object (also OUT/perf_vl.json). The CPU is shared: the load average is recorded; run it under
``flock /tmp/mhpo-cpu.lock`` so other heavy jobs do not overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")


def _steps(run_dir: Path, updates_per_rollout: int) -> dict:
    from mhpo.common import io

    rows = io.read_jsonl(run_dir / "metrics.jsonl")[2:]  # the first rollout is warm-up
    gen = [r["step_time"] for r in rows if (r["step"] - 1) % updates_per_rollout == 0]
    reuse = [r["step_time"] for r in rows if (r["step"] - 1) % updates_per_rollout != 0]
    return {"steps_timed": len(rows), "median_s": round(statistics.median(r["step_time"] for r in rows), 4),
            "generate_median_s": round(statistics.median(gen), 4) if gen else None,
            "reuse_median_s": round(statistics.median(reuse), 4) if reuse else None}


def _train(config: str, model: str, out: Path, steps: int) -> dict:
    from mhpo import objectives
    from mhpo.training import recipe, train

    rec = recipe.load(config, overrides={"model.path": model, "optim.max_steps": steps, "wandb.enabled": False,
                                         "checkpoint.every": steps if steps % 2 == 0 else steps + 1})
    t0 = time.perf_counter()
    assert train.train(rec, objectives.get("mhpo"), 0, out) == 0, f"{config} run failed; see {out}/manifest.json"
    res = _steps(out, rec["rollout"]["updates_per_rollout"])
    res.update(wall_s=round(time.perf_counter() - t0, 2),
               completions_per_step=recipe.batches(rec, 1)["completions_per_step"],
               max_new_tokens=rec["rollout"]["max_completion_length"])
    return res


def _evaluate(argv: list[str], out: Path) -> dict:
    from mhpo import cli

    t0 = time.perf_counter()
    assert cli.main(argv + ["--out", str(out)]) == 0, argv
    wall = time.perf_counter() - t0
    sums = [json.loads(p.read_text()) for p in sorted(out.glob("*.summary.json"))]
    n = sum(s["k"] * s["n_problems"] for s in sums)
    gen_s = sum((s.get("throughput") or {}).get("generation_s") or 0 for s in sums)
    return {"benchmarks": [s["benchmark"] for s in sums], "samples": n, "wall_s": round(wall, 2),
            "end_to_end_samples_per_s": round(n / wall, 1),
            "generation_samples_per_s": round(n / gen_s, 1) if gen_s else None}


def _workflow(out: Path) -> dict:
    import shutil
    import subprocess

    wf = out / "wf"
    shutil.rmtree(wf, ignore_errors=True)
    wf.mkdir(parents=True)
    shutil.copy(ROOT / "Snakefile", wf / "Snakefile")
    for d in ("workflow", "envs", "tests/fixtures/vl"):
        shutil.copytree(ROOT / d, wf / d)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    times = []
    for _ in range(2):  # from scratch, then a no-op rerun
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "vl_tiny"], cwd=wf, env=env,
                           capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    return {"vl_tiny_from_scratch_s": round(times[0], 1), "noop_rerun_s": round(times[1], 2),
            "ratio_to_target_180s": round(times[0] / 180, 2), "jobs": 24}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=12, help="RL optimizer steps per track")
    ap.add_argument("--k", type=int, default=4, help="samples per problem in the evaluations")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both tracks")
    ap.add_argument("--out", default=None)
    ap.add_argument("--workflow", action="store_true", help="also time `snakemake --cores 2 vl_tiny` from scratch")
    a = ap.parse_args()

    from mhpo.common import env

    env.setup()
    import torch

    torch.set_num_threads(a.threads)
    from mhpo.models import tiny_vl as vl_tiny

    out = Path(a.out or tempfile.mkdtemp(prefix="perf-vl-"))
    out.mkdir(parents=True, exist_ok=True)
    res = {"date": time.strftime("%Y-%m-%d"), "torch_threads": a.threads, "cpus": os.cpu_count(),
           "load_avg_start": [round(x, 2) for x in os.getloadavg()]}

    from mhpo.training import recipe, train

    t0 = time.perf_counter()
    text_model = train.model_path(recipe.load("tiny"))  # the text baseline's model, built once per cache
    text_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    vl_info = vl_tiny.build(out / "vl-model", task="count", seed=0)
    vl_build = time.perf_counter() - t0
    ws = vl_info["warm_start"]
    res["build"] = {"text_s (0: cached)": round(text_build, 2), "vl_s": round(vl_build, 2),
                    "vl_parameters": vl_info["parameters"],
                    "vl_warm_start_steps": ws["steps"], "vl_warm_start_s_per_step": ws["seconds_per_step"],
                    "vl_warm_start_test_accuracy": ws["test_greedy_accuracy"]}

    text = _train("tiny", text_model, out / "text-run", a.steps)
    vl_run = _train("tiny-vl", str(out / "vl-model"), out / "vl-run", a.steps)
    per_completion = {k: r["median_s"] / r["completions_per_step"] for k, r in (("text", text), ("vl", vl_run))}
    res["rl"] = {"text": text, "vl": vl_run,
                 "ratio_vl_over_text_step": round(vl_run["median_s"] / text["median_s"], 2),
                 "ratio_vl_over_text_per_completion": round(per_completion["vl"] / per_completion["text"], 2)}

    common = ["--k", str(a.k), "--seed", "0", "--batch-size", "64"]
    text_ev = _evaluate(["evaluate", "--model", str(out / "text-run" / "final"), "--benchmarks", "synth_arith",
                         "--limit", "64", "--max-tokens", "16", "--temperature", "1.0", *common], out / "text-eval")
    vl_ev = _evaluate(["evaluate", "--model", str(out / "vl-run" / "final"), "--benchmarks",
                       "synth_vl_count,mathvista,mathverse,mathvision,geometry3k,wemath", "--limit", "64",
                       "--data-dir", str(ROOT / "tests" / "fixtures" / "vl"), "--max-tokens", "8",
                       "--temperature", "1.0", *common], out / "vl-eval")
    res["eval"] = {"text": text_ev, "vl": vl_ev, "ratio_vl_over_text_end_to_end":
                   round(vl_ev["end_to_end_samples_per_s"] / text_ev["end_to_end_samples_per_s"], 2)}
    if a.workflow:
        res["workflow"] = _workflow(out)
    res["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "perf_vl.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
