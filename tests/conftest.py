"""Shared test set-up: offline, caches under a temp dir, the location of the real benchmark copies, the
``MHPO_REQUIRE`` switch that turns environment-dependent skips into failures, and the Hypothesis profiles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
# The package never guesses where benchmark data are: the tests name the copies beside the checkout explicitly
# (pytest_configure exports MHPO_BENCHMARK_DIR, for the tests' subprocesses too), unless it is set already.
SHARED_BENCHMARKS = Path(os.environ.get("MHPO_BENCHMARK_DIR") or ROOT.parent / "shared" / "benchmarks")
# what a test may find missing here; `MHPO_REQUIRE` names those CI needs
REQUIREMENTS = ("benchmarks", "slurm", "smollm")

# "ci": the same examples on every run (derandomize), no example database; selected by MHPO_HYPOTHESIS_PROFILE=ci
# (.ci/run). "dev", the default, draws fresh examples on every run, which is how new counterexamples are found.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("MHPO_HYPOTHESIS_PROFILE", "dev"))


def required() -> set[str]:
    """The requirements listed in ``MHPO_REQUIRE`` (comma-separated; ``all`` = every one); unknown names are an
    error."""
    raw = {w.strip() for w in os.environ.get("MHPO_REQUIRE", "").split(",") if w.strip()}
    if "all" in raw:
        return set(REQUIREMENTS)
    unknown = raw - set(REQUIREMENTS)
    if unknown:
        raise pytest.UsageError(f"MHPO_REQUIRE names {sorted(unknown)}; "
                                f"choose from {', '.join(REQUIREMENTS)} or 'all'")
    return raw


def require(what: str, reason: str) -> None:
    """Skip with ``reason`` because ``what`` is missing here, or fail when ``MHPO_REQUIRE`` says it must be present."""
    __tracebackhide__ = True  # report the skip or failure at the test, not here
    assert what in REQUIREMENTS, what
    if what in required():
        pytest.fail(f"{reason} (MHPO_REQUIRE={os.environ['MHPO_REQUIRE']} makes this a failure, not a skip)",
                    pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    from mhpo.common import env

    required()  # a typo in MHPO_REQUIRE stops the run at once, not at the first test that needs it
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:  # pytest-xdist: share the cores among the workers (torch would take every core in each)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    # One cache for the whole session and its subprocesses (workflow runs included), so the tiny model is
    # built once (mhpo.models.tiny.cached) and reused by every test that trains or runs the workflow.
    os.environ["MHPO_CACHE_DIR"] = os.environ.get("MHPO_CACHE_DIR") or str(ROOT / ".cache" / "tests")
    env.setup(os.environ["MHPO_CACHE_DIR"])
    if SHARED_BENCHMARKS.is_dir():
        os.environ["MHPO_BENCHMARK_DIR"] = str(SHARED_BENCHMARKS)


# Test files that train the default tiny recipe, so wait for the shared tiny-model build (a few minutes on a cold
# cache). Missing a file here costs time, never correctness: it only runs earlier and waits on the build lock.
TRAINS_TINY = {"test_workflow.py", "test_bad_input.py", "test_flows.py", "test_multiprocess.py", "test_parity_trl.py",
               "test_recipes.py", "test_resume.py", "test_security.py", "test_stability_repro.py", "test_trainer.py",
               "test_vl.py", "test_wheel.py"}


def pytest_collection_modifyitems(config, items):
    """Order of files (stable within each group), for pytest-xdist's ``loadfile``: first the files that do not
    need the tiny model, slow ones first, while the background build runs (pytest_sessionstart); then the ones
    that do, the end-to-end workflow first and other slow files next, so no long file finishes alone at the end."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}

    def key(item):
        tiny = item.path.name in TRAINS_TINY
        return tiny, item.path.name != "test_workflow.py", item.path not in slow

    items.sort(key=key)


_prebuild: subprocess.Popen | None = None


def pytest_sessionstart(session):
    """With several xdist workers, build the default tiny model into the shared cache in the background at once:
    tests that train the tiny recipe wait on its build lock (mhpo.models.tiny.cached) instead of one of them
    building it while the other workers' tiny tests wait idle. Only for a run of the whole suite; a failed build
    is retried by the first test that needs it, in the open."""
    global _prebuild
    config = session.config
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS  # `pytest`, not `pytest tests/x.py`
    if hasattr(config, "workerinput") or not whole_suite or (config.getoption("numprocesses", None) or 0) < 2:
        return
    _prebuild = subprocess.Popen([sys.executable, "-c", "from mhpo.models import tiny; tiny.cached()"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pytest_sessionfinish(session):
    if _prebuild is not None and _prebuild.poll() is None:  # a short session: stop the build, drop its half
        _prebuild.kill()
        _prebuild.wait()
        for half in (Path(os.environ["MHPO_CACHE_DIR"]) / "tiny-builds").glob(f".*.{_prebuild.pid}.build"):
            shutil.rmtree(half, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """The real benchmark copies (../shared/benchmarks); tests that need them skip when absent, or fail under
    ``MHPO_REQUIRE=benchmarks``."""
    if not SHARED_BENCHMARKS.is_dir():
        require("benchmarks", f"real benchmark copies not found at {SHARED_BENCHMARKS} (set MHPO_BENCHMARK_DIR)")
    return SHARED_BENCHMARKS
