"""Training recipes: one YAML file per (model, data) setting, validated here and turned into a ``GRPOConfig``.

A recipe has fixed sections; every key is known, typed and defaulted (``SCHEMA``). An unknown or mistyped key
is an error that names the key (with a "did you mean" hint), so a typo can never silently fall back to a default.

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
import difflib
import os
from pathlib import Path
from typing import Any

import yaml

from mhpo import resources

RECIPE_DIR = resources.recipes_dir()  # package data (mhpo/resources/recipes)

_NUM = (int, float)
_OPT_STR = (str, type(None))
_OPT_NUM = (int, float, type(None))
_OPT_INT = (int, type(None))

# section -> key -> (allowed types, default). ``REQUIRED`` marks keys without a default.
REQUIRED = object()
SCHEMA: dict[str, dict[str, tuple[tuple, Any]]] = {
    "model": {
        "path": ((str,), REQUIRED),            # "tiny" (built offline by mhpo.tiny), a local dir, or a Hub id
        "tiny_task": (_OPT_STR, None),          # task the tiny model is warm-started on (default: data.task)
        "tiny_warm_start_steps": (_OPT_INT, None),
        "dtype": ((str,), "float32"),          # float32 | bfloat16 | float16 | auto
        "attn_implementation": (_OPT_STR, None),
        "gradient_checkpointing": ((bool,), False),
        "trust_remote_code": ((bool,), False),  # run the model repo's own Python code on load: opt-in, per recipe
    },
    "data": {
        "task": (_OPT_STR, None),               # a mhpo.tasks name (offline synthetic task) ...
        "hf_dataset": (_OPT_STR, None),         # ... or a Hub id, a local dataset dir or .parquet/.jsonl file (mhpo.data)
        "hf_config": (_OPT_STR, None),
        "split": ((str,), "train"),
        "problem_field": ((str,), "problem"),  # text or chat messages [{role, content}]; dotted for nested fields
        "answer_field": ((str,), "answer"),    # dotted for nested fields, e.g. reward_model.ground_truth
        "strip_text": ((list,), []),           # literal strings removed from each problem (a dataset's own instruction)
        "n_train": (_OPT_INT, None),            # rows to keep (None: all)
        "prompt_format": ((str,), "plain"),    # plain (raw text) | chat (conversational, chat template)
        "system_prompt": (_OPT_STR, None),
        "instruction": (_OPT_STR, None),        # appended to each problem (e.g. "put the answer in \\boxed{}")
        # Vision-language data: the column holding each row's image (or a list; the first is used). When set,
        # data.task names a mhpo.vl.tasks task, model.path 'tiny' builds the tiny VLM (mhpo.vl.tiny) and the
        # reward is mhpo.vl.rewards.vl_correctness_reward (docs/vl.md).
        "image_field": (_OPT_STR, None),
    },
    "reward": {
        "correctness": (_NUM, 1.0),             # weight of mhpo.rewards.correctness_reward
        "format": (_NUM, 0.0),                  # weight of mhpo.rewards.format_reward (0: not used)
    },
    "objective_params": {},                     # free-form: validated by mhpo.objectives.get
    "rollout": {
        "group_size": ((int,), 8),
        "prompts_per_rollout": ((int,), 16),
        "updates_per_rollout": ((int,), 2),
        "micro_batch_size": ((int,), 8),        # completions per device per forward/backward
        "max_completion_length": ((int,), 256),
        "temperature": (_NUM, 1.0),
        "top_p": (_NUM, 1.0),
        "top_k": (_OPT_INT, None),
    },
    "advantage": {
        "mode": ((str,), "group"),             # group (GRPO) | mean_only (Dr. GRPO) | batch (batch std)
    },
    "dapo": {
        "dynamic_sampling": ((bool,), False),
        "max_generation_rounds": ((int,), 8),
        "overlong_shaping": ((bool,), False),
        "overlong_cache": ((int,), 0),          # L_cache of DAPO's soft overlong punishment
        "mask_truncated": ((bool,), False),     # overlong filtering
    },
    "optim": {
        "lr": (_NUM, 1e-6),
        "max_steps": ((int,), 100),
        "lr_scheduler": ((str,), "constant"),
        "warmup_ratio": (_NUM, 0.0),
        "weight_decay": (_NUM, 0.0),
        "max_grad_norm": (_NUM, 1.0),
        "adam_beta1": (_NUM, 0.9),
        "adam_beta2": (_NUM, 0.999),
        "max_consecutive_nonfinite": ((int,), 3),  # abort after this many skipped (non-finite) steps in a row
    },
    "checkpoint": {
        "every": ((int,), 50),
        "keep_last": (_OPT_INT, None),          # None: keep every periodic checkpoint (evaluation reads them)
    },
    "vllm": {
        "enabled": ((bool,), False),
        "mode": ((str,), "colocate"),          # colocate | server
        "gpu_memory_utilization": (_NUM, 0.3),
        "tensor_parallel_size": ((int,), 1),
        "enable_sleep_mode": ((bool,), False),
        "server_base_url": (_OPT_STR, None),
        "is_correction": ((bool,), True),      # TRL's rollout/training mismatch correction, same for all methods
        "is_mode": ((str,), "sequence_mask"),
        "is_clip_min": (_OPT_NUM, None),
        "is_clip_max": (_OPT_NUM, 3.0),
    },
    "wandb": {
        "enabled": ((bool,), True),
        "project": ((str,), "mhpo-bench"),
        "mode": ((str,), "offline"),
    },
    "seeds": ((list,), [0]),
    "name": ((str,), REQUIRED),
    "precision": ((str,), "fp32"),              # fp32 | bf16 | fp16
}

CHOICES = {
    "advantage.mode": ("group", "mean_only", "batch"),
    "data.prompt_format": ("plain", "chat"),
    "model.dtype": ("float32", "bfloat16", "float16", "auto"),
    "precision": ("fp32", "bf16", "fp16"),
    "vllm.mode": ("colocate", "server"),
    "vllm.is_mode": ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask"),
    "wandb.mode": ("offline", "online", "disabled"),
}
SCALE_REWARDS = {"group": "group", "mean_only": "none", "batch": "batch"}


class RecipeError(ValueError):
    """A recipe is malformed; the message names the key and the fix."""


def path_for(name_or_path: str | os.PathLike) -> Path:
    """A shipped recipe name (``tiny``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise RecipeError(f"recipe file {p} not found; shipped recipes: {', '.join(shipped())}")
        return p
    cand = RECIPE_DIR / f"{name_or_path}.yaml"
    if not cand.is_file():
        raise RecipeError(f"no recipe named {name_or_path!r}; shipped recipes: {', '.join(shipped())} (or pass a YAML path)")
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
        raise RecipeError(f"{where} must be {'/'.join(t.__name__ for t in types)}; got {value!r} ({type(value).__name__})")
    return value


def resolve(raw: dict, source: str = "<recipe>", overrides: dict[str, Any] | None = None) -> dict:
    """Validate ``raw`` against ``SCHEMA`` and return the fully defaulted recipe (a new dict)."""
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {source}: top level must be a mapping of sections; got {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        parts = dotted.split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    out: dict[str, Any] = {}
    for key in raw:
        if key not in SCHEMA:
            raise RecipeError(f"recipe {source}: unknown key {key!r}{_hint(key, SCHEMA)}")
    for key, spec in SCHEMA.items():
        if isinstance(spec, tuple):  # top-level scalar
            types, default = spec
            if key not in raw:
                if default is REQUIRED:
                    raise RecipeError(f"recipe {source}: missing required key {key!r}")
                out[key] = copy.deepcopy(default)
            else:
                out[key] = _typecheck(f"recipe {source}: {key!r}", raw[key], types)
            continue
        section = raw.get(key) or {}
        if not isinstance(section, dict):
            raise RecipeError(f"recipe {source}: section {key!r} must be a mapping; got {section!r}")
        if key == "objective_params":
            out[key] = dict(section)
            continue
        out[key] = {}
        for sub in section:
            if sub not in spec:
                raise RecipeError(f"recipe {source}: unknown key '{key}.{sub}'{_hint(sub, spec)}")
        for sub, (types, default) in spec.items():
            if sub in section:
                out[key][sub] = _typecheck(f"recipe {source}: '{key}.{sub}'", section[sub], types)
            elif default is REQUIRED:
                raise RecipeError(f"recipe {source}: missing required key '{key}.{sub}'")
            else:
                out[key][sub] = copy.deepcopy(default)
    _check(out, source)
    return out


def get(recipe: dict, dotted: str):
    """``recipe[a][b]`` for the dotted key ``a.b`` (also used for nested dataset fields, `mhpo.data`)."""
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
    for key in ("group_size", "prompts_per_rollout", "updates_per_rollout", "micro_batch_size", "max_completion_length"):
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
        bad("model.tiny_task", "must be set when model.path is 'tiny' and the data is not a mhpo.tasks task")
    batches(r, num_processes=1)  # divisibility, with the smallest world size; train re-checks with the real one


def batches(r: dict, num_processes: int) -> dict[str, int]:
    """Derive TRL's batch knobs from the recipe (see the module docstring); raise RecipeError if they don't divide."""
    ro = r["rollout"]
    rollout = ro["prompts_per_rollout"] * ro["group_size"]
    u, micro = ro["updates_per_rollout"], ro["micro_batch_size"]
    if rollout % u:
        raise RecipeError(f"rollout.prompts_per_rollout × rollout.group_size = {rollout} completions must be divisible by "
                          f"rollout.updates_per_rollout = {u}")
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
    """``--set KEY=VALUE`` arguments equivalent to a partial recipe YAML (e.g. workflow/accelerate/vllm-colocate.yaml)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    out = []
    for section, values in data.items():
        if isinstance(values, dict):
            out += [f"--set={section}.{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                    for k, v in values.items()]
        else:
            out.append(f"--set={section}={yaml.safe_dump(values, default_flow_style=True).strip()}")
    return out


if __name__ == "__main__":  # python -m mhpo.recipe --as-set OVERLAY.yaml
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--as-set":
        print(" ".join(overlay_as_set(sys.argv[2])))
    else:
        print("usage: python -m mhpo.recipe --as-set OVERLAY.yaml", file=sys.stderr)
        sys.exit(2)
