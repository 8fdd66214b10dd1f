"""``mhpo-bench evaluate``: sample k completions per problem, score them, write records and summaries.

One path for text and vision-language benchmarks: the benchmarks' ``modality`` (registry) picks the generator,
a causal LM with its tokenizer (``benchmarks.generation``) or an image-text-to-text model with its processor
(``benchmarks.vl.HFVLGenerator``); sampling, scoring (``benchmarks.scoring``, multiple choice by option letter),
records, fingerprints, resume and metrics are shared. VL summaries also record the image rule (``image_resize``)
and where the data came from (``data``). ``--benchmarks all`` means every file-backed benchmark of the model's
kind (a model whose config has a vision tower is a VL model).

Writes ``OUT/{benchmark}.jsonl`` (one row per problem and sample) and ``OUT/{benchmark}.summary.json``
(docs/interfaces.md), both atomically. Resumable: finished problems are appended to a hidden progress file
``OUT/.{benchmark}.progress.jsonl`` (one complete line per problem, with a fingerprint of model and sampling);
a rerun with the same settings reuses them and generates only the rest. The progress file is removed once
the final files are in place; a benchmark whose summary already matches the fingerprint is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks import catalog, metrics, scoring, vl
from benchmarks.generation import SAMPLING_SCHEME, Sampling
from mhpo.common import codehash, io


def _versions(backend: str) -> dict:

    out = {"python": platform.python_version()}
    for pkg in ("mhpo-bench", "torch", "transformers", "math-verify", "vllm" if backend == "vllm" else None):
        if pkg:
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                out[pkg] = None
    return out


def _checkpoint_and_step(model_path: str, step: int | None) -> tuple[str, int | None]:
    """Checkpoint name and training step: ``checkpoint-N`` gives N; a run's ``final/`` gives the last step
    in the run's ``metrics.jsonl``; ``--step`` overrides both."""
    if not os.path.isdir(model_path):
        return model_path, step
    path = Path(model_path)
    if step is None:
        m = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if m:
            step = int(m.group(1))
        elif path.name == "final" and (path.parent / "metrics.jsonl").is_file():
            rows = io.read_jsonl(path.parent / "metrics.jsonl")
            step = int(rows[-1]["step"]) if rows else None
    return path.name, step


def model_identity(model_path: str) -> dict:
    """The model's content: per file, its size and sha256 (files over 1 GiB: size and mtime, to stay fast)."""
    p = Path(model_path)
    if not p.is_dir():
        return {"hub": model_path}
    files = {}
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        st = f.stat()
        key = str(f.relative_to(p))
        if st.st_size > 2**30:
            files[key] = [st.st_size, st.st_mtime_ns]
        else:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            files[key] = [st.st_size, h.hexdigest()]
    return files


def _fingerprint(model: str, bench: catalog.Benchmark, problems: list[dict], sampling: Sampling, gen) -> str:
    """Everything that can change a number of this evaluation: the model's content, the problems (prompts and
    gold answers), the sampling settings and scheme, the backend with its dtype and device, the package
    versions and the evaluation code (mhpo.common.codehash.eval_hash: generation, scoring, metrics, registry). VL
    problems add their images' pixels, choices and answer types."""
    rows = [[p["id"], p["prompt"], p["gold"]] + ([vl.image_digest(p["image"]), p["choices"], p["answer_type"]]
                                                 if "image" in p else []) for p in problems]
    blob = json.dumps({
        "model": model_identity(model), "benchmark": bench.name, "chat_template": bench.chat_template,
        "problems": hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest(),
        "sampling": sampling.asdict(), "scheme": SAMPLING_SCHEME, "backend": gen.name, "runtime": gen.identity(),
        "versions": _versions(gen.name), "code": codehash.eval_hash(),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_progress(path: Path, fingerprint: str) -> dict[str, list]:
    """Completed problems from an interrupted run with the same settings: {problem_id: [[text, n_tokens], ...]}."""
    if not path.exists():
        return {}
    rows = io.read_jsonl(path)  # a torn last line (killed mid-write) is ignored ...
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        torn = fh.tell() > 0 and (fh.seek(-1, os.SEEK_END), fh.read(1))[1] != b"\n"
    if torn:  # ... and dropped, so the next append starts a fresh line (else a later kill makes the file unreadable)
        io.write_jsonl(path, rows)
    done = {}
    for row in rows:
        if row.get("fingerprint") == fingerprint:
            done[row["problem_id"]] = row["samples"]
    return done


def _score(flat: list, args, name: str) -> list[bool]:
    """Correctness of each ``(problem, sample, text, n_tokens)``: free-form answers through the scorer's worker
    pool, multiple-choice ones by option letter (``scoring.is_correct_typed``)."""
    free = [i for i, (p, *_) in enumerate(flat) if p.get("answer_type", "free_form") == "free_form"]
    correct: list = [None] * len(flat)
    scored = scoring.score_many([(flat[i][2], flat[i][0]["gold"]) for i in free], workers=args.workers,
                                timeout=args.timeout, progress=f"{name} score") if free else []
    for i, ok in zip(free, scored):
        correct[i] = ok
    for i, (p, _, text, _) in enumerate(flat):
        if correct[i] is None:
            correct[i] = scoring.is_correct_typed(text, p["gold"], p["answer_type"], p["choices"],
                                                  timeout=args.timeout)
    return correct


def _image(problem: dict) -> dict:
    """The extra ``encode`` argument of a VL row (its image); none for text rows."""
    return {"image": problem["image"]} if "image" in problem else {}


def evaluate_benchmark(gen, bench: catalog.Benchmark, args, model_path: str, out: Path,
                       problems: list[dict] | None = None) -> dict:
    """Generate (resuming), score and write one benchmark (``problems``: its loaded rows, else loaded here);
    returns its summary."""
    t0 = time.time()
    sampling = Sampling(
        temperature=bench.sampling["temperature"] if args.temperature is None else args.temperature,
        top_p=bench.sampling["top_p"] if args.top_p is None else args.top_p,
        max_tokens=bench.sampling["max_tokens"] if args.max_tokens is None else args.max_tokens,
        n=bench.k if args.k is None else args.k,
        seed=args.seed,
    )
    max_side = getattr(args, "max_side", vl.DEFAULT_MAX_SIDE)
    if problems is None:
        problems = bench.load(args.data_dir, limit=args.limit, seed=args.seed, max_side=max_side)
    fp = _fingerprint(model_path, bench, problems, sampling, gen)
    summary_path, records_path = out / f"{bench.name}.summary.json", out / f"{bench.name}.jsonl"
    if summary_path.exists() and records_path.exists():
        old = json.loads(summary_path.read_text())
        if old.get("fingerprint") == fp and old.get("n_problems") == len(problems):
            print(f"{bench.name}: already complete in {out}, skipped", file=sys.stderr)
            return old
    progress = out / f".{bench.name}.progress.jsonl"
    done = _load_progress(progress, fp)
    todo = [i for i, p in enumerate(problems) if p["id"] not in done]
    if done:
        print(f"{bench.name}: resuming, {len(problems) - len(todo)}/{len(problems)} problems already sampled",
              file=sys.stderr)

    from tqdm.auto import tqdm  # lazy: start-up time

    batch = max(1, args.batch_size)
    t_gen = time.perf_counter()
    with tqdm(total=len(todo), desc=f"{bench.name} generate", unit="prob", file=sys.stderr) as bar:
        for s in range(0, len(todo), batch):
            idx = todo[s : s + batch]
            prompts = [gen.encode(problems[i]["prompt"], bench.chat_template, **_image(problems[i])) for i in idx]
            outs = gen.generate(prompts, sampling, [problems[i]["id"] for i in idx])
            for i, samples in zip(idx, outs):
                row = {"fingerprint": fp, "problem_id": problems[i]["id"], "samples": [list(x) for x in samples]}
                io.append_jsonl(progress, row)
                done[problems[i]["id"]] = row["samples"]
            bar.update(len(idx))
    t_gen = time.perf_counter() - t_gen
    n_new = sum(len(done[problems[i]["id"]][: sampling.n]) for i in todo)

    checkpoint, step = _checkpoint_and_step(model_path, args.step)
    run = args.label or args.model
    flat = [(p, j, text, ntok) for p in problems for j, (text, ntok) in enumerate(done[p["id"]][: sampling.n])]
    correct = _score(flat, args, bench.name)
    records, per_problem = [], {}
    for (p, j, text, ntok), ok in zip(flat, correct):
        extracted = scoring.extract_typed(text, p.get("answer_type", "free_form"), p.get("choices"))
        records.append({
            "run": run, "model": args.model, "checkpoint": checkpoint, "step": step, "benchmark": bench.name,
            "problem_id": p["id"], "sample": j, "completion": text, "extracted": extracted,
            "correct": bool(ok), "n_tokens": int(ntok),
        })
        if bench.modality == "vl":
            records[-1]["answer_type"] = p["answer_type"]
        per_problem.setdefault(p["id"], []).append((extracted, bool(ok)))
    summary = {
        "benchmark": bench.name,
        "k": sampling.n,
        "n_problems": len(problems),
        "metrics": metrics.summarize(per_problem, sampling.n, seed=args.seed),
        "sampling": {**sampling.asdict(), "backend": gen.name, "scheme": SAMPLING_SCHEME, **gen.identity()},
        "versions": _versions(gen.name),
        "model": args.model,
        "run": run,
        "checkpoint": checkpoint,
        "step": step,
        "limit": args.limit,
        "fingerprint": fp,
        "code_hash": codehash.eval_hash(),
        "throughput": {"samples_per_s": round(n_new / t_gen, 3) if todo and t_gen > 0 else None,
                       "problems_per_s": round(len(todo) / t_gen, 3) if todo and t_gen > 0 else None,
                       "generation_s": round(t_gen, 3)},
        "wall_time_s": round(time.time() - t0, 3),
    }
    if bench.modality == "vl":
        summary.update(image_resize=vl.resize_rule(max_side), data=bench.source(args.data_dir))
    io.write_jsonl(records_path, records)
    io.write_json(summary_path, summary)  # the summary last: its presence marks the benchmark complete
    progress.unlink(missing_ok=True)
    return summary


def _modality(benches: list, backend: str) -> str:
    """The one modality of ``benches`` ("text" or "vl"); VL evaluation generates with transformers only."""
    kinds = {b.modality for b in benches}
    if len(kinds) > 1:
        vls = ", ".join(b.name for b in benches if b.modality == "vl")
        raise ValueError(f"--benchmarks mixes text and VL benchmarks ({vls} are VL); they need different models: "
                         "evaluate them in separate calls")
    kind = kinds.pop()
    if kind == "vl" and backend != "hf":
        raise ValueError(f"VL benchmarks are generated with transformers: pass --backend hf, not {backend!r}")
    return kind
