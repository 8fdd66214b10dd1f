"""The user flows' planning, run through real Snakemake in a scratch copy of the repository.

* code-aware reruns: editing one objective's default plans exactly its own train, evaluate and aggregate jobs;
* Flow 2 as documented: every workflow config in README.md and docs/workflow.md, extracted verbatim, plans;
* typos fail at planning with the list of what exists.

Cheap: nothing is trained; completed jobs are recorded with ``snakemake --touch`` (Snakemake then stores their
params, as after a real run). About 40 s in all.
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


def scratch_repo(tmp: Path) -> Path:
    """A copy of the code and workflow (no results, no .git), imported in place of the checkout's."""
    wf = tmp / "repo"
    wf.mkdir()
    shutil.copy(ROOT / "Snakefile", wf / "Snakefile")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("workflow", "envs", "mhpo", "baselines", "benchmarks"):
        shutil.copytree(ROOT / d, wf / d, ignore=ignore)
    return wf


def env(wf: Path, **extra) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = f"{wf}{os.pathsep}{e.get('PYTHONPATH', '')}"  # the scratch code wins over the editable install
    e["MHPO_CACHE_DIR"] = str(wf / ".cache")
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.update(extra)
    return e


def smk(wf: Path, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + list(args), cwd=wf, capture_output=True, text=True, timeout=300,
                          env=env(wf, **kw))


def planned(out: str) -> list[str]:
    """``rule:wildcards`` of every job in a dry run's output."""
    jobs = []
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", out, re.M):
        wc = re.search(r"wildcards: (.*)", body)
        jobs.append(f"{rule}:{wc.group(1) if wc else ''}")
    return sorted(jobs)


def fake_complete(wf: Path, config: str) -> None:
    """Create every output of the plan and record the jobs as done (``--touch`` stores their params)."""
    p = smk(wf, "--summary", "--cores", "1", "--configfile", config)
    assert p.returncode == 0, p.stderr[-3000:]
    for line in p.stdout.splitlines()[1:]:
        out = Path(wf, line.split("\t")[0])
        if out.name in ("final",) or out.parent.name == "models":
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text("{}")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("x")
    p = smk(wf, "--touch", "--forceall", "--cores", "1", "--configfile", config)
    assert p.returncode == 0, p.stderr[-3000:]
    p = smk(wf, "-n", "--cores", "1", "--configfile", config)
    assert "Nothing to be done" in p.stdout + p.stderr, p.stdout[-3000:]


def test_editing_an_objective_reruns_exactly_its_jobs(tmp_path):
    wf = scratch_repo(tmp_path)
    p = subprocess.run([sys.executable, "-m", "mhpo.cli", "new-objective", "my_clip", "--tests-dir", str(tmp_path)],
                       cwd=wf, capture_output=True, text=True, env=env(wf))
    assert p.returncode == 0, p.stderr
    assert (wf / "baselines" / "my_clip.py").is_file()
    cfg = {
        "models": {"tiny": {"tiny_model": {"task": "arith"}}},
        "defaults": {"recipe": "tiny", "seeds": [0, 1],
                     "evaluation": {"benchmarks": [{"name": "synth_arith", "limit": 4}], "k": 1}},
        "experiments": [{"model": "tiny", "objective": o} for o in ("my_clip", "grpo", "mhpo")],
        "report": {"atlas": False},
    }
    (wf / "flow3.yaml").write_text(yaml.safe_dump(cfg))
    fake_complete(wf, "flow3.yaml")

    src = wf / "baselines" / "my_clip.py"
    text = src.read_text()
    assert "eps: float = 0.2" in text
    src.write_text(text.replace("eps: float = 0.2", "eps: float = 0.28"))
    p = smk(wf, "-n", "--cores", "1", "--configfile", "flow3.yaml")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert planned(out) == sorted(
        ["aggregate:", "all:"]
        + [f"train:model=tiny, label=my_clip, seed={s}" for s in (0, 1)]
        + [f"evaluate:model=tiny, label=my_clip, seed={s}, checkpoint=final" for s in (0, 1)]
    ), out[-3000:]
    assert "params" in out  # Snakemake says why: the code hash param changed

    # the evaluation code: every evaluation (the base model's too) reruns, no training run does
    gen = wf / "benchmarks" / "generation.py"
    gen.write_text(gen.read_text() + "\n# a change\n")
    p = smk(wf, "-n", "--cores", "1", "--configfile", "flow3.yaml")
    jobs = planned(p.stdout + p.stderr)
    assert [j for j in jobs if j.startswith("train:")] == [f"train:model=tiny, label=my_clip, seed={s}"
                                                            for s in (0, 1)]
    assert (sum(j.startswith("evaluate:") for j in jobs) == 7
            and "evaluate:model=tiny, label=base, seed=0, checkpoint=base" in jobs)

    # the trainer's code is shared: editing it reruns every training run (and nothing for the base model)
    trainer = wf / "mhpo" / "training" / "trainer.py"
    trainer.write_text(trainer.read_text() + "\n# a change\n")
    p = smk(wf, "-n", "--cores", "1", "--configfile", "flow3.yaml")
    jobs = planned(p.stdout + p.stderr)
    assert sum(j.startswith("train:") for j in jobs) == 6


# ------------------------------------------------------------------------------- Flow 2: the documented configs
def doc_configs() -> list[tuple[str, str, str]]:
    """(document, config name, YAML text) of every workflow config in README.md and docs/workflow.md."""
    out = []
    for doc in ("README.md", "docs/workflow.md"):
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", (ROOT / doc).read_text(), re.S)):
            if re.search(r"^experiments:", block, re.M):
                m = re.match(r"# ([\w.-]+)\.yaml", block)
                out.append((doc, m.group(1) if m else f"config{i}", block))
    return out


def provide_existing(wf: Path, cfg: dict, bench_dir: Path) -> None:
    """Create what a documented config points at: runs, checkpoints, benchmark data files."""
    import benchmarks

    defaults = cfg.get("defaults") or {}
    for exp in cfg["experiments"]:
        e = {**defaults, **exp}
        if "from_runs" in e:
            src = e.get("from_label") or e.get("objective") or e.get("label")
            for s in e["seeds"]:
                (wf / e["from_runs"] / e["model"] / src / f"seed{s}" / "final").mkdir(parents=True, exist_ok=True)
        for path in (e.get("checkpoints") or {}).values():
            (wf / path).mkdir(parents=True, exist_ok=True)
        for b in e.get("evaluation", {}).get("benchmarks", []):
            name = b if isinstance(b, str) else b["name"]
            if name in benchmarks.available() and benchmarks.get(name).file:
                f = bench_dir / benchmarks.get(name).file
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text('{"problem": "1+1", "answer": "2"}\n')


@pytest.mark.parametrize("doc, name, text", doc_configs(), ids=[f"{d}:{n}" for d, n, _ in doc_configs()])
def test_documented_configs_plan_verbatim(tmp_path, doc, name, text):
    wf = scratch_repo(tmp_path)
    (wf / f"{name}.yaml").write_text(text)  # verbatim
    cfg = yaml.safe_load(text)
    provide_existing(wf, cfg, tmp_path / "bench")
    p = smk(wf, "-n", "--cores", "all", "--configfile", f"{name}.yaml", MHPO_BENCHMARK_DIR=str(tmp_path / "bench"))
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    jobs = {j.split(":")[0] for j in planned(out)}
    defaults = cfg.get("defaults") or {}
    if all("from_runs" in e or "checkpoints" in e or "from_runs" in defaults for e in cfg["experiments"]):
        assert jobs == {"evaluate", "aggregate", "all"}, jobs  # Flow 2: no training, no atlas
        assert f"results/{name}/tables/main.md" in out and "results/tables/main.md" not in out


def test_regeneration_never_writes_into_the_runs_it_reads(tmp_path):
    wf = scratch_repo(tmp_path)
    (wf / "results/runs/tiny/mhpo/seed0/final").mkdir(parents=True)
    cfg = {"results_dir": "results", "models": {"tiny": {"evaluate_base": False}},
           "defaults": {"evaluation": {"benchmarks": ["synth_arith"]}},
           "experiments": [{"model": "tiny", "objective": "mhpo", "from_runs": "results/runs", "seeds": [0]}]}
    (wf / "again.yaml").write_text(yaml.safe_dump(cfg))
    p = smk(wf, "-n", "--cores", "all", "--configfile", "again.yaml")
    assert p.returncode != 0 and "inside this config's own results_dir" in p.stdout + p.stderr
    # a new label reads the objective's directory; int checkpoint keys are fine
    del cfg["results_dir"]
    cfg["experiments"] = [{"model": "tiny", "objective": "mhpo", "label": "mhpo-again", "from_runs": "results/runs",
                           "seeds": [0]},
                          {"model": "tiny", "label": "ck", "checkpoints": {0: "results/runs/tiny/mhpo/seed0/final"}}]
    (wf / "again.yaml").write_text(yaml.safe_dump(cfg))
    p = smk(wf, "-n", "--cores", "all", "--configfile", "again.yaml")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert sorted(planned(out)) == ["aggregate:", "all:", "evaluate:model=tiny, label=ck, seed=0, checkpoint=final",
                                    "evaluate:model=tiny, label=mhpo-again, seed=0, checkpoint=final"]
    assert "results/again/evals/tiny/mhpo-again/seed0/final/.done" in out
    assert "--model results/runs/tiny/mhpo/seed0/final" in smk(wf, "-n", "-p", "--cores", "all", "--configfile",
                                                                "again.yaml").stdout


# ------------------------------------------------------------------------------------ typos fail at planning
def _typo_config(tmp_path, recipe_extra: str = "", **exp) -> dict:
    recipe = tmp_path / "my-recipe.yaml"
    recipe.write_text((ROOT / "mhpo/resources/recipes/tiny.yaml").read_text()
                      .replace("objective_params: {}", "# (moved)") + recipe_extra)
    return {"models": {"tiny": {"tiny_model": {"task": "arith"}}},
            "defaults": {"recipe": str(recipe), "seeds": [0], "evaluation": {"benchmarks": ["synth_arith"]}},
            "experiments": [{"model": "tiny", "objective": "grpo", **exp}]}


@pytest.mark.parametrize("recipe_extra, exp, message", [
    ("", {"model": "tinny"}, "experiments[0].model: undefined model 'tinny'; defined under `models`: tiny"),
    ("objective_params: {grpoo: {eps_high: 0.3}}\n", {},
     "objective_params.grpoo: unknown objective 'grpoo'; available: bnpo"),
    ("objective_params: {grpo: {eps_hihg: 0.3}}\n", {},
     "objective_params.grpo: objective 'grpo' has no parameter 'eps_hihg'; its parameters are: aggregation"),
    ("objective_params: {mhpo: {c: 0.0}}\n", {}, "objective_params.mhpo: "),  # another objective's bad value
    ("objective_params: {mhpo: {c: abc}}\n", {}, "objective_params.mhpo: mhpo: parameter 'c' must be float"),
    ("objective_params: {grpo: 0.3}\n", {}, "objective_params.grpo: must be a mapping of parameters"),
    ("", {"set": {"optim.lrr": 1e-4}}, "unknown key 'optim.lrr'; did you mean 'lr'? (known keys: "),
    ("", {"evaluaton": {}}, "experiments[0]: unknown key 'evaluaton'; known keys: "),
])
def test_typos_fail_at_planning_with_what_exists(tmp_path, recipe_extra, exp, message):
    from mhpo.workflow import config

    with pytest.raises(config.ConfigError) as e:
        config.load(_typo_config(tmp_path, recipe_extra, **exp), workdir=tmp_path)
    assert message in str(e.value)


def test_a_typo_stops_snakemake_before_any_job(tmp_path):
    wf = scratch_repo(tmp_path)
    cfg = _typo_config(tmp_path, "objective_params: {grpo: {eps_hihg: 0.3}}\n")
    (wf / "typo.yaml").write_text(yaml.safe_dump(cfg))
    p = smk(wf, "-n", "--cores", "all", "--configfile", "typo.yaml")
    assert p.returncode != 0 and "has no parameter 'eps_hihg'" in p.stdout + p.stderr
