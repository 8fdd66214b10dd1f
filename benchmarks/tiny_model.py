"""A tiny random Llama with a char-level tokenizer, saved as a normal Hugging Face directory.

Used by the evaluation tests and perf script so they run offline in seconds. (The trained tiny model of the
project is ``mhpo-bench tiny-model``; this one is untrained and independent of it.)
"""

from __future__ import annotations

from pathlib import Path

from mhpo.models.tiny import char_tokenizer as _char_tokenizer


def char_tokenizer():
    """The project's char-level tokenizer (``mhpo.models.tiny.char_tokenizer``): one token per printable ASCII
    character."""

    return _char_tokenizer()


def build_tiny_llama(out_dir, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Write a random ``LlamaForCausalLM`` (hidden 64, 2 layers) plus the char tokenizer to ``out_dir``."""
    import torch  # lazy: start-up time
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = char_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
