"""Kept for compatibility: the rollout/train log-prob gap (``rollout/logp_gap``) now lives in
``mhpo.trainer.ObjectiveGRPOTrainer`` and is logged by every run, text or VL (see that module's docstring).
VL runs need nothing else from the trainer: TRL's VLM path passes ``pixel_values`` & co. to every forward and the
base class forwards every key of ``mhpo.sampling.MULTIMODAL_KEYS``."""

from __future__ import annotations

from mhpo.trainer import GAP_KEY, ObjectiveGRPOTrainer

VLObjectiveGRPOTrainer = ObjectiveGRPOTrainer

__all__ = ["GAP_KEY", "VLObjectiveGRPOTrainer"]
