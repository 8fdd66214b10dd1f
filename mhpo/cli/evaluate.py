"""``mhpo-bench evaluate``: evaluate a model or checkpoint on registered benchmarks (text or VL) (the library is
:mod:`benchmarks.evaluate`)."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import catalog, metrics, scoring, vl
from benchmarks.evaluate import _modality, evaluate_benchmark
from benchmarks.generation import make_generator, remote_code_refusal, resolve_model
from mhpo.common import io


def configure(parser) -> None:
    parser.add_argument("--model", required=True,
                        help="HF model dir, a run dir (uses final/), checkpoint dir or hub name")
    parser.add_argument("--benchmarks", required=True,
                        help="comma-separated names, text or VL (see docs/benchmarks.md), or 'all' (the model's kind)")
    parser.add_argument("--k", type=int, default=None, help="samples per problem (default: the benchmark's k)")
    parser.add_argument("--out", required=True, help="evaluation directory")
    parser.add_argument("--backend", choices=("hf", "vllm"), default="hf",
                        help="hf: transformers generate (CPU/GPU); vllm: vLLM engine (GPU, the gpu extra)")
    parser.add_argument("--temperature", type=float, default=None, help="0 = greedy (default: the benchmark's)")
    parser.add_argument("--top-p", type=float, default=None,
                        help="nucleus sampling mass in (0, 1] (default: the benchmark's)")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="most generated tokens per sample (default: the benchmark's)")
    parser.add_argument("--seed", type=int, default=0,
                        help="sampling seed; sample j of problem p is drawn from seed (this, p, j) (default 0)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems of each benchmark")
    parser.add_argument("--data-dir", default=None,
                        help="benchmark copies <DIR>/<name>/test.jsonl (or MHPO_BENCHMARK_DIR)")
    parser.add_argument("--label", default=None, help="run label written to each record's `run` (default: the model)")
    parser.add_argument("--step", type=int, default=None,
                        help="training step of the checkpoint (default: from its name)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="problems per generation call and progress write (default 8); "
                             "completions do not depend on it")
    parser.add_argument("--device", default=None, help="torch device for the hf backend (default: cuda if available)")
    parser.add_argument("--workers", type=int, default=None, help="scoring processes (default: CPU count)")
    parser.add_argument("--timeout", type=float, default=scoring.DEFAULT_TIMEOUT,
                        help="seconds per answer when scoring")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let the model directory's own Python code run on load "
                             "(off unless given; review it first)")
    parser.add_argument("--max-side", type=int, default=vl.DEFAULT_MAX_SIDE,
                        help=f"VL benchmarks: longest image side in px (default {vl.DEFAULT_MAX_SIDE})")


def main(args) -> int:
    try:
        model_path = resolve_model(args.model)
        names = catalog.parse_names(args.benchmarks, modality="vl" if vl.is_vl_model(model_path) else "text")
        benches = [catalog.get(n) for n in names]
        modality = _modality(benches, args.backend)
        # fail on missing data before loading a model
        loaded = {b.name: b.load(args.data_dir, limit=args.limit, seed=args.seed, max_side=args.max_side)
                  for b in benches}
        if args.k is not None and args.k < 1:
            raise ValueError(f"--k must be >= 1, got {args.k}")
    except (catalog.BenchmarkError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        if modality == "vl":
            gen = vl.HFVLGenerator(model_path, device=args.device, batch_size=args.batch_size,
                                   trust_remote_code=args.trust_remote_code)
        else:
            gen = make_generator(args.backend, model_path, seed=args.seed, batch_size=args.batch_size,
                                 device=args.device, trust_remote_code=args.trust_remote_code)
    except (ImportError, OSError) as e:  # missing vLLM, unreadable weights, hub model while offline
        print(f"error: cannot load {args.model!r} with the {args.backend} backend: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        refusal = remote_code_refusal(args.model, e, args.trust_remote_code)
        if refusal is None:
            raise
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    try:
        if hasattr(gen, "check_finite"):
            gen.check_finite()
    except ValueError as e:
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)  # only once the model loaded: bad input leaves no directory behind
    io.sweep_stale_tmp(out)  # temp files of a killed earlier evaluation into this folder
    summaries = {b.name: evaluate_benchmark(gen, b, args, model_path, out, loaded[b.name]) for b in benches}
    print(f"{'benchmark':<16} {'k':>3} {'n':>5}  avg@k [95% CI]          pass@k   maj@k")
    for name, s in summaries.items():
        m = s["metrics"]
        print(f"{name:<16} {s['k']:>3} {s['n_problems']:>5}  {m['avg@k']['mean']:.3f} [{m['avg@k']['ci_low']:.3f}, "
              f"{m['avg@k']['ci_high']:.3f}]  {m['pass@k']['mean']:.3f}   {m['maj@k']['mean']:.3f}")
    if len(summaries) > 1:
        macro = {m: sum(s["metrics"][m]["mean"] for s in summaries.values()) / len(summaries) for m in metrics.METRICS}
        print(f"{'macro average':<26}  {macro['avg@k']:.3f}                    "
              f"{macro['pass@k']:.3f}   {macro['maj@k']:.3f}")
    return 0
