"""Training recipes: one YAML file per (model, data) setting, validated here and turned into a ``GRPOConfig``.

The schema is the :class:`Recipe` dataclass tree (in the style of TRL's ``GRPOConfig``): every key is typed,
defaulted and documented in ``metadata["help"]``; cross-field checks run in ``__post_init__``. ``SCHEMA`` and
``CHOICES`` are derived from it. An unknown or mistyped key is an error that names the key (with a "did you
mean" hint), so a typo can never silently fall back to a default. Shipped recipes are package data
(``mhpo/resources/recipes``).

Batch arithmetic (all counts are completions, i.e. prompt × sample):

    rollout            = rollout.prompts_per_rollout × rollout.group_size completions, generated at once
    updates_per_rollout U: the rollout is split into U disjoint mini-batches, one optimizer step each
    per optimizer step = rollout / U = micro_batch_size × num_processes × gradient_accumulation_steps

TRL's knobs follow: ``steps_per_generation = U × gradient_accumulation_steps`` and ``num_iterations = 1``.
The first of the U steps is on-policy (ratio ≡ 1); steps 2..U use data from a policy 1..U−1 updates old,
so every objective's ratio control is exercised, identically for all methods.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import os
from pathlib import Path
from typing import Any

import yaml

from mhpo import resources
from mhpo.training import objective_cache

RECIPE_DIR = resources.recipes_dir()  # package data (mhpo/resources/recipes)
RESOLVED_RECIPE = "recipe.resolved.yaml"  # a training run's one config file, in its run directory

class RecipeError(ValueError):
    """A recipe is malformed; the message names the key and the fix."""


def _f(default, help: str, choices: tuple | None = None):
    """A field with a default and help text (as TRL's GRPOConfig); ``choices`` are checked after loading."""
    meta = {"help": help, **({"choices": choices} if choices else {})}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class ModelArgs:
    path: str | None = _f(None, "required: 'tiny' (built offline by mhpo.models.tiny), a local dir, or a Hub id")
    tiny_task: str | None = _f(None, "task the tiny model is warm-started on (default: data.task)")
    tiny_warm_start_steps: int | None = _f(None, "SFT steps of the tiny model's warm start (default: the builder's)")
    dtype: str = _f("float32", "weights dtype", ("float32", "bfloat16", "float16", "auto"))
    attn_implementation: str | None = _f(None, "transformers attn_implementation (None: its default)")
    gradient_checkpointing: bool = _f(False, "recompute activations in the backward pass")
    trust_remote_code: bool = _f(False, "run the model repo's own Python code on load: opt-in, per recipe")


@dataclasses.dataclass
class DataArgs:
    task: str | None = _f(None, "a mhpo.tasks.text name (offline synthetic task) ...")
    hf_dataset: str | None = _f(None, "... or a Hub id, a local dataset dir or .parquet/.jsonl file "
                                      "(mhpo.training.data)")
    hf_config: str | None = _f(None, "the dataset's config name")
    split: str = _f("train", "the dataset split")
    problem_field: str = _f("problem", "text or chat messages [{role, content}]; dotted for nested fields")
    answer_field: str = _f("answer", "dotted for nested fields, e.g. reward_model.ground_truth")
    strip_text: list = _f([], "literal strings removed from each problem (a dataset's own instruction)")
    n_train: int | None = _f(None, "rows to keep (None: all)")
    prompt_format: str = _f("plain", "plain (raw text) | chat (conversational, chat template)", ("plain", "chat"))
    system_prompt: str | None = _f(None, "system message of chat prompts")
    instruction: str | None = _f(None, "appended to each problem (e.g. \"put the answer in \\boxed{}\")")
    # When set, data.task names a mhpo.tasks.vl task, model.path 'tiny' builds the tiny VLM (mhpo.models.tiny_vl) and
    # the reward is mhpo.training.rewards_vl.vl_correctness_reward (docs/vl.md).
    image_field: str | None = _f(None, "vision-language data: the column holding each row's image (or a list)")


@dataclasses.dataclass
class RewardArgs:
    correctness: float = _f(1.0, "weight of mhpo.training.rewards.correctness_reward")
    format: float = _f(0.0, "weight of mhpo.training.rewards.format_reward (0: not used)")


@dataclasses.dataclass
class RolloutArgs:
    group_size: int = _f(8, "completions per prompt (G)")
    prompts_per_rollout: int = _f(16, "prompts per rollout (P)")
    updates_per_rollout: int = _f(2, "optimizer steps per rollout (U); steps 2..U are off-policy")
    micro_batch_size: int = _f(8, "completions per device per forward/backward")
    max_completion_length: int = _f(256, "maximum completion tokens")
    temperature: float = _f(1.0, "sampling temperature")
    top_p: float = _f(1.0, "nucleus sampling")
    top_k: int | None = _f(None, "top-k sampling (None: off)")


@dataclasses.dataclass
class AdvantageArgs:
    mode: str = _f("group", "group (GRPO) | mean_only (Dr. GRPO) | batch (batch std)", ("group", "mean_only", "batch"))


@dataclasses.dataclass
class DapoArgs:
    dynamic_sampling: bool = _f(False, "regenerate groups whose rewards are all equal")
    max_generation_rounds: int = _f(8, "generation rounds allowed per rollout with dynamic sampling")
    overlong_shaping: bool = _f(False, "DAPO's soft overlong punishment")
    overlong_cache: int = _f(0, "L_cache of DAPO's soft overlong punishment")
    mask_truncated: bool = _f(False, "overlong filtering: truncated completions get no gradient")


@dataclasses.dataclass
class OptimArgs:
    lr: float = _f(1e-6, "learning rate")
    max_steps: int = _f(100, "optimizer steps")
    lr_scheduler: str = _f("constant", "transformers lr_scheduler_type")
    warmup_ratio: float = _f(0.0, "fraction of steps of linear warm-up")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    adam_beta1: float = _f(0.9, "AdamW beta1")
    adam_beta2: float = _f(0.999, "AdamW beta2")
    max_consecutive_nonfinite: int = _f(3, "abort after this many skipped (non-finite) steps in a row")


@dataclasses.dataclass
class CheckpointArgs:
    every: int = _f(50, "save a checkpoint every this many optimizer steps")
    keep_last: int | None = _f(None, "None: keep every periodic checkpoint (evaluation reads them)")


@dataclasses.dataclass
class VllmArgs:
    enabled: bool = _f(False, "generate with vLLM (TRL's use_vllm)")
    mode: str = _f("colocate", "colocate | server", ("colocate", "server"))
    gpu_memory_utilization: float = _f(0.3, "vLLM's share of GPU memory (colocate)")
    tensor_parallel_size: int = _f(1, "vLLM tensor parallelism")
    enable_sleep_mode: bool = _f(False, "offload vLLM weights between generations")
    server_base_url: str | None = _f(None, "URL of a vLLM server (mode server)")
    is_correction: bool = _f(True, "TRL's rollout/training mismatch correction, same for all methods")
    is_mode: str = _f("sequence_mask", "importance-sampling correction mode",
                      ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask"))
    is_clip_min: float | None = _f(None, "lower clip of the correction ratio")
    is_clip_max: float | None = _f(3.0, "upper clip of the correction ratio")


@dataclasses.dataclass
class WandbArgs:
    enabled: bool = _f(True, "log to Weights & Biases")
    project: str = _f("mhpo-bench", "W&B project")
    mode: str = _f("offline", "offline | online | disabled", ("offline", "online", "disabled"))


@dataclasses.dataclass
class Recipe:
    """A training recipe: every key typed, defaulted and documented (``metadata["help"]``), as TRL's
    ``GRPOConfig``. Cross-field checks run in ``__post_init__`` and raise :class:`RecipeError` naming the key and
    the fix. Build one from a YAML mapping with :meth:`from_dict` (unknown keys and wrong types are errors);
    :meth:`to_dict` gives the resolved mapping the trainer reads."""

    model: ModelArgs = dataclasses.field(default_factory=ModelArgs, metadata={"help": "the policy model"})
    data: DataArgs = dataclasses.field(default_factory=DataArgs, metadata={"help": "training prompts and answers"})
    reward: RewardArgs = dataclasses.field(default_factory=RewardArgs, metadata={"help": "reward weights"})
    objective_params: dict = _f({}, "objective name -> parameters (validated by mhpo.objectives.get)")
    rollout: RolloutArgs = dataclasses.field(default_factory=RolloutArgs, metadata={"help": "generation, batches"})
    advantage: AdvantageArgs = dataclasses.field(default_factory=AdvantageArgs, metadata={"help": "normalisation"})
    dapo: DapoArgs = dataclasses.field(default_factory=DapoArgs, metadata={"help": "DAPO's data-side techniques"})
    optim: OptimArgs = dataclasses.field(default_factory=OptimArgs, metadata={"help": "optimizer and schedule"})
    checkpoint: CheckpointArgs = dataclasses.field(default_factory=CheckpointArgs, metadata={"help": "saving"})
    vllm: VllmArgs = dataclasses.field(default_factory=VllmArgs, metadata={"help": "vLLM generation (GPU)"})
    wandb: WandbArgs = dataclasses.field(default_factory=WandbArgs, metadata={"help": "logging"})
    seeds: list = _f([0], "seeds `mhpo-bench train` runs when --seed is not given")
    name: str | None = _f(None, "required: the recipe's name (recorded in every manifest)")
    precision: str = _f("fp32", "training precision", ("fp32", "bf16", "fp16"))

    def __post_init__(self):
        _check(self.to_dict(), "<recipe>")

    @classmethod
    def from_dict(cls, raw: dict, source: str = "<recipe>") -> Recipe:
        """Type-check ``raw`` against the fields (unknown keys, wrong types, missing required keys are errors
        naming the key), fill in defaults, then run the cross-field checks."""
        if not isinstance(raw, dict):
            raise RecipeError(f"recipe {source}: top level must be a mapping of sections; got {type(raw).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in known:
                raise RecipeError(f"recipe {source}: unknown key {key!r}{_hint(key, known)}")
        kwargs = {}
        for name in known:
            section = _SECTIONS.get(name)
            if section is None:
                if name in raw:
                    value = raw[name]
                    if name == "objective_params":
                        if value is not None and not isinstance(value, dict):
                            raise RecipeError(f"recipe {source}: section {name!r} must be a mapping; got {value!r}")
                        value = dict(value or {})
                    else:
                        value = _typecheck(f"recipe {source}: {name!r}", value, _types(cls, name))
                    kwargs[name] = value
                continue
            sub = raw.get(name) or {}
            if not isinstance(sub, dict):
                raise RecipeError(f"recipe {source}: section {name!r} must be a mapping; got {sub!r}")
            sub_fields = {g.name for g in dataclasses.fields(section)}
            for key in sub:
                if key not in sub_fields:
                    raise RecipeError(f"recipe {source}: unknown key '{name}.{key}'{_hint(key, sub_fields)}")
            kwargs[name] = section(**{k: _typecheck(f"recipe {source}: '{name}.{k}'", v, _types(section, k))
                                      for k, v in sub.items()})
        for dotted in _REQUIRED_KEYS:
            head, _, tail = dotted.partition(".")
            value = kwargs.get(head)
            if tail and value is not None:
                value = getattr(value, tail)
            if value is None:
                raise RecipeError(f"recipe {source}: missing required key {_quote(dotted)}")
        try:
            return cls(**kwargs)
        except RecipeError as e:  # __post_init__ does not know the file: name it
            raise RecipeError(str(e).replace("recipe <recipe>:", f"recipe {source}:", 1)) from None

    def to_dict(self) -> dict:
        return {f.name: copy.deepcopy(dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}


_SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Recipe)
             if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)}
_REQUIRED_KEYS = ("name", "model.path")
_PY = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "None": type(None)}


def _quote(dotted: str) -> str:
    return f"'{dotted}'" if "." in dotted else repr(dotted)


@functools.cache
def _types(cls, name: str) -> tuple:
    """The accepted Python types of field ``name`` from its annotation (``float`` also accepts ``int``)."""
    ann = {f.name: f.type for f in dataclasses.fields(cls)}[name]
    out = tuple(_PY[t.strip()] for t in str(ann).split("|"))
    return (int,) + out if float in out else out


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _schema_of(cls) -> dict:
    return {f.name: (_types(cls, f.name), _default(f)) for f in dataclasses.fields(cls)}


# section -> key -> (allowed types, default), derived from the dataclasses (``mhpo-bench validate-config`` reads
# the section names to tell a recipe from a workflow config)
SCHEMA: dict[str, Any] = {f.name: (_schema_of(_SECTIONS[f.name]) if f.name in _SECTIONS else
                                   {} if f.name == "objective_params" else (_types(Recipe, f.name), _default(f)))
                          for f in dataclasses.fields(Recipe)}
CHOICES = {f"{s}.{g.name}" if s else g.name: g.metadata["choices"]
           for s, cls in [("", Recipe), *_SECTIONS.items()] for g in dataclasses.fields(cls)
           if "choices" in g.metadata}
SCALE_REWARDS = {"group": "group", "mean_only": "none", "batch": "batch"}


def path_for(name_or_path: str | os.PathLike) -> Path:
    """A shipped recipe name (``tiny``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise RecipeError(f"recipe file {p} not found; shipped recipes: {', '.join(shipped())}")
        return p
    cand = RECIPE_DIR / f"{name_or_path}.yaml"
    if not cand.is_file():
        raise RecipeError(f"no recipe named {name_or_path!r}; shipped recipes: {', '.join(shipped())} "
                          "(or pass a YAML path)")
    return cand


def shipped() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load(name_or_path, overrides: dict[str, Any] | None = None) -> dict:
    """Read, default-fill and validate a recipe; ``overrides`` maps dotted keys (``optim.max_steps``) to values."""
    path = path_for(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {path}: not valid YAML: {e}") from None
    return resolve(raw, source=str(path), overrides=overrides)


def _hint(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return (f"; did you mean {close[0]!r}?" if close else "") + f" (known keys: {', '.join(sorted(known))})"


def _typecheck(where: str, value, types: tuple):
    if isinstance(value, bool) and bool not in types:
        raise RecipeError(f"{where} must be {'/'.join(t.__name__ for t in types)}; got {value!r}")
    if float in types and isinstance(value, str):  # YAML reads 1e-6 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, types):
        raise RecipeError(f"{where} must be {'/'.join(t.__name__ for t in types)}; "
                          f"got {value!r} ({type(value).__name__})")
    return value


def resolve(raw: dict, source: str = "<recipe>", overrides: dict[str, Any] | None = None) -> dict:
    """Validate ``raw`` (with dotted ``overrides`` applied) as a :class:`Recipe` and return the fully defaulted
    recipe as a new dict."""
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {source}: top level must be a mapping of sections; got {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        parts = dotted.split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return Recipe.from_dict(raw, source).to_dict()


def check_objective_params(rec: dict, source: str = "<recipe>") -> None:
    """Every name under ``objective_params`` is a registered objective that accepts its parameters (names and
    values: ``mhpo.objectives.get``), else the typo would be ignored or fail only inside the training job. The
    planner runs this on every recipe it plans; answers are cached on disk (mhpo.training.objective_cache)."""

    for name, params in (rec.get("objective_params") or {}).items():
        if not isinstance(params, dict):
            raise RecipeError(f"recipe {source}: objective_params.{name}: must be a mapping of parameters, "
                              f"got {params!r}")
        problem = objective_cache.check(str(name), params)
        if problem:
            raise RecipeError(f"recipe {source}: objective_params.{name}: {problem[1]}")


def get(recipe: dict, dotted: str):
    """``recipe[a][b]`` for the dotted key ``a.b`` (also used for nested dataset fields, `mhpo.training.data`)."""
    node = recipe
    for part in dotted.split("."):
        node = node[part]
    return node


def _check(r: dict, source: str) -> None:
    def bad(key, msg):
        raise RecipeError(f"recipe {source}: '{key}' {msg}")

    for dotted, allowed in CHOICES.items():
        if get(r, dotted) not in allowed:
            bad(dotted, f"must be one of {', '.join(allowed)}; got {get(r, dotted)!r}")
    d, ro, o = r["data"], r["rollout"], r["optim"]
    if not all(isinstance(x, str) and x for x in d["strip_text"]):
        bad("data.strip_text", f"must be a list of non-empty strings; got {d['strip_text']!r}")
    if (d["task"] is None) == (d["hf_dataset"] is None):
        bad("data.task", "or 'data.hf_dataset' must be set (exactly one of them)")
    for key in ("group_size", "prompts_per_rollout", "updates_per_rollout", "micro_batch_size",
                "max_completion_length"):
        if ro[key] < 1:
            bad(f"rollout.{key}", f"must be >= 1; got {ro[key]}")
    if ro["group_size"] < 2:
        bad("rollout.group_size", "must be >= 2 (group-relative advantages need two samples per prompt)")
    if ro["temperature"] <= 0:
        bad("rollout.temperature", f"must be > 0; got {ro['temperature']}")
    if not 0 < ro["top_p"] <= 1:
        bad("rollout.top_p", f"must be in (0, 1]; got {ro['top_p']}")
    if o["lr"] <= 0 or o["max_steps"] < 1:
        bad("optim.lr", "must be > 0 and 'optim.max_steps' >= 1")
    if o["max_consecutive_nonfinite"] < 1:
        bad("optim.max_consecutive_nonfinite", "must be >= 1")
    if r["checkpoint"]["every"] < 1:
        bad("checkpoint.every", "must be >= 1")
    every, u = r["checkpoint"]["every"], ro["updates_per_rollout"]
    if every % u:
        bad("checkpoint.every", f"must be a multiple of rollout.updates_per_rollout ({u}) so that a resumed run "
            f"starts at a rollout boundary; got {every}")
    if r["dapo"]["max_generation_rounds"] < 1:
        bad("dapo.max_generation_rounds", "must be >= 1")
    if r["dapo"]["overlong_shaping"] and not 0 < r["dapo"]["overlong_cache"] < ro["max_completion_length"]:
        bad("dapo.overlong_cache", f"must be in (0, rollout.max_completion_length={ro['max_completion_length']}) "
            "when dapo.overlong_shaping is on")
    if not r["seeds"] or not all(isinstance(s, int) and not isinstance(s, bool) for s in r["seeds"]):
        bad("seeds", f"must be a non-empty list of integers; got {r['seeds']!r}")
    if d["image_field"] is not None:
        if d["prompt_format"] != "chat":
            bad("data.prompt_format", "must be 'chat' when data.image_field is set (TRL's VLM path needs "
                "conversational prompts)")
        if r["dapo"]["dynamic_sampling"]:
            bad("dapo.dynamic_sampling", "is not supported with image inputs (data.image_field); set it to false")
    if r["model"]["path"] == "tiny" and d["task"] is None and r["model"]["tiny_task"] is None:
        bad("model.tiny_task", "must be set when model.path is 'tiny' and the data is not a mhpo.tasks.text task")
    batches(r, num_processes=1)  # divisibility, with the smallest world size; train re-checks with the real one


def batches(r: dict, num_processes: int) -> dict[str, int]:
    """Derive TRL's batch knobs from the recipe (see the module docstring); raise RecipeError if they don't divide."""
    ro = r["rollout"]
    rollout = ro["prompts_per_rollout"] * ro["group_size"]
    u, micro = ro["updates_per_rollout"], ro["micro_batch_size"]
    if rollout % u:
        raise RecipeError(f"rollout.prompts_per_rollout × rollout.group_size = {rollout} completions must be "
                          f"divisible by rollout.updates_per_rollout = {u}")
    per_step = rollout // u
    if per_step % (micro * num_processes):
        raise RecipeError(f"completions per optimizer step ({rollout} / {u} = {per_step}) must be divisible by "
                          f"rollout.micro_batch_size × processes = {micro} × {num_processes}; change micro_batch_size")
    ga = per_step // (micro * num_processes)
    return {"completions_per_rollout": rollout, "completions_per_step": per_step, "gradient_accumulation_steps": ga,
            "steps_per_generation": u * ga, "num_iterations": 1, "per_device_train_batch_size": micro}


def dump(recipe: dict) -> str:
    return yaml.safe_dump(recipe, sort_keys=False)


def overlay_as_set(path) -> list[str]:
    """``--set KEY=VALUE`` arguments equivalent to a partial recipe YAML (e.g.
    workflow/accelerate/vllm-colocate.yaml)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    out = []
    for section, values in data.items():
        if isinstance(values, dict):
            out += [f"--set={section}.{k}="
                    f"{yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                    for k, v in values.items()]
        else:
            out.append(f"--set={section}={yaml.safe_dump(values, default_flow_style=True).strip()}")
    return out


if __name__ == "__main__":  # python -m mhpo.training.recipe --as-set OVERLAY.yaml
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--as-set":
        print(" ".join(overlay_as_set(sys.argv[2])))
    else:
        print("usage: python -m mhpo.training.recipe --as-set OVERLAY.yaml", file=sys.stderr)
        sys.exit(2)
