"""``mhpo-bench train``: train one objective on one recipe for one or more seeds, resumably.

    mhpo-bench train --config tiny --objective mhpo --seed 0 --out results/runs/tiny/mhpo/seed0
    mhpo-bench train --config tiny --objective grpo --seed 0,1,2 --out 'results/runs/tiny/grpo/seed{seed}'
    mhpo-bench train --config qwen2.5-7b-instruct --objective mhpo --seed 0 --out /tmp/x --dry-run

``--out`` may contain ``{seed}`` and ``{objective}``; with several seeds it must contain ``{seed}``. Seeds run one
after another in this process (saves interpreter and import start-up per seed). Re-running the same command
resumes each run from its last complete checkpoint; a run whose manifest says ``complete`` is skipped.
The run directory layout is specified in docs/interfaces.md ("Training run directory").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
import uuid
import warnings
from pathlib import Path

import torch
import yaml

from mhpo import objectives
from mhpo.common import env, io
from mhpo.models import loading as models
from mhpo.models.loading import PRESETS, ModelLoadError, check_checkpoint
from mhpo.tasks import text as tasks
from mhpo.training import data, manifest, rewards
from mhpo.training import recipe as recipes

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16", "auto": "auto"}


# ------------------------------------------------------------------------------------------------- CLI
def _kv(items: list[str], what: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{what} {item!r} must look like KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)  # 1.5 -> float, true -> bool, 1e-6 -> str (recipe converts)
    return out


def main(args) -> int:
    # transformers 5 renames (gradient_checkpointing -> activation_checkpointing) warn from inside TRL's own calls
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    try:
        overrides = _kv(args.overrides, "--set")
        if args.max_steps is not None:
            overrides["optim.max_steps"] = args.max_steps
        rec = recipes.load(args.config, overrides=overrides)
        params = {**rec["objective_params"].get(args.objective, {}), **_kv(args.param, "--param")}
        objective = objectives.get(args.objective, **params)
        seeds = [int(s) for s in str(args.seed).split(",")] if args.seed is not None else list(rec["seeds"])
        if len(seeds) > 1 and "{seed}" not in args.out:
            raise ValueError(f"--out {args.out!r} must contain '{{seed}}' when training several seeds ({seeds})")
    except (recipes.RecipeError, objectives.ObjectiveError, ValueError) as e:
        print(f"mhpo-bench train: error: {e}", file=sys.stderr)
        return 2
    status = 0
    for seed in seeds:
        run_dir = Path(args.out.format(seed=seed, objective=args.objective))
        if args.dry_run:
            print(json.dumps(dry_run(rec, objective, seed, run_dir), indent=2, default=str))
            continue
        status = max(status, train(rec, objective, seed, run_dir, recipe_file=recipes.path_for(args.config)))
    return status


# ------------------------------------------------------------------------------------------ config
def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_rank() -> bool:
    """Rank 0 of a launch (or a single process): the one that writes the run's own files."""
    return int(os.environ.get("RANK", "0")) == 0


def _cpu_deepspeed() -> None:
    """DeepSpeed on CPU (``DS_ACCELERATOR=cpu``: tests, laptops) JIT-compiles a shared-memory all-reduce op
    (``deepspeed_shm_comm``, ~90 s of C++ build on a fresh cache) at its first init. Mark it unavailable so
    DeepSpeed falls back to plain gloo collectives, which is all a CPU run needs; ``MHPO_DS_SHM=1`` keeps it."""
    if os.environ.get("DS_ACCELERATOR") != "cpu" or os.environ.get("MHPO_DS_SHM") == "1":
        return
    try:
        import deepspeed.ops  # lazy: optional, its absence is handled here
    except ImportError:
        return
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False  # read by deepspeed.comm.torch.build_shm_op


def grpo_config(rec: dict, objective: objectives.Objective, seed: int, run_dir: Path,
                num_processes: int | None = None):
    """The ``GRPOConfig`` a recipe stands for. ``updates_per_rollout`` U becomes ``steps_per_generation = U × GA``
    with ``num_iterations = 1`` (see mhpo.training.recipe); Liger, entropy masks and bonuses stay off."""
    from trl import GRPOConfig  # lazy: start-up time

    from mhpo.training.trainer import STAGING  # lazy: start-up time

    b = recipes.batches(rec, num_processes or world_size())
    ro, o, v, m = rec["rollout"], rec["optim"], rec["vllm"], rec["model"]
    weights = [float(rec["reward"]["correctness"])]
    if rec["reward"]["format"]:
        weights.append(float(rec["reward"]["format"]))
    if rec["dapo"]["overlong_shaping"]:
        weights.append(1.0)
    init_kwargs = {"dtype": DTYPES[m["dtype"]]}
    if m["attn_implementation"]:
        init_kwargs["attn_implementation"] = m["attn_implementation"]
    kw = dict(
        output_dir=str(run_dir / "checkpoints" / STAGING),
        seed=seed, data_seed=seed,
        per_device_train_batch_size=b["per_device_train_batch_size"],
        gradient_accumulation_steps=b["gradient_accumulation_steps"],
        steps_per_generation=b["steps_per_generation"], num_iterations=b["num_iterations"],
        num_generations=ro["group_size"], max_completion_length=ro["max_completion_length"],
        temperature=float(ro["temperature"]), top_p=float(ro["top_p"]), top_k=ro["top_k"] or 0,
        learning_rate=float(o["lr"]), max_steps=o["max_steps"], lr_scheduler_type=o["lr_scheduler"],
        warmup_steps=float(o["warmup_ratio"]), weight_decay=float(o["weight_decay"]),
        max_grad_norm=float(o["max_grad_norm"]), adam_beta1=float(o["adam_beta1"]), adam_beta2=float(o["adam_beta2"]),
        beta=objective.beta, loss_type="grpo",  # loss_type is unused: ObjectiveGRPOTrainer computes the loss
        # objectives add the plain k3 KL (mhpo.training.trainer rejects True when beta > 0)
        use_bias_correction_kl=False,
        scale_rewards=recipes.SCALE_REWARDS[rec["advantage"]["mode"]],
        mask_truncated_completions=rec["dapo"]["mask_truncated"], reward_weights=weights,
        use_vllm=v["enabled"], vllm_mode=v["mode"], vllm_gpu_memory_utilization=float(v["gpu_memory_utilization"]),
        vllm_tensor_parallel_size=v["tensor_parallel_size"], vllm_enable_sleep_mode=v["enable_sleep_mode"],
        vllm_importance_sampling_correction=v["is_correction"], vllm_importance_sampling_mode=v["is_mode"],
        vllm_importance_sampling_clip_min=v["is_clip_min"], vllm_importance_sampling_clip_max=v["is_clip_max"],
        logging_steps=1, save_strategy="steps", save_steps=rec["checkpoint"]["every"], save_total_limit=None,
        report_to=[], logging_nan_inf_filter=False, use_liger_kernel=False, log_completions=False,
        bf16=rec["precision"] == "bf16", fp16=rec["precision"] == "fp16",
        model_init_kwargs=init_kwargs,
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        trust_remote_code=bool(m["trust_remote_code"]),  # opt-in only (docs/reliability.md)
    )
    if m["gradient_checkpointing"]:
        kw["gradient_checkpointing"] = True
    if v["server_base_url"]:
        kw["vllm_server_base_url"] = v["server_base_url"]
    return GRPOConfig(**kw), b


def dry_run(rec: dict, objective, seed: int, run_dir: Path) -> dict:
    """Everything ``train`` would use, without touching weights, data or the run directory."""
    cfg, b = grpo_config(rec, objective, seed, run_dir)
    trl_keys = ("per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation", "num_iterations",
                "generation_batch_size", "num_generations", "max_completion_length", "temperature", "top_p",
                "learning_rate", "max_steps", "beta", "scale_rewards", "mask_truncated_completions", "use_vllm",
                "vllm_mode", "vllm_importance_sampling_correction", "vllm_importance_sampling_mode",
                "vllm_importance_sampling_clip_max", "save_steps", "bf16", "seed", "trust_remote_code")
    return {"run_dir": str(run_dir), "objective": objective.name, "objective_params": dataclasses.asdict(objective),
            "seed": seed, "batches": b, "grpo_config": {k: getattr(cfg, k) for k in trl_keys}, "recipe": rec}


# ---------------------------------------------------------------------------------------- pieces
def model_path(rec: dict) -> str:
    """The recipe's model: a preset's local directory (:func:`mhpo.models.loading.resolve`), the tiny offline model
    built once per cache (atomically) when ``path: tiny`` (the tiny VLM of ``mhpo.models.tiny_vl`` for a VL recipe,
    i.e. one with ``data.image_field``), or the path as given."""

    m = rec["model"]
    if m["path"] in models.PRESETS and m["path"] != "tiny":
        return models.resolve(m["path"])["path"]  # e.g. smollm2-135m: HF cache, or its GGUF converted once
    if m["path"] != "tiny":
        return m["path"]

    if is_vl(rec):
        from mhpo.models import tiny_vl as tiny  # lazy: start-up time
    else:
        from mhpo.models import tiny  # local: the name means something else in this module

    task = m["tiny_task"] or rec["data"]["task"]
    steps = m["tiny_warm_start_steps"]
    if not is_vl(rec):  # tiny.cached locks the build itself; shared with `mhpo-bench tiny-model`
        return str(tiny.cached(task, seed=0, warm_start_steps=steps))
    # Every rank of a multi-process launch resolves the model at once: the first to take the lock builds,
    # the others wait and then find the finished build (one build per cache, not one per rank).
    with _build_lock(env.setup() / "tiny-vl"):
        return _tiny_vl(tiny, env.setup() / "tiny-vl", task, steps)


def _build_lock(folder: Path):
    """An exclusive lock on ``folder`` (:func:`mhpo.common.io.file_lock`)."""

    return io.file_lock(folder)


def _tiny_vl(tiny, root: Path, task: str, steps) -> str:
    target = root / f"{task}-w{steps if steps is not None else tiny.WARM_START_STEPS}-s0"
    if (target / "config.json").exists():
        return str(target)
    tmp = root / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    kw = {"task": task, "seed": 0}
    if steps is not None:
        kw["warm_start_steps"] = steps
    print(f"[mhpo] building the tiny model for task {task!r} into {target}", flush=True)
    tiny.build(tmp, **kw)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def is_vl(rec: dict) -> bool:
    """A vision-language recipe: its rows carry an image (``data.image_field``)."""
    return rec["data"].get("image_field") is not None


def dataset(rec: dict):
    """Training rows with columns ``prompt`` (text, or a chat for ``prompt_format: chat``), ``answer``, ``id``;
    VL recipes add ``image`` (PIL) plus ``answer_type`` and ``choices`` for the VL reward (TRL's VLM format).
    Dataset layouts (chat-message prompts, nested answer fields, local files, Hub ids): mhpo.training.data."""
    from datasets import Dataset  # lazy: start-up time


    d = rec["data"]
    if is_vl(rec):
        return _vl_dataset(rec)
    if d["task"]:

        rows = tasks.load(d["task"], "train", n=d["n_train"], seed=0)
    else:
        rows = data.text_rows(d)
    return Dataset.from_list([{"prompt": data.prompt(r["problem"], d), "answer": r["answer"], "id": r["id"]}
                              for r in rows])


def _vl_dataset(rec: dict):
    from datasets import Dataset  # lazy: start-up time


    d = rec["data"]
    if d["task"]:
        from mhpo.tasks import vl as vl_tasks  # lazy: start-up time

        rows = vl_tasks.load(d["task"], "train", n=d["n_train"], seed=0)
    else:
        rows = data.vl_rows(d)
    out = []
    for r in rows:
        # the processor inserts the image tokens: drop inline "<image>" markers (Geometry3K)
        prob = r["problem"]
        prob = prob.replace("<image>", "").strip() if isinstance(prob, str) else prob
        out.append({"prompt": data.prompt(prob, {**d, "prompt_format": "chat"}), "image": r["image"],
                    "answer": r["answer"], "answer_type": r["answer_type"], "choices": r["choices"] or [],
                    "id": r["id"]})
    return Dataset.from_list(out)


def reward_funcs(rec: dict) -> list:

    if is_vl(rec):  # multiple choice by letter/option text, free form by math-verify
        from mhpo.training.rewards_vl import vl_correctness_reward as correctness
    else:
        correctness = rewards.correctness_reward
    funcs = [correctness]
    if rec["reward"]["format"]:
        funcs.append(rewards.format_reward)
    if rec["dapo"]["overlong_shaping"]:
        funcs.append(rewards.overlong_penalty(rec["rollout"]["max_completion_length"], rec["dapo"]["overlong_cache"]))
    return funcs


def _truncate_metrics(path: Path, last_step: int) -> int:
    """Keep rows with step ≤ ``last_step`` (first occurrence of each); return how many rows were dropped."""
    if not path.exists():
        return 0
    rows = io.read_jsonl(path)
    keep, seen = [], set()
    for r in rows:
        if r.get("step", 0) <= last_step and r["step"] not in seen:
            keep.append(r)
            seen.add(r["step"])
    io.write_jsonl(path, keep)
    return len(rows) - len(keep)


def _looks_local(path: str) -> bool:
    """As ``mhpo.models.loading.resolve``: an existing path, one starting with . / ~, or anything but ``org/name``."""
    return Path(path).expanduser().exists() or path.startswith((".", "/", "~")) or path.count("/") != 1


def check_inputs(rec: dict, resume: Path | None, previous: Path | None = None) -> None:
    """Raise ``ModelLoadError`` if the recipe's local model or the checkpoint to resume from is missing, truncated
    or corrupt (mhpo.models.loading.check_checkpoint), so a bad path never reaches the trainer or touches the run."""

    path = rec["model"]["path"]
    if path not in PRESETS and _looks_local(path):
        try:
            check_checkpoint(path)
        except ModelLoadError as e:
            raise ModelLoadError(f"model.path: {e}") from None
    if resume is None:
        return
    try:
        check_checkpoint(resume)
        state = resume / "trainer_state.json"
        if state.exists():
            json.loads(state.read_text())
    except (ModelLoadError, json.JSONDecodeError, UnicodeDecodeError) as e:
        fallback = f"resume from {previous.name}" if previous else "start over"
        raise ModelLoadError(f"cannot resume from {resume}: {e}. Nothing was changed; delete {resume} to "
                             f"{fallback} (metrics past that step are redone)") from None


# -------------------------------------------------------------------------------------------- train
def _keep_resolved_recipe(rec: dict, run_dir: Path, recipe_file: Path | None) -> dict:
    """``RUN_DIR/recipe.resolved.yaml`` (kept as the workflow wrote it, else written from the resolved ``rec``)
    and its sha256, for the manifest."""
    path = run_dir / recipes.RESOLVED_RECIPE
    if recipe_file is None or Path(recipe_file).resolve() != path.resolve():
        io.write_text(path, f"# resolved from {recipe_file or 'a recipe'} by mhpo-bench train\n" + recipes.dump(rec))
    return {"path": recipes.RESOLVED_RECIPE, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "source": str(recipe_file) if recipe_file else None}


def train(rec: dict, objective: objectives.Objective, seed: int, run_dir: Path,
          recipe_file: Path | None = None) -> int:
    """Train (or resume) one run; returns 0 on success, 1 on failure (the manifest records why), 2 when the model
    or the checkpoint to resume from is missing or corrupt (nothing is written). The run's one config file,
    ``RUN_DIR/recipe.resolved.yaml``, is ``recipe_file`` when that is it (the workflow's), else written from
    ``rec``; the manifest records its sha256."""
    from mhpo.training.trainer import STAGING, complete_checkpoints  # lazy: start-up time

    man_path = run_dir / "manifest.json"
    main_rank = is_main_rank()
    write_manifest = manifest.write if main_rank else (lambda *a, **k: None)  # one writer per launch
    prev = manifest.read(man_path) or {}
    if prev.get("status") == "complete" and (run_dir / "final").is_dir():
        print(f"[mhpo] {run_dir}: already complete; skipping", flush=True)
        return 0
    ckpts = complete_checkpoints(run_dir / "checkpoints", resumable=True)  # older ones keep weights only
    resume = ckpts[-1] if ckpts else None
    try:  # bad input fails here, before the run directory is created or changed
        check_inputs(rec, resume, ckpts[-2] if len(ckpts) > 1 else None)
    except ModelLoadError as e:
        print(f"mhpo-bench train: {run_dir}: error: {e}", file=sys.stderr)
        return 2
    run_dir.mkdir(parents=True, exist_ok=True)
    resume_step = int(resume.name.split("-")[1]) if resume else 0
    dropped = 0
    if main_rank:  # the other ranks reach the staging folder only after collectives that wait for this one
        # half-written checkpoints of a killed run
        shutil.rmtree(run_dir / "checkpoints" / STAGING, ignore_errors=True)
        io.sweep_stale_tmp(run_dir)  # and its half-written atomic writes
        dropped = _truncate_metrics(run_dir / "metrics.jsonl", resume_step)
    if resume and main_rank:
        print(f"[mhpo] {run_dir}: resuming from {resume.name} (dropped {dropped} metric rows past it)", flush=True)

    t_start = time.time()
    man = {
        "status": "running", "objective": objective.name, "objective_params": dataclasses.asdict(objective),
        "seed": seed, "model": rec["model"]["path"], "track": "vl" if is_vl(rec) else "text", "config": rec,
        "git": manifest.git_info(),
        "versions": manifest.versions(), "hardware": manifest.hardware(),
        "wall_time_s": prev.get("wall_time_s", 0.0), "attempts": prev.get("attempts", 0) + 1,
        "resumed_from": prev.get("resumed_from", []) + ([resume.name] if resume else []),
        "wandb_id": prev.get("wandb_id"), "started_at": prev.get("started_at", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "recipe_file": _keep_resolved_recipe(rec, run_dir, recipe_file) if main_rank else None,
    }
    try:
        _cpu_deepspeed()
        cfg, b = grpo_config(rec, objective, seed, run_dir)
        man["config"] = {**rec, "derived": b, "vllm_is_correction": {
            "enabled": cfg.use_vllm and cfg.vllm_importance_sampling_correction,
            "mode": cfg.vllm_importance_sampling_mode, "clip_min": cfg.vllm_importance_sampling_clip_min,
            "clip_max": cfg.vllm_importance_sampling_clip_max}}
        man["model_path"] = model_path(rec)
        write_manifest(man_path, man)
        _fit(rec, objective, cfg, run_dir, man, resume)
    except BaseException as e:  # record every failure (incl. Ctrl-C) before leaving
        man.update(status="failed", error=f"{type(e).__name__}: {e}",
                   wall_time_s=man["wall_time_s"] + time.time() - t_start)
        write_manifest(man_path, man)
        if isinstance(e, KeyboardInterrupt):
            raise
        if not isinstance(e, (ValueError, RuntimeError)):
            traceback.print_exc()
        print(f"mhpo-bench train: {run_dir}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        _reset_accelerate()
    man.update(status="complete", wall_time_s=man["wall_time_s"] + time.time() - t_start,
               finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_manifest(man_path, man)
    if main_rank:
        print(f"[mhpo] {run_dir}: complete ({man['wall_time_s']:.0f}s)", flush=True)
    return 0


def _fit(rec, objective, cfg, run_dir: Path, man: dict, resume: Path | None) -> None:
    from tqdm.auto import tqdm  # lazy: start-up time
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from mhpo.training.trainer import MetricsWriter, ObjectiveGRPOTrainer  # lazy: start-up time

    train_ds = dataset(rec)
    funcs = reward_funcs(rec)
    trainer = ObjectiveGRPOTrainer(
        model=man["model_path"], reward_funcs=funcs, args=cfg, train_dataset=train_ds, objective=objective,
        dynamic_sampling=rec["dapo"]["dynamic_sampling"], max_generation_rounds=rec["dapo"]["max_generation_rounds"],
        max_consecutive_nonfinite=rec["optim"]["max_consecutive_nonfinite"],
    )
    trainer.keep_last_checkpoints = rec["checkpoint"]["keep_last"]
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    acc = trainer.accelerator
    # what really ran (a launch that silently fell back to one process shows here)
    man["distributed"] = {"num_processes": acc.num_processes, "type": str(acc.distributed_type).split(".")[-1]}
    if acc.is_main_process:
        manifest.write(run_dir / "manifest.json", man)
    wandb_run = _wandb(rec, objective, run_dir, man) if acc.is_main_process else None
    start = int(resume.name.split("-")[1]) if resume else 0
    bar = tqdm(total=cfg.max_steps, initial=start, desc=f"train {objective.name} seed{cfg.seed}", unit="step",
               disable=not trainer.accelerator.is_main_process, file=sys.stderr)
    trainer.add_callback(MetricsWriter(run_dir / "metrics.jsonl", objective.name, funcs[0].__name__, wandb_run, bar))
    if resume:
        trainer.restore_state(resume)
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        save_final(trainer, run_dir)
    finally:
        bar.close()
        if wandb_run is not None:
            wandb_run.finish()


def save_final(trainer, run_dir: Path) -> None:
    """Write ``final/`` (full weights + tokenizer) atomically. Every rank calls ``save_model``: under ZeRO-3 it
    gathers the partitioned 16-bit weights, a collective that hangs if rank 0 enters it alone; only rank 0
    writes files."""
    acc, tmp = trainer.accelerator, run_dir / ".final.tmp"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    trainer.save_model(str(tmp))
    if acc.is_main_process:
        trainer.processing_class.save_pretrained(str(tmp))
        shutil.rmtree(run_dir / "final", ignore_errors=True)
        os.replace(tmp, run_dir / "final")  # final/ appears complete or not at all
    acc.wait_for_everyone()


def _wandb(rec, objective, run_dir: Path, man: dict):
    """An offline-by-default wandb run under RUN_DIR/wandb. Each attempt (first run, each resume) is its own wandb
    run ``<group>-a<attempt>`` in the group ``<group>``: after a ``kill -9`` the old run's wandb service may still
    hold its id, and metrics.jsonl (not wandb) is the record that is deduplicated across resumes."""
    w = rec["wandb"]
    if not w["enabled"] or w["mode"] == "disabled":
        return None
    import wandb  # lazy: start-up time

    man["wandb_id"] = man.get("wandb_id") or uuid.uuid4().hex[:12]
    manifest.write(run_dir / "manifest.json", man)
    mode = os.environ.get("WANDB_MODE", w["mode"]) if w["mode"] == "offline" else w["mode"]
    return wandb.init(project=w["project"], id=f"{man['wandb_id']}-a{man['attempts']}", group=man["wandb_id"],
                      dir=str(run_dir), mode=mode, name=f"{rec['name']}-{objective.name}-seed{man['seed']}",
                      config=man["config"], settings=wandb.Settings(silent=True, console="off"))


def _reset_accelerate() -> None:
    """Forget accelerate's per-process singletons so the next seed in this process starts clean (single process
    only: a distributed group must outlive the loop)."""
    if world_size() > 1:
        return
    try:
        from accelerate.state import AcceleratorState, GradientState  # lazy: optional, its absence is handled here

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    except Exception:  # noqa: BLE001 - best effort; a failure here only affects the next seed's start-up
        pass
