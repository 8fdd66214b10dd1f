"""``mhpo-bench launch``: start a multi-process training command sized to the job it runs in.

    mhpo-bench launch --gpus 8 --threads 32 -- accelerate launch --config_file workflow/accelerate/zero3.yaml \\
        -m mhpo.cli train --config qwen2.5-7b-instruct --objective mhpo --seed 0 --out results/runs/...

The workflow's train rule wraps an ``accelerate launch`` launcher in this (mhpo.workflow.config
``Plan.train_command``):

* **processes** = the job's GPUs (``--gpus``, the rule's ``resources.gpu``, so ``--set-resources train:gpu=4``
  starts 4 processes): ``--num_processes`` overrides the accelerate config file's ``num_processes``;
* **port**: ``--main_process_port`` is a free port chosen now, so two jobs on one node never both take
  accelerate's default 29500;
* **threads per rank**: ``OMP_NUM_THREADS = MKL_NUM_THREADS = cpus // processes`` (at least 1), where cpus is the
  allocation's ``$SLURM_CPUS_PER_TASK`` inside a Slurm job, else ``--threads``.

Any other command is run unchanged except for the thread variables. ``--dry-run`` prints the command and the
variables as JSON instead of running it.
"""

from __future__ import annotations

import os
import socket

ACCELERATE = ["accelerate", "launch"]


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it from its ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def job_cpus(threads: int | None) -> int:
    """CPUs this job may use: Slurm's allocation when inside a job, else ``threads``, else the machine's."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit():
        return int(slurm)
    return threads or os.cpu_count() or 1


def plan(command: list[str], gpus: int, threads: int | None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment updates) for ``command`` in a job with ``gpus`` GPUs and ``threads`` CPUs."""
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ValueError("no command given (mhpo-bench launch --gpus N -- accelerate launch ...)")
    procs = max(1, gpus)
    per_rank = str(max(1, job_cpus(threads) // procs))
    env = {"OMP_NUM_THREADS": per_rank, "MKL_NUM_THREADS": per_rank}
    argv = list(command)
    if argv[:2] == ACCELERATE:
        for flag in ("--num_processes", "--main_process_port"):
            if flag in argv:
                raise ValueError(f"{flag} is set by mhpo-bench launch from the job; remove it from the command")
        argv[2:2] = ["--num_processes", str(procs), "--main_process_port", str(free_port())]
    return argv, env
