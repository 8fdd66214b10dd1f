"""What a planned matrix will cost, stated before anything is queued (printed by the Snakefile at planning).

* **jobs** per rule family (train, evaluate; tiny_model and aggregate run on CPUs);
* **GPU hours** = Σ over jobs of ``gpu × runtime / 60``: ``runtime`` is the job's wall-time request (minutes,
  config ``resources`` or ``--set-resources``), so this is the most the matrix can be charged, not a forecast;
* **disk** per training run, with P parameters, n = ⌊max_steps / checkpoint.every⌋ checkpoints:
  ``P × (2 × (n − 1) + 14 + 2)`` bytes: every checkpoint keeps its bf16 weights (2 bytes/param, what evaluation
  reads), only the newest also keeps the optimizer state (fp32 master weights + Adam m and v: 12 more bytes/param,
  14 in all), and ``final/`` holds bf16 weights. Parameter counts come from :data:`PARAMS` or the model name
  ("7B"); an unknown model's disk is reported as unknown.
"""

from __future__ import annotations

import re

from mhpo.workflow import config as mcfg

# parameters of the models the shipped configs name (their model cards)
PARAMS: dict[str, float] = {
    "Qwen/Qwen2.5-7B-Instruct": 7.62e9,
    "Qwen/Qwen3-4B-Base": 4.02e9,
    "Qwen/Qwen2.5-VL-7B-Instruct": 8.29e9,
}
WEIGHT_BYTES = 2  # bf16
FULL_BYTES = 14  # bf16 weights + fp32 master weights + Adam m, v
GPU_FAMILIES = ("tiny_model", "train", "evaluate", "aggregate")


def params_of(model_path: str | None) -> float | None:
    """Parameter count of a model path or Hub id: the table, else a "<N>B"/"<N>M" in its name, else None."""
    if not model_path:
        return None
    if model_path in PARAMS:
        return PARAMS[model_path]
    m = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)([BM])(?![a-zA-Z])", model_path.rsplit("/", 1)[-1])
    if m:
        return float(m.group(1)) * (1e9 if m.group(2) == "B" else 1e6)
    return None


def run_disk_bytes(params: float, max_steps: int, every: int) -> float:
    """Bytes a finished run keeps: weights-only checkpoints, the newest with optimizer state, and final/."""
    n = max(0, max_steps // every)
    return params * (WEIGHT_BYTES * max(0, n - 1) + (FULL_BYTES if n else 0) + WEIGHT_BYTES)


def matrix_cost(plan, overrides: dict | None = None) -> dict:
    """Jobs, GPU hours and projected disk of ``plan`` (an mhpo.workflow.config.Plan, studies excluded: they run only by
    their own target). ``overrides``: ``{family: {resource: value}}`` as given by ``--set-resources``."""

    res = {f: {**plan.resources[f], **((overrides or {}).get(f) or {})} for f in GPU_FAMILIES}
    runs = plan.train_runs()
    jobs = {"tiny_model": sum(1 for e in plan.models.values() if e["tiny_model"]), "train": len(runs),
            "evaluate": len(plan.evals), "aggregate": 1}
    gpu_hours = {f: jobs[f] * int(res[f]["gpu"]) * int(res[f]["runtime"]) / 60 for f in GPU_FAMILIES}
    disk, unknown = 0.0, []
    for r in runs:
        rec = mcfg._load_recipe(r.recipe, r.set, r.where)
        entry = plan.models[r.model]
        p = params_of(entry["base"]) if not entry["tiny_model"] else None
        if p is None:
            if not entry["tiny_model"]:
                unknown.append(r.model)
            continue
        disk += run_disk_bytes(p, int(rec["optim"]["max_steps"]), int(rec["checkpoint"]["every"]))
    return {"jobs": jobs, "gpus_per_job": {f: int(res[f]["gpu"]) for f in GPU_FAMILIES},
            "gpu_hours": gpu_hours, "gpu_hours_total": sum(gpu_hours.values()), "disk_bytes": disk,
            "disk_unknown_models": sorted(set(unknown))}


def describe(cost: dict) -> str:
    """The plan's cost in a few lines (what `snakemake -n` prints)."""
    j, g = cost["jobs"], cost["gpu_hours"]
    lines = ["mhpo-bench plan cost (before anything is queued; docs/workflow.md, 'What the plan costs'):",
             f"  jobs: {j['train']} train x {cost['gpus_per_job']['train']} GPU, {j['evaluate']} evaluate x "
             f"{cost['gpus_per_job']['evaluate']} GPU, {j['tiny_model']} tiny_model, {j['aggregate']} aggregate",
             f"  GPU hours (upper bound: gpu x runtime request): {cost['gpu_hours_total']:,.0f} "
             f"(train {g['train']:,.0f}, evaluate {g['evaluate']:,.0f})",
             f"  projected disk of the runs: {cost['disk_bytes'] / 1e12:,.2f} TB (bf16 weights in every checkpoint, "
             "optimizer state only in the newest)"]
    if cost["disk_unknown_models"]:
        lines.append(f"  disk unknown for models {cost['disk_unknown_models']} (parameter count not known)")
    return "\n".join(lines)


def cli_overrides(workflow) -> dict:
    """``--set-resources`` of a running Snakemake workflow as ``{rule: {resource: value}}`` (plain values)."""
    out: dict = {}
    try:
        items = dict(workflow.resource_settings.overwrite_resources).items()
    except AttributeError:
        return out
    for rule, mapping in items:
        try:
            pairs = dict(mapping).items()
        except (TypeError, ValueError):
            continue
        vals = {}
        for k, v in pairs:
            if hasattr(v, "is_evaluable"):  # a snakemake Resource: expressions are evaluated per job, later
                v = None if v.is_evaluable() else v.value
            if isinstance(v, int) and not isinstance(v, bool):
                vals[k] = v
        out[rule] = vals
    return out
