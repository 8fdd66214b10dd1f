"""Reward functions with TRL's signature ``fn(prompts, completions, **kwargs) -> list[float]``.

TRL's ``GRPOTrainer`` passes every dataset column as a keyword argument (one value per completion), plus
``completion_ids`` (the generated token ids) and trainer extras, and logs each function under its
``__name__`` (``rewards/<name>/mean``), so the names here are stable.

* :func:`correctness_reward`: 1.0 when the completion's final answer equals the ``answer`` column, judged by the
  project's one scorer, :func:`benchmarks.scoring.is_correct` (the same rules as evaluation), else 0.0.
* :func:`format_reward`: 1.0 when the completion contains a complete ``\\boxed{...}``, else 0.0 (for prompts
  that ask for a boxed answer; the tiny tasks answer with a bare number, so leave its weight at 0 there).
* :func:`overlong_penalty` ``(max_len, cache_len)``: DAPO's soft overlong punishment (arXiv 2503.14476, eq. 13),
  a function of the completion length in tokens.

Completions may be plain strings or conversational (a list of ``{"role", "content"}`` messages, where the
content may itself be a list of typed parts); the assistant text is scored in both cases.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.scoring import _last_boxed, is_correct


def completion_text(completion) -> str:
    """The text of one completion: a string as is; for a message list, the assistant messages' text joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        msgs = [m for m in completion if isinstance(m, dict)]
        if len(msgs) != len(completion):
            raise TypeError(f"a conversational completion must be a list of message dicts, got {completion!r:.200}")
        chosen = [m for m in msgs if m.get("role", "assistant") == "assistant"] or msgs
        return "".join(_content_text(m.get("content", "")) for m in chosen)
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # typed parts: [{"type": "text", "text": ...}, {"type": "image"}, ...]
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")


def _answers(answer, n: int, fn: str) -> list:
    if answer is None:
        raise ValueError(f"{fn} needs the gold answers: the training dataset must have an 'answer' column "
                         "(TRL passes dataset columns to reward functions as keyword arguments)")
    if isinstance(answer, str):
        answer = [answer] * n
    if len(answer) != n:
        raise ValueError(f"{fn}: got {n} completions but {len(answer)} answers")
    return list(answer)


def correctness_reward(prompts=None, completions=None, answer=None, **kwargs) -> list[float]:
    """1.0 if a completion's final answer equals its gold ``answer`` (shared scorer), else 0.0."""

    completions = list(completions or [])
    golds = _answers(answer, len(completions), "correctness_reward")
    return [1.0 if is_correct(completion_text(c), str(g)) else 0.0 for c, g in zip(completions, golds)]


def format_reward(prompts=None, completions=None, **kwargs) -> list[float]:
    """1.0 if a completion contains a complete ``\\boxed{...}`` final answer, else 0.0."""

    return [1.0 if _last_boxed(completion_text(c)) is not None else 0.0 for c in (completions or [])]


def overlong_value(length: int, max_len: int, cache_len: int) -> float:
    """DAPO soft overlong punishment for a completion of ``length`` tokens.

    0 if length <= max_len - cache_len; ((max_len - cache_len) - length) / cache_len inside the window
    (from just below 0 down to -1 at length == max_len); -1 beyond max_len.
    """
    free = max_len - cache_len
    if length <= free:
        return 0.0
    if length <= max_len:
        return (free - length) / cache_len
    return -1.0


def overlong_penalty(max_len: int, cache_len: int, tokenizer=None) -> Callable[..., list[float]]:
    """A reward function applying :func:`overlong_value` with ``max_len`` (L_max) and ``cache_len`` (L_cache).

    Lengths come from TRL's ``completion_ids`` keyword when given; otherwise ``tokenizer`` must be passed
    so the completion text can be tokenized.
    """
    if not isinstance(max_len, int) or not isinstance(cache_len, int) or not 0 < cache_len <= max_len:
        raise ValueError(f"overlong_penalty needs integers 0 < cache_len <= max_len, got max_len={max_len!r}, "
                         f"cache_len={cache_len!r} (set dapo.overlong_cache below rollout.max_completion_length)")

    def overlong_penalty(prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        if completion_ids is not None:
            lengths = [len(ids) for ids in completion_ids]
        elif tokenizer is not None:
            lengths = [len(tokenizer(completion_text(c), add_special_tokens=False)["input_ids"])
                       for c in (completions or [])]
        else:
            raise ValueError("overlong_penalty needs token lengths: call it with completion_ids=... (TRL does) "
                             "or build it with overlong_penalty(max_len, cache_len, tokenizer=tok)")
        return [overlong_value(n, max_len, cache_len) for n in lengths]

    overlong_penalty.max_len, overlong_penalty.cache_len = max_len, cache_len
    return overlong_penalty
