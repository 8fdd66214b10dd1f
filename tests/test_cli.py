"""The ``mhpo-bench`` CLI: top-level help describes the tool, --version, every option has help text, and the
top-level --help imports no heavy library (its speed is measured by perf/cli_help.py, not timed here). ~10 s."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from mhpo import cli


def test_top_level_help_describes_the_tool_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "MHPO" in out and "GRPOTrainer" in out and "snakemake" in out and "--version" in out
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    from importlib.metadata import version

    assert capsys.readouterr().out.strip() == f"mhpo-bench {version('mhpo-bench')}"


@pytest.mark.parametrize("argv, heavy", [
    (["--help"], ("torch", "transformers", "trl", "numpy", "snakemake")),
    (["train", "--help"], ("torch", "transformers", "trl")),  # the trainer loads only when a run starts
])
def test_help_imports_no_heavy_library(argv, heavy):
    code = (f"import sys\nfrom mhpo import cli\ntry:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _actions(parser, path=()):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from _actions(sub, path + (name,))
        elif not isinstance(a, argparse._HelpAction):
            yield path, a


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_option_has_help(name):
    parser = argparse.ArgumentParser()
    importlib.import_module(cli.COMMANDS[name][0]).configure(parser)
    missing = [(p, a.option_strings or a.dest) for p, a in _actions(parser) if not a.help]
    assert not missing, f"{name}: options without help: {missing}"


# ------------------------------------------------------------------------------------------------ figures
def _texts_inside(fig) -> bool:
    fig.canvas.draw()
    r, bb = fig.canvas.get_renderer(), fig.bbox
    texts = [fig._supylabel, fig._supxlabel] + [ax.yaxis.label for ax in fig.axes]
    return all(bb.x0 <= e.x0 and e.x1 <= bb.x1 and bb.y0 <= e.y0 and e.y1 <= bb.y1
               for e in (t.get_window_extent(r) for t in texts if t is not None and t.get_text()))


@pytest.mark.parametrize("names", [["grpo"], ["grpo", "mhpo", "dapo", "sapo", "gspo", "cispo"]])
def test_atlas_labels_fit_one_row_or_more(names):
    import matplotlib.pyplot as plt

    from mhpo.analysis import atlas

    fig = atlas.figure(names, points=10)
    assert _texts_inside(fig)
    plt.close(fig)


def test_heldout_axis_starts_at_zero_and_ratio_panel_explains_the_zigzag():
    import matplotlib.pyplot as plt
    import numpy as np

    from mhpo.analysis import plots

    steps = np.arange(1, 9, dtype=float)
    metrics = {"grpo": {0: {"step": steps, "reward/mean": steps / 10, "ratio/p1": np.tile([1.0, 0.8], 4),
                            "ratio/p99": np.tile([1.0, 1.3], 4)}}}
    fig = plots.signals_figure("tiny", metrics, {"grpo": {0: [(0, 0.40), (8, 0.37)]}})
    held = next(ax for ax in fig.axes if ax.get_title().startswith("held-out"))
    assert held.get_ylim() == (0.0, 100.0)
    assert any("on-/off-policy steps alternate" in ax.get_title() for ax in fig.axes)
    plt.close(fig)
