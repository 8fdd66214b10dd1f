"""Synthetic visual reasoning tasks, rendered offline with PIL from a seed; every answer is checkable.

    from mhpo.tasks import vl as tasks
    tasks.available()                         # ['bars', 'count']
    rows = tasks.load("count", "train", n=64, seed=0)
    rows[0]  # {'id': 'count-train-0-0', 'problem': 'How many shapes?', 'answer': '3', 'image': <PIL 32x32>,
             #  'choices': None, 'answer_type': 'free_form'}

Images are ``SIZE`` × ``SIZE`` RGB on a 4 × 4 grid of 8-pixel cells, so each cell is exactly one patch of the
tiny VLM's vision tower (patch 8): a task is learnable in a few hundred supervised steps on CPU.

* ``count``: 1–5 filled shapes (square, disc or triangle, random colours) in distinct cells;
  question "How many shapes?", free-form answer "1".."5".
* ``bars``: two vertical bars A (left half) and B (right half) of different heights (1–4 cells);
  question "Which bar is taller? A or B", multiple-choice answer "A" or "B" (``choices`` = ["A", "B"]).

Splits are disjoint by construction: the rendering seed of a row is derived from (task, split, seed, index)
with a split-specific stream, and ``test`` images that coincide with a ``train`` image are skipped
(``count`` has a large but finite image space; ``bars`` has 12 height pairs, so its test split differs
from train only in colours and positions and is meant as a smoke check).
"""

from __future__ import annotations

import hashlib
import random

from PIL import Image, ImageDraw

SIZE = 32
CELL = 8
GRID = SIZE // CELL
SPLITS = ("train", "test")
DEFAULT_N = {"train": 512, "test": 128}
_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (240, 200, 20)]
_BACKGROUND = (255, 255, 255)


def _rng(task: str, split: str, seed: int, index: int) -> random.Random:
    # A stable hash (not Python's salted hash()) so that rows are identical across processes and machines.
    key = f"{task}|{split}|{seed}|{index}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def _shape(draw: ImageDraw.ImageDraw, kind: str, cx: int, cy: int, colour) -> None:
    x0, y0, x1, y1 = cx * CELL + 1, cy * CELL + 1, cx * CELL + CELL - 2, cy * CELL + CELL - 2
    if kind == "square":
        draw.rectangle([x0, y0, x1, y1], fill=colour)
    elif kind == "disc":
        draw.ellipse([x0, y0, x1, y1], fill=colour)
    else:
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)


def render_count(rng: random.Random) -> tuple[Image.Image, str, dict]:
    n = rng.randint(1, 5)
    cells = rng.sample(range(GRID * GRID), n)
    img = Image.new("RGB", (SIZE, SIZE), _BACKGROUND)
    draw = ImageDraw.Draw(img)
    for c in cells:
        _shape(draw, rng.choice(("square", "disc", "triangle")), c % GRID, c // GRID, rng.choice(_COLOURS))
    return img, str(n), {"cells": sorted(cells)}


def render_bars(rng: random.Random) -> tuple[Image.Image, str, dict]:
    ha, hb = rng.sample(range(1, GRID + 1), 2)  # distinct heights, in cells
    img = Image.new("RGB", (SIZE, SIZE), _BACKGROUND)
    draw = ImageDraw.Draw(img)
    for half, h in ((0, ha), (1, hb)):
        col = half * 2 + rng.randint(0, 1)  # a column inside its half: A left, B right
        draw.rectangle([col * CELL + 1, SIZE - h * CELL, col * CELL + CELL - 2, SIZE - 1], fill=rng.choice(_COLOURS))
    return img, "A" if ha > hb else "B", {"heights": [ha, hb]}


TASKS = {
    "count": {"render": render_count, "problem": "How many shapes?", "choices": None, "answer_type": "free_form"},
    "bars": {"render": render_bars, "problem": "Which bar is taller? A or B", "choices": ["A", "B"],
             "answer_type": "multi_choice"},
}


def available() -> list[str]:
    return sorted(TASKS)


def load(name: str, split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """``n`` rows (default ``DEFAULT_N[split]``) of task ``name``: ``id``, ``problem``, ``answer``, ``image``
    (PIL RGB), ``choices`` (list or None), ``answer_type`` (``free_form`` | ``multi_choice``). Deterministic."""
    if name not in TASKS:
        raise ValueError(f"unknown visual task {name!r}; available: {', '.join(available())}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    n = DEFAULT_N[split] if n is None else n
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    spec = TASKS[name]
    seen_train = set()
    if split == "test" and name == "count":
        # keep test images out of the train distribution's first rows (exact duplicates only)
        seen_train = {_fingerprint(spec["render"](_rng(name, "train", seed, i))[0]) for i in range(DEFAULT_N["train"])}
    rows, i = [], 0
    while len(rows) < n:
        img, answer, meta = spec["render"](_rng(name, split, seed, i))
        i += 1
        if seen_train and _fingerprint(img) in seen_train:
            continue
        rows.append({"id": f"{name}-{split}-{seed}-{len(rows)}", "problem": spec["problem"], "answer": answer,
                     "image": img, "choices": spec["choices"], "answer_type": spec["answer_type"], "meta": meta})
    return rows


def _fingerprint(img: Image.Image) -> str:
    return hashlib.sha1(img.tobytes()).hexdigest()
