"""Mutation check of MHPO's tests: apply each mutant to a scratch copy of the repository, run the tests that
should catch it there, and report which tests kill it (fail) and which mutants survive.

    python tests/mutation.py                 # the listed mutants against tests/test_mhpo.py
    python tests/mutation.py --min-kills 2   # exit 1 unless every mutant is killed by >= 2 tests (default)

Each mutant is one exact textual replacement that must occur exactly once in its file (so a refactor that
removes the line makes this script fail loudly instead of testing nothing). The unmutated copy is run first
and must pass. The copy is imported through PYTHONPATH, never the editable install (checked). Hypothesis runs
under the derandomised "ci" profile of tests/conftest.py, so the report is the same on every run.
Cost: one pytest run per mutant plus one, two at a time (``--jobs``), each in its own scratch copy.
tests/test_mutation.py runs it in CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, file, original text, mutated text)
MUTANTS = [
    ("c=1.4", "mhpo/mhpo.py", "    c: float = 1.5\n", "    c: float = 1.4\n"),
    ("k_neg=1.5", "mhpo/mhpo.py", "    k_neg: float = 2.0\n", "    k_neg: float = 1.5\n"),
    ("lam_pos=1.2", "mhpo/mhpo.py", "    lam_pos: float = 1.0\n", "    lam_pos: float = 1.2\n"),
    ("softplus(-x)->softplus(x)", "mhpo/mhpo.py", "_pow((sp - x) / lam_neg, k_neg)", "_pow(sp / lam_neg, k_neg)"),
    ("softplus->relu", "mhpo/mhpo.py", "sp = F.softplus(x)", "sp = F.relu(x)"),
]
TESTS = ["tests/test_mhpo.py"]


def scratch_copy(dst: Path) -> None:
    """Tracked and untracked-but-not-ignored files of the work tree (what `.ci/slurm/run.sh` copies too)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for rel in filter(None, files):
        src = ROOT / os.fsdecode(rel)
        if src.is_file():
            out = dst / os.fsdecode(rel)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(src.read_bytes())


def run_tests(copy: Path, tests: list[str]) -> tuple[set[str], int]:
    """(names of failed or erroring tests, number of tests run) of one pytest run inside ``copy``."""
    report = copy / "report.xml"
    env = {**os.environ, "PYTHONPATH": str(copy), "MHPO_HYPOTHESIS_PROFILE": "ci"}
    # -n 0: one process per mutant run (pyproject's addopts would start a pytest-xdist worker per core)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                    "-W", "ignore::DeprecationWarning", f"--junitxml={report}", *tests],
                   cwd=copy, env=env, capture_output=True, text=True, timeout=600, check=False)
    failed, total = set(), 0
    for case in ET.parse(report).getroot().iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(f"{case.get('classname')}::{case.get('name')}")
    return failed, total


def check_import_location(copy: Path) -> None:
    code = "import mhpo.mhpo, baselines; print(mhpo.mhpo.__file__); print(baselines.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env={**os.environ, "PYTHONPATH": str(copy)},
                         capture_output=True, text=True, check=True).stdout.split()
    if not all(Path(p).resolve().is_relative_to(copy.resolve()) for p in out):
        raise SystemExit(f"mutation: the scratch copy is not what gets imported ({out}); is PYTHONPATH ignored?")


def mutate(copy: Path, mutant) -> None:
    name, rel, old, new = mutant
    path = copy / rel
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"mutation: {name}: {old!r} occurs {text.count(old)} times in {rel}; update MUTANTS")
    path.write_text(text.replace(old, new))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-kills", type=int, default=2, help="tests that must fail for a mutant to count as killed")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="pytest runs at once (default: 2)")
    ap.add_argument("tests", nargs="*", default=TESTS, help=f"test files to run (default: {' '.join(TESTS)})")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mhpo-mutants-") as tmp:
        copies = [Path(tmp) / f"copy{i}" for i in range(len(MUTANTS) + 1)]  # [0]: unmutated; one per mutant
        for copy in copies:
            scratch_copy(copy)
        check_import_location(copies[0])
        for copy, mutant in zip(copies[1:], MUTANTS):
            mutate(copy, mutant)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(lambda c: run_tests(c, args.tests), copies))
        failed, total = results[0]
        if failed or not total:
            print(f"mutation: the unmutated copy must pass first; failing: {sorted(failed)} (of {total})")
            return 1
        print(f"unmutated: {total} tests pass")
        survivors = []
        for (name, *_), (killers, _) in zip(MUTANTS, results[1:]):
            verdict = "killed" if len(killers) >= args.min_kills else "SURVIVES"
            print(f"{name:28s} {verdict:8s} by {len(killers):2d}: "
                  f"{', '.join(sorted(k.rsplit('::', 1)[1] for k in killers))}")
            if verdict != "killed":
                survivors.append(name)
        if survivors:
            print(f"mutation: {len(survivors)} mutant(s) killed by fewer than {args.min_kills} tests: "
                  f"{', '.join(survivors)}")
            return 1
        print(f"every mutant killed by >= {args.min_kills} tests")
        return 0


if __name__ == "__main__":
    sys.exit(main())
