"""Shared test set-up: offline, caches under a temp dir, and the location of the real benchmark copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCHMARKS = Path(os.environ.get("MHPO_BENCHMARK_DIR", ROOT.parent / "shared" / "benchmarks"))


def pytest_configure(config):
    from mhpo import env

    env.setup(os.environ.get("MHPO_CACHE_DIR") or ROOT / ".cache" / "tests")


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """The real benchmark copies (../shared/benchmarks); tests that need them skip when absent."""
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip(f"real benchmark copies not found at {SHARED_BENCHMARKS}")
    return SHARED_BENCHMARKS
