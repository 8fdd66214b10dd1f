"""``mhpo-bench prefetch``: put every model, training dataset and benchmark a workflow config needs into the site's
caches, on a machine with internet (a login node), so that compute nodes run offline.

    mhpo-bench prefetch --config paper --dry-run                     # what it would fetch, and what is there
    mhpo-bench prefetch --config paper --site workflow/profiles/mysite

* models (each model's ``base`` and each recipe's ``model.path``) and training datasets (``data.hf_dataset``) that
  are Hub ids go to the Hugging Face cache (``$HF_HOME/hub``; the site layer's ``hf_home``), where the jobs read them
  with ``HF_HUB_OFFLINE=1`` (mhpo.common.env); models without their ``*.bin``/``*.pt`` duplicates of safetensors
  weights;
* benchmarks without a local copy are written as local copies ``DIR/<name>/test.jsonl`` (+ ``images/`` for VL),
  DIR = the config's ``data_dir``, else ``$MHPO_BENCHMARK_DIR`` (the site layer's ``benchmark_dir``), which is
  where evaluation looks (docs/benchmarks.md).

Local paths, tiny models and synthetic benchmarks need nothing. ``--dry-run`` prints every item with its status
(``cached`` / ``local`` / ``to fetch``) and touches no network. Exit status: 0 when everything is (now) present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

import benchmarks as bm
from benchmarks import catalog, vl
from benchmarks.catalog import data_dirs
from mhpo.common import io
from mhpo.workflow import config as mcfg
from mhpo.workflow.config import _looks_like_hub_id

MODEL_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja", "*.py", "*.md"]


@dataclass
class Item:
    kind: str  # model | dataset | benchmark
    name: str  # Hub id, or benchmark name
    status: str  # cached | local | to fetch
    where: str  # cache dir / local path / destination


def config_path(name: str) -> Path:
    """A path, or a config name looked up in the workflow directory (the current one): workflow/config/NAME.yaml."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return Path("workflow") / "config" / f"{name}.yaml"


def site_of_profile(profile_dir: str | os.PathLike) -> dict:
    """The ``site={...}`` entry of a profile's ``config:`` list (workflow/profiles/site), as a dict."""
    path = Path(profile_dir)
    path = path / "config.yaml" if path.is_dir() else path
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for entry in data.get("config") or []:
        key, _, value = str(entry).partition("=")
        if key.strip() == "site":
            site = yaml.safe_load(value)
            if not isinstance(site, dict):
                raise ValueError(f"{path}: config entry site=... must be a mapping, got {value!r}")
            return site
    return {}


def _hub_id(path: str | None) -> bool:

    return bool(path) and not Path(path).expanduser().exists() and _looks_like_hub_id(path)


def _cached(repo_id: str, repo_type: str, cache: Path) -> bool:
    from huggingface_hub import snapshot_download  # lazy: start-up time

    try:
        snapshot_download(repo_id, repo_type=repo_type, cache_dir=cache, local_files_only=True)
        return True
    except Exception:  # not (completely) in the cache
        return False


def items(plan, cache: Path) -> list[Item]:
    """Everything ``plan`` (and its studies) reads, with its status on this machine."""

    plans = [plan, *plan.studies.values()]
    models: set[str] = set()
    datasets: set[str] = set()
    benches: dict[str, str | None] = {}
    for p in plans:
        for entry in p.models.values():
            if not entry["tiny_model"] and _hub_id(entry["base"]):
                models.add(entry["base"])
        for r in p.runs.values():  # existing models evaluated by Hub id (config `checkpoints`)
            if r.kind == "model" and _hub_id(r.path):
                models.add(r.path)
        for r in p.train_runs():
            rec = mcfg._load_recipe(r.recipe, r.set, r.where)
            if _hub_id(rec["model"]["path"]):
                models.add(rec["model"]["path"])
            if rec["data"]["hf_dataset"] and _hub_id(rec["data"]["hf_dataset"]):
                datasets.add(rec["data"]["hf_dataset"])
        for j in p.evals.values():
            for b in j.benchmarks:
                benches.setdefault(b["name"], j.evaluation["data_dir"] or p.data_dir)
    out = [Item("model", m, "cached" if _cached(m, "model", cache) else "to fetch", str(cache))
           for m in sorted(models)]
    out += [Item("dataset", d, "cached" if _cached(d, "dataset", cache) else "to fetch", str(cache))
            for d in sorted(datasets)]
    for name, data_dir in sorted(benches.items()):
        item = _benchmark_item(name, data_dir)
        if item is not None:
            out.append(item)
    return out


def _benchmark_spec(name: str):

    spec = bm.get(name)
    return spec, (None if spec.task is not None else spec.local_path), spec.modality == "vl"


def _benchmark_item(name: str, data_dir: str | None) -> Item | None:

    _, local, _ = _benchmark_spec(name)
    if local is None:  # synthetic: generated offline
        return None
    found = local(data_dir)
    if found is not None:
        return Item("benchmark", name, "local", str(found))
    dest = data_dirs(data_dir)
    if not dest:
        return Item("benchmark", name, "to fetch", "(no benchmark dir: set data_dir or site.benchmark_dir)")
    return Item("benchmark", name, "to fetch", str(dest[0]))


def fetch(item: Item, cache: Path) -> None:
    """Download one item (network)."""
    from huggingface_hub import snapshot_download  # lazy: start-up time

    if item.kind == "model":
        snapshot_download(item.name, repo_type="model", cache_dir=cache, allow_patterns=MODEL_PATTERNS)
    elif item.kind == "dataset":
        snapshot_download(item.name, repo_type="dataset", cache_dir=cache)
    else:
        _export_benchmark(item.name, Path(item.where))


def _export_benchmark(name: str, out_dir: Path) -> None:
    """Write the local copy evaluation reads: VL via benchmarks.vl.export, text as ``fields``-named JSON Lines."""

    spec, _, is_vl = _benchmark_spec(name)
    if not spec.hub:
        raise RuntimeError(f"benchmark {name!r} has no Hub dataset in its registry entry; provide {spec.file} by hand")
    if is_vl:

        vl.export(name, out_dir)
        return
    if spec.hub.get("gold_rule", spec.gold_rule) != spec.gold_rule:
        raise RuntimeError(f"benchmark {name!r}: the Hub copy's gold rule differs from the local file's; "
                           f"provide {out_dir / spec.file} by hand")
    rows = catalog._load_hub(spec.hub)
    hub_fields = spec.hub.get("fields") or spec.fields
    out = []
    for r in rows:
        row = {k: v for k, v in r.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
        for key, local_name in spec.fields.items():
            if local_name and hub_fields.get(key):
                row[local_name] = r[hub_fields[key]]
        out.append(row)
    io.write_jsonl(out_dir / spec.file, out)
