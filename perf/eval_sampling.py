"""Throughput of batch-invariant sampling (benchmarks.generation, one problem per call, per-sample seeds) against
the previous scheme measured in the same run (many problems per call with left padding, one seed per batch).

    python perf/eval_sampling.py                 # tiny random Llama, the default config's synth_arith setting
    python perf/eval_sampling.py --problems 64 --k 4 --max-tokens 16 --batch-size 64

Prints samples/s of each and the ratio new/old. The old scheme is re-implemented here (it is gone from the
package) exactly as it was: left-padded batch, ``num_return_sequences=k``, ``torch.manual_seed(seed + offset)``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def old_generate(gen, prompts, s, seed_offset):
    torch = gen.torch
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), gen.pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    torch.manual_seed(s.seed + seed_offset)
    with torch.inference_mode():
        out = gen.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=s.max_tokens, do_sample=True,
                                 temperature=s.temperature, top_p=s.top_p, top_k=0, pad_token_id=gen.pad_id,
                                 num_return_sequences=s.n)
    return out[:, width:].tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64, help="problems per call of the old scheme")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    import torch

    from benchmarks import catalog
    from benchmarks.generation import Sampling, make_generator
    from benchmarks.tiny_model import build_tiny_llama

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_llama(Path(tmp) / "m")
        gen = make_generator("hf", str(model))
        bench = catalog.get("synth_arith")
        problems = bench.load(None, limit=a.problems, seed=0)
        prompts = [gen.encode(p["prompt"], bench.chat_template) for p in problems]
        ids = [p["id"] for p in problems]
        s = Sampling(1.0, 1.0, a.max_tokens, a.k, 0)
        best = {"old": float("inf"), "new": float("inf")}
        for _ in range(a.repeats):
            t = time.perf_counter()
            for i in range(0, len(prompts), a.batch_size):
                old_generate(gen, prompts[i:i + a.batch_size], s, i)
            best["old"] = min(best["old"], time.perf_counter() - t)
            t = time.perf_counter()
            gen.generate(prompts, s, ids)
            best["new"] = min(best["new"], time.perf_counter() - t)
    n = len(prompts) * a.k
    print(f"{len(prompts)} problems x k={a.k}, max_tokens={a.max_tokens}, 1 thread, best of {a.repeats}")
    for name in ("old", "new"):
        print(f"  {name}: {best[name]:.2f} s, {n / best[name]:.0f} samples/s")
    print(f"  ratio new/old throughput: {best['old'] / best['new']:.2f}")


if __name__ == "__main__":
    main()
