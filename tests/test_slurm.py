"""A real Slurm job through snakemake's SLURM executor plugin.

Skipped, with the reason, unless a Slurm cluster is reachable from here: `sbatch` on PATH, a Slurm
config file present (so no client falls back to a DNS SRV lookup), and `sinfo` answering with an
`up` partition. With `MHPO_REQUIRE=slurm` (or `all`) a missing cluster is a failure instead
(tests/conftest.py: `require`); `.ci/run` sets it for its Slurm step. `.ci/slurm/run.sh` starts a
localhost cluster and runs this file inside it; on a real cluster, run `pytest tests/test_slurm.py` on a
login node (set SLURM_CI_PARTITION / SLURM_CI_ACCOUNT if your site needs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import snakemake_executor_plugin_slurm  # noqa: F401  (pinned: a broken install fails, never skips)
from conftest import require

pytestmark = pytest.mark.slow

CONF_CANDIDATES = ("/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf")


def _run(cmd: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _cluster() -> dict:
    """Facts about the reachable cluster, or a skip (a failure under MHPO_REQUIRE=slurm) saying why there is none."""
    if shutil.which("sbatch") is None:
        require("slurm", "no Slurm: `sbatch` not on PATH (.ci/slurm/run.sh starts a localhost cluster)")
    conf = os.environ.get("SLURM_CONF") or next((c for c in CONF_CANDIDATES if os.path.exists(c)), None)
    if not conf or not os.path.exists(conf):
        require("slurm", "no Slurm config (SLURM_CONF or /etc/slurm/slurm.conf): no cluster configured here")
    try:
        sinfo = _run(["sinfo", "-h", "-o", "%P %a"])
    except subprocess.TimeoutExpired:
        require("slurm", "no running slurmctld: `sinfo` timed out")
    if sinfo.returncode != 0:
        require("slurm", f"no running slurmctld: `sinfo` failed: {sinfo.stderr.strip()[:200]}")
    parts = [line.split() for line in sinfo.stdout.splitlines() if line.strip()]
    up = [p.rstrip("*") for p, avail in parts if avail == "up"]
    if not up:
        require("slurm", f"slurmctld answers but no partition is up: {sinfo.stdout.strip()!r}")
    default = next((p.rstrip("*") for p, avail in parts if p.endswith("*") and avail == "up"), up[0])
    config = _run(["scontrol", "show", "config"]).stdout
    accounting = re.search(r"^AccountingStorageType\s*=\s*(\S+)", config, re.M)
    min_job_age = re.search(r"^MinJobAge\s*=\s*(\d+)", config, re.M)
    return {
        "partition": os.environ.get("SLURM_CI_PARTITION", default),
        "account": os.environ.get("SLURM_CI_ACCOUNT"),
        "no_accounting": accounting is None or accounting.group(1) == "accounting_storage/none",
        "min_job_age": int(min_job_age.group(1)) if min_job_age else 300,
    }


def test_plugin_submits_real_slurm_jobs(tmp_path: Path):
    cluster = _cluster()
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            """
            rule all:
                input: "second.txt"
            rule first:
                output: "first.txt"
                shell: "echo \\"$SLURM_JOB_ID\\" > {output}"
            rule second:
                input: "first.txt"
                output: "second.txt"
                shell: "cat {input} > {output}; echo \\"$SLURM_JOB_ID\\" >> {output}"
            """
        )
    )
    resources = [f"slurm_partition={cluster['partition']}", "runtime=5", "mem_mb=100"]
    if cluster["account"]:
        resources.append(f"slurm_account={cluster['account']}")
    cmd = [sys.executable, "-m", "snakemake", "--executor", "slurm", "--jobs", "2",
           "--workflow-profile", "none", "--default-resources", *resources]
    if not cluster["account"]:
        cmd.append("--slurm-no-account")
    if cluster["no_accounting"]:
        # Without slurmdbd `sacct` cannot answer; squeue can, while MinJobAge keeps finished
        # jobs visible for at least 3x the plugin's first status-check delay.
        delay = max(1, min(6, cluster["min_job_age"] // 3))
        cmd += ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", str(delay),
                "--seconds-between-status-checks", str(delay)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    job_ids = (tmp_path / "second.txt").read_text().split()
    # Each rule ran as its own Slurm batch job: two distinct numeric SLURM_JOB_IDs.
    assert len(job_ids) == 2 and all(j.isdigit() for j in job_ids), job_ids
    assert job_ids[0] != job_ids[1], job_ids
    # ... and the scheduler knows about them.
    show = _run(["scontrol", "show", "job", job_ids[1]])
    if show.returncode == 0:  # may already be purged (MinJobAge) on a busy real cluster
        assert "JobState=COMPLETED" in show.stdout, show.stdout


def test_failed_job_is_retried_per_profile_and_permanent_failure_names_its_log(tmp_path: Path):
    """The shipped `slurm` profile's `retries: 2` resubmits a failed job; a job that keeps failing is reported
    with the path of its log, and the other jobs' outputs are kept."""
    cluster = _cluster()
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            """
            rule all:
                input: "flaky.txt", "broken.txt"
            rule flaky:
                output: "flaky.txt"
                log: "logs/flaky.log"
                shell:
                    "echo $SLURM_JOB_ID >> flaky.attempts; [ $(wc -l < flaky.attempts) -ge 2 ] || "
                    "{{ echo 'first attempt fails' > {log}; exit 1; }}; echo ok > {output}"
            rule broken:
                output: "broken.txt"
                log: "logs/broken.log"
                shell: "echo $SLURM_JOB_ID >> broken.attempts; echo 'this job always fails' > {log}; exit 3"
            """
        )
    )
    (tmp_path / "empty.yaml").write_text("{}\n")  # the profile names the paper config; this workflow needs none
    resources = [f"slurm_partition={cluster['partition']}", "runtime=5", "mem_mb=100"]
    if cluster["account"]:
        resources.append(f"slurm_account={cluster['account']}")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "all", "--keep-going",
           "--profile", str(root / "workflow" / "profiles" / "slurm"), "--configfile", "empty.yaml",
           "--default-resources", *resources]
    if not cluster["account"]:
        cmd.append("--slurm-no-account")
    if cluster["no_accounting"]:
        cmd += ["--profile", str(root / "workflow" / "profiles" / "slurm-ci")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    flaky = (tmp_path / "flaky.attempts").read_text().split()
    broken = (tmp_path / "broken.attempts").read_text().split()
    assert (tmp_path / "flaky.txt").read_text() == "ok\n" and len(flaky) == 2, out[-3000:]
    assert len(broken) == 3 and len(set(broken)) == 3, out[-3000:]  # 1 + retries: 2, each a new Slurm job
    assert "logs/broken.log" in out  # the permanent failure names its log
    assert not (tmp_path / "broken.txt").exists()
