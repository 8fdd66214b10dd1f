"""A very small LLaVA (CLIP vision tower + Llama decoder) with a char-level processor, built offline.

    from mhpo.models import tiny_vl as tiny
    info = tiny.build("/tmp/tiny-vlm", task="count", seed=0)       # writes an HF directory, returns a dict
    model, processor = tiny.load("/tmp/tiny-vlm")                   # AutoModelForImageTextToText + AutoProcessor

Why LLaVA: it is a ``GRPOTrainer``-supported VLM (single ``pixel_values`` tensor per image) whose processor
works with the PIL image processor (``CLIPImageProcessorPil``), so no torchvision is needed; Qwen2-VL's
processor pulls in a torchvision-only video processor. The directory loads with ``AutoProcessor`` and
``AutoModelForImageTextToText`` (what TRL's ``create_model_from_path`` uses for this config) fully offline.

Shapes: 32 × 32 RGB images, patch 8 → 16 image tokens (CLS dropped, ``vision_feature_select_strategy=default``);
vision hidden 32 × 1 layer, text hidden 64 × 2 layers; ~0.1 M parameters. The chat template renders
``[{"type": "image"}, {"type": "text", ...}]`` user turns (what TRL's ``prepare_multimodal_messages`` makes)
as ``U:<image>question\\nA:`` so prompts stay short in characters.

The warm start is a short, deterministic supervised run (teacher forcing, loss on the answer and EOS only) on
the visual task's train split, stopped early enough that RL starts from a non-zero but unsaturated reward.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from mhpo.models.tiny import _publish, _refuse_nonempty
from mhpo.models.tiny import char_tokenizer as text_char_tokenizer
from mhpo.tasks import vl as vl_tasks

IMAGE_TOKEN = "<image>"
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", IMAGE_TOKEN]
IMAGE_SIZE = 32
PATCH = 8
# Warm start length: the loss leaves its answer-prior plateau suddenly, so accuracy is steep in steps
# (seed 0: 150 -> 0.47, 160 -> 0.44, 175 -> 0.81, 200 -> 1.0). 160 leaves RL something to learn.
WARM_START_STEPS = 160
INFO_FILE = "mhpo_vl_tiny.json"

# Content may be a string or a list of typed parts (TRL inserts {"type": "image"} before the text).
CHAT_TEMPLATE = (
    "{%- macro render(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part['type'] == 'image' -%}<image>{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}S:{{ render(m['content']) }}{{ '\\n' }}"
    "{%- elif m['role'] == 'user' -%}U:{{ render(m['content']) }}{{ '\\n' }}"
    "{%- elif m['role'] == 'assistant' -%}A:{{ render(m['content']) }}</s>{{ '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}A:{%- endif -%}"
)


def char_tokenizer():
    """``PreTrainedTokenizerFast``: one token per printable ASCII character plus the specials (incl. ``<image>``)."""

    fast = text_char_tokenizer(SPECIALS, extra_special_tokens={"image_token": IMAGE_TOKEN})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_processor():
    """``LlavaProcessor`` = PIL CLIP image processor (resize to 32 × 32, no crop) + the char tokenizer."""
    from transformers import LlavaProcessor  # lazy: start-up time
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_center_crop=False,
                                            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return LlavaProcessor(image_processor=image_processor, tokenizer=char_tokenizer(), patch_size=PATCH,
                          vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
                          image_token=IMAGE_TOKEN, num_additional_image_tokens=1)


def make_model(tokenizer, seed: int = 0, text_hidden: int = 64, text_layers: int = 2, vision_hidden: int = 32,
               vision_layers: int = 1):
    """A randomly initialised ``LlavaForConditionalGeneration`` sized for CPU tests."""
    import torch  # lazy: start-up time
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=2 * vision_hidden,
                              num_hidden_layers=vision_layers, num_attention_heads=2, image_size=IMAGE_SIZE,
                              patch_size=PATCH, projection_dim=vision_hidden)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=2 * text_hidden,
                       num_hidden_layers=text_layers, num_attention_heads=4, num_key_value_heads=4,
                       max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                         image_seq_length=(IMAGE_SIZE // PATCH) ** 2, vision_feature_layer=-1,
                         vision_feature_select_strategy="default", projector_hidden_act="gelu",
                         tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = (tokenizer.eos_token_id, tokenizer.pad_token_id,
                                                         tokenizer.bos_token_id)
    return model


def prompt_messages(problem: str) -> list[dict]:
    """The conversational prompt of one row, as GRPOTrainer expects it (the image goes in the ``image`` column)."""
    return [{"role": "user", "content": problem}]


def _multimodal(problem: str) -> list[dict]:
    # The form TRL's prepare_multimodal_messages produces for the prompt above.
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": problem}]}]


def sft_batch(processor, rows: list[dict]):
    """Teacher-forcing tensors: prompt + answer + EOS, labels only on answer and EOS (right padded)."""
    import torch  # lazy: start-up time

    tok = processor.tokenizer
    prompts = [processor.apply_chat_template(_multimodal(r["problem"]), add_generation_prompt=True) for r in rows]
    enc = processor(text=prompts, images=[r["image"] for r in rows], return_tensors="pt", padding=False)
    seqs, labels = [], []
    for ids, r in zip(enc["input_ids"], rows):
        ids = list(ids.tolist() if hasattr(ids, "tolist") else ids)
        target = tok(r["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        seqs.append(ids + target)
        labels.append([-100] * len(ids) + target)
    width = max(map(len, seqs))
    input_ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    lab = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labels)):
        input_ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        lab[i, : len(l)] = torch.tensor(l)
    return {"input_ids": input_ids, "attention_mask": attn, "labels": lab, "pixel_values": enc["pixel_values"]}


def greedy_accuracy(model, processor, rows: list[dict], max_new_tokens: int = 4, batch_size: int = 64) -> float:
    """Fraction of ``rows`` whose greedy answer equals the gold exactly (after strip)."""
    import torch  # lazy: start-up time

    tok = processor.tokenizer
    model.eval()
    hits = 0
    for s in range(0, len(rows), batch_size):
        chunk = rows[s: s + batch_size]
        prompts = [processor.apply_chat_template(_multimodal(r["problem"]), add_generation_prompt=True) for r in chunk]
        enc = processor(text=prompts, images=[r["image"] for r in chunk], return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        hits += sum(t.strip() == r["answer"] for t, r in zip(texts, chunk))
    return hits / max(1, len(rows))


@contextlib.contextmanager
def _threads(n: int):
    """Run a block with ``n`` torch threads: the tiny model's ops are too small to gain from more, and on a shared
    CPU extra OpenMP threads spin against other processes (measured: 5-10x slower under load)."""
    import torch  # lazy: start-up time

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def warm_start(model, processor, task: str | list[str] = "count", steps: int = WARM_START_STEPS, batch_size: int = 32,
               lr: float = 1e-3, seed: int = 0) -> dict:
    """Deterministic supervised warm start on the task(s)' train split; returns loss/accuracy figures.

    lr 1e-3 for 160 steps of 32 gives ~0.44 greedy accuracy on ``count`` (chance 0.2; 1.0 by 200 steps);
    lr 3e-3 stays on the answer-prior plateau (chance) for 300+ steps."""
    import torch  # lazy: start-up time

    names = [task] if isinstance(task, str) else list(task)
    pool = [r for name in names for r in vl_tasks.load(name, "train", seed=seed)]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses, t0 = [], time.perf_counter()
    with _threads(1):
        encoded = sft_batch(processor, pool)  # encode every image once; batches are row selections
        lengths = encoded["attention_mask"].sum(1)
        model.train()
        for _ in range(steps):
            idx = torch.randint(len(pool), (batch_size,), generator=g)
            width = int(lengths[idx].max())
            batch = {k: (v[idx] if k == "pixel_values" else v[idx, :width]) for k, v in encoded.items()}
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
        elapsed = time.perf_counter() - t0
        test = [r for name in names for r in vl_tasks.load(name, "test", n=64, seed=seed)]
        accuracy = greedy_accuracy(model, processor, test)
    return {"task": names, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
            "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None,
            "test_greedy_accuracy": accuracy, "seconds": round(elapsed, 2),
            "seconds_per_step": round(elapsed / max(1, steps), 4)}


def build(out_dir, task: str | list[str] = "count", seed: int = 0, warm_start_steps: int = WARM_START_STEPS) -> dict:
    """Build, warm-start and save the tiny VLM to ``out_dir`` (model + processor + ``mhpo_vl_tiny.json``), atomically;
    ``out_dir`` must not exist or be empty."""
    import torch  # lazy: start-up time


    out = Path(out_dir)
    _refuse_nonempty(out)
    torch.manual_seed(seed)
    processor = make_processor()
    model = make_model(processor.tokenizer, seed=seed)
    info = {"architecture": "LlavaForConditionalGeneration", "image_size": IMAGE_SIZE, "patch_size": PATCH,
            "parameters": sum(p.numel() for p in model.parameters()), "seed": seed}
    if warm_start_steps:
        info["warm_start"] = warm_start(model, processor, task=task, steps=warm_start_steps, seed=seed)

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    _publish(out, fill)  # temp dir + rename: a killed build never leaves a directory that looks complete
    return info


def load(path):
    """``(model, processor)`` from a directory written by :func:`build` (offline; no torchvision)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor  # lazy: start-up time

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    return model, processor
