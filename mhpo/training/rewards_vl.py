"""Rewards for VL training: the evaluation's scoring (``benchmarks.scoring.is_correct_typed``: multiple choice by
option letter or text, free form by ``benchmarks.scoring.is_correct``/math-verify). Signature as TRL calls reward
functions: dataset columns arrive as keyword lists (``answer``, and optionally ``answer_type`` and ``choices``)."""

from __future__ import annotations

from benchmarks.scoring import is_correct_typed


def _text(completion) -> str:
    # Conversational prompts give conversational completions: [{"role": "assistant", "content": "..."}].
    if isinstance(completion, list):
        return "".join(m.get("content", "") if isinstance(m.get("content"), str) else
                       "".join(p.get("text", "") for p in m.get("content", []) if isinstance(p, dict))
                       for m in completion if isinstance(m, dict))
    return str(completion)


def vl_correctness_reward(completions, answer, answer_type=None, choices=None, **kwargs) -> list[float]:
    """1.0 if the completion's answer is correct, else 0.0 (per ``answer_type``; default free form)."""

    n = len(completions)
    types = answer_type if answer_type is not None else ["free_form"] * n
    opts = choices if choices is not None else [None] * n
    return [float(is_correct_typed(_text(c), str(a), t or "free_form", o or None))
            for c, a, t, o in zip(completions, answer, types, opts)]


vl_correctness_reward.__name__ = "vl_correctness_reward"
