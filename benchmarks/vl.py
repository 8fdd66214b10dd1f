"""What vision-language benchmarks add to the text path: images (loading, the resize rule, Hub export) and the
processor-driven generator. The registry, scoring, seeded sampling, records and metrics are the text ones
(``benchmarks.catalog``, ``benchmarks.choice``, ``benchmarks.generation``, ``benchmarks.evaluate``).

Local layout (offline; nothing is downloaded unless ``MHPO_ONLINE=1``)::

    <DIR>/<name>/test.jsonl     one JSON object per problem, with the hub's field names
    <DIR>/<name>/images/...     image files; the image field holds a path relative to <DIR>/<name>/
                                (a list of paths for list-valued fields such as Geometry3K's ``images``)

``python -m benchmarks.vl export --benchmark NAME --out DIR`` writes that layout from the Hub (run it where
the Hub is reachable, then copy DIR). DIR is ``--data-dir``, else ``$MHPO_BENCHMARK_DIR``
(``benchmarks.catalog.data_dirs``).

Image rule (recorded in every VL summary as ``image_resize``): an image whose longest side exceeds ``max_side``
(default 1024 px) is downscaled so that its longest side equals ``max_side``, keeping the aspect ratio (bicubic);
smaller images are left as they are (no upscaling); every image is converted to RGB. The model's own processor
may resize further (e.g. Qwen2.5-VL's min/max pixels), which is part of the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import catalog
from benchmarks.generation import HFGenerator
from benchmarks.images import (  # noqa: F401  (re-exported: benchmarks.vl.resize_image & co.)
    DEFAULT_MAX_SIDE,
    image_digest,
    open_image,
    resize_image,
    resize_rule,
)
from mhpo.common import io


def is_vl_model(model_path: str) -> bool:
    """A local model directory whose config has a vision tower (an image-text-to-text model)."""

    config = Path(model_path) / "config.json"
    return config.is_file() and "vision_config" in json.loads(config.read_text(encoding="utf-8"))


class HFVLGenerator(HFGenerator):
    """transformers backend for image-text-to-text models: the processor's chat template renders the image and
    the prompt; sampling, seeding and trimming are :class:`benchmarks.generation.HFGenerator`'s."""

    def __init__(self, model: str, device: str | None = None, batch_size: int = 8, dtype: str | None = None,
                 trust_remote_code: bool = False):
        import torch  # lazy: start-up time
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device != "cpu" else torch.float32)
        self.dtype = str(torch_dtype).removeprefix("torch.")
        self.model = AutoModelForImageTextToText.from_pretrained(
            model, dtype=torch_dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        self.batch_size = max(1, batch_size)
        self.tokenizer.padding_side = "left"
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self.eos_ids = self._eos_ids()

    def encode(self, prompt: str, chat_template: bool, image=None) -> tuple[str, object]:
        """The rendered chat turn (the image, then the prompt) and the image; VL models always get the template."""
        if image is None:
            raise ValueError("a VL model needs an image with each prompt: evaluate VL benchmarks with it")
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False), image

    def _inputs(self, prompt: tuple[str, object], rows: int) -> dict:
        text, image = prompt
        enc = self.processor(text=[text] * rows, images=[image] * rows, return_tensors="pt", padding=True)
        return {k: v.to(self.device) for k, v in enc.items()}


def export(name: str, out_dir, limit: int | None = None) -> Path:
    """Write ``<out_dir>/<name>/test.jsonl`` + ``images/`` from the Hub dataset (needs network / HF cache)."""

    b = catalog.get(name)
    if b.modality != "vl" or not b.hub:
        raise catalog.BenchmarkError(f"{name}: not a VL benchmark with a hub dataset in its registry entry")
    rows = catalog._load_hub(b.hub)[:limit] if limit else catalog._load_hub(b.hub)
    target = Path(out_dir) / Path(b.file).parent
    (target / "images").mkdir(parents=True, exist_ok=True)
    image_key = b.hub.get("fields", {}).get("image", b.fields["image"])
    out_rows = []
    for i, r in enumerate(rows):
        img = r.pop(image_key)
        img = img[0] if isinstance(img, list) else img
        rel = f"images/{i}.png"
        img.convert("RGB").save(target / rel)
        for key, v in list(r.items()):
            if hasattr(v, "convert"):
                r.pop(key)  # other image columns (e.g. MathVista's decoded_image) are not needed
        r[b.fields["image"]] = rel
        out_rows.append(r)
    io.write_jsonl(target / Path(b.file).name, out_rows)
    return target


def main(argv=None) -> int:
    """``python -m benchmarks.vl export --benchmark NAME --out DIR [--limit N]``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.vl", description="write a VL benchmark's local copy")
    sub = p.add_subparsers(dest="vl_command", required=True)
    x = sub.add_parser("export", help="write a benchmark's local copy (jsonl + images) from the Hub")
    x.add_argument("--benchmark", required=True, help="registered VL benchmark to export (needs the Hub)")
    x.add_argument("--out", required=True, help="writes OUT/<benchmark>/test.jsonl and its images")
    x.add_argument("--limit", type=int, default=None, help="only the first N problems")
    args = p.parse_args(argv)
    try:
        print(export(args.benchmark, args.out, args.limit))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
