"""The cluster path planned for real (and the plan's cost): `snakemake -n --profile slurm`
of the paper matrix, its train jobs rendered into the sbatch call by the Slurm executor plugin's own code, and the
planned train command launched for real (accelerate with the project's zero3.yaml, a probe script in place of the
trainer). ~25 s in all.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_workflow import job_blocks, scratch, smk

from mhpo.training import launch
from mhpo.workflow import config as mcfg
from mhpo.workflow import cost

ROOT = Path(__file__).resolve().parents[1]
# One os.write per rank: the launcher's children share the pipe unbuffered, and print() writes piece by piece, so
# two ranks' lines could interleave mid-line ("PROBEPROBE  10  22 ..."); a write under PIPE_BUF is atomic.
PROBE = ("import os; os.write(1, ' '.join(['PROBE', os.environ['RANK'], os.environ['WORLD_SIZE'], "
         "os.environ['MASTER_PORT'], os.environ['OMP_NUM_THREADS']]).encode() + b'\\n')")


class _Resources(dict):
    """What the plugin reads of a job's resources: ``.get(name)`` and ``.name``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _job(block: str):
    from types import SimpleNamespace

    m = re.search(r"^\s*threads: (\d+)", block, re.MULTILINE)  # Snakemake omits the line for 1 thread
    threads = int(m.group(1)) if m else 1
    line = re.search(r"^\s*resources: (.*)$", block, re.MULTILINE).group(1)
    res = _Resources()
    for kv in line.split(", "):
        k, v = kv.split("=", 1)
        res[k] = int(v) if v.isdigit() else v
    return SimpleNamespace(threads=threads, resources=res, name="train")


def sbatch_call(block: str) -> str:
    """The sbatch command line the Slurm executor plugin 2.8.0 builds for a planned job (its own functions)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = _job(block)
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": "c", "account": "-A acct",
              "partition": "-p part", "workdir": "/w"}
    return get_submit_command(job, params) + set_gres_string(job)


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory):
    """`snakemake -n --cores 2 --profile slurm --set-resources train:gpu=2` on a 2-core host: the paper matrix."""
    wf = scratch(tmp_path_factory.mktemp("cluster"))
    p = smk(wf, "-n", "--cores", "2", "--profile", "slurm", "--set-resources", "train:gpu=2", timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return wf, p.stdout + p.stderr


def test_train_job_asks_one_node_all_its_gpus_and_uncapped_cpus(paper_plan):
    """Row 6: `--gpus=N` is a job total, so without `--nodes=1` the GPUs may span nodes. Row 10: `--cores 2` on
    the submitting host capped `threads` (hence --cpus-per-task) of every cluster job to 2."""
    _, out = paper_plan
    blocks = job_blocks(out, "train")
    assert blocks
    want = mcfg.load(str(ROOT / "workflow" / "config" / "paper.yaml"))[1].resources["train"]["threads"]
    for b in blocks[:3]:
        call = sbatch_call(b).split()
        assert "--nodes=1" in call and "--gpus=2" in call, call
        assert f"--cpus-per-task={want}" in call, call
    for b in job_blocks(out, "evaluate")[:2]:
        assert "--nodes=1" in sbatch_call(b).split()


def test_planned_train_command_starts_one_process_per_job_gpu_on_a_free_port(paper_plan):
    """Row 9: zero3.yaml's `num_processes: 8` started 8 processes whatever the job's GPUs, on port 29500. The
    planned command, run for real with 29500 taken, starts 2 ranks (train:gpu=2) on another port, each with
    cpus // 2 threads."""
    wf, out = paper_plan
    shell = re.search(r"Shell command: .*?\((mhpo-bench launch .*?)\) >", job_blocks(out, "train")[0]).group(1)
    argv = shlex.split(shell)
    assert argv[:4] == ["mhpo-bench", "launch", "--gpus", "2"]
    probe = wf / "probe.py"
    probe.write_text(PROBE)
    argv = argv[: argv.index("-m")] + ["--mixed_precision", "no", str(probe)]  # the probe in place of the trainer
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "SLURM_CPUS_PER_TASK": "8",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with socket.socket() as taken:
        taken.bind(("", 29500))
        taken.listen()
        p = subprocess.run(argv, cwd=wf, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    ranks = sorted(line.split()[1:] for line in p.stdout.splitlines() if line.startswith("PROBE"))
    assert [r[0] for r in ranks] == ["0", "1"] and {r[1] for r in ranks} == {"2"}, p.stdout
    assert {r[2] for r in ranks} != {"29500"} and len({r[2] for r in ranks}) == 1
    assert {r[3] for r in ranks} == {"4"}  # OMP_NUM_THREADS = 8 CPUs // 2 ranks


def test_launch_refuses_a_fixed_process_count_and_leaves_other_commands_alone():
    with pytest.raises(ValueError, match="--num_processes is set by mhpo-bench launch"):
        launch.plan(["accelerate", "launch", "--num_processes", "8", "x.py"], gpus=2, threads=4)
    argv, env = launch.plan(["--", "mhpo-bench", "train"], gpus=0, threads=3)
    assert argv == ["mhpo-bench", "train"] and env["OMP_NUM_THREADS"] == "3"


def test_plan_prints_jobs_gpu_hours_and_disk(paper_plan):
    """The plan states its cost before anything is queued, from the runtime requests (train:gpu=2 included)."""
    _, out = paper_plan
    _, plan = mcfg.load(str(ROOT / "workflow" / "config" / "paper.yaml"))
    c = cost.matrix_cost(plan, {"train": {"gpu": 2}})
    assert cost.describe(c) in out
    runs, r = plan.train_runs(), plan.resources
    assert c["gpu_hours_total"] == pytest.approx(
        len(runs) * 2 * r["train"]["runtime"] / 60
        + len(plan.evals) * r["evaluate"]["gpu"] * r["evaluate"]["runtime"] / 60)
    # disk: per run P x (2 bytes x weights-only checkpoints + 14 for the newest + 2 for final/)
    rec = mcfg._load_recipe(runs[0].recipe, runs[0].set, runs[0].where)
    n = rec["optim"]["max_steps"] // rec["checkpoint"]["every"]
    p = cost.params_of(plan.models[runs[0].model]["base"])
    assert cost.run_disk_bytes(p, rec["optim"]["max_steps"], rec["checkpoint"]["every"]) == p * (2 * (n - 1) + 16)
    assert c["disk_bytes"] > 0 and not c["disk_unknown_models"]
    assert cost.params_of("org/SomeModel-1.5B-Chat") == 1.5e9 and cost.params_of("org/model") is None


def test_launch_dry_run_prints_the_command(tmp_path):
    p = subprocess.run([sys.executable, "-m", "mhpo.cli", "launch", "--gpus", "4", "--threads", "16", "--dry-run",
                        "--", "accelerate", "launch", "x.py"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SLURM_CPUS_PER_TASK": ""})
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["argv"][:4] == ["accelerate", "launch", "--num_processes", "4"] and got["env"]["OMP_NUM_THREADS"] == "4"
