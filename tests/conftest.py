"""Shared test set-up: offline, caches under a temp dir, and the location of the real benchmark copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCHMARKS = Path(os.environ.get("MHPO_BENCHMARK_DIR", ROOT.parent / "shared" / "benchmarks"))


def pytest_configure(config):
    from mhpo import env

    # One cache for the whole session and its subprocesses (workflow runs included), so the tiny model is
    # built once (mhpo.tiny.cached) and reused by every test that trains or runs the workflow.
    os.environ["MHPO_CACHE_DIR"] = os.environ.get("MHPO_CACHE_DIR") or str(ROOT / ".cache" / "tests")
    env.setup(os.environ["MHPO_CACHE_DIR"])


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """The real benchmark copies (../shared/benchmarks); tests that need them skip when absent."""
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip(f"real benchmark copies not found at {SHARED_BENCHMARKS}")
    return SHARED_BENCHMARKS
