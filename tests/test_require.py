"""The MHPO_REQUIRE switch of tests/conftest.py, through real pytest runs: a test that needs the benchmark copies
skips where they are missing, and fails under MHPO_REQUIRE=benchmarks (as in .ci/run); a misspelt requirement
stops the run. (The Slurm side: tests/test_slurm.py uses the same `require`; .ci/run sets MHPO_REQUIRE=all there.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_run(tmp_path, require: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MHPO_BENCHMARK_DIR": str(tmp_path / "missing"), "MHPO_REQUIRE": require}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-rs", "-p", "no:cacheprovider",
                           "tests/test_benchmarks.py::test_real_copies_match_their_documented_sizes"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_missing_benchmark_copies_skip_unless_required(tmp_path):
    lenient = pytest_run(tmp_path, "")
    assert lenient.returncode == 0 and "1 skipped" in lenient.stdout, lenient.stdout
    assert f"real benchmark copies not found at {tmp_path / 'missing'}" in lenient.stdout
    strict = pytest_run(tmp_path, "benchmarks")
    assert strict.returncode == 1 and "1 error" in strict.stdout, strict.stdout
    assert "MHPO_REQUIRE=benchmarks makes this a failure, not a skip" in strict.stdout
    assert pytest_run(tmp_path, "all").returncode == 1


def test_unknown_requirement_stops_the_run(tmp_path):
    p = pytest_run(tmp_path, "benchmark")
    assert p.returncode != 0 and "MHPO_REQUIRE names ['benchmark']" in p.stdout + p.stderr
