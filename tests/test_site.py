"""The cluster's life cycle around the jobs: the site layer on top of the slurm
profile, the site's Hugging Face cache, and `mhpo-bench prefetch` into it. No network: the Hub is either absent
from the test (dry run, local cache) or an endpoint on a closed loopback port. ~20 s in all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_cluster import sbatch_call
from test_workflow import job_blocks, scratch, smk

from mhpo.common import env

ROOT = Path(__file__).resolve().parents[1]
DAPO = ROOT / "tests" / "fixtures" / "data" / "BytedTsinghua-SIA" / "DAPO-Math-17k"


def site_layer(dst: Path, root: Path) -> Path:
    """The shipped site template (workflow/profiles/site) filled in as a site would."""
    text = (ROOT / "workflow" / "profiles" / "site" / "config.yaml").read_text()
    text = (text.replace("CHANGE_ME_partition", "gpu").replace("CHANGE_ME_account", "proj")
            .replace("CHANGE_ME_gpu_type", "a100").replace("CHANGE_ME", str(root)))
    assert "CHANGE_ME" not in text
    dst.mkdir(parents=True)
    (dst / "config.yaml").write_text(text)
    return dst


def _clean_env(**extra) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MHPO_", "TRANSFORMERS_"))}
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.update(extra)
    return e


def test_site_layer_sets_partition_account_gpu_type_time_and_caches(tmp_path):
    wf = scratch(tmp_path, benchmarks=False)  # tmp_path/shared is the site's
    site = site_layer(tmp_path / "mysite", tmp_path / "shared")
    p = smk(wf, "-n", "--profile", "slurm", "--profile", str(site), timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    train = job_blocks(out, "train")[0]
    assert "slurm_partition=gpu" in train and "slurm_account=proj" in train
    call = sbatch_call(train).split()
    assert "--gpus=a100:8" in call and "--nodes=1" in call and "-t" in call and call[call.index("-t") + 1] == "2880"
    # the caches every job is submitted with (sbatch --export=ALL)
    assert f"HF_HOME={tmp_path / 'shared' / 'hf'} " in out
    assert f"MHPO_BENCHMARK_DIR={tmp_path / 'shared' / 'benchmarks'}," in out


def test_hf_cache_follows_the_site(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "site-hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    env.setup(tmp_path / "cache")
    assert os.environ["HF_HOME"] == str(tmp_path / "site-hf")  # a site's HF_HOME is kept, not replaced
    assert env.hf_hub_cache() == tmp_path / "site-hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-only"))
    assert env.hf_hub_cache() == tmp_path / "hub-only"


def test_prefetch_dry_run_lists_the_paper_matrix_against_the_site_cache(tmp_path):
    site = site_layer(tmp_path / "mysite", tmp_path / "shared")
    hub = tmp_path / "shared" / "hf" / "hub"
    snap = hub / "datasets--BytedTsinghua-SIA--DAPO-Math-17k"  # already in the site's cache
    shutil.copytree(DAPO, snap / "snapshots" / ("0" * 40))
    (snap / "refs").mkdir()
    (snap / "refs" / "main").write_text("0" * 40)
    p = subprocess.run([sys.executable, "-m", "mhpo.cli", "prefetch", "--config", "paper", "--site", str(site),
                        "--dry-run"], capture_output=True, text=True, timeout=120, env=_clean_env())
    assert p.returncode == 0, p.stderr[-2000:]
    lines = {tuple(line.split()[:3]) for line in p.stdout.splitlines() if line.startswith("  ")}
    assert f"Hugging Face cache {hub}" in p.stdout
    for model in ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen3-4B-Base", "Qwen/Qwen2.5-VL-7B-Instruct"):
        assert ("model", model, "to") in lines
    assert ("dataset", "BytedTsinghua-SIA/DAPO-Math-17k", "cached") in lines
    assert ("dataset", "hiyouga/geometry3k", "to") in lines
    benches = {n for kind, n, _ in lines if kind == "benchmark"}
    assert {"math500", "aime24", "mathvista", "geometry3k"} <= benches
    assert "dry run: nothing downloaded" in p.stdout and not (hub / "models--Qwen--Qwen3-4B-Base").exists()


def test_prefetch_without_the_hub_fails_naming_what_it_could_not_fetch(tmp_path):
    cfg = tmp_path / "one.yaml"
    cfg.write_text('models: {m: {evaluate_base: false}}\nexperiments:\n  - {model: m, label: x, checkpoints: '
                   '{"0": someorg/somemodel}, evaluation: {benchmarks: [synth_arith], limit: 2}}\n')
    p = subprocess.run([sys.executable, "-m", "mhpo.cli", "prefetch", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=120,
                       env=_clean_env(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9"))
    assert p.returncode == 1
    assert "could not fetch model someorg/somemodel" in p.stderr
