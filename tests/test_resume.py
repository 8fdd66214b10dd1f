"""Resume after a real ``kill -9``: the same command picks up from the last complete checkpoint, and the metrics
log ends with every step exactly once (rows past the checkpoint are dropped, then re-done)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mhpo.common import io
from mhpo.training import train as train_mod
from mhpo.training.recipe import load as load_recipe
from mhpo.training.trainer import complete_checkpoints

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 8, 2  # the smallest interval the tiny recipe allows (a multiple of updates_per_rollout)


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "mhpo.cli", "train", "--config", "tiny", "--objective", "mhpo", "--seed", "0",
            "--out", str(out), "--max-steps", str(STEPS), "--set", f"checkpoint.every={EVERY}",
            # small rollouts (32 completions) keep the test fast; the resume logic does not depend on their size
            "--set", "rollout.group_size=8", "--set", "rollout.prompts_per_rollout=4",
            "--set", "rollout.micro_batch_size=8"]


def test_kill_9_then_rerun_resumes_without_duplicate_or_missing_steps(tmp_path, capsys):
    env = dict(os.environ)  # the session's cache (tests/conftest.py), where the tiny model is built once
    train_mod.model_path(load_recipe("tiny"))  # build the tiny model outside the timed child
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(out), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (metrics.exists() and len(io.read_jsonl(metrics)) >= 2 * EVERY + 1
                and complete_checkpoints(out / "checkpoints")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = max(r["step"] for r in io.read_jsonl(metrics))
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    assert not (out / "final").exists()

    # A half-written checkpoint (as left by a kill during saving) must never be resumed from.
    half = out / "checkpoints" / ".staging" / f"checkpoint-{STEPS - EVERY}"
    half.mkdir(parents=True, exist_ok=True)
    (half / "config.json").write_text("{")
    # Nor is an atomic write's temp file (a kill between write and rename) kept: the rerun removes it.
    stale = out / ".manifest.json.k1ll3d.tmp"
    stale.write_text("{")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    done = subprocess.run(_cmd(out), env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [r["step"] for r in io.read_jsonl(metrics)]
    assert steps == list(range(1, STEPS + 1))  # no duplicates, no gaps
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["attempts"] == 2
    resumed = int(man["resumed_from"][0].split("-")[1])
    assert at_kill - EVERY <= resumed <= at_kill  # at most one checkpoint interval is redone
    assert (out / "final" / "config.json").exists() and not half.exists() and not stale.exists()

    from mhpo import cli  # a complete run is skipped before anything heavy: in-process saves an interpreter start

    capsys.readouterr()
    assert cli.main(_cmd(out)[3:]) == 0 and "already complete" in capsys.readouterr().out
