"""``VLObjectiveGRPOTrainer``: the project's ``ObjectiveGRPOTrainer`` plus the rollout/train log-prob gap.

The loss, metrics, multimodal inputs (``pixel_values`` & co. are passed to every forward by the base class via
``mhpo.sampling.MULTIMODAL_KEYS``) and checkpoints are unchanged. Added metric:

``rollout/logp_gap`` = mean over completion tokens of |logp_rollout − logp_train|, measured at the FIRST
micro-step after each generation, where the policy has not been updated yet, so any gap is sampler/trainer
mismatch (vLLM kernels, batch composition, padding, dtype, image preprocessing), not learning:

* with vLLM: ``logp_rollout`` = the sampler's log-probs (``sampling_per_token_logps``);
* with HF generation: ``logp_rollout`` = TRL's old-policy log-probs (``old_per_token_logps``, computed right after
  generation). TRL only computes them when a rollout spans several optimizer steps (``updates_per_rollout > 1``)
  or vLLM IS correction is on; otherwise the gap is undefined and logged as null.

Other micro-steps contribute NaN, so the logged value per optimizer step is the first-micro-step gap on steps
that start a rollout and null on the others.

Why it is here and not in ``mhpo.trainer``: that file belongs to the text trainer; the gap is useful for every
run (vLLM text runs too) and should move into ``ObjectiveGRPOTrainer._compute_loss`` (see docs/vl.md, "Hooks").
"""

from __future__ import annotations

import math

import torch

from mhpo.trainer import ObjectiveGRPOTrainer

GAP_KEY = "rollout/logp_gap"


class VLObjectiveGRPOTrainer(ObjectiveGRPOTrainer):
    """``ObjectiveGRPOTrainer`` that also logs ``rollout/logp_gap`` (see the module docstring)."""

    _train_logps: torch.Tensor | None = None

    def _get_per_token_logps_and_entropies(self, model, *args, **kwargs):
        out = super()._get_per_token_logps_and_entropies(model, *args, **kwargs)
        # The loss forward is the only call with gradients enabled (old/ref log-probs run under no_grad).
        if torch.is_grad_enabled() and kwargs.get("compute_entropy"):
            self._train_logps = out[0].detach()
        return out

    def _compute_loss(self, model, inputs):
        self._train_logps = None
        loss = super()._compute_loss(model, inputs)
        if self.model.training:
            self._accumulate({GAP_KEY: self._logp_gap(inputs)})
        return loss

    def _logp_gap(self, inputs) -> torch.Tensor:
        nan = torch.tensor(math.nan)
        generate_every = self.args.steps_per_generation * self.num_iterations
        # TRL increments self._step after training_step, so here it is the index of the current micro-step.
        if self._step % generate_every != 0 or self._train_logps is None:
            return nan
        rollout = inputs.get("sampling_per_token_logps")
        if rollout is None:
            rollout = inputs.get("old_per_token_logps")
        if rollout is None:
            return nan
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        m = mask.to(self._train_logps.dtype)
        diff = (rollout.to(self._train_logps.dtype) - self._train_logps).abs()
        return ((diff * m).sum() / m.sum().clamp(min=1.0)).detach()
