"""mhpo.training.rewards: TRL-signature reward functions on string and conversational completions."""

from __future__ import annotations

import pytest

from mhpo.training import rewards


def _chat(text):
    return [{"role": "assistant", "content": text}]


def test_names_are_stable_for_trl_logging():
    assert rewards.correctness_reward.__name__ == "correctness_reward"
    assert rewards.format_reward.__name__ == "format_reward"
    assert rewards.overlong_penalty(12, 4).__name__ == "overlong_penalty"


def test_correctness_on_string_completions():
    completions = ["82", " 82", "81", "", "so the answer is \\boxed{82}", "\\boxed{8", "-82"]
    got = rewards.correctness_reward(prompts=["37+45="] * 7, completions=completions, answer=["82"] * 7)
    assert got == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


def test_correctness_on_conversational_completions():
    completions = [_chat("The sum is \\boxed{82}."), _chat("\\boxed{83}"),
                   [{"role": "assistant", "content": [{"type": "text", "text": "#### 82"}]}]]
    got = rewards.correctness_reward(prompts=[[{"role": "user", "content": "37+45?"}]] * 3,
                                     completions=completions, answer=["82", "82", "82"], trainer_state=None)
    assert got == [1.0, 0.0, 1.0]


def test_correctness_uses_the_shared_scorer_for_equivalent_forms():
    got = rewards.correctness_reward(prompts=["p", "p"], completions=["\\boxed{\\frac{1}{2}}", "\\boxed{0.5}"],
                                     answer=["1/2", "\\frac12"])
    assert got == [1.0, 1.0]


def test_correctness_without_answer_column_says_what_is_missing():
    with pytest.raises(ValueError, match="'answer' column"):
        rewards.correctness_reward(prompts=["p"], completions=["1"])
    with pytest.raises(ValueError, match="2 completions but 1 answers"):
        rewards.correctness_reward(prompts=["p", "p"], completions=["1", "2"], answer=["1"])


def test_format_reward_needs_a_complete_box():
    got = rewards.format_reward(prompts=["p"] * 4,
                                completions=["\\boxed{3}", "3", "\\boxed{3", _chat("x \\boxed{y} z")])
    assert got == [1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("length,expected", [(0, 0.0), (7, 0.0), (8, 0.0), (9, -0.25), (10, -0.5), (11, -0.75),
                                             (12, -1.0), (13, -1.0), (100, -1.0)])
def test_overlong_values_at_the_boundaries(length, expected):
    # L_max = 12, L_cache = 4: no penalty up to 8 tokens, linear to -1 at 12, -1 beyond (DAPO eq. 13)
    assert rewards.overlong_value(length, 12, 4) == pytest.approx(expected)
    fn = rewards.overlong_penalty(12, 4)
    assert fn(prompts=["p"], completions=["ignored"], completion_ids=[[5] * length]) == pytest.approx([expected])


def test_overlong_counts_tokens_with_a_tokenizer_when_ids_are_absent():
    from mhpo.models import tiny

    fn = rewards.overlong_penalty(12, 4, tokenizer=tiny.char_tokenizer())  # one token per character
    assert fn(prompts=["p"] * 3, completions=["12345678", "1234567890", _chat("x" * 20)]) == [0.0, -0.5, -1.0]
    with pytest.raises(ValueError, match="completion_ids"):
        rewards.overlong_penalty(12, 4)(prompts=["p"], completions=["1"])


@pytest.mark.parametrize("max_len,cache_len", [(12, 0), (12, 13), (12.0, 4), (0, 0)])
def test_overlong_rejects_bad_parameters(max_len, cache_len):
    with pytest.raises(ValueError, match="0 < cache_len <= max_len"):
        rewards.overlong_penalty(max_len, cache_len)


def test_completion_text_rejects_unknown_types():
    with pytest.raises(TypeError, match="string or a list of messages"):
        rewards.completion_text(42)
    assert rewards.completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
