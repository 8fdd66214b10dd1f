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
from conftest import SHARED_BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
OBJECTIVES = ["mhpo", "grpo", "dapo", "sapo", "gspo"]


def scratch(tmp: Path, benchmarks: bool = True) -> Path:
    wf = tmp / "wf"
    wf.mkdir()
    shutil.copy(ROOT / "Snakefile", wf / "Snakefile")
    for d in ("workflow", "envs"):
        shutil.copytree(ROOT / d, wf / d)
    (wf / "slurm").symlink_to(os.readlink(ROOT / "slurm"))  # the profile link, as in the checkout
    # the default config's data_dir (../shared/benchmarks) beside the copy, as beside the checkout
    if benchmarks and SHARED_BENCHMARKS.is_dir() and not (tmp / "shared").exists():
        (tmp / "shared").mkdir()
        (tmp / "shared" / "benchmarks").symlink_to(SHARED_BENCHMARKS.resolve())
    return wf


def env(**extra) -> dict:
    e = dict(os.environ)
    e.setdefault("MHPO_CACHE_DIR", str(ROOT / ".cache"))
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.update(extra)
    return e


def smk(wf: Path, *args, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + list(args), cwd=wf, capture_output=True, text=True, timeout=timeout,
                          env=env(**kw))


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


def test_stability_target_runs_the_study_and_the_default_target_does_not(tmp_path):
    wf = scratch(tmp_path)
    p = smk(wf, "-n", "--cores", "all", "stability")  # no --configfile: the default names the study
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    # 6 regimes (updates per rollout x lr), each with its copy of the tiny build; 3 methods x 3 seeds per regime
    assert job_counts(out) == {"tiny_model": 6, "train": 6 * 3 * 3, "evaluate": 6 * 3 * 3 + 1, "stability": 1}
    cmd = job_blocks(out, "stability")[0]
    assert "results/tables/stability.md" in cmd and "results/stability_summary.md" in cmd
    assert "results/figures/stability_frontier.png" in out and "results/tables/stability_frontier.md" in out
    p = smk(wf, "-n", "--cores", "all")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "u16-lr2e-3" not in out and "rule stability" not in out
    assert job_counts(out)["train"] == len(OBJECTIVES) * 2


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
    # `--profile slurm` by name from the repository root: snakemake 9 looks in ./slurm first (a link to
    # workflow/profiles/slurm), and the profile selects the paper config (docs/workflow.md, "Profiles")
    assert (ROOT / "slurm").is_symlink() and (ROOT / "slurm").resolve() == ROOT / "workflow" / "profiles" / "slurm"
    p = smk(wf, "-n", "--cores", "all", "--profile", "slurm")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "Using profile slurm" in out
    counts = job_counts(out)
    # text: 8 objectives on Qwen2.5-7B-Instruct + 5 on Qwen3-4B-Base; VL: 5 on Qwen2.5-VL-7B-Instruct; 3 seeds
    assert counts["train"] == (8 + 5 + 5) * 3
    # text, per run: final + checkpoints 100..400 (eval_every 100, 500 steps); VL: final + 40..160 (every 40,
    # 200 steps); plus one base model per model
    assert counts["evaluate"] == (8 + 5) * 3 * 5 + 2 + 5 * 3 * 5 + 1
    assert counts["aggregate"] == 1 and counts["aggregate_vl"] == 1 and "tiny_model" not in counts
    trains = job_blocks(out, "train")
    assert len(trains) == counts["train"]
    for block in trains:
        assert "gpu=8" in block and "runtime=2880" in block and "slurm_partition=CHANGE_ME_partition" in block
    vl_trains = [b for b in trains if "qwen2.5-vl-7b-instruct" in b]
    assert len(vl_trains) == 5 * 3 and all("/recipe.resolved.yaml" in b for b in vl_trains)
    evals = job_blocks(out, "evaluate")
    assert evals and all("gpu=1" in b for b in evals)
    vl_evals = [b for b in evals if "qwen2.5-vl-7b-instruct" in b]
    assert len(vl_evals) == 5 * 3 * 5 + 1 and all("mhpo-bench evaluate --model" in b for b in vl_evals)
    assert all("mathvista,mathverse,mathvision,geometry3k,wemath" in b for b in vl_evals if "final/.done" in b)
    # the VL table waits for the VL runs only; the main table never waits for them
    (agg_vl,) = job_blocks(out, "aggregate_vl")
    assert "results/tables/vl.md" in agg_vl and "results/evals/qwen2.5-vl-7b-instruct/mhpo/seed2/final" in agg_vl
    assert "results/evals/qwen2.5-7b-instruct/" not in agg_vl and "results/runs/qwen3-4b-base/" not in agg_vl
    (agg,) = job_blocks(out, "aggregate")
    assert "qwen2.5-vl-7b-instruct" not in agg and "--track text" in agg and "--track vl" in agg_vl
    assert all("gpu=0" in b for b in job_blocks(out, "aggregate") + job_blocks(out, "aggregate_vl"))
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


def test_vl_tiny_target_plans_the_vl_study_only(tmp_path):
    """`snakemake vl_tiny` plans the tiny VL study with the text track's commands (`tiny-model --kind vl`, 5
    objectives x 2 seeds, `evaluate`, `aggregate --track vl`);
    the default target never includes it. (It runs in about 2 minutes: perf/README.md; the CLI-level run of the
    same commands is tests/test_vl.py::test_vl_recipe_trains_evaluates_and_tabulates_through_the_cli.)"""
    wf = scratch(tmp_path)
    p = smk(wf, "-n", "-p", "--cores", "all", "vl_tiny")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert job_counts(out) == {"tiny_model": 1, "train": 10, "evaluate": 11, "aggregate_vl": 1, "vl_tiny": 1}
    assert all("mhpo-bench tiny-model --kind vl" in b for b in job_blocks(out, "tiny_model"))
    assert all("/recipe.resolved.yaml" in b for b in job_blocks(out, "train"))
    assert all("mhpo-bench evaluate --model" in b and "synth_vl_count" in b for b in job_blocks(out, "evaluate"))
    (agg,) = job_blocks(out, "aggregate_vl")
    assert "results/tables/vl.md" in agg and "mhpo-bench aggregate --track vl" in agg
    for old in ("tiny-vlm", "evaluate-vl", "aggregate-vl"):
        assert f"mhpo-bench {old}" not in out
    p = smk(wf, "-n", "--cores", "all")
    assert p.returncode == 0 and "tiny-vl" not in p.stdout + p.stderr and "aggregate_vl" not in p.stdout


# The default's jobs, shrunk (one seed, 8 steps, small evaluations): every rule runs for real in a few minutes.
# The default itself is timed by perf/workflow.sh; its plan is checked above and in tests/test_flows.py.
SMOKE = ("--configfile", "workflow/config/default.yaml", "workflow/config/smoke.yaml")
SMOKE_OBJECTIVES = ["mhpo", "grpo"]


def test_smoke_overlay_plans_every_rule_of_the_default(tmp_path):
    """The smoke overlay keeps every rule of the default (base and checkpoint evaluations included) for two
    objectives and one seed; the default plans 5 objectives x 2 seeds."""
    wf = scratch(tmp_path)
    full = job_counts((p := smk(wf, "-n", "--cores", "all")).stdout + p.stderr)
    small = job_counts((p := smk(wf, "-n", "--cores", "all", *SMOKE)).stdout + p.stderr)
    assert small == {"tiny_model": 1, "train": 2, "evaluate": 2 * 2 + 1, "aggregate": 1, "atlas": 1, "all": 1}
    assert full == {**small, "train": 5 * 2, "evaluate": 5 * 2 * 2 + 1}


@pytest.mark.slow
def test_default_workflow_end_to_end(tmp_path):
    """The default's rules end to end on the smoke overlay, then: a no-op rerun, the plan of one added objective,
    tables regenerated from existing checkpoints under a hostile label, and the HTML report."""
    wf = scratch(tmp_path)
    p = smk(wf, "--cores", "all", *SMOKE, timeout=900)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-5000:]
    res = wf / "results"
    # per-run outputs
    for obj in SMOKE_OBJECTIVES:
        run = res / "runs" / "tiny" / obj / "seed0"
        assert (run / "final").is_dir() and (run / "metrics.jsonl").stat().st_size > 0
        for ck in ("final", "checkpoint-4"):
            assert list((res / "evals" / "tiny" / obj / "seed0" / ck).glob("synth_add.summary.json"))
    # tables and figures list every objective
    main = (res / "tables" / "main.md").read_text()
    stab = (res / "tables" / "training_signals.md").read_text()
    for obj in SMOKE_OBJECTIVES:
        assert f"| {obj} |" in main and f"| {obj} |" in stab
    assert "| base |" in main
    for name in ("main", "training_signals"):
        for ext in ("md", "csv", "tex"):
            assert (res / "tables" / f"{name}.{ext}").stat().st_size > 0
    for stem in ("training_tiny", "gradient_atlas"):
        for ext in ("png", "pdf"):
            assert (res / "figures" / f"{stem}.{ext}").stat().st_size > 1000
    # .ci/run compares the real-Slurm run of the same config against this local run's tables
    if os.environ.get("MHPO_E2E_TABLES"):
        shutil.copytree(res / "tables", os.environ["MHPO_E2E_TABLES"], dirs_exist_ok=True)

    # no-op rerun
    p = smk(wf, "-n", "--cores", "all", *SMOKE)
    assert p.returncode == 0 and "Nothing to be done" in p.stdout + p.stderr, (p.stdout + p.stderr)[-3000:]

    # adding an objective schedules only its own jobs plus aggregation
    experiments = yaml.safe_load((wf / "workflow/config/smoke.yaml").read_text())["experiments"]
    plus = {"experiments": [*experiments, {"model": "tiny", "objective": "cispo"}]}
    (wf / "plus.yaml").write_text(yaml.safe_dump(plus))
    p = smk(wf, "-n", "--cores", "all", *SMOKE, "plus.yaml")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert job_counts(out) == {"train": 1, "evaluate": 2, "aggregate": 1, "all": 1}
    assert all("cispo" in b for b in job_blocks(out, "train") + job_blocks(out, "evaluate"))

    # regenerate tables from existing checkpoints, under a label full of shell metacharacters
    evil = "ext; touch PWNED $(touch PWNED2) `touch PWNED3` 'q' \"r\" & x"
    regen = {
        "results_dir": "results-regen",
        "models": {"tiny": {"evaluate_base": False}},
        "defaults": {"evaluation": {"benchmarks": [{"name": "synth_add", "limit": 8}], "k": 2,
                                    "sampling": {"max_tokens": 16, "seed": 0}, "batch_size": 16}},
        "experiments": [
            {"model": "tiny", "label": evil, "checkpoints": {"0": "results/runs/tiny/grpo/seed0/final"}},
            {"model": "tiny", "objective": "mhpo", "from_runs": "results/runs", "seeds": [0]},
        ],
        "report": {"atlas": False},
    }
    (wf / "regen.yaml").write_text(yaml.safe_dump(regen))
    p = smk(wf, "--cores", "all", "--configfile", "regen.yaml", timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert job_counts(out).get("train") is None
    assert not list(wf.rglob("PWNED*"))
    assert (wf / "results-regen" / "evals" / "tiny" / evil / "seed0" / "final" / "synth_add.summary.json").is_file()
    main = (wf / "results-regen" / "tables" / "main.md").read_text()
    assert "| mhpo |" in main and "touch PWNED" in main

    # Snakemake's own HTML report of the default run
    p = smk(wf, *SMOKE, "--report", "results/report.html")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert (wf / "results" / "report.html").stat().st_size > 10_000
