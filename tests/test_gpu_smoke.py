"""perf/gpu_smoke.sh on a machine without a GPU: it says so, exits 0 and leaves perf/README.md alone (~2 s).
With a GPU it would run its ten-minute smoke, so the test then skips (run the script itself)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_smoke_without_a_gpu_says_so_and_exits_0():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: run perf/gpu_smoke.sh itself (it writes perf/README.md)")
    readme = ROOT / "perf" / "README.md"
    before = hashlib.sha256(readme.read_bytes()).hexdigest()
    p = subprocess.run(["bash", str(ROOT / "perf" / "gpu_smoke.sh")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "no CUDA GPU visible here" in p.stdout
    assert hashlib.sha256(readme.read_bytes()).hexdigest() == before
