"""Stability figures: one panel per training signal, every objective overlaid, bands across seeds.

Used by :mod:`mhpo.analysis.aggregate`; writes ``<out>/training_<model>.png`` and ``.pdf`` atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mhpo.common import io

# (title, metrics.jsonl keys, y scale); "heldout" is drawn from evaluations, not from metrics.jsonl.
PANELS = [
    ("reward", ["reward/mean"], "linear"),
    ("held-out accuracy (Avg@k)", ["heldout"], "linear"),
    ("entropy", ["entropy"], "linear"),
    ("gradient norm", ["grad_norm"], "log"),
    # the zigzag is expected: with several updates per rollout, each rollout's first step is on-policy (r = 1)
    # and the following ones are off-policy, so p1/p99 alternate between ~1 and the spread of r
    ("importance ratio p1 / p99 (zigzag: on-/off-policy steps alternate)", ["ratio/p1", "ratio/p99"], "log"),
    ("response length (tokens)", ["completion_length"], "linear"),
]
COLORS = {"mhpo": "tab:red", "grpo": "tab:blue", "dapo": "tab:green", "sapo": "tab:purple", "gspo": "tab:orange",
          "base": "0.4"}
_FALLBACK = ["tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray", "gold", "navy", "teal"]


def _color(label: str, i: int) -> str:
    return COLORS.get(label, _FALLBACK[i % len(_FALLBACK)])


def _band(ax, xs: list[np.ndarray], ys: list[np.ndarray], color: str, label: str | None, ls: str = "-") -> None:
    """Mean over seeds (on the common steps) with a min–max band; one seed: just the line."""
    if not ys:
        return
    n = min(len(y) for y in ys)
    if n == 0:
        return
    x = xs[0][:n]
    Y = np.vstack([y[:n] for y in ys])
    with np.errstate(all="ignore"):
        mean = np.nanmean(Y, axis=0)
    ax.plot(x, mean, color=color, lw=1.3, ls=ls, label=label)
    if Y.shape[0] > 1:
        ax.fill_between(x, np.nanmin(Y, axis=0), np.nanmax(Y, axis=0), color=color, alpha=0.18, lw=0)


def training_signals(model: str, metrics: dict, curves: dict, out_dir: Path) -> list[Path]:
    """``metrics``: ``{label: {seed: {key: array}}}``; ``curves``: ``{label: {seed: [(step, acc)]}}``."""
    import matplotlib.pyplot as plt  # lazy: start-up time

    fig = signals_figure(model, metrics, curves)
    paths = io.save_figure(fig, out_dir, f"training_{model}", dpi=120)
    plt.close(fig)
    return paths


def signals_figure(model: str, metrics: dict, curves: dict):
    """The figure of :func:`training_signals`. The held-out accuracy axis spans 0–100% (a zoomed axis makes small
    drops look large)."""
    import matplotlib  # lazy: start-up time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: start-up time

    labels = sorted(set(metrics) | set(curves))
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), squeeze=False)
    for ax, (title, keys, scale) in zip(axes.flat, PANELS):
        drawn = False
        for i, label in enumerate(labels):
            color = _color(label, i)
            if keys == ["heldout"]:
                seeds = curves.get(label, {})
                xs = [np.array([p[0] for p in pts], float) for pts in seeds.values()]
                ys = [np.array([p[1] for p in pts], float) * 100 for pts in seeds.values()]
                if xs:
                    _band(ax, xs, ys, color, label)
                    ax.plot(xs[0][: min(map(len, xs))], np.nanmean(np.vstack([y[: min(map(len, ys))] for y in ys]), 0),
                            "o", color=color, ms=3)
                    drawn = True
                continue
            for j, key in enumerate(keys):
                runs = metrics.get(label, {})
                xs, ys = [], []
                for _, s in sorted(runs.items()):
                    if key in s and np.isfinite(s[key]).any():
                        xs.append(s.get("step", np.arange(1, len(s[key]) + 1)))
                        ys.append(s[key])
                if ys:
                    _band(ax, xs, ys, color, label if j == 0 else None, ls="-" if j == 0 else "--")
                    drawn = True
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.tick_params(labelsize=7)
        if scale == "log" and drawn:
            ax.set_yscale("log")
        if keys == ["heldout"]:
            ax.set_ylim(0, 100)
            ax.set_ylabel("% correct", fontsize=8)
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.5")
        ax.grid(alpha=0.25, lw=0.5)
    handles, names = [], []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=min(8, len(names)), fontsize=8, frameon=False)
    n_seeds = max([len(v) for v in metrics.values()] + [len(v) for v in curves.values()] + [0])
    fig.suptitle(f"{model}: training signals (lines: mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}; "
                 "bands: min–max; dashed: p99)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    return fig


def _finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))
