"""``ObjectiveGRPOTrainer``: TRL's ``GRPOTrainer`` (trl==1.16.0) whose loss goes through the objective contract.

Only the loss changes. Generation (transformers or vLLM), reward scoring, advantages, reference model,
accelerate/DeepSpeed, PEFT and VLM inputs all stay TRL's. On top:

- ``_compute_loss`` calls ``objective(logps=..., old_logps=..., advantages=..., mask=..., ...)`` with TRL's own
  log-probs, mask (completion × tool), old log-probs, vLLM IS weights and reference log-probs, and reproduces
  TRL's gradient-accumulation scaling, so ``grpo``/``dapo``/... match the stock loss types (tests/test_parity_trl.py).
- Metrics: the objective's ``tensor_metrics`` (ratio quantiles, |log r|, KL to old/ref, diagnostics), entropy
  and token counts stay on the device and are reduced with ONE host sync per logging step.
- DAPO dynamic sampling (``mhpo.training.sampling``), usable with any objective.
- Non-finite guard: a step whose loss or gradient norm is not finite is skipped (no parameter update) and
  counted; after ``max_consecutive_nonfinite`` in a row the run aborts with ``NonFiniteLossError``. Under
  DeepSpeed, which steps inside ``backward``, such a step is discarded by the engine (or the run stops).
- Checkpoints are written to a staging folder and renamed into ``checkpoints/checkpoint-N`` once every rank is
  done; older checkpoints then lose their optimizer/scheduler/RNG/ZeRO state (``drop_training_state``), so only
  the newest one is resumable and the others keep weights, config and tokenizer for evaluation.
- ``rollout/logp_gap``: mean over completion tokens of |logp_rollout − logp_train| at the FIRST micro-step after
  each generation, before any update, so any gap is sampler/trainer mismatch (vLLM kernels, batch composition,
  padding, dtype, image preprocessing), not learning. ``logp_rollout`` is vLLM's ``sampling_per_token_logps``
  when vLLM generates, else TRL's old-policy log-probs (only computed when a rollout spans several optimizer
  steps or vLLM IS correction is on). Null on steps that reuse a rollout or where it is undefined. Known to be
  larger for VLMs than for text models, logged for every run.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections import defaultdict
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import GRPOTrainer

from mhpo.common import io
from mhpo.objectives import Objective
from mhpo.training import sampling

STAGING = ".staging"  # checkpoints are written here by HF, then renamed one level up
STATE_FILE = "mhpo_state.json"
_MIN_KEYS, _MAX_KEYS, _SUM_KEYS = ("ratio/min",), ("ratio/max",), ("tokens",)
GAP_KEY = "rollout/logp_gap"  # rollout/train log-prob gap (module docstring)
# TRL metrics that describe a rollout; steps that reuse a buffered rollout report that rollout's values.
ROLLOUT_KEYS = ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
                "dynamic_sampling/rounds")


class NonFiniteLossError(RuntimeError):
    """Raised after too many consecutive optimizer steps with a non-finite loss or gradient."""


class ObjectiveGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with a pluggable ``mhpo.objectives.Objective`` as its loss.

    Extra keyword arguments: ``objective`` (an Objective instance), ``dynamic_sampling`` and
    ``max_generation_rounds`` (DAPO), ``max_consecutive_nonfinite`` (the non-finite guard).
    """

    def __init__(self, *args, objective: Objective, dynamic_sampling: bool = False, max_generation_rounds: int = 8,
                 max_consecutive_nonfinite: int = 3, **kwargs):
        config = kwargs.get("args")
        if config is not None:
            _check_config(config, objective)
        self.objective = objective
        self.dynamic_sampling = dynamic_sampling
        self.max_generation_rounds = max_generation_rounds
        self.max_consecutive_nonfinite = max_consecutive_nonfinite
        self.nonfinite_skipped = 0  # total skipped steps (restored on resume)
        self.nonfinite_streak = 0
        self._skipped_step = False
        self._acc: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._bad_loss: torch.Tensor | None = None
        self._last_grad_norm = None
        self._rollout_cache: dict[str, list] = {}
        self._last_rewards_per_func: torch.Tensor | None = None
        super().__init__(*args, **kwargs)
        self._extra_rng = random.Random(self.args.seed + 1)
        self.add_callback(_NonFiniteGuard(self))

    # ------------------------------------------------------------------------------------------- loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("ObjectiveGRPOTrainer does not return outputs")
        return self._compute_loss(model, inputs)  # never Liger (rejected in __init__)

    def _compute_loss(self, model, inputs):
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        logits_to_keep = completion_ids.size(1)
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]

        # Same forward as the base class, with every multimodal key passed through.
        logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
            **{k: inputs.get(k) for k in sampling.MULTIMODAL_KEYS},
        )
        old = inputs.get("old_per_token_logps")
        old = logps.detach() if old is None else old

        training = self.model.training
        accum = self.current_gradient_accumulation_steps if training else 1
        extra = {}
        if self.objective.aggregation == "token-mean":
            # TRL's dapo normaliser: the generation batch's global token count, per process, rescaled to one
            # accumulation window; summed over micro-steps it is the global token mean (no further ÷ accum).
            num_tokens = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if training:
                num_tokens = num_tokens * self.current_gradient_accumulation_steps / self.args.steps_per_generation
            extra["num_tokens"] = num_tokens
        out = self.objective(
            logps=logps, old_logps=old, advantages=inputs["advantages"], mask=mask,
            ref_logps=inputs.get("ref_per_token_logps"), rollout_logps=inputs.get("sampling_per_token_logps"),
            is_weights=inputs.get("importance_sampling_ratio"), max_len=self.max_completion_length, **extra,
        )
        loss = out.loss if "num_tokens" in extra else out.loss / accum
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * aux_loss / accum

        if training:
            with torch.no_grad():
                m = mask.to(entropies.dtype)
                self._accumulate({**out.tensor_metrics, "entropy": (entropies * m).sum() / m.sum().clamp(min=1.0),
                                  "tokens": m.sum(), GAP_KEY: self._logp_gap(inputs, logps.detach(), m)})
                bad = ~torch.isfinite(loss.detach())
                self._bad_loss = bad if self._bad_loss is None else self._bad_loss | bad
            if self.is_deepspeed_enabled:
                # DeepSpeed steps inside backward, before the guard can drop gradients, and it discards a step
                # by itself only when the gradient norm is not finite. Make that so for every non-finite loss
                # (its gradient may be finite); no host sync. The guard stops the run if a step got through.
                poison = torch.where(torch.isfinite(loss.detach()), 1.0, math.nan).to(loss.dtype)
                loss = loss * poison  # not where(finite, loss, loss * nan), whose gradient is NaN even when finite
        return loss

    def _logp_gap(self, inputs, logps: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``rollout/logp_gap`` of this micro-step (NaN unless it is the first after a generation; module doc)."""
        # TRL increments self._step after training_step, so here it is the index of the current micro-step.
        generate_every = self.args.steps_per_generation * self.num_iterations
        rollout = inputs.get("sampling_per_token_logps")
        if rollout is None:
            rollout = inputs.get("old_per_token_logps")
        if self._step % generate_every != 0 or rollout is None:
            return torch.tensor(math.nan, device=m.device)
        m = m.float()  # in fp32: a bf16 difference of log-probs would round away small gaps
        diff = (rollout.float() - logps.float()).abs()
        return (diff * m).sum() / m.sum().clamp(min=1.0)

    # ------------------------------------------------------------------------------------------ metrics
    def _accumulate(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            self._acc[key].append(value.detach().float().reshape(()))

    def _flush_metrics(self) -> dict[str, float]:
        """Reduce the accumulated tensor metrics over micro-steps and processes: one gather, one host sync."""
        if not self._acc:
            return {}
        keys = sorted(self._acc)
        local = []
        for key in keys:
            vals = torch.stack(self._acc[key])
            if key in _MIN_KEYS:
                local.append(vals.amin())
            elif key in _MAX_KEYS:
                local.append(vals.amax())
            elif key in _SUM_KEYS:
                local.append(vals.sum())
            else:
                local.append(torch.nanmean(vals))
        self._acc.clear()
        per_process = self.accelerator.gather(torch.stack(local)[None]).reshape(-1, len(keys)).tolist()
        out = {}
        for j, key in enumerate(keys):
            col = [row[j] for row in per_process]
            reduce = min if key in _MIN_KEYS else max if key in _MAX_KEYS else sum if key in _SUM_KEYS else _mean
            out[key] = reduce(col)
        return out

    def training_step(self, model, inputs, num_items_in_batch):
        # HF sums the returned losses for logging and resets the sum by subtraction, so one NaN would poison
        # every later logged loss; the guard has recorded it already (self._bad_loss), log() reports it.
        loss = super().training_step(model, inputs, num_items_in_batch)
        return torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training:
            metrics = self._metrics["train"]
            for key, value in self._flush_metrics().items():
                metrics[key] = [value]
            # Steps that reuse a buffered rollout report the statistics of the rollout they train on.
            rollout_keys = set(ROLLOUT_KEYS) | {k for k in list(metrics) + list(self._rollout_cache)
                                                if k.startswith("rewards/")}
            for key in rollout_keys:
                if metrics.get(key):
                    self._rollout_cache[key] = list(metrics[key])
                elif key in self._rollout_cache:
                    metrics[key] = list(self._rollout_cache[key])
            metrics["nonfinite_skipped"] = [float(self.nonfinite_skipped)]
            if self._skipped_step and "loss" in logs:
                logs["loss"] = math.nan  # written as null: this step made no update
            self._skipped_step = False
        super().log(logs, start_time)

    def _get_grad_norm(self, model, grad_norm=None):
        self._last_grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        return self._last_grad_norm

    # ------------------------------------------------------------------------------- dynamic sampling
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards_per_func = rewards  # gathered over processes, in generation-batch order
        return rewards

    def _generate_and_score_completions(self, inputs):
        if not (self.dynamic_sampling and self.model.training):
            return super()._generate_and_score_completions(inputs)
        target, device = len(inputs), self.accelerator.device
        kept, n_kept, batch = [], 0, inputs
        for rounds in range(1, self.max_generation_rounds + 1):  # noqa: B007 (logged after the loop)
            out = super()._generate_and_score_completions(batch)
            if any(k in out for k in sampling.MULTIMODAL_KEYS):
                raise ValueError("dapo.dynamic_sampling supports text-only batches; turn it off for image inputs")
            rpf = self._last_rewards_per_func
            rewards = (rpf * self.reward_weights.to(rpf.device)[None]).nansum(dim=1)
            rewards[torch.isnan(rpf).all(dim=1)] = torch.nan
            keep = sampling.informative_rows(rewards, self.num_generations)
            lo = self.accelerator.process_index * len(batch)
            local = keep[lo: lo + len(batch)]
            kept.append(sampling.select(out, local))
            n_kept += int(local.sum())
            # Every process must take the same number of rounds (generation has collectives).
            if self.accelerator.gather(torch.tensor([n_kept], device=device)).min().item() >= target:
                break
            batch = self._fresh_prompts(target)
        else:
            raise sampling.DynamicSamplingError(
                f"dynamic sampling: only {n_kept} of {target} completions came from groups with differing rewards "
                f"after dapo.max_generation_rounds={self.max_generation_rounds} rounds; raise the cap, or turn "
                "dapo.dynamic_sampling off (the policy may have saturated or collapsed on this data)")
        merged = sampling.concat(kept, self._tokenizer.pad_token_id)
        merged = {k: v[:target] for k, v in merged.items()}
        loss_mask = merged["completion_mask"] * merged.get("tool_mask", 1)
        merged["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        self._metrics["train"]["dynamic_sampling/rounds"].append(float(rounds))
        return merged

    def _fresh_prompts(self, n_local: int) -> list[dict]:
        """New prompts for another generation round: each repeated ``num_generations`` times, as TRL's sampler
        lays them out; every process draws the same global list (shared seed) and takes its own slice."""
        groups = -(-n_local * self.accelerator.num_processes // self.num_generations)
        idx = [self._extra_rng.randrange(len(self.train_dataset)) for _ in range(groups)]
        rows = [self.train_dataset[i] for i in idx for _ in range(self.num_generations)]
        lo = self.accelerator.process_index * n_local
        return rows[lo: lo + n_local]

    # ------------------------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, model, trial):
        # Every rank writes into the staged folder (its rng_state_{rank}.pth; its ZeRO shards under DeepSpeed),
        # so the folder is renamed only once all of them are done.
        super()._save_checkpoint(model, trial)  # writes <output_dir>/checkpoint-N (output_dir is the staging dir)
        name = f"checkpoint-{self.state.global_step}"
        staged = Path(self._get_output_dir(trial=trial)) / name
        final_dir = staged.parent.parent / name
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            (staged / STATE_FILE).write_text(json.dumps({"nonfinite_skipped": self.nonfinite_skipped}))
            if final_dir.exists():
                shutil.rmtree(final_dir)
            os.replace(staged, final_dir)  # atomic: a checkpoint-N folder is always complete
            older = complete_checkpoints(final_dir.parent)[:-1]
            keep = getattr(self, "keep_last_checkpoints", None)
            if keep:
                for old in older[: max(0, len(older) + 1 - keep)]:
                    shutil.rmtree(old, ignore_errors=True)
            for old in older:  # evaluation needs only weights, config and tokenizer; resume uses the newest
                if old.exists() and not (old / WEIGHTS_ONLY).exists():  # each is stripped once
                    drop_training_state(old)
        self.accelerator.wait_for_everyone()

    def restore_state(self, checkpoint: str | os.PathLike) -> None:
        path = Path(checkpoint) / STATE_FILE
        if path.exists():
            self.nonfinite_skipped = json.loads(path.read_text()).get("nonfinite_skipped", 0)


def _mean(values):
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _check_config(args, objective: Objective) -> None:
    """Reject TRL options that our loss path does not implement (they would be silently ignored)."""
    problems = []
    if args.use_liger_kernel:
        problems.append("use_liger_kernel=True (Liger's fused loss bypasses the objective); set it to False")
    if args.top_entropy_quantile < 1.0:
        problems.append("top_entropy_quantile < 1 is not applied by objectives; leave it at 1.0")
    if args.off_policy_mask_threshold is not None:
        problems.append("off_policy_mask_threshold is not applied by objectives; leave it unset")
    if getattr(args, "entropy_coef", 0.0) or getattr(args, "use_adaptive_entropy", False):
        problems.append("the entropy bonus (entropy_coef/use_adaptive_entropy) is not applied by objectives")
    if args.beta != objective.beta:
        problems.append(f"GRPOConfig.beta={args.beta} differs from the objective's beta={objective.beta}; "
                        "set them equal (the reference model is only loaded when beta > 0)")
    if args.beta > 0 and args.use_bias_correction_kl:
        # TRL 1.16 defaults to True (KL × r, DeepSeek-V3.2); objectives add the plain k3 term, i.e. TRL with False.
        problems.append("use_bias_correction_kl=True (TRL's default) multiplies the KL term by the ratio, which "
                        "objectives do not; set use_bias_correction_kl=False when beta > 0")
    if problems:
        raise ValueError("ObjectiveGRPOTrainer: " + "; ".join(problems))


def complete_checkpoints(checkpoints_dir: str | os.PathLike, resumable: bool = False) -> list[Path]:
    """Complete checkpoints (renamed into place), oldest first. The staging folder is never listed.
    ``resumable=True``: only those that still hold their training state (see :func:`drop_training_state`)."""
    d = Path(checkpoints_dir)
    if not d.is_dir():
        return []
    found = [p for p in d.iterdir() if p.is_dir() and p.name.startswith("checkpoint-") and p.name[11:].isdigit()]
    if resumable:
        found = [p for p in found if not (p / WEIGHTS_ONLY).exists()]
    return sorted(found, key=lambda p: int(p.name[11:]))


# What a checkpoint holds only to resume training: optimizer (and its ZeRO partitions), scheduler, RNG, scaler.
# At ~12 bytes/parameter (fp32 Adam moments + master weights) it is most of a checkpoint; bf16 weights are 2.
WEIGHTS_ONLY = "WEIGHTS_ONLY"  # marker: this checkpoint's training state was dropped (evaluation only)
_TRAINING_STATE = ("optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt", "latest", "zero_to_fp32.py",
                   "zero_to_torch.py")


def drop_training_state(checkpoint: str | os.PathLike) -> int:
    """Delete what only resuming needs from ``checkpoint``, keeping weights, config, tokenizer and trainer state,
    so it stays loadable for evaluation; returns the bytes freed. The marker is written first, so a checkpoint
    is never offered for resume with half of its state gone."""
    ckpt, freed = Path(checkpoint), 0
    io.write_text(ckpt / WEIGHTS_ONLY, "optimizer, scheduler and RNG state dropped: newer checkpoints exist\n")
    for p in sorted(ckpt.iterdir()):
        if (p.name in _TRAINING_STATE or p.name.startswith("rng_state")
                or (p.is_dir() and p.name.startswith("global_step"))):
            freed += sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return freed


class _NonFiniteGuard(TrainerCallback):
    """Before each optimizer step: if any micro-batch loss or the gradient norm is not finite, drop the gradients
    (torch optimizers skip parameters whose ``.grad`` is None) and count the step; abort after a streak.

    Under DeepSpeed the engine has already stepped inside ``backward`` when this runs; the loss is made to give a
    non-finite gradient there (``_compute_loss``), which the engine discards. If the engine applied a step anyway
    (ZeRO-1/2 in bf16 without ``check_grad_overflow``), the run stops at once: its weights are no longer trusted."""

    def __init__(self, trainer: ObjectiveGRPOTrainer):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        tr = self.trainer
        bad = torch.zeros((), dtype=torch.bool, device=tr.accelerator.device)
        if tr._bad_loss is not None:
            bad = bad | tr._bad_loss.to(bad.device)
        gn = tr._last_grad_norm
        if gn is not None:
            bad = bad | ~torch.isfinite(torch.as_tensor(gn, device=bad.device, dtype=torch.float32))
        tr._bad_loss = None
        if not bool(tr.accelerator.gather(bad[None]).any()):  # one host sync per optimizer step
            tr.nonfinite_streak = 0
            return
        if tr.is_deepspeed_enabled and tr.model_wrapped.was_step_applied():
            raise NonFiniteLossError(
                f"step {state.global_step + 1}: non-finite loss or gradient, and DeepSpeed applied the update; "
                "stopping before the damaged weights train further. The last complete checkpoint is kept. Let "
                "DeepSpeed discard such steps (bf16.check_grad_overflow: true, its default, in the DeepSpeed "
                "config), lower the learning rate or check the objective.")
        for p in tr.model.parameters():  # DeepSpeed has discarded the step already (nothing to drop there)
            p.grad = None
        tr.nonfinite_skipped += 1
        tr._skipped_step = True
        tr.nonfinite_streak += 1
        print(f"[mhpo] step {state.global_step + 1}: non-finite loss or gradient, update skipped "
              f"({tr.nonfinite_streak} in a row, {tr.nonfinite_skipped} in total)", flush=True)
        if tr.nonfinite_streak >= tr.max_consecutive_nonfinite:
            raise NonFiniteLossError(
                f"{tr.nonfinite_streak} consecutive optimizer steps had a non-finite loss or gradient (at step "
                f"{state.global_step + 1}); stopping. The last complete checkpoint is kept. Lower the learning "
                "rate, check the objective's parameters, or raise optim.max_consecutive_nonfinite.")


class MetricsWriter(TrainerCallback):
    """Write one row per optimizer step to ``metrics.jsonl`` (keys per docs/interfaces.md) and to wandb.

    Rows with a step at or below the last one already in the file are never written again (resume)."""

    RENAME = {"reward": "reward/mean", "reward_std": "reward/std", "completions/mean_length": "completion_length",
              "frac_reward_zero_std": "frac_zero_std", "learning_rate": "lr"}
    DROP = {"epoch", "num_tokens", "step_time", "tokens", "total_flos"}

    def __init__(self, path: str | os.PathLike, objective: str, accuracy_reward: str | None, wandb_run=None,
                 progress=None):
        self.path = Path(path)
        self.objective = objective
        self.accuracy_key = f"rewards/{accuracy_reward}/mean" if accuracy_reward else None
        self.wandb_run = wandb_run
        self.progress = progress
        self.last_step = max((r["step"] for r in io.read_jsonl(self.path)), default=0) if self.path.exists() else 0
        self._t0 = None
        self.step_time = math.nan

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._t0 is not None:
            self.step_time = time.perf_counter() - self._t0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs or "train_runtime" in logs:
            return
        step = state.global_step
        if step <= self.last_step:
            return
        row = {"step": step}
        for key, value in logs.items():
            if key in self.DROP:
                continue
            row[self.RENAME.get(key, key)] = value
        row["accuracy"] = logs.get(self.accuracy_key) if self.accuracy_key else None
        row.setdefault("kl_ref", None)  # only measured when beta > 0
        row["step_time"] = self.step_time
        tokens = logs.get("tokens")
        row["tokens_per_s"] = tokens / self.step_time if tokens and self.step_time > 0 else None
        row = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        io.append_jsonl(self.path, row)
        self.last_step = step
        if self.wandb_run is not None:
            self.wandb_run.log({k: v for k, v in row.items() if v is not None and k != "step"}, step=step)
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(reward=row.get("reward/mean"), refresh=False)
