"""Crash recovery with real ``SIGKILL``s (docs/reliability.md).

* ``mhpo-bench evaluate`` killed midway, then rerun: completed problems are reused from the progress file, the
  rest are generated, and the records hold exactly one complete row per (problem, sample).
* A Snakemake run of our ``evaluate`` rule killed midway (Snakemake and its job, as when a node dies), then rerun:
  the stale lock is cleared with ``--unlock``, nothing looks complete in between, and the rerun resumes the job.
* A job that leaves a directory output half-written: Snakemake flags it as incomplete and ``--rerun-incomplete``
  redoes it.

Training's kill/resume is tests/test_resume.py; atomic writes are checked here on mhpo.common.io itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.tiny_model import build_tiny_llama
from mhpo.common import io

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RECORD_FIELDS = {"run", "model", "checkpoint", "step", "benchmark", "problem_id", "sample", "completion",
                 "extracted", "correct", "n_tokens"}
N_PROBLEMS, K = 120, 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "final")


def _env(**extra) -> dict:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1", **extra}


def _wait_for(cond, proc, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    out = proc.stderr.read().decode()[-3000:] if proc.stderr and proc.poll() is not None else ""
    pytest.fail(f"never saw {what} before the process ended or timed out (rc={proc.poll()}): {out}")


def _check_records(path: Path, n: int, k: int) -> list[dict]:
    rows = io.read_jsonl(path)
    assert path.read_text().endswith("\n")  # no torn last line
    assert all(set(r) == RECORD_FIELDS for r in rows)
    keys = [(r["problem_id"], r["sample"]) for r in rows]
    assert len(keys) == len(set(keys)) == n * k, "duplicate or missing rows"
    return rows


def _eval_cmd(model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "mhpo.cli", "evaluate", "--model", str(model), "--benchmarks", "synth_arith",
            "--limit", str(N_PROBLEMS), "--k", str(K), "--batch-size", "1", "--max-tokens", "24", "--workers", "1",
            "--out", str(out)]


def _start_and_kill(cmd: list[str], progress: Path, rows: int) -> None:
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: progress.exists() and len(io.read_jsonl(progress)) >= rows, proc, f"{rows} sampled problems")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_evaluate_killed_with_sigkill_resumes_and_leaves_no_partial_rows(tiny, tmp_path):
    out = tmp_path / "eval"
    progress, records, summary = out / ".synth_arith.progress.jsonl", out / "synth_arith.jsonl", \
        out / "synth_arith.summary.json"
    _start_and_kill(_eval_cmd(tiny, out), progress, 5)
    # Nothing looks complete: no records, no summary; the progress file holds whole problems only.
    assert not records.exists() and not summary.exists()
    first = io.read_jsonl(progress)
    assert 5 <= len(first) < N_PROBLEMS and all(len(r["samples"]) == K for r in first)

    # A kill in the middle of an append leaves a torn line; the next run drops it before appending, so a second
    # kill and a third run still read the file.
    with open(progress, "a") as fh:
        fh.write('{"fingerprint": "x", "problem_id": "synth_ar')
    _start_and_kill(_eval_cmd(tiny, out), progress, len(first) + 3)
    done = io.read_jsonl(progress)
    assert [r["problem_id"] for r in done[: len(first)]] == [r["problem_id"] for r in first]
    assert not records.exists() and not summary.exists()

    # A kill inside an atomic write leaves its hidden temp file; the next run clears the stale ones and spares a
    # fresh one (a writer that may still be filling it).
    stale, fresh = out / ".synth_arith.jsonl.k1ll3d.tmp", out / ".other.jsonl.l1v3.tmp"
    stale.write_text('{"partial": ')
    fresh.write_text('{"partial": ')
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    rerun = subprocess.run(_eval_cmd(tiny, out), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not stale.exists() and fresh.exists()
    fresh.unlink()
    m = re.search(r"resuming, (\d+)/(\d+) problems already sampled", rerun.stderr)
    assert m and int(m.group(2)) == N_PROBLEMS and int(m.group(1)) >= len(done), rerun.stderr[-2000:]
    rows = _check_records(records, N_PROBLEMS, K)
    for old in done:  # the samples of problems finished before the kill are reused verbatim
        kept = [r["completion"] for r in rows if r["problem_id"] == old["problem_id"]]
        assert kept == [s[0] for s in old["samples"]]
    s = json.loads(summary.read_text())
    assert s["n_problems"] == N_PROBLEMS and s["k"] == K
    assert not progress.exists() and not list(out.glob(".*.tmp")), sorted(p.name for p in out.iterdir())


# ------------------------------------------------------------------------------------------ Snakemake
def _smk(wf: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(wf),
                           "--cores", "1", *args], env=_env(MHPO_CACHE_DIR=str(wf / ".cache")), cwd=wf,
                          capture_output=True, text=True, timeout=timeout)


def _eval_only_config(wf: Path, model: Path) -> Path:
    cfg = {
        "results_dir": "results",
        "models": {"tiny": {"evaluate_base": False}},
        "defaults": {"evaluation": {"benchmarks": [{"name": "synth_arith", "limit": N_PROBLEMS}], "k": K,
                                    "sampling": {"max_tokens": 24, "seed": 0}, "batch_size": 1}},
        "experiments": [{"model": "tiny", "label": "ext", "checkpoints": {"0": str(model)}}],
        "report": {"atlas": False},
    }
    path = wf / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_snakemake_killed_midway_reruns_and_resumes_the_evaluation(tiny, tmp_path):
    wf = tmp_path / "wf"
    wf.mkdir()
    cfg = _eval_only_config(wf, tiny)
    ev = wf / "results" / "evals" / "tiny" / "ext" / "seed0" / "final"
    done, progress = ev / ".done", ev / ".synth_arith.progress.jsonl"
    target = str(done.relative_to(wf))
    cmd = [str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(wf), "--cores", "1",
           target, "--configfile", str(cfg)]
    # own process group: SIGKILL reaches Snakemake and its job at once, like a node that dies
    proc = subprocess.Popen(cmd, env=_env(MHPO_CACHE_DIR=str(wf / ".cache")), cwd=wf, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    _wait_for(lambda: progress.exists() and len(io.read_jsonl(progress)) >= 3, proc, "the evaluate job sampling")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not done.exists() and not (ev / "synth_arith.summary.json").exists()

    # The killed Snakemake left its lock; the documented recovery is --unlock, then the same command.
    locked = _smk(wf, target, "--configfile", str(cfg))
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert _smk(wf, "--configfile", str(cfg), "--unlock").returncode == 0
    p = _smk(wf, target, "--rerun-incomplete", "--configfile", str(cfg))
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert re.search(r"\bevaluate\b", p.stdout + p.stderr)  # the job ran again: nothing was taken as complete
    log = (wf / "results" / "logs" / "evaluate" / "tiny" / "ext" / "seed0" / "final.log").read_text()
    assert "resuming," in log, log[-2000:]
    assert done.exists() and not progress.exists()
    _check_records(ev / "synth_arith.jsonl", N_PROBLEMS, K)


SNAKEFILE = """
rule all:
    input: "out/model"

rule build:
    output: directory("out/model")
    shell: "python {workflow.basedir}/build.py {output:q}"
"""

BUILD = """
import os, sys, time
from pathlib import Path
out = Path(sys.argv[1])
out.mkdir(parents=True)
(out / "part-1").write_text("x")
if os.environ.get("HANG"):  # a job that dies halfway (killed below) leaves a directory that exists
    time.sleep(600)
(out / "part-2").write_text("y")
"""


def test_snakemake_flags_a_half_written_directory_and_rerun_incomplete_redoes_it(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "build.py").write_text(BUILD)
    smk = [str(BIN / "snakemake"), "--cores", "1", "--directory", str(tmp_path), "--snakefile",
           str(tmp_path / "Snakefile")]
    proc = subprocess.Popen(smk, cwd=tmp_path, env=_env(HANG="1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    _wait_for(lambda: (tmp_path / "out" / "model" / "part-1").exists(), proc, "the job's first file")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "out" / "model").is_dir()  # exists, but is incomplete

    subprocess.run([*smk, "--unlock"], cwd=tmp_path, env=_env(), check=True, capture_output=True)
    refused = subprocess.run(smk, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "incomplete" in (refused.stdout + refused.stderr).lower()
    assert "--rerun-incomplete" in refused.stdout + refused.stderr
    redo = subprocess.run([*smk, "--rerun-incomplete"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert redo.returncode == 0, (redo.stdout + redo.stderr)[-3000:]
    # build.py's mkdir (no exist_ok) only succeeds because Snakemake removed the half-written directory first
    redone = (tmp_path / "out" / "model").iterdir()
    assert sorted(p.name for p in redone if not p.name.startswith(".snakemake")) == ["part-1", "part-2"]


# ------------------------------------------------------------------------------------------ atomic writes
def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path):
    """A writer killed (here: an exception) inside ``io.atomic_path`` leaves the previous content untouched and
    no temp file; a writer killed by SIGKILL leaves only a hidden ``.*.tmp`` that no reader looks at."""
    target = tmp_path / "summary.json"
    io.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "trunc')
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]

    code = ("import os, sys, signal; from mhpo.common import io\n"
            "with io.atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('{\"v\": 3, \"half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    p = subprocess.run([sys.executable, "-c", code, str(target)], cwd=ROOT, capture_output=True)
    assert p.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"v": 1}
    assert all(q.name == "summary.json" or (q.name.startswith(".") and q.name.endswith(".tmp"))
               for q in tmp_path.iterdir())
    # ... which the next job on that folder sweeps once it is stale (train and evaluate call this at start),
    # sparing fresh temp files, other hidden files, and folders' insides only as a whole.
    left = [q for q in tmp_path.iterdir() if q.name.endswith(".tmp")]
    assert len(left) == 1
    assert io.sweep_stale_tmp(tmp_path) == []  # just written: it could still be a live writer's
    stale_dir, keep = tmp_path / ".final.tmp", tmp_path / ".progress.jsonl"
    stale_dir.mkdir()
    (stale_dir / "model.safetensors").write_bytes(b"\0" * 8)
    keep.write_text("{}\n")
    old = time.time() - 3600
    for q in (left[0], stale_dir, keep):
        os.utime(q, (old, old))
    assert sorted(io.sweep_stale_tmp(tmp_path)) == sorted([left[0], stale_dir])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".progress.jsonl", "summary.json"]
    assert json.loads(target.read_text()) == {"v": 1}
