"""``mhpo-bench atlas``: the gradient-shape atlas of every registered objective.

For each objective, the per-token gradient weight w(r) = −∂loss/∂logπ (the factor in front of ∇logπ in the
ascent direction) against the ratio r ∈ [0.05, 20] (log axis), for Â = +1 and Â = −1. The weights come
from autograd through the objective itself, so a new objective file shows up without any change here.

Each r is one single-token sequence of one batch (so sequence-level objectives reduce to their token form)
and the batch's aggregation is undone (× number of sequences). Objectives that select tokens by batch
statistics (clip_cov, kl_cov) are drawn for a batch of equal advantages, where their covariance is 0.
Output: ``<out>/<name>.png`` and ``<out>/<name>.pdf`` (default ``results/figures/gradient_atlas``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from mhpo.common import io

R_MIN, R_MAX = 0.05, 20.0  # torch is imported where used: `mhpo-bench atlas --help` stays fast


def gradient_weights(name: str, ratios: torch.Tensor, adv: float, **params) -> torch.Tensor:
    """w(r) = −∂loss/∂logπ per token for objective ``name`` at the given ratios, with advantage ``adv``."""
    import torch  # lazy: start-up time

    from mhpo import objectives  # lazy: start-up time

    obj = objectives.get(name, **params)
    n = len(ratios)
    old = torch.full((n, 1), -1.0, dtype=torch.float64)  # logπ_old = −1: a typical token, away from 0
    logps = (old + torch.log(ratios.to(torch.float64))[:, None]).requires_grad_(True)
    out = obj(logps=logps, old_logps=old, advantages=torch.full((n,), float(adv), dtype=torch.float64),
              mask=torch.ones_like(old))
    (grad,) = torch.autograd.grad(out.loss, logps)
    return -grad[:, 0] * n


def figure(names: list[str], points: int = 400):
    """The atlas as a matplotlib figure: one panel per objective, w(r) for Â = +1 and −1."""
    import matplotlib  # lazy: start-up time

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: start-up time
    import torch

    r = torch.logspace(math.log10(R_MIN), math.log10(R_MAX), points, dtype=torch.float64)
    cols = min(5, len(names))
    rows = math.ceil(len(names) / cols)
    # at least 3.2 in tall: the shared y label must fit beside a single row of panels
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 0.4, max(3.2, 2.4 * rows)), squeeze=False,
                             sharex=True)
    for ax, name in zip(axes.flat, names):
        for adv, color in ((1.0, "tab:blue"), (-1.0, "tab:red")):
            ax.plot(r.numpy(), gradient_weights(name, r, adv).numpy(), color=color, lw=1.4, label=f"Â = {adv:+.0f}")
        ax.axvline(1.0, color="0.6", lw=0.6, ls=":")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xscale("log")
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("ratio r = π_θ / π_old (log scale)", fontsize=10)
    fig.supylabel("w(r) = −∂loss/∂logπ per token", fontsize=10)
    fig.tight_layout()
    return fig


def draw(names: list[str], out: Path, stem: str = "gradient_atlas", points: int = 400) -> list[Path]:
    import matplotlib.pyplot as plt  # lazy: start-up time


    fig = figure(names, points)
    paths = io.save_figure(fig, out, stem, dpi=150)
    plt.close(fig)
    return paths
