"""The multi-process tier: the real ``mhpo-bench train`` under ``accelerate launch`` with 2 CPU processes over gloo,
in the two modes a GPU cluster uses:

- ``ddp``: ``accelerate launch --multi_gpu --num_processes 2`` with the trainer on CPU. (``--cpu --num_processes 2``
  would silently run ONE process; every run here asserts that two did, from the manifest.)
- ``zero3``: DeepSpeed ZeRO-3 from the project's own ``workflow/accelerate/zero3.yaml``, only the process count and
  precision overridden for CPU, ``DS_ACCELERATOR=cpu``.

In each mode a run trains, checkpoints, loses one rank to ``kill -9`` after its first checkpoint, resumes with the
same command, writes ``final/`` (full weights, on every rank's collective save) and is evaluated by
``mhpo-bench evaluate``. A second run whose loss turns non-finite must leave the weights exactly unchanged. The
runs are tiny (6 optimizer steps of 16 completions); the whole tier took 81 s on 2 cores held alone (flock),
2–2.5 min with other jobs on the machine (2026-12-02).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mhpo.common import io
from mhpo.training import train as train_mod
from mhpo.training.recipe import load as load_recipe
from mhpo.training.trainer import WEIGHTS_ONLY, complete_checkpoints

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "tests" / "_mp_train.py"
STEPS, EVERY = 6, 2
# 4 prompts × 8 completions per rollout, 2 updates: 16 completions per step = 8 per process, one micro-batch each
SMALL = ["--set", "rollout.group_size=8", "--set", "rollout.prompts_per_rollout=4",
         "--set", "rollout.micro_batch_size=8", "--set", "wandb.enabled=false", "--set", f"checkpoint.every={EVERY}"]
LAUNCH = {
    "ddp": ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"],
    "zero3": ["--config_file", str(ROOT / "workflow" / "accelerate" / "zero3.yaml"), "--num_processes", "2",
              "--mixed_precision", "no"],
}
DISTRIBUTED_TYPE = {"ddp": "MULTI_CPU", "zero3": "DEEPSPEED"}  # DDP over gloo with the trainer on CPU
TIMEOUT = 240  # a hung collective fails the test instead of the CI job


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MP_", "RANK", "WORLD_SIZE", "LOCAL_RANK"))}
    return {**env, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", **extra}


def _launch(mode: str, out: Path, *args: str, objective: str = "mhpo", steps: int = STEPS) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", *LAUNCH[mode], "--main_process_port", str(_port()),
            str(ENTRY), "train", "--config", "tiny", "--objective", objective, "--seed", "0", "--out", str(out),
            "--max-steps", str(steps), *SMALL, *args]


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], **env) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, env=_env(**env), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        out = _kill(proc)
        pytest.fail(f"{' '.join(cmd[3:8])}... hung for {TIMEOUT}s; last output:\n{out[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def _kill(proc: subprocess.Popen) -> str:
    """SIGKILL a launch: its workers (each in a session of its own, so not in the launcher's group) first."""
    for pid in _ranks(proc.pid).values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate()[0]


def _ranks(launcher: int) -> dict[int, int]:
    """{rank: pid} of the worker processes under a launcher (from their environment)."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) != launcher:
                continue
            env = dict(kv.split("=", 1) for kv in (d / "environ").read_text().split("\0") if "=" in kv)
        except (OSError, IndexError, ValueError):
            continue
        if "RANK" in env:
            found[int(env["RANK"])] = int(d.name)
    return found


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no weights in {folder}: {sorted(p.name for p in folder.iterdir())}"
    return {k: v for f in files for k, v in load_file(f).items()}


def _evaluate(model: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "mhpo.cli", "evaluate", "--model", str(model), "--benchmarks", "synth_arith",
           "--limit", "4", "--k", "1", "--batch-size", "4", "--max-tokens", "16", "--workers", "1", "--out", str(out)]
    p = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((out / "synth_arith.summary.json").read_text())


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    return Path(train_mod.model_path(load_recipe("tiny")))  # the session's shared build (tests/conftest.py)


_RUNS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_model, tmp_path_factory):
    """Per mode, once: start a run, kill -9 rank 1 after its first checkpoint, rerun the same command."""

    def get(mode: str) -> dict:
        if mode in _RUNS:
            return _RUNS[mode]
        out = tmp_path_factory.mktemp(mode) / "run"
        cmd = _launch(mode, out)
        # rank 1 writes its RNG state late (row 7) and every step after step 2 is slowed (a window for the kill)
        proc = subprocess.Popen(cmd, env=_env(MP_SLOW_RNG_RANK="1", MP_STEP_DELAY="1.0"), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        metrics, deadline = out / "metrics.jsonl", time.time() + TIMEOUT
        while time.time() < deadline and proc.poll() is None:
            if complete_checkpoints(out / "checkpoints") and metrics.exists() and len(io.read_jsonl(metrics)) > EVERY:
                break
            time.sleep(0.1)
        if proc.poll() is not None or time.time() >= deadline:
            pytest.fail(f"{mode}: the run ended (or stalled) before its first checkpoint:\n{_kill(proc)[-4000:]}")
        ranks = _ranks(proc.pid)
        assert sorted(ranks) == [0, 1], f"{mode}: expected 2 worker processes, found {ranks}"
        os.kill(ranks[1], signal.SIGKILL)
        resume_from = complete_checkpoints(out / "checkpoints", resumable=True)[-1]
        try:  # the launcher sees rank 1 die and stops rank 0
            first_log, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            first_log = _kill(proc)
        assert proc.returncode != 0 and not (out / "final").exists()
        at_kill = max(r["step"] for r in io.read_jsonl(metrics))
        assert at_kill < STEPS
        resume_files = {p.name for p in resume_from.iterdir()}  # before the rerun adds to or prunes it
        rerun = _run(cmd)
        assert rerun.returncode == 0, f"{mode}: resume failed:\n{rerun.stdout[-4000:]}"
        _RUNS[mode] = {"out": out, "at_kill": at_kill, "log": first_log + rerun.stdout, "resume_from": resume_from,
                       "resume_files": resume_files}
        return _RUNS[mode]

    return get


@pytest.mark.parametrize("mode", ["ddp", "zero3"])
def test_two_ranks_train_survive_kill_9_resume_and_save_final(mode, killed_and_resumed, tiny_model):
    r = killed_and_resumed(mode)
    out = r["out"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["attempts"] == 2
    assert man["distributed"] == {"num_processes": 2, "type": DISTRIBUTED_TYPE[mode]}  # two processes really ran
    assert [x["step"] for x in io.read_jsonl(out / "metrics.jsonl")] == list(range(1, STEPS + 1))  # each step once
    resumed = int(man["resumed_from"][0].split("-")[1])
    assert r["at_kill"] - EVERY <= resumed <= r["at_kill"]
    assert "built successfully" not in r["log"]  # DeepSpeed's shm C++ op is not compiled on CPU
    # Row 7: the checkpoint resumed from holds every rank's RNG state although rank 1 wrote its own late.
    assert man["resumed_from"] == [r["resume_from"].name]
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= r["resume_files"], sorted(r["resume_files"])
    newest = complete_checkpoints(out / "checkpoints")[-1]
    assert newest.name == f"checkpoint-{STEPS}"
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in newest.iterdir()}
    # Row 1: final/ holds the full weights (ZeRO-3 gathers the partitions on every rank), as trained.
    final, start = _weights(out / "final"), _weights(tiny_model)
    assert final.keys() == start.keys()
    assert all(final[k].shape == start[k].shape for k in final)
    assert sum(v.numel() for v in final.values()) == sum(v.numel() for v in start.values())
    assert all(torch.isfinite(v).all() for v in final.values())
    assert any(not torch.equal(final[k], start[k]) for k in final), "training changed nothing"
    summary = _evaluate(out / "final", out.parent / "eval")
    assert summary["n_problems"] == 4 and 0.0 <= summary["metrics"]["avg@k"]["mean"] <= 1.0


@pytest.mark.parametrize("mode", ["ddp", "zero3"])
def test_only_the_newest_checkpoint_keeps_the_training_state(mode, killed_and_resumed):
    """Row 4: optimizer/ZeRO/RNG state only in the newest checkpoint; older ones stay loadable for evaluation."""
    out = killed_and_resumed(mode)["out"]
    ckpts = complete_checkpoints(out / "checkpoints")
    assert [c.name for c in ckpts] == [f"checkpoint-{s}" for s in range(EVERY, STEPS + 1, EVERY)]
    assert complete_checkpoints(out / "checkpoints", resumable=True) == ckpts[-1:]
    state = ("optimizer.pt", "scheduler.pt", "rng_state_0.pth", "rng_state_1.pth") if mode == "ddp" else \
        ("scheduler.pt", "rng_state_0.pth", "rng_state_1.pth", "latest", f"global_step{STEPS}")
    for name in state:
        assert (ckpts[-1] / name).exists(), f"{ckpts[-1].name} lacks {name}"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for old in ckpts[:-1]:
        names = {p.name for p in old.iterdir()}
        assert WEIGHTS_ONLY in names and not names & {"optimizer.pt", "scheduler.pt", "latest", "rng_state_0.pth"}
        assert not any(n.startswith("global_step") for n in names)
        model = AutoModelForCausalLM.from_pretrained(old)
        AutoTokenizer.from_pretrained(old)
        assert all(torch.isfinite(p).all() for p in model.parameters())
        assert sum(p.numel() for p in model.parameters()) > 0
    if mode == "zero3":  # an evaluation job for eval_every reads exactly this
        assert _evaluate(ckpts[0], out.parent / "eval-old")["n_problems"] == 4


def test_ddp_and_zero3_train_the_same_weights(killed_and_resumed, tiny_model):
    """Before the kill both modes ran the same first steps from the same seed: their first checkpoints agree.
    Compared on the update (checkpoint − start): Adam divides by √v, so a gradient entry near 0 turns a
    float-rounding difference between the two reductions into a visible one in that entry alone."""
    ddp, z3 = (_weights(killed_and_resumed(m)["out"] / "checkpoints" / f"checkpoint-{EVERY}")
               for m in ("ddp", "zero3"))
    start = _weights(tiny_model)
    assert ddp.keys() == z3.keys() == start.keys()
    for k in ddp:
        update = (ddp[k] - start[k]).norm()
        assert update > 0 and (z3[k] - ddp[k]).norm() / update < 0.02, k  # measured: ≤ 0.0064 per tensor


@pytest.mark.parametrize("mode", ["ddp", "zero3"])
def test_nonfinite_steps_leave_the_weights_unchanged(mode, tiny_model, tmp_path):
    """Row 5: steps 3 (non-finite loss, finite gradient) and 4 (NaN gradient) are skipped by both ranks; under
    DeepSpeed, which steps inside backward, too. Checked on the weights, not the log."""
    out = tmp_path / "run"
    p = _run(_launch(mode, out, "--set", "optim.max_consecutive_nonfinite=5", objective="test_nonfinite_from_step_3",
                     steps=4))
    assert p.returncode == 0, p.stdout[-4000:]
    rows = io.read_jsonl(out / "metrics.jsonl")
    assert [r["nonfinite_skipped"] for r in rows] == [0, 0, 1, 2]
    man = json.loads((out / "manifest.json").read_text())
    assert man["distributed"]["num_processes"] == 2
    start = _weights(tiny_model)
    at2, at4, final = (_weights(d) for d in (out / "checkpoints" / "checkpoint-2",
                                              out / "checkpoints" / "checkpoint-4", out / "final"))
    assert any(not torch.equal(at2[k], start[k]) for k in start), "steps 1-2 changed nothing: the check is void"
    for k in at2:
        assert torch.equal(at4[k], at2[k]) and torch.equal(final[k], at2[k]), f"{k} changed on a skipped step"


def test_a_deepspeed_engine_that_applies_a_nonfinite_step_stops_the_run(tiny_model, tmp_path):
    """Row 5's safety net: ZeRO-2 in bf16 with ``check_grad_overflow: false`` applies a NaN-gradient step. The
    run must stop there (no final/, nothing trained on damaged weights), not count it as skipped and go on."""
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2},
                              "bf16": {"enabled": True, "check_grad_overflow": False},
                              "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
                              "gradient_clipping": "auto", "train_batch_size": "auto"}))
    acc = tmp_path / "zero2.yaml"
    acc.write_text(f"distributed_type: DEEPSPEED\ndeepspeed_config:\n  deepspeed_config_file: {ds}\n"
                   "  zero3_init_flag: false\nnum_machines: 1\nnum_processes: 2\nmachine_rank: 0\n"
                   "rdzv_backend: static\nsame_network: true\nuse_cpu: false\n")
    out = tmp_path / "run"
    cmd = _launch("zero3", out, "--set", "precision=bf16", "--set", "optim.max_consecutive_nonfinite=5",
                  objective="test_nonfinite_from_step_3", steps=4)
    cmd[cmd.index("--config_file") + 1] = str(acc)
    del cmd[cmd.index("--mixed_precision"): cmd.index("--mixed_precision") + 2]  # the DeepSpeed JSON sets bf16
    p = _run(cmd)
    assert p.returncode != 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "failed" and "NonFiniteLossError" in man["error"] and "DeepSpeed applied" in man["error"]
    assert "check_grad_overflow" in man["error"]
    assert not (out / "final").exists()
    assert [c.name for c in complete_checkpoints(out / "checkpoints")] == ["checkpoint-2"]
    assert all(torch.isfinite(v).all() for v in _weights(out / "checkpoints" / "checkpoint-2").values())


def test_the_tiny_model_is_built_once_for_all_ranks(tmp_path):
    """Two ranks resolving ``model.path: tiny`` at once on a cold cache: one builds, the other waits for it."""
    code = ("import sys; from mhpo.training import train; from mhpo.training.recipe import load; "
            "print(train.model_path(load('tiny', overrides={'model.tiny_warm_start_steps': 0})))")
    env = _env(MHPO_CACHE_DIR=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", code], env={**env, "RANK": str(r), "WORLD_SIZE": "2"}, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    assert outs[0][0].strip() == outs[1][0].strip() and Path(outs[0][0].strip(), "config.json").exists()
    builds = sum(e.count("building the tiny model") for _, e in outs)
    assert builds == 1, f"{builds} builds for 2 ranks"


def test_jit_built_ops_go_to_the_project_cache(tmp_path):
    """DeepSpeed's JIT C++ ops (when they are built at all) land in the cache, never under ~."""
    code = "import os; from mhpo.common import env; env.setup(); print(os.environ['TORCH_EXTENSIONS_DIR'])"
    env = {k: v for k, v in _env(MHPO_CACHE_DIR=str(tmp_path / "cache")).items() if k != "TORCH_EXTENSIONS_DIR"}
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                       check=False)
    assert p.returncode == 0, p.stderr
    assert Path(p.stdout.strip()) == tmp_path / "cache" / "torch-extensions"
