"""``mhpo-bench new-objective NAME``: write a starter objective and its conformance test.

Writes ``baselines/NAME.py`` (a working < 40-line objective that registers itself) and
``tests/test_objective_NAME.py`` (runs every conformance check of tests/test_conformance.py on it), under the
current directory (a checkout with ``baselines/`` and ``tests/``) or the directories given. Never into the
installed package: without ``baselines/`` here and without ``--baselines-dir`` it stops and says so.
Refuses to overwrite an existing file or to reuse a registered name; NAME must be a lower-case identifier.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from mhpo.common import io

OBJECTIVE = '''"""{name}: <one line on what the objective does> (<paper>, arXiv <id>).

    λ_t = −min(r_t, 1 + ε)·Â            (the per-token loss to minimise: edit per_token_loss below)
    aggregation: seq-mean-token-mean    (one of mhpo.objectives.AGGREGATIONS)

Defaults: ε = 0.2, β = 0. TRL equivalent: none.
Check:  pytest tests/test_objective_{name}.py   (or: pytest tests/test_conformance.py -k {name})
Draw:   mhpo-bench atlas --objectives grpo,{name}
"""

from __future__ import annotations

import torch

from mhpo.objectives import Batch, Objective, register


@register("{name}")
class {cls}(Objective):
    __doc__ = __doc__
    aggregation = "seq-mean-token-mean"
    eps: float = 0.2
    checks = (("eps", lambda e: e >= 0, "ε must be >= 0"),)

    def per_token_loss(self, b: Batch) -> torch.Tensor:
        # (B, T) tensors, zero outside b.mask: b.logps, b.old_logps, b.log_ratio, b.ratio, b.advantages.
        # Return the loss per token (B, T) or per sequence (B,); self.log(key=tensor) adds a metric.
        return -b.ratio.clamp(max=1 + self.eps) * b.advantages
'''

TEST = '''"""Conformance checks for the ``{name}`` objective (written by ``mhpo-bench new-objective``)."""

import pytest
from test_conformance import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_{name}_conformance(check):
    check("{name}")
'''


def validate_name(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ValueError(f"objective name {name!r} is invalid: use a lower-case Python identifier such as 'my_obj'")
    from mhpo import objectives  # lazy: start-up time

    if name in objectives.available():
        raise ValueError(f"objective {name!r} is already registered; pick another name")
    return name


def write(name: str, baselines_dir: Path, tests_dir: Path) -> list[Path]:
    """Write both files, or neither: every target is checked before anything is written."""
    validate_name(name)
    cls = "".join(part.capitalize() for part in name.split("_") if part) or name
    targets = {baselines_dir / f"{name}.py": OBJECTIVE, tests_dir / f"test_objective_{name}.py": TEST}
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)}; remove it or pick another name")

    for path, template in targets.items():
        io.write_text(path, template.format(name=name, cls=cls))
    return list(targets)


def target_dirs(baselines_dir: str | None, tests_dir: str | None, cwd: Path | None = None) -> tuple[Path, Path]:
    """The given directories, else the current directory's ``baselines/`` and ``tests/``; ValueError when
    neither names a place to write (the installed package is never a default: it may be site-packages)."""
    cwd = Path.cwd() if cwd is None else cwd
    if baselines_dir is None:
        if not (cwd / "baselines").is_dir():
            raise ValueError(f"no baselines/ directory in {cwd}; run from a checkout of mhpo-bench or pass "
                             "--baselines-dir DIR (and --tests-dir DIR)")
        baselines_dir = cwd / "baselines"
    if tests_dir is None:
        tests_dir = cwd / "tests" if (cwd / "tests").is_dir() else baselines_dir
    return Path(baselines_dir), Path(tests_dir)
