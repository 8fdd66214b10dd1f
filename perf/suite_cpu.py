"""Where the test suite's CPU time goes: per test file, the CPU seconds of the test and of every process it waited
for, as a share of the suite's total (the baseline measured in the same run).

    python perf/suite_cpu.py [PYTEST ARGS...]      # e.g. nothing (the whole suite, as `pytest -q` runs it)

On 2 cores the suite is CPU-bound (pytest-xdist keeps both busy), so its wall time follows the CPU it spends, and
this table says what to make cheaper. A test's figure is RUSAGE_SELF + RUSAGE_CHILDREN (user + system) around it:
subprocesses are counted once reaped; work a test leaves running (the background tiny-model build of
tests/conftest.py) is not. It runs pytest with this file as a plugin (`-p suite_cpu`), each xdist worker writing
its rows to a temporary directory.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

OUT_ENV = "MHPO_SUITE_CPU_DIR"
_rows: list[tuple[str, float, float]] = []


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# ---- the pytest plugin (loaded in every xdist worker)
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu0, wall0 = _cpu(), time.perf_counter()
    yield
    _rows.append((item.nodeid, _cpu() - cpu0, time.perf_counter() - wall0))


def pytest_sessionfinish(session):
    out = os.environ.get(OUT_ENV)
    if out and _rows:
        name = os.environ.get("PYTEST_XDIST_WORKER", "main")
        Path(out, f"{name}.json").write_text(json.dumps(_rows))


# ---- the launcher
def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, OUT_ENV: out,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "perf"), os.environ.get("PYTHONPATH")]))}
        t0, c0 = time.perf_counter(), _cpu()
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "suite_cpu", *argv], cwd=root, env=env)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        rows = [r for f in Path(out).glob("*.json") for r in json.loads(f.read_text())]
    if not rows:
        print("no test ran", file=sys.stderr)
        return rc or 1
    per_file: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for nodeid, c, w in rows:
        acc = per_file[nodeid.split("::")[0]]
        acc[0] += c
        acc[1] += w
        acc[2] += 1
    in_tests = sum(c for _, c, _ in rows)
    print(f"\npytest exit status {rc}: {len(rows)} tests, wall {wall:.0f} s, CPU {cpu:.0f} s in all "
          f"({cpu / wall:.2f} cores busy), {in_tests:.0f} s of it inside tests (the rest: start-up, collection, "
          f"the background tiny-model build)")
    print("\n| file | tests | CPU s | share of the tests' CPU | wall s |\n|---|---|---|---|---|")
    for name, (c, w, n) in sorted(per_file.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"| {name} | {n} | {c:.1f} | {c / in_tests:.3f} | {w:.1f} |")
    print("\n| test | CPU s | share | wall s |\n|---|---|---|---|")
    for nodeid, c, w in sorted(rows, key=lambda r: -r[1])[:15]:
        print(f"| {nodeid} | {c:.1f} | {c / in_tests:.3f} | {w:.1f} |")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
