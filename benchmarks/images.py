"""Images of vision-language benchmarks: reading a row's image field and the resize rule.

Rule (recorded in every VL summary as ``image_resize``): an image whose longest side exceeds ``max_side`` (default
1024 px) is downscaled so that its longest side equals ``max_side``, keeping the aspect ratio (bicubic); smaller
images are left as they are (no upscaling); every image is converted to RGB. The model's own processor may resize
further (e.g. Qwen2.5-VL's min/max pixels), which is part of the model.
"""

from __future__ import annotations

import hashlib
import io as _io
from pathlib import Path

DEFAULT_MAX_SIDE = 1024


def resize_rule(max_side: int = DEFAULT_MAX_SIDE) -> dict:
    """The resize rule as recorded in summaries."""
    return {"rule": "longest side <= max_side px, aspect kept, bicubic, no upscaling, RGB", "max_side": int(max_side)}


def resize_image(img, max_side: int = DEFAULT_MAX_SIDE):
    """Apply the documented rule to one PIL image (returns a new RGB image)."""
    from PIL import Image  # lazy: start-up time

    if max_side < 1:
        raise ValueError(f"max_side must be >= 1 px; got {max_side}")
    img = img.convert("RGB")
    w, h = img.size
    longest = max(w, h)
    if longest <= max_side:
        return img
    scale = max_side / longest
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)


def open_image(value, base: Path | None, max_side: int = DEFAULT_MAX_SIDE):
    """A row's image field as a resized PIL image: a path relative to ``base``, a list (the first is used), a PIL
    image or ``{"bytes"|"path": ...}`` (Hub rows). A ValueError says what could not be read."""
    from PIL import Image  # lazy: start-up time

    if isinstance(value, list):  # Geometry3K: a list of images; these benchmarks use the first
        if not value:
            raise ValueError("empty image list")
        value = value[0]
    if hasattr(value, "convert"):  # a PIL image (hub rows)
        return resize_image(value, max_side)
    if isinstance(value, dict) and value.get("bytes"):
        return resize_image(Image.open(_io.BytesIO(value["bytes"])), max_side)
    if isinstance(value, dict) and value.get("path"):
        value = value["path"]
    if not isinstance(value, str) or base is None:
        raise ValueError(f"cannot read an image from {type(value).__name__} {str(value)[:60]!r}")
    path = (base / value).resolve()
    if not path.is_file():
        raise ValueError(f"image file {path} not found (image paths are relative to {base})")
    with Image.open(path) as img:
        return resize_image(img, max_side)


def image_digest(img) -> str:
    """sha256 of an image's size, mode and pixels: part of a VL evaluation's fingerprint."""
    return hashlib.sha256(f"{img.size}{img.mode}".encode() + img.tobytes()).hexdigest()


