"""Every command line the workflow runs, built in one place from a :class:`mhpo.workflow.plan.Plan`.

Each function returns one shell-quoted string (``shlex.join``) that a Snakemake rule runs as is; the rules hold no
logic. ``plan`` is the plan that owns the model label (``Plan._owner``: the main config's or a study's).

    tiny        mhpo-bench tiny-model [--kind vl]              (rule tiny_model)
    train       [mhpo-bench launch ... --] mhpo-bench train    (rule train)
    evaluate    mhpo-bench evaluate                            (rule evaluate; one per distinct --limit, joined &&)
    aggregate   mhpo-bench aggregate                           (rule aggregate)
    atlas       mhpo-bench atlas                               (rule atlas)
    stability   mhpo-bench stability                           (rule stability)
    aggregate_vl mhpo-bench aggregate --track vl               (rule aggregate_vl)
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from mhpo.workflow.schema import ConfigError

# paired comparisons of the stability study: every method vs GRPO, and vs MHPO (ablations)
STABILITY_REFERENCES = ("grpo", "mhpo")


def train(plan, model: str, label: str, seed, out: str, gpus: int | None = None, threads: int | None = None) -> str:
    """``mhpo-bench train --config RUN_DIR/recipe.resolved.yaml`` of one run (writes ``out``, a ``.../final`` dir;
    the file is written by ``Plan.write_resolved_recipes`` before the jobs run). An ``accelerate launch`` launcher is
    wrapped in ``mhpo-bench launch`` (mhpo.training.launch): processes = the job's ``gpus``, a free port,
    ``threads`` split over the ranks."""
    run = plan.run(model, label, seed)
    if run.kind != "train":
        raise ConfigError(f"{run.where}: {model}/{label} is evaluated from existing checkpoints, not trained")
    # one resolved config file (Plan.write_resolved_recipes): recipe, overrides and parameters, nothing re-parsed
    argv = list(plan.cfg["train_launcher"]) + ["train", "--config", plan.resolved_recipe_path(model, label, seed),
                                               "--objective", run.objective, "--seed", str(run.seed),
                                               "--out", str(Path(out).parent)]
    if argv[:2] == ["accelerate", "launch"]:
        gpus = plan.resources["train"]["gpu"] if gpus is None else gpus
        wrap = ["mhpo-bench", "launch", "--gpus", str(int(gpus))]
        wrap += ["--threads", str(int(threads))] if threads else []
        argv = wrap + ["--"] + argv
    return shlex.join(argv)


def tiny(plan, model: str, out: str) -> str:
    """``mhpo-bench tiny-model`` (``--kind vl`` for a VL model) building model label ``model`` into ``out``."""
    t = plan.models[model]["tiny_model"]
    kind = ["--kind", "vl"] if plan.models[model]["track"] == "vl" else []
    return shlex.join(["mhpo-bench", "tiny-model", *kind, "--out", out, "--task", t["task"],
                       "--seed", str(t.get("seed", 0))])


def evaluate(plan, model: str, label: str, seed, checkpoint: str) -> str:
    """One ``mhpo-bench evaluate`` per distinct ``--limit`` among the job's benchmarks, joined with ``&&``."""
    job = plan.eval_job(model, label, seed, checkpoint)
    ev = job.evaluation
    out = plan.eval_dir(model, label, int(seed), checkpoint)
    data_dir = ev["data_dir"] or plan.data_dir
    run_label = f"{model}/{label}/seed{seed}"
    groups: dict[Any, list[str]] = {}
    for b in job.benchmarks:
        groups.setdefault(b["limit"], []).append(b["name"])
    cmds = []
    for limit, names in groups.items():
        argv = ["mhpo-bench", "evaluate", "--model", job.model_path, "--benchmarks", ",".join(names),
                "--out", out, "--label", run_label, "--backend", ev["backend"]]
        argv += ["--batch-size", str(ev["batch_size"])]
        if ev["k"] is not None:
            argv += ["--k", str(ev["k"])]
        s = ev["sampling"]
        for key, flag in (("temperature", "--temperature"), ("top_p", "--top-p"), ("max_tokens", "--max-tokens"),
                          ("seed", "--seed")):
            if s.get(key) is not None:
                argv += [flag, str(s[key])]
        if limit is not None:
            argv += ["--limit", str(limit)]
        if job.step is not None:
            argv += ["--step", str(job.step)]
        if data_dir:
            argv += ["--data-dir", data_dir]
        if plan.models[model]["trust_remote_code"]:
            argv += ["--trust-remote-code"]
        cmds.append(shlex.join(argv))
    return " && ".join(cmds)


def aggregate(plan, out: str | None = None) -> str:
    """``mhpo-bench aggregate`` of ``plan``'s text experiments (tables/main.*, training signals, figures) into
    ``out`` (default: the results dir). ``plan`` is the main plan or a study's (e.g. the SmolLM2 tier's)."""
    argv = ["mhpo-bench", "aggregate", "--runs", plan.runs_dir]
    for d in plan.extra_runs_dirs():
        argv += ["--runs", d]
    argv += ["--evals", plan.evals_dir, "--out", out or plan.results_dir]
    argv += ["--track", "text"]  # tables/vl.* belong to the aggregate_vl rule
    for name in sorted(set(plan.skipped_benchmarks)):
        argv += ["--skipped", f"{name}=no data file found at planning (if_available: true); see docs/benchmarks.md"]
    for e in plan.experiments("text"):
        argv += ["--experiment", e]
    return shlex.join(argv)


def atlas(plan, out: str) -> str:
    """``mhpo-bench atlas``: every registered objective unless ``report.atlas_objectives`` names some."""
    argv = ["mhpo-bench", "atlas", "--out", out]
    chosen = plan.cfg.get("report", {}).get("atlas_objectives")
    if chosen:
        argv += ["--objectives", ",".join(chosen)]
    return shlex.join(argv)


def stability(plan, study) -> str:
    """``mhpo-bench stability`` over the study's runs: regimes are its model labels, methods its objective
    labels, compared against GRPO and MHPO where they are among them (else the first method)."""
    runs = study.train_runs()
    labels = sorted({r.label for r in runs})
    refs = [m for m in STABILITY_REFERENCES if m in labels] or labels[:1]
    argv = ["mhpo-bench", "stability", "--runs", plan.runs_dir, "--evals", plan.evals_dir, "--out", plan.results_dir,
            "--regimes", ",".join(sorted({r.model for r in runs})), "--methods", ",".join(labels),
            "--reference", ",".join(refs)]
    return shlex.join(argv)


def aggregate_vl(plan, vl_plans) -> str:
    """``mhpo-bench aggregate --track vl`` of the VL experiments of ``vl_plans`` (the main plan and/or its studies)."""
    argv = ["mhpo-bench", "aggregate", "--track", "vl", "--evals", plan.evals_dir, "--out", plan.results_dir]
    for p in vl_plans:
        for e in p.experiments("vl"):
            argv += ["--experiment", e]
    return shlex.join(argv)
