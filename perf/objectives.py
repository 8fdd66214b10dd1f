"""Forward + backward time of every objective, with GRPO measured in the same run as the baseline.

    python perf/objectives.py                 # 64×1024, 256×2048 and 512×8192 (4M tokens) on CPU (+ CUDA)
    python perf/objectives.py --quick         # skip the 4M-token shape
    python perf/objectives.py --objectives grpo,mhpo --shapes 512x8192 --repeats 5

Each repeat runs every objective once, in a fresh shuffled order, so a noisy shared machine slows all of
them alike; the best (minimum) and the median over repeats are reported, ratios from the best. Inputs: float32
log-probs, random lengths, (B,) advantages, old log-probs drifted by N(0, 0.1²). The time covers the full call
(sanitising, loss, metrics) and backward.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mhpo import objectives  # noqa: E402


def make_inputs(B, T, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(B, T, generator=g) * 3).to(device)
    old = logps + 0.1 * torch.randn(B, T, generator=g).to(device)
    lengths = torch.randint(T // 4, T + 1, (B,), generator=g).to(device)
    mask = (torch.arange(T, device=device)[None] < lengths[:, None]).float()
    adv = torch.randn(B, generator=g).to(device)
    return logps, old, adv, mask


def step(obj, logps, old, adv, mask, device):
    leaf = logps.detach().requires_grad_(True)
    out = obj(logps=leaf, old_logps=old, advantages=adv, mask=mask, num_tokens=mask.sum())
    out.loss.backward()
    _ = out.metrics  # the trainer reads them every step: include the host sync
    if device == "cuda":
        torch.cuda.synchronize()


def bench(names, B, T, device, repeats):
    x = make_inputs(B, T, device)
    objs = {n: objectives.get(n) for n in names}
    for n in names:  # warm-up
        step(objs[n], *x, device)
    times = {n: [] for n in names}
    order, rng = list(names), random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for n in order:
            t0 = time.perf_counter()
            step(objs[n], *x, device)
            times[n].append(time.perf_counter() - t0)
    return {n: (min(v) * 1e3, statistics.median(v) * 1e3) for n, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the 512x8192 (4M-token) shape")
    ap.add_argument("--objectives", default=None, help="comma-separated (default: all; grpo is always added)")
    ap.add_argument("--shapes", default=None, help="comma-separated BxT (default: 64x1024,256x2048,512x8192)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per shape (default: 15 small, 7 large)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = objectives.available() if not args.objectives else args.objectives.split(",")
    names = ["grpo"] + [n for n in names if n != "grpo"]
    shapes = args.shapes.split(",") if args.shapes else ["64x1024", "256x2048"] + ([] if args.quick else ["512x8192"])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, devices {devices}")
    for device in devices:
        for shape in shapes:
            B, T = map(int, shape.lower().split("x"))
            repeats = args.repeats or (7 if B * T >= 1 << 22 else 15)
            ms = bench(names, B, T, device, repeats)
            print(f"\n{device} B={B} T={T} ({B * T / 1e6:.2f}M tokens), {repeats} repeats, forward+backward")
            print(f"{'objective':12s} {'best ms':>9s} {'median':>9s} {'x grpo':>7s}")
            for n in names:
                print(f"{n:12s} {ms[n][0]:9.1f} {ms[n][1]:9.1f} {ms[n][0] / ms['grpo'][0]:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
