"""The Snakemake workflow, run for real: lint, config errors, the Slurm profile's plan of the paper matrix,
and the embedded tiny default end to end (then: no-op rerun, add-an-objective plan, evaluation of existing
checkpoints under a label full of shell metacharacters, and the HTML report).

Every run happens in a scratch copy of the workflow files (Snakefile, workflow/, envs/) so that .snakemake/
and results/ of the checkout are never touched; the project itself is the installed (editable) package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
OBJECTIVES = ["mhpo", "grpo", "dapo", "sapo", "gspo"]


def scratch(tmp: Path) -> Path:
    wf = tmp / "wf"
    wf.mkdir()
    shutil.copy(ROOT / "Snakefile", wf / "Snakefile")
    for d in ("workflow", "envs"):
        shutil.copytree(ROOT / d, wf / d)
    return wf


def env(**extra) -> dict:
    e = dict(os.environ)
    e.setdefault("MHPO_CACHE_DIR", str(ROOT / ".cache"))
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.update(extra)
    return e


def smk(wf: Path, *args, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + list(args), cwd=wf, capture_output=True, text=True, timeout=timeout, env=env(**kw))


def job_counts(out: str) -> dict[str, int]:
    m = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s+(\d+)", out, re.S)
    assert m, out[-3000:]
    return {line.split()[0]: int(line.split()[1]) for line in m.group(1).strip().splitlines()}


def job_blocks(out: str, rule: str) -> list[str]:
    return re.findall(rf"(?:local)?rule {rule}:\n(.*?)(?=\n\[|\nJob stats|\Z)", out, re.S)


def test_lint_is_clean(tmp_path):
    wf = scratch(tmp_path)
    p = smk(wf, "--lint")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Lints for" not in p.stdout + p.stderr


@pytest.mark.parametrize("key,mutate", [
    ("experiments[1].objective", lambda c: c["experiments"][1].update(objective="grpoo")),
    ("experiments[0].params", lambda c: c["experiments"][0].update(params={"c": "x", "nope": 1})),
    ("defaults.evaluation: unknown key 'kk'", lambda c: c["defaults"]["evaluation"].update(kk=1)),
])
def test_bad_config_fails_before_anything_runs(tmp_path, key, mutate):
    wf = scratch(tmp_path)
    cfg = yaml.safe_load((wf / "workflow/config/default.yaml").read_text())
    mutate(cfg)
    (wf / "bad.yaml").write_text(yaml.safe_dump(cfg))
    p = smk(wf, "--cores", "1", "--configfile", "bad.yaml")
    assert p.returncode != 0
    assert key in p.stdout + p.stderr
    assert not (wf / "results").exists()


def test_slurm_profile_plans_paper_matrix_with_gpus(tmp_path):
    wf = scratch(tmp_path)
    xdg = tmp_path / "xdg"
    (xdg / "snakemake").mkdir(parents=True)
    # `--profile slurm` by name: snakemake 9 looks in ./slurm, $XDG_CONFIG_HOME/snakemake/slurm and
    # /etc/xdg/snakemake/slurm (docs/workflow.md, "Profiles")
    (xdg / "snakemake" / "slurm").symlink_to(ROOT / "workflow" / "profiles" / "slurm")
    p = smk(wf, "-n", "--cores", "all", "--profile", "slurm", "--configfile", "workflow/config/paper.yaml",
            XDG_CONFIG_HOME=str(xdg))
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "Using profile slurm" in out
    counts = job_counts(out)
    assert counts["train"] == (8 + 5) * 3
    # per run: final + checkpoints 100..400 (eval_every 100, 500 steps); plus one base model per model
    assert counts["evaluate"] == (8 + 5) * 3 * 5 + 2
    assert counts["aggregate"] == 1 and "tiny_model" not in counts
    trains = job_blocks(out, "train")
    assert len(trains) == counts["train"]
    for block in trains:
        assert "gpu=8" in block and "runtime=2880" in block and "slurm_partition=CHANGE_ME_partition" in block
    evals = job_blocks(out, "evaluate")
    assert evals and all("gpu=1" in b for b in evals)
    assert all("gpu=0" in b for b in job_blocks(out, "aggregate"))
    # site values are overridden on the command line (or by a layered profile)
    p = smk(wf, "-n", "--cores", "all", "--profile", "workflow/profiles/slurm", "--configfile",
            "workflow/config/paper.yaml", "--default-resources", "slurm_partition=gpu", "slurm_account=proj")
    assert p.returncode == 0, p.stderr[-3000:]
    blocks = job_blocks(p.stdout + p.stderr, "train")
    assert blocks and all("slurm_partition=gpu" in b and "slurm_account=proj" in b for b in blocks)


def test_config_layering_does_not_inherit_default(tmp_path):
    """--configfile replaces the embedded default instead of merging into it (no tiny jobs in the paper plan)."""
    wf = scratch(tmp_path)
    p = smk(wf, "-n", "--cores", "all", "--configfile", "workflow/config/paper.yaml")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "results/runs/tiny" not in p.stdout + p.stderr


@pytest.mark.slow
def test_default_workflow_end_to_end(tmp_path):
    wf = scratch(tmp_path)
    p = smk(wf, "--cores", "all", timeout=900)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-5000:]
    res = wf / "results"
    # per-run outputs
    for obj in OBJECTIVES:
        for seed in (0, 1):
            run = res / "runs" / "tiny" / obj / f"seed{seed}"
            assert (run / "final").is_dir() and (run / "metrics.jsonl").stat().st_size > 0
            for ck in ("final", "checkpoint-8"):
                assert list((res / "evals" / "tiny" / obj / f"seed{seed}" / ck).glob("synth_arith.summary.json"))
    # tables and figures list every objective
    main = (res / "tables" / "main.md").read_text()
    stab = (res / "tables" / "stability.md").read_text()
    for obj in OBJECTIVES:
        assert f"| {obj} |" in main and f"| {obj} |" in stab
    assert "| base |" in main
    for name in ("main", "stability"):
        for ext in ("md", "csv", "tex"):
            assert (res / "tables" / f"{name}.{ext}").stat().st_size > 0
    for stem in ("training_tiny", "gradient_atlas"):
        for ext in ("png", "pdf"):
            assert (res / "figures" / f"{stem}.{ext}").stat().st_size > 1000

    # no-op rerun
    p = smk(wf, "-n", "--cores", "all")
    assert p.returncode == 0 and "Nothing to be done" in p.stdout + p.stderr, (p.stdout + p.stderr)[-3000:]

    # adding an objective schedules only its own jobs plus aggregation
    cfg = yaml.safe_load((wf / "workflow/config/default.yaml").read_text())
    cfg["experiments"].append({"model": "tiny", "objective": "cispo"})
    (wf / "plus.yaml").write_text(yaml.safe_dump(cfg))
    p = smk(wf, "-n", "--cores", "all", "--configfile", "plus.yaml")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert job_counts(out) == {"train": 2, "evaluate": 4, "aggregate": 1, "all": 1}
    assert all("cispo" in b for b in job_blocks(out, "train") + job_blocks(out, "evaluate"))

    # regenerate tables from existing checkpoints, under a label full of shell metacharacters
    evil = "ext; touch PWNED $(touch PWNED2) `touch PWNED3` 'q' \"r\" & x"
    regen = {
        "results_dir": "results-regen",
        "models": {"tiny": {"evaluate_base": False}},
        "defaults": {"evaluation": {"benchmarks": [{"name": "synth_arith", "limit": 8}], "k": 2,
                                    "sampling": {"max_tokens": 16, "seed": 0}, "batch_size": 16}},
        "experiments": [
            {"model": "tiny", "label": evil, "checkpoints": {"0": "results/runs/tiny/grpo/seed0/final"}},
            {"model": "tiny", "objective": "mhpo", "from_runs": "results/runs", "seeds": [0, 1]},
        ],
        "report": {"atlas": False},
    }
    (wf / "regen.yaml").write_text(yaml.safe_dump(regen))
    p = smk(wf, "--cores", "all", "--configfile", "regen.yaml", timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert job_counts(out).get("train") is None
    assert not list(wf.rglob("PWNED*"))
    assert (wf / "results-regen" / "evals" / "tiny" / evil / "seed0" / "final" / "synth_arith.summary.json").is_file()
    main = (wf / "results-regen" / "tables" / "main.md").read_text()
    assert "| mhpo |" in main and "touch PWNED" in main

    # Snakemake's own HTML report of the default run
    p = smk(wf, "--report", "results/report.html")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert (wf / "results" / "report.html").stat().st_size > 10_000
