"""Seed-band figures of the stability study: per step, the mean over seeds (line) and mean ± 1 standard deviation
across seeds (band; drawn where ≥ 2 seeds logged that step). One column per regime, one colour per method.

* ``stability_reward``: ``reward/mean``;
* ``stability_grad_norm``: ``grad_norm`` before clipping (log scale);
* ``stability_ratio``: ``ratio/p1``, ``ratio/p50``, ``ratio/p99`` (rows; log scale, 1 = on-policy);
* ``stability_entropy``: token entropy (nats);
* ``stability_frontier``: per learning rate, mean final held-out accuracy against updates per rollout U (log
  scale), one line per method, collapsed cells marked ×, the base model's accuracy and the collapse threshold.

Each is written as PNG and PDF atomically (``mhpo.common.io``) with fixed metadata, so a rerun gives identical files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mhpo.common import io

FIGURES = {
    "reward": (("reward/mean",), "reward (mean)", False),
    "grad_norm": (("grad_norm",), "grad norm (pre-clip)", True),
    "ratio": (("ratio/p1", "ratio/p50", "ratio/p99"), "ratio π/π_old", True),
    "entropy": (("entropy",), "entropy (nats)", False),
}
# Fixed colours so a method keeps its colour across figures; MHPO and the reference stand out.
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def seed_band(per_seed: Mapping[int, Mapping[str, np.ndarray]],
              key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, mean, sd, n)`` over seeds at every step any seed logged (finite values only; sd NaN if n < 2)."""
    steps = (np.unique(np.concatenate([np.asarray(c["step"], float) for c in per_seed.values()])) if per_seed
             else np.array([]))
    vals = np.full((len(per_seed), steps.size), np.nan)
    for i, c in enumerate(per_seed.values()):
        vals[i, np.searchsorted(steps, np.asarray(c["step"], float))] = np.asarray(c[key], float)
    vals[~np.isfinite(vals)] = np.nan
    n = np.isfinite(vals).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(vals, axis=0) / np.maximum(n, 1), np.nan)
        sd = np.where(n > 1, np.sqrt(np.nansum((vals - mean) ** 2, axis=0) / np.maximum(n - 1, 1)), np.nan)
    return steps, mean, sd, n


def _colours(methods: list[str], reference: str) -> dict[str, str]:
    out, i = {}, 0
    for m in methods:
        if m == reference:
            out[m] = "black"
        elif m == "mhpo":
            out[m] = "#d62728"
        else:
            out[m] = _PALETTE[i % len(_PALETTE)]
            i += 1
    return out


def plot_all(curves: Mapping[tuple[str, str], Mapping[int, Mapping[str, np.ndarray]]], out_dir: str | Path,
             reference: str = "grpo") -> dict[str, Path]:
    """Draw every figure of ``FIGURES`` from ``{(regime, method): {seed: {"step": ..., key: ...}}}``; returns
    ``{"reward_png": path, ...}``."""
    import matplotlib  # lazy: start-up time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: start-up time

    regimes = sorted({r for r, _ in curves})
    methods = sorted({m for _, m in curves})
    colours = _colours(methods, reference)
    paths: dict[str, Path] = {}
    for name, (keys, ylabel, logy) in FIGURES.items():
        fig, axes = plt.subplots(len(keys), len(regimes), figsize=(4.2 * len(regimes), 2.8 * len(keys) + 0.6),
                                 squeeze=False, sharex="col")
        for col, regime in enumerate(regimes):
            for row, key in enumerate(keys):
                ax = axes[row][col]
                for method in methods:
                    per_seed = curves.get((regime, method))
                    if not per_seed:
                        continue
                    steps, mean, sd, n = seed_band(per_seed, key)
                    if not np.isfinite(mean).any():
                        continue
                    lw = 2.0 if method in ("mhpo", reference) else 1.1
                    ax.plot(steps, mean, color=colours[method], lw=lw, label=f"{method} (n={len(per_seed)})")
                    band = n > 1
                    lo, hi = mean - sd, mean + sd
                    if logy:  # a band below 0 has no place on a log axis
                        lo = np.where(lo > 0, lo, np.nan)
                    ax.fill_between(steps, lo, hi, where=band, color=colours[method], alpha=0.15, lw=0)
                if logy:
                    ax.set_yscale("log")
                ax.set_title(f"{regime}" + (f" — {key}" if len(keys) > 1 else ""), fontsize=9)
                ax.set_ylabel(ylabel if len(keys) == 1 else key, fontsize=8)
                ax.tick_params(labelsize=7)
                ax.grid(alpha=0.3)
            axes[-1][col].set_xlabel("optimizer step", fontsize=8)
        handles, labels = axes[0][0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=7, frameon=False)
        fig.suptitle(f"Stability study: {ylabel}, mean ± 1 s.d. across seeds", fontsize=10)
        fig.tight_layout(rect=(0, 0.08 if len(methods) <= 5 else 0.12, 1, 1))
        paths.update(_save(fig, out_dir, name))
        plt.close(fig)
    return paths


def _save(fig, out_dir: str | Path, name: str) -> dict[str, Path]:
    """``stability_{name}.png`` and ``.pdf``, atomically, with fixed metadata (a rerun gives identical files)."""
    paths = {}
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        path = Path(out_dir) / f"stability_{name}.{ext}"
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=120, metadata=meta)
        paths[f"{name}_{ext}"] = path
    return paths


def plot_frontier(rows, out_dir: str | Path, reference: str = "grpo") -> dict[str, Path]:
    """The stability frontier (``mhpo.analysis.stability.frontier_table`` rows): one panel per learning rate; returns
    ``{"frontier_png": path, "frontier_pdf": path}`` (an empty panel when there are no rows)."""
    import matplotlib  # lazy: start-up time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: start-up time

    lrs = sorted({r["lr"] for r in rows}) or [float("nan")]
    methods = sorted({r["method"] for r in rows})
    colours = _colours(methods, reference)
    fig, axes = plt.subplots(1, len(lrs), figsize=(max(6.0, 4.2 * len(lrs)), 3.6), squeeze=False, sharey=True)
    us = sorted({r["updates_per_rollout"] for r in rows})
    for ax, lr in zip(axes[0], lrs):
        for method in methods:
            line = sorted((r for r in rows if r["method"] == method and r["lr"] == lr),
                          key=lambda r: r["updates_per_rollout"])
            if not line:
                continue
            u = [r["updates_per_rollout"] for r in line]
            acc = [r["mean_accuracy"] for r in line]
            front = line[0]["frontier"]
            ax.plot(u, acc, "-o", color=colours[method], lw=2.0 if method in ("mhpo", reference) else 1.2, ms=4,
                    label=f"{method} (frontier U={front if front else 'none'})")
            bad = [(x, y) for x, y, r in zip(u, acc, line) if not r["survived"]]
            if bad:
                ax.plot(*zip(*bad), "x", color=colours[method], ms=10, mew=2)
        if rows:
            ax.axhline(rows[0]["base_accuracy"], color="grey", lw=1, ls="-", label="base model")
            ax.axhline(rows[0]["threshold"], color="grey", lw=1, ls=":", label="collapse threshold")
        ax.set_xscale("log", base=2)
        if us:
            ax.set_xticks(us, [str(u) for u in us])
        ax.set_title(f"lr {lr:g}", fontsize=9)
        ax.set_xlabel("updates per rollout U (log scale)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if rows:
            ax.legend(fontsize=6, frameon=False)
    axes[0][0].set_ylabel("final held-out avg@k", fontsize=8)
    fig.suptitle("Stability frontier: accuracy vs updates per rollout (× = a seed collapsed)", fontsize=9)
    fig.tight_layout()
    paths = _save(fig, out_dir, "frontier")
    plt.close(fig)
    return paths
