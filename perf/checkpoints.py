"""Disk per checkpoint: what every checkpoint used to keep (weights + optimizer + scheduler + RNG + ZeRO shards) vs
what an older checkpoint keeps now (weights, config, tokenizer: enough for evaluation), on the tiny recipe trained
by ``mhpo-bench train`` under ``accelerate launch`` with 2 CPU processes, DDP and DeepSpeed ZeRO-3.

The newest checkpoint of a run still holds the full state, so the baseline (the old size of every checkpoint) and
the new size of an older one come from the same run. Bytes per parameter are projected to a 7B model.

    python perf/checkpoints.py [--modes ddp,zero3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAUNCH = {
    "ddp": ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"],
    "zero3": ["--config_file", str(ROOT / "workflow" / "accelerate" / "zero3.yaml"), "--num_processes", "2",
              "--mixed_precision", "no"],
}
QWEN_7B_PARAMS = 7.62e9  # Qwen2.5-7B-Instruct


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(mode: str, work: Path) -> dict:
    from safetensors import safe_open

    from mhpo.training.trainer import complete_checkpoints

    out = work / mode
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *LAUNCH[mode], "-m", "mhpo.cli", "train",
           "--config", "tiny", "--objective", "mhpo", "--seed", "0", "--out", str(out), "--max-steps", "4",
           "--set", "checkpoint.every=2", "--set", "rollout.group_size=8", "--set", "rollout.prompts_per_rollout=4",
           "--set", "rollout.micro_batch_size=8", "--set", "wandb.enabled=false"]
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if p.returncode:
        raise SystemExit(f"{mode}: training failed:\n{p.stderr[-3000:]}")
    older, newest = complete_checkpoints(out / "checkpoints")
    with safe_open(str(newest / "model.safetensors"), "pt") as f:
        n_params = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118 (safe_open has no __iter__)
    full, kept = _bytes(newest), _bytes(older)
    weights = (newest / "model.safetensors").stat().st_size
    return {"mode": mode, "n_params": n_params, "full": full, "kept": kept, "weights": weights,
            "dtype_bytes": weights / n_params}


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="ddp,zero3")
    args = ap.parse_args()
    os.environ.setdefault("MHPO_CACHE_DIR", str(ROOT / ".cache"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            rows.append(measure(mode, Path(tmp)))
    print("| mode | params | checkpoint before (all state) | older checkpoint now | ratio "
          "| bytes/param before → now |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        n = r["n_params"]
        print(f"| {r['mode']} | {n:,} | {r['full'] / 1e6:.2f} MB | {r['kept'] / 1e6:.2f} MB | "
              f"{r['kept'] / r['full']:.2f} | {r['full'] / n:.1f} → {r['kept'] / n:.1f} |")
    # A bf16 run keeps its weights in 2 bytes/param and, under ZeRO, fp32 master weights + Adam moments (12):
    # the tiny run is fp32 (4-byte weights), so the state beyond the weights is measured, the weights rescaled.
    for r in rows:
        n = r["n_params"]
        state = (r["full"] - r["weights"]) / n
        before, now = 2 + state, 2 + (r["kept"] - r["weights"]) / n
        print(f"7B projection ({r['mode']}, bf16 weights + measured {state:.1f} bytes/param of training state): "
              f"{before * QWEN_7B_PARAMS / 1e9:.0f} GB per checkpoint before, {now * QWEN_7B_PARAMS / 1e9:.0f} GB now "
              f"for every checkpoint but the newest")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
