"""The job plan of a workflow config: semantic checks and every job the Snakefile executes.

    mhpo-bench validate-config workflow/config/default.yaml         # resolved config + job counts, exit 0
    mhpo-bench validate-config my.yaml --jobs                      # also list every job

A config (``workflow/config/*.yaml``, schema ``mhpo/resources/schemas/config.schema.yaml``) has one entry per
experiment: model label, objective (+ params), seeds, recipe (+ ``set`` overrides), evaluation (benchmarks, k,
sampling, ``eval_every``). ``defaults`` is merged into every experiment. An experiment with ``from_runs`` (an
existing runs directory) or ``checkpoints`` (seed -> model path) is evaluated only, never trained.

``studies`` names further configs (``{stability: workflow/config/stability.yaml}``) whose experiments are planned
too, as :attr:`Plan.studies`, but are not part of the main experiments: ``snakemake --cores all`` runs only the
main ones; a study runs by its own target (``snakemake --cores all stability``). A study shares the main
config's ``results_dir``, ``data_dir`` and ``resources`` and must use its own model labels (its output paths
then never collide with the main experiments').

Each model has a track: ``vl`` when its recipe sets ``data.image_field`` (or, evaluation only, all its benchmarks
have modality ``vl`` in the registry), else ``text``. VL models are built with ``mhpo-bench tiny-model --kind vl``,
evaluated with ``mhpo-bench evaluate`` and tabulated by ``mhpo-bench aggregate --track vl`` (docs/vl.md); the
``*(track=...)`` helpers keep the main aggregate to text models.

Every error is a :class:`ConfigError` whose message starts with the offending key, e.g.
``experiments[2].objective: unknown objective 'grpoo'; available: ...``. Nothing here starts a job.

Output paths encode the experiment (docs/interfaces.md)::

    {results_dir}/runs/{model}/{label}/seed{seed}/                  training run (final/, checkpoints/, metrics.jsonl)
    {results_dir}/evals/{model}/{label}/seed{seed}/{checkpoint}/    evaluation records + summaries
    {results_dir}/evals/{model}/base/seed{s}/base/                  the untrained model
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from mhpo.common import codehash, io
from mhpo.training import data, objective_cache
from mhpo.training import recipe as recipes
from mhpo.workflow import commands
from mhpo.workflow.schema import ConfigError, prepare, validate_schema

RESOLVED_RECIPE = recipes.RESOLVED_RECIPE
RESOLVED_HEADER = ("# The resolved recipe of this run, written by the workflow planner (mhpo.workflow.plan) from the "
                   "config's recipe,\n"
                   "# `set`, `params` and model entry; `mhpo-bench train --config` reads it as is.\n")
BASE_LABEL = "base"  # reserved objective label of the untrained model's evaluation
BASE_CHECKPOINT = "base"
FINAL = "final"
LABEL_RE = re.compile(r"^[^/\x00-\x1f.\-][^/\x00-\x1f]*$")

# threads / mem_mb / runtime (minutes) / gpu per rule family; config `resources` overrides key by key.
DEFAULT_RESOURCES: dict[str, dict[str, int]] = {
    "tiny_model": {"threads": 1, "mem_mb": 2000, "runtime": 15, "gpu": 0},
    "train": {"threads": 1, "mem_mb": 4000, "runtime": 60, "gpu": 0},
    "evaluate": {"threads": 1, "mem_mb": 4000, "runtime": 60, "gpu": 0},
    "aggregate": {"threads": 1, "mem_mb": 4000, "runtime": 30, "gpu": 0},
}
EVAL_DEFAULTS: dict[str, Any] = {
    "k": None,  # None: each benchmark's own k
    "limit": None,
    "sampling": {},
    "backend": "hf",
    "batch_size": 8,
    "eval_every": 0,
    "curve_benchmarks": None,
    "data_dir": None,  # this experiment's benchmark data (default: the config's data_dir)
    "require_data": True,  # False: plan benchmarks whose data are not found yet (the job fails if still missing)
}


# --------------------------------------------------------------------------------------------- plan
@dataclasses.dataclass
class Run:
    """One (model, label, seed): a training run of this workflow, an existing run dir, or an existing model."""

    model: str
    label: str
    seed: int
    objective: str | None
    params: dict
    recipe: str | None
    set: dict
    evaluation: dict
    kind: str  # "train" | "runs" (existing run dir) | "model" (existing model path)
    path: str  # run dir (train/runs) or model path (model)
    where: str  # config key, for messages
    checkpoints: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # intermediate (name, step)
    max_steps: int | None = None
    study: str | None = None  # name of the study (config ``studies``) it belongs to; None: a main experiment
    resolved: dict | None = None  # training runs: the one recipe the job reads (RESOLVED_RECIPE in the run dir)


@dataclasses.dataclass
class EvalJob:
    model: str
    label: str
    seed: int
    checkpoint: str
    model_path: str
    step: int | None
    benchmarks: list[dict]  # [{name, limit}]
    evaluation: dict
    inputs: list[str]

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.model, self.label, self.seed, self.checkpoint)


class Plan:
    """Everything the Snakefile needs, computed once at parse time from a validated config."""

    def __init__(self, cfg: dict, workdir: str | os.PathLike = ".", study: str | None = None):
        self.cfg = cfg
        self.study = study
        self.workdir = Path(workdir)
        self.results_dir = cfg["results_dir"].rstrip("/") or "."
        self.runs_dir = f"{self.results_dir}/runs"
        self.evals_dir = f"{self.results_dir}/evals"
        self.logs_dir = f"{self.results_dir}/logs"
        self.models_dir = f"{self.results_dir}/models"
        self.data_dir = cfg.get("data_dir")
        self.resources = {k: {**v, **cfg.get("resources", {}).get(k, {})} for k, v in DEFAULT_RESOURCES.items()}
        self.runs: dict[tuple[str, str, int], Run] = {}
        self.evals: dict[tuple[str, str, int, str], EvalJob] = {}
        self.models: dict[str, dict] = {}
        self.skipped_benchmarks: list[str] = []
        self.missing_data: list[str] = []  # planned with evaluation.require_data: false, data not found yet
        self.studies: dict[str, Plan] = {}
        self.code_hashes: dict[tuple[str, str, int], str] = {}  # training runs: mhpo.common.codehash.train_hash
        self._build()
        self._build_studies()

    # ------------------------------------------------------------------ paths
    def run_dir(self, model: str, label: str, seed: int) -> str:
        return f"{self.runs_dir}/{model}/{label}/seed{seed}"

    def eval_dir(self, model: str, label: str, seed: int, checkpoint: str) -> str:
        return f"{self.evals_dir}/{model}/{label}/seed{seed}/{checkpoint}"

    def eval_done(self, job: EvalJob) -> str:
        return f"{self.eval_dir(job.model, job.label, job.seed, job.checkpoint)}/.done"

    def tiny_model_dir(self, model: str) -> str:
        return f"{self.models_dir}/{model}"

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        cfg = self.cfg
        model_cfgs = cfg.get("models", {})
        for name in model_cfgs:
            if not LABEL_RE.match(name):
                raise ConfigError(f"models.{name}: not a valid model label")
        defaults = cfg.get("defaults", {})
        seen: dict[tuple[str, str], str] = {}
        for i, raw in enumerate(cfg["experiments"]):
            where = f"experiments[{i}]"
            exp = _merge(defaults, raw)
            model = exp["model"]
            label = exp.get("label") or exp.get("objective")
            if not label:
                raise ConfigError(f"{where}: needs `objective` (or `label` for existing checkpoints)")
            if not LABEL_RE.match(label):
                raise ConfigError(f"{where}.label: {label!r} is not a valid label (no '/', control characters, "
                                  "or leading '.'/'-'); set `label` explicitly")
            if label == BASE_LABEL:
                raise ConfigError(f"{where}.label: {BASE_LABEL!r} is reserved for the untrained model")
            if (model, label) in seen:
                raise ConfigError(f"{where}: model {model!r} / label {label!r} already defined by "
                                  f"{seen[(model, label)]}; give one of them a distinct `label`")
            seen[(model, label)] = where
            if "from_runs" in exp and "checkpoints" in exp:
                raise ConfigError(f"{where}: set either `from_runs` or `checkpoints`, not both")
            kind = "runs" if "from_runs" in exp else "model" if "checkpoints" in exp else "train"
            objective = exp.get("objective")
            params = exp.get("params", {}) or {}
            recipe = exp.get("recipe")
            overrides = exp.get("set", {}) or {}
            if model_cfgs and model not in model_cfgs:  # (a config without `models` names its models freely)
                raise ConfigError(f"{where}.model: undefined model {model!r}; defined under `models`: "
                                  f"{', '.join(sorted(model_cfgs)) or '(none)'} (add it there, e.g. "
                                  f"`{model}: {{base: PATH_OR_HUB_ID}}`)")
            if kind == "train":
                if not objective:
                    raise ConfigError(f"{where}.objective: required to train (or give `from_runs`/`checkpoints`)")
                if not recipe:
                    raise ConfigError(f"{where}.recipe: required to train")
                rec = _load_recipe(recipe, overrides, where)
                _check_recipe_objective_params(rec, recipe, where)
                merged = {**(rec.get("objective_params") or {}).get(objective, {}), **params}
                problem = objective_cache.check(objective, merged)
                if problem:
                    key = (problem[0] if problem[0] == "objective" or params
                           else f"recipe ({recipe}).objective_params.{objective}")
                    raise ConfigError(f"{where}.{key}: {problem[1]}")
            else:
                rec = None
            evaluation = _merge_eval(exp.get("evaluation", {}), where)
            benches = self._benchmarks(evaluation, where)
            evaluation["resolved_benchmarks"] = benches
            curve = evaluation["curve_benchmarks"]
            if curve is not None:
                names = {b["name"] for b in benches}
                for c in curve:
                    if c not in names and c not in self.skipped_benchmarks:
                        raise ConfigError(f"{where}.evaluation.curve_benchmarks: {c!r} is not one of the benchmarks "
                                          f"{sorted(names)}")
            if model not in self.models:
                self.models[model] = self._model_entry(model, model_cfgs.get(model, {}), rec, evaluation, where)
            track = self.models[model]["track"]
            wrong = [b["name"] for b in benches if b.get("track", "text") != track]
            if wrong:
                raise ConfigError(f"{where}.evaluation.benchmarks: {wrong} are {'text' if track == 'vl' else 'VL'} "
                                  f"benchmarks but model {model!r} is a {track} model (its recipe "
                                  f"{'sets' if track == 'vl' else 'does not set'} data.image_field)")
            if kind == "train":
                _check_training_data(rec, where)
                _check_prompt_format(model, self.models[model], rec, benches, where)
            seeds = exp.get("seeds")
            if kind == "model":
                seeds = sorted(int(s) for s in exp["checkpoints"])
            if not seeds:
                raise ConfigError(f"{where}.seeds: required (a list of integers)")
            for seed in seeds:
                seed = int(seed)
                if kind == "train":
                    path = self.run_dir(model, label, seed)
                elif kind == "runs":
                    source = exp.get("from_label") or objective or label
                    path = f"{exp['from_runs'].rstrip('/')}/{model}/{source}/seed{seed}"
                    if not (self.workdir / path / FINAL).is_dir():
                        raise ConfigError(f"{where}.from_runs: no finished run at {path} (missing {FINAL}/); the "
                                          "directory read is "
                                          "FROM_RUNS/{model}/{from_label or objective or label}/seed{seed}")
                    self._check_not_own_output(path, f"{where}.from_runs")
                else:
                    path = exp["checkpoints"][str(seed)]
                    if not (self.workdir / path).exists() and not _looks_like_hub_id(path):
                        raise ConfigError(f"{where}.checkpoints.{seed}: {path!r} does not exist")
                    self._check_not_own_output(path, f"{where}.checkpoints.{seed}")
                run = Run(model, label, seed, objective, params, recipe, overrides, evaluation, kind, path, where,
                          study=self.study)
                run.checkpoints, run.max_steps = self._intermediate(run, rec, where)
                self.runs[(model, label, seed)] = run
                if kind == "train":
                    self.code_hashes[(model, label, seed)] = _train_code_hash(objective, params, rec)
                    run.resolved = self._resolved_recipe(model, objective, params, rec)
                self._add_evals(run)
        for j, name in enumerate(cfg.get("report", {}).get("atlas_objectives") or []):
            problem = objective_cache.check(name, {})
            if problem:
                raise ConfigError(f"report.atlas_objectives[{j}]: {problem[1]}")
        for model, entry in self.models.items():
            if entry["evaluate_base"]:
                ev = entry["evaluation"]
                seed = int(ev["sampling"].get("seed", 0))
                inputs = [self.tiny_model_dir(model)] if entry["tiny_model"] else []
                job = EvalJob(model, BASE_LABEL, seed, BASE_CHECKPOINT, entry["base"], 0,
                              ev["resolved_benchmarks"], ev, inputs)
                self.evals[job.key] = job

    def _resolved_recipe(self, model: str, objective: str, params: dict, rec: dict) -> dict:
        """The recipe a training job reads: the recipe with the experiment's ``set`` overrides, the workflow's
        model path and trust opt-in, and only this objective's parameters (recipe ones, then ``params``)."""
        out = copy.deepcopy(rec)
        if self.models[model]["tiny_model"]:
            out["model"]["path"] = self.tiny_model_dir(model)
        if self.models[model]["trust_remote_code"]:  # per-model opt-in; never on by default
            out["model"]["trust_remote_code"] = True
        out["objective_params"] = {objective: {**(rec.get("objective_params") or {}).get(objective, {}), **params}}
        return out

    def resolved_recipe_path(self, model: str, label: str, seed) -> str:
        """``RUN_DIR/recipe.resolved.yaml``: the training job's one config file (``mhpo-bench train --config``)."""
        return f"{self.run(model, label, seed).path}/{RESOLVED_RECIPE}"

    def write_resolved_recipes(self) -> list[str]:
        """Write every training run's resolved recipe (this plan's and its studies'), atomically and only where
        the content changed (an unchanged file keeps its mtime). Returns the paths written."""
        written = []
        for p in [self, *self.studies.values()]:
            for r in p.train_runs():
                path = self.workdir / p.resolved_recipe_path(r.model, r.label, r.seed)
                text = RESOLVED_HEADER + recipes.dump(r.resolved)
                try:
                    if path.read_text(encoding="utf-8") == text:
                        continue
                except OSError:
                    pass
                io.write_text(path, text)
                written.append(str(path))
        return written

    def _check_not_own_output(self, path: str, where: str) -> None:
        """Existing runs are read from outside this config's results_dir: evaluating them in place would write
        evaluations and tables over those of the run that made them (Flow 2 writes into its own results_dir)."""
        p, runs = (self.workdir / path).resolve(), (self.workdir / self.runs_dir).resolve()
        if p == runs or runs in p.parents:
            raise ConfigError(f"{where}: {path!r} is inside this config's own results_dir ({self.results_dir!r}); "
                              "regenerating there would overwrite that run's evaluations and tables. Leave "
                              "`results_dir` out (default results/<config name>) or set a new one")

    def _build_studies(self) -> None:
        """Plan each ``studies`` config (validated like a main config) under this plan's results_dir."""
        for name, path in (self.cfg.get("studies") or {}).items():
            where = f"studies.{name}"
            if self.study is not None:
                raise ConfigError(f"{where}: a study config cannot itself name studies")
            # relative to the workflow's directory, else to the current one (never to the installed package)
            found = [d / path for d in (self.workdir, Path.cwd()) if (d / path).is_file()]
            if not found:
                raise ConfigError(f"{where}: study config {path!r} not found (paths are relative to the workflow's "
                                  f"directory, here {str(self.workdir.resolve())!r}, or the current one)")
            try:
                with open(found[0], encoding="utf-8") as fh:
                    raw = yaml.safe_load(fh)
            except yaml.YAMLError as e:
                raise ConfigError(f"{where}: {path} is not valid YAML: {e}") from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{where}: {path} must be a mapping")
            shared = sorted(set(raw) & {"results_dir", "data_dir", "resources", "studies"})
            if shared:
                raise ConfigError(f"{where}: {path} sets {', '.join(shared)}; a study uses the main config's "
                                  "(remove them from the study file)")
            raw = {**raw, "results_dir": self.cfg["results_dir"], "data_dir": self.data_dir,
                   "resources": self.cfg.get("resources", {})}
            try:
                sub = Plan(validate_schema(raw), self.workdir, study=name)
            except ConfigError as e:
                raise ConfigError(f"{where} ({path}): {e}") from None
            taken = set(self.models).union(*(p.models for p in self.studies.values()))
            clash = sorted(set(sub.models) & taken)
            if clash:
                raise ConfigError(f"{where}: model label(s) {clash} are already used by the main experiments or "
                                  "another study; give the study its own model labels (they name its output paths)")
            self.studies[name] = sub

    def _owner(self, model: str) -> Plan:
        """The plan (this one or a study's) whose experiments use model label ``model``."""
        if model in self.models:
            return self
        for sub in self.studies.values():
            if model in sub.models:
                return sub
        return self

    def _model_entry(self, model: str, mcfg: dict, rec: dict | None, evaluation: dict, where: str) -> dict:
        tiny = mcfg.get("tiny_model")
        base = mcfg.get("base")
        if tiny:
            base = self.tiny_model_dir(model)
        elif base is None and rec is not None:
            base = rec["model"]["path"]
        if base == "tiny":  # the trainer's own cached tiny model has no stable path; build it in the workflow
            raise ConfigError(f"models.{model}.tiny_model: the recipe uses model.path 'tiny'; set "
                              f"models.{model}.tiny_model: {{task: ...}} so the workflow builds it first")
        evaluate_base = bool(mcfg.get("evaluate_base", True)) and base is not None
        # "vl": a VL recipe (data.image_field) or, without a recipe, VL benchmarks only (docs/vl.md)
        vl = (rec["data"].get("image_field") is not None if rec is not None
              else all(b.get("track") == "vl" for b in evaluation["resolved_benchmarks"]))
        return {"tiny_model": tiny, "base": base, "evaluate_base": evaluate_base, "evaluation": evaluation,
                "trust_remote_code": bool(mcfg.get("trust_remote_code", False)), "track": "vl" if vl else "text"}

    def _benchmarks(self, evaluation: dict, where: str) -> list[dict]:
        try:
            import benchmarks as bm  # lazy: optional, its absence is handled here
        except ImportError:  # evaluation package not installed: names are checked when the job runs
            bm = None
        available = bm.available() if bm else None
        data_dir = evaluation["data_dir"] or self.data_dir
        out = []
        for j, b in enumerate(evaluation["benchmarks"]):
            b = {"name": b} if isinstance(b, str) else dict(b)
            b.setdefault("limit", evaluation["limit"])
            b.setdefault("if_available", False)
            key = f"{where}.evaluation.benchmarks[{j}]"
            vl = bm is not None and _vl_benchmark(b["name"])
            if bm is not None:
                synthetic = b["name"].startswith("synth_")
                if not vl and b["name"] not in available and not synthetic:
                    raise ConfigError(f"{key}: unknown benchmark {b['name']!r}; available: {', '.join(available)}")
                try:
                    spec = bm.get(b["name"])
                except Exception as e:  # BenchmarkError: unknown (synthetic) task
                    raise ConfigError(f"{key}: {e}") from None
                if spec.task is None and spec.local_path(data_dir) is None and os.environ.get("MHPO_ONLINE") != "1":
                    if b["if_available"]:
                        self.skipped_benchmarks.append(b["name"])
                        continue
                    if evaluation["require_data"]:
                        fix = ("export it with `python -m benchmarks.vl export`, then set `data_dir` or "
                               "evaluation.data_dir" if vl else "set `data_dir`, MHPO_BENCHMARK_DIR")
                        raise ConfigError(f"{key}: no data for {'VL ' if vl else ''}benchmark {b['name']!r} ({fix}; "
                                          "or `if_available: true` to skip it, `require_data: false` to plan it "
                                          "anyway)")
                    self.missing_data.append(b["name"])
            out.append({"name": b["name"], "limit": b["limit"], **({"track": "vl"} if vl else {})})
        if not out:
            raise ConfigError(f"{where}.evaluation.benchmarks: none of the benchmarks has data")
        return out

    def _intermediate(self, run: Run, rec: dict | None, where: str) -> tuple[list[tuple[str, int]], int | None]:
        every = run.evaluation["eval_every"]
        if run.kind == "train":
            max_steps = int(rec["optim"]["max_steps"])
            ck = int(rec["checkpoint"]["every"])
            if not every:
                return [], max_steps
            if every % ck:
                raise ConfigError(f"{where}.evaluation.eval_every: {every} is not a multiple of the recipe's "
                                  f"checkpoint.every ({ck}); checkpoints exist only at multiples of it")
            if rec["checkpoint"].get("keep_last"):
                raise ConfigError(f"{where}.evaluation.eval_every: the recipe deletes old checkpoints "
                                  "(checkpoint.keep_last); set it to null to evaluate them")
            return [(f"checkpoint-{s}", s) for s in range(every, max_steps, every)], max_steps
        if run.kind == "runs" and every:
            ck_dir = self.workdir / run.path / "checkpoints"
            found = []
            for p in sorted(ck_dir.glob("checkpoint-*")) if ck_dir.is_dir() else []:
                m = re.fullmatch(r"checkpoint-(\d+)", p.name)
                if m and int(m.group(1)) % every == 0:
                    found.append((p.name, int(m.group(1))))
            found.sort(key=lambda x: x[1])
            return found, None
        return [], None

    def _add_evals(self, run: Run) -> None:
        ev = run.evaluation
        trained = run.kind == "train"
        final_input = [f"{run.path}/{FINAL}"] if trained else []
        if run.kind == "model":
            final_path, step = run.path, None
        else:
            final_path, step = f"{run.path}/{FINAL}", None
        jobs = [EvalJob(run.model, run.label, run.seed, FINAL, final_path, step, ev["resolved_benchmarks"], ev,
                        final_input)]
        curve = ev["curve_benchmarks"]
        benches = [b for b in ev["resolved_benchmarks"] if curve is None or b["name"] in curve]
        for name, s in run.checkpoints:
            if benches:
                jobs.append(EvalJob(run.model, run.label, run.seed, name, f"{run.path}/checkpoints/{name}", s,
                                    benches, ev, final_input))
        for j in jobs:
            self.evals[j.key] = j

    # ------------------------------------------------------------------ Snakefile helpers
    def train_runs(self, track: str | None = None) -> list[Run]:
        """Runs to train; ``track`` ("text" | "vl") keeps only that track's models."""
        return [r for r in self.runs.values() if r.kind == "train" and track in (None, self.models[r.model]["track"])]

    def eval_jobs(self, track: str | None = None) -> list[EvalJob]:
        return [j for j in self.evals.values() if track in (None, self.models[j.model]["track"])]

    def vl_models(self) -> list[str]:
        return [m for m, e in self.models.items() if e["track"] == "vl"]

    def run(self, model: str, label: str, seed) -> Run:
        if self._owner(model) is not self:
            return self._owner(model).run(model, label, seed)
        try:
            return self.runs[(model, label, int(seed))]
        except KeyError:
            raise ConfigError(f"no experiment for model {model!r}, label {label!r}, seed {seed}") from None

    def eval_job(self, model: str, label: str, seed, checkpoint: str) -> EvalJob:
        if self._owner(model) is not self:
            return self._owner(model).eval_job(model, label, seed, checkpoint)
        try:
            return self.evals[(model, label, int(seed), checkpoint)]
        except KeyError:
            raise ConfigError(f"no evaluation planned for {model}/{label}/seed{seed}/{checkpoint}") from None

    def train_inputs(self, model: str, label: str, seed) -> list[str]:
        if self._owner(model) is not self:
            return self._owner(model).train_inputs(model, label, seed)
        run = self.run(model, label, seed)
        out = [self.tiny_model_dir(model)] if self.models[model]["tiny_model"] else []
        rec = _recipe_path(run.recipe)
        if rec is not None:
            out.append(str(rec))
        return out

    def rule_resources(self, family: str) -> dict[str, int]:
        """A rule's ``resources`` (mem_mb, runtime, gpu) from ``resources.<family>``; training and evaluation also
        ask for one node for all the job's GPUs (the Slurm plugin's --gpus=N is a job total) and the CPUs from the
        config, not from ``threads``, which Snakemake caps by the submitting host's --cores."""
        r = self.resources[family]
        out = {"mem_mb": r["mem_mb"], "runtime": r["runtime"], "gpu": r["gpu"]}
        if family in ("train", "evaluate"):
            out.update(nodes=1, cpus_per_task=r["threads"])
        return out

    # ------------------------------------------------------------------ commands (built in mhpo.workflow.commands)
    def train_command(self, model: str, label: str, seed, out: str, gpus: int | None = None,
                      threads: int | None = None) -> str:
        return commands.train(self._owner(model), model, label, seed, out, gpus, threads)

    def tiny_command(self, model: str, out: str) -> str:
        return commands.tiny(self._owner(model), model, out)

    def eval_command(self, model: str, label: str, seed, checkpoint: str) -> str:
        return commands.evaluate(self._owner(model), model, label, seed, checkpoint)

    def experiments(self, track: str | None = None) -> list[str]:
        """``model/label`` of every experiment (and the base rows), for ``mhpo-bench aggregate --experiment``;
        ``track`` ("text" | "vl") keeps only that track's models."""
        keys = {(j.model, j.label) for j in self.eval_jobs(track)}
        return [f"{m}/{l}" for m, l in sorted(keys)]

    # ------------------------------------------------------------------ code hashes (rule params)
    def train_code(self, model: str, label: str, seed) -> str:
        """Hash of the code and resolved recipe a training run depends on (``mhpo.common.codehash``): a rule param,
        so that Snakemake reruns the run when its objective, the trainer, the recipe or the package change."""
        if self._owner(model) is not self:
            return self._owner(model).train_code(model, label, seed)
        return self.code_hashes[(model, label, int(seed))]

    def eval_code(self, model: str) -> str:
        """Hash of the evaluation code behind an evaluate job of ``model`` (one path for text and VL)."""

        return codehash.eval_hash()

    def aggregate_code(self, vl: bool = False) -> str:
        """Hash of the aggregation code (``mhpo-bench aggregate`` writes the main and the VL tables)."""

        return codehash.aggregate_hash()

    def extra_runs_dirs(self) -> list[str]:
        dirs = []
        for r in self.runs.values():
            if r.kind == "runs":
                d = str(Path(r.path).parents[2])
                if d not in dirs:
                    dirs.append(d)
        return dirs

    def summary(self) -> dict:
        return {
            "results_dir": self.results_dir,
            "models": {m: {k: v for k, v in e.items() if k != "evaluation"} for m, e in self.models.items()},
            "experiments": self.experiments(),
            "jobs": {
                "tiny_model": sum(1 for e in self.models.values() if e["tiny_model"]),
                "train": len(self.train_runs()),
                "evaluate": len(self.evals),
                "aggregate": 1,
            },
            "skipped_benchmarks (no data)": sorted(set(self.skipped_benchmarks)),
            **({"planned_without_data (provide before running)": sorted(set(self.missing_data))}
               if self.missing_data else {}),
            **({"studies": {n: p.summary()["jobs"] for n, p in self.studies.items()}} if self.studies else {}),
        }


# ------------------------------------------------------------------------------------------ helpers
def _train_code_hash(objective: str, params: dict, rec: dict) -> str:
    """mhpo.common.codehash.train_hash of one run: the recipe without other objectives' ``objective_params`` (so that
    tuning one objective in a shared recipe reruns only that objective), plus this run's parameters."""

    recipe = {k: v for k, v in rec.items() if k != "objective_params"}
    own = {**(rec.get("objective_params") or {}).get(objective, {}), **params}
    vl = rec.get("data", {}).get("image_field") is not None
    return codehash.train_hash(objective, {"recipe": recipe, "params": own}, vl=vl)


def _check_recipe_objective_params(rec: dict, recipe: str, where: str) -> None:
    """The recipe's ``objective_params``, checked by the recipe module itself (mhpo.training.recipe.Recipe's schema and
    ``check_objective_params``): the same checks as the training job, at planning."""
    try:
        recipes.check_objective_params(rec, recipe)
    except recipes.RecipeError as e:
        raise ConfigError(f"{where}.recipe ({recipe}): {str(e).removeprefix(f'recipe {recipe}: ')}") from None


def _merge(defaults: dict, exp: dict) -> dict:
    out = copy.deepcopy(defaults)
    for k, v in exp.items():
        if k in ("evaluation",) and isinstance(v, dict):
            out[k] = {**out.get(k, {}), **v}
            if "sampling" in v and "sampling" in defaults.get(k, {}):
                out[k]["sampling"] = {**defaults[k]["sampling"], **v["sampling"]}
        else:
            out[k] = copy.deepcopy(v)
    return out


def _merge_eval(ev: dict, where: str) -> dict:
    out = {**copy.deepcopy(EVAL_DEFAULTS), **copy.deepcopy(ev)}
    if not out.get("benchmarks"):
        raise ConfigError(f"{where}.evaluation.benchmarks: required (a list of benchmark names)")
    return out


def _recipe_path(recipe: str | None) -> Path | None:
    if recipe is None:
        return None
    try:
        return recipes.path_for(recipe)
    except Exception:
        return None


_RECIPES: dict[str, dict] = {}


def _load_recipe(recipe: str, overrides: dict, where: str) -> dict:
    key = json.dumps([recipe, overrides], sort_keys=True, default=str)
    if key not in _RECIPES:
        try:
            _RECIPES[key] = recipes.load(recipe, overrides={k: v for k, v in overrides.items()})
        except recipes.RecipeError as e:
            raise ConfigError(f"{where}.recipe/set: {e}") from None
        except FileNotFoundError as e:
            raise ConfigError(f"{where}.recipe: {e}") from None
    return _RECIPES[key]


def _check_training_data(rec: dict, where: str) -> None:
    """A recipe's data fields exist in its data, when the data are on this machine (a local file or directory, or
    a Hub id in the HF cache): a wrong field name fails at planning, naming the fields that exist
    (mhpo.training.data)."""

    key = json.dumps(rec["data"], sort_keys=True, default=str)
    if key not in _DATA_CHECKED:  # once per distinct data section: 54 paper runs share 2
        try:
            data.check_fields(rec["data"])
            _DATA_CHECKED[key] = None
        except data.DataError as e:
            _DATA_CHECKED[key] = str(e)
    if _DATA_CHECKED[key]:
        raise ConfigError(f"{where}.recipe ({rec['name']}): {_DATA_CHECKED[key]}")


_DATA_CHECKED: dict[str, str | None] = {}


def _chat_template(bench: dict) -> bool | None:
    """Whether evaluation wraps benchmark ``bench``'s prompt in the model's chat template (its registry entry)."""
    try:
        import benchmarks as bm  # lazy: optional, its absence is handled here

        return bool(bm.get(bench["name"]).chat_template)
    except Exception:  # evaluation package missing or unknown name: reported by _benchmarks / the job
        return None


def _check_prompt_format(model: str, entry: dict, rec: dict, benches: list[dict], where: str) -> None:
    """Train and evaluate one model on the same prompt format: recipe ``data.prompt_format: chat`` iff every
    benchmark of the model is evaluated with the chat template (registry ``chat_template``). Tiny models are
    exempt: their character tokenizer has no chat template, so evaluation falls back to plain text."""
    if entry["tiny_model"]:
        return
    fmt = rec["data"]["prompt_format"]
    for b in benches:
        ct = _chat_template(b)
        if ct is not None and ct != (fmt == "chat"):
            raise ConfigError(
                f"{where}: model {model!r} trains on {fmt!r} prompts (recipe {rec['name']}: data.prompt_format) but "
                f"benchmark {b['name']!r} is evaluated {'with' if ct else 'without'} the chat template (registry "
                f"chat_template: {str(ct).lower()}); train and evaluate on the same format: set "
                f"data.prompt_format: {'chat' if ct else 'plain'} (recipe or `set`)")


def _vl_benchmark(name: str) -> bool:
    """A VL benchmark name (registry modality ``vl``, or ``synth_vl_<task>``, even of an unknown task)."""
    try:
        from benchmarks import catalog  # lazy: optional, its absence is handled here
    except ImportError:
        return False
    return name.startswith(catalog.SYNTH_VL_PREFIX) or catalog.modality_of(name) == "vl"


def _looks_like_hub_id(path: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", path)) and not path.startswith((".", "/"))


def load(source, overrides: dict | None = None, workdir: str | os.PathLike = ".",
         name: str | None = None) -> tuple[dict, Plan]:
    """Read (path or dict), validate, and plan. Raises :class:`ConfigError`. ``name``: the config's name (default:
    its file name without extension), used for the default ``results_dir`` of a regeneration config."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {str(source)!r} not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML: {e}") from None
    else:
        raw = copy.deepcopy(source)
    if not isinstance(raw, dict):
        raise ConfigError("<config>: must be a mapping")
    if overrides:
        raw.update(overrides)
    name = name or (Path(source).stem if isinstance(source, (str, os.PathLike)) else None)
    prepare(raw, name)
    cfg = validate_schema(raw)
    return cfg, Plan(cfg, workdir)
