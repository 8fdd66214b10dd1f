"""``mhpo-bench prefetch``: put every model, training dataset and benchmark a workflow config needs into the site's
caches, on a machine with internet (a login node), so that compute nodes run offline.

    mhpo-bench prefetch --config paper --dry-run                     # what it would fetch, and what is there
    mhpo-bench prefetch --config paper --site workflow/profiles/mysite

* models (each model's ``base`` and each recipe's ``model.path``) and training datasets (``data.hf_dataset``) that
  are Hub ids go to the Hugging Face cache (``$HF_HOME/hub``; the site layer's ``hf_home``), where the jobs read them
  with ``HF_HUB_OFFLINE=1`` (mhpo.env); models without their ``*.bin``/``*.pt`` duplicates of safetensors weights;
* benchmarks without a local copy are written as local copies ``DIR/<name>/test.jsonl`` (+ ``images/`` for VL),
  DIR = the config's ``data_dir``, else ``$MHPO_BENCHMARK_DIR`` (the site layer's ``benchmark_dir``), which is
  where evaluation looks (docs/benchmarks.md).

Local paths, tiny models and synthetic benchmarks need nothing. ``--dry-run`` prints every item with its status
(``cached`` / ``local`` / ``to fetch``) and touches no network. Exit status: 0 when everything is (now) present.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

MODEL_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja", "*.py", "*.md"]


@dataclass
class Item:
    kind: str  # model | dataset | benchmark
    name: str  # Hub id, or benchmark name
    status: str  # cached | local | to fetch
    where: str  # cache dir / local path / destination


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="workflow config: a name (./workflow/config/NAME.yaml) or a path")
    parser.add_argument("--site", default=None,
                        help="site layer profile dir (its `config: [site={...}]` entry gives the cache paths)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be fetched; no network")


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
    from mhpo.config import _looks_like_hub_id

    return bool(path) and not Path(path).expanduser().exists() and _looks_like_hub_id(path)


def _cached(repo_id: str, repo_type: str, cache: Path) -> bool:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, repo_type=repo_type, cache_dir=cache, local_files_only=True)
        return True
    except Exception:  # not (completely) in the cache
        return False


def items(plan, cache: Path) -> list[Item]:
    """Everything ``plan`` (and its studies) reads, with its status on this machine."""
    from mhpo import config as mcfg

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
    out = [Item("model", m, "cached" if _cached(m, "model", cache) else "to fetch", str(cache)) for m in sorted(models)]
    out += [Item("dataset", d, "cached" if _cached(d, "dataset", cache) else "to fetch", str(cache))
            for d in sorted(datasets)]
    for name, data_dir in sorted(benches.items()):
        item = _benchmark_item(name, data_dir)
        if item is not None:
            out.append(item)
    return out


def _benchmark_spec(name: str):
    import benchmarks as bm

    spec = bm.get(name)
    return spec, (None if spec.task is not None else spec.local_path), spec.modality == "vl"


def _benchmark_item(name: str, data_dir: str | None) -> Item | None:
    from benchmarks.catalog import data_dirs

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
    from huggingface_hub import snapshot_download

    if item.kind == "model":
        snapshot_download(item.name, repo_type="model", cache_dir=cache, allow_patterns=MODEL_PATTERNS)
    elif item.kind == "dataset":
        snapshot_download(item.name, repo_type="dataset", cache_dir=cache)
    else:
        _export_benchmark(item.name, Path(item.where))


def _export_benchmark(name: str, out_dir: Path) -> None:
    """Write the local copy evaluation reads: VL via benchmarks.vl.export, text as ``fields``-named JSON Lines."""
    from benchmarks import catalog
    from mhpo import io

    spec, _, is_vl = _benchmark_spec(name)
    if not spec.hub:
        raise RuntimeError(f"benchmark {name!r} has no Hub dataset in its registry entry; provide {spec.file} by hand")
    if is_vl:
        from benchmarks import vl

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


def main(args) -> int:
    from mhpo import config as mcfg
    from mhpo import env

    try:
        path = config_path(args.config)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if args.site:
            raw = {**raw, "site": {**(raw.get("site") or {}), **site_of_profile(args.site)}}
        mcfg.apply_site(raw)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"mhpo-bench prefetch: error: {e}", file=sys.stderr)
        return 2
    if not args.dry_run:
        os.environ["MHPO_ONLINE"] = "1"  # before huggingface_hub is imported: it reads the offline flags once
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[var] = "0"
    env.setup()
    cache = env.hf_hub_cache()
    try:
        _, plan = mcfg.load(raw, workdir=".")
    except mcfg.ConfigError as e:
        print(f"mhpo-bench prefetch: {path}: error: {e}", file=sys.stderr)
        return 2
    todo = items(plan, cache)
    print(f"{path}: Hugging Face cache {cache}")
    for it in todo:
        print(f"  {it.kind:9s} {it.name:40s} {it.status:9s} {it.where}")
    missing = [it for it in todo if it.status == "to fetch"]
    if args.dry_run or not missing:
        print(f"{len(missing)} to fetch{' (dry run: nothing downloaded)' if args.dry_run else ''}")
        return 0
    from tqdm import tqdm

    failed = []
    for it in tqdm(missing, desc="prefetch", unit="item"):
        try:
            fetch(it, cache)
        except Exception as e:  # network, permissions, gated repos: report every failure, then exit 1
            failed.append(f"{it.kind} {it.name}: {type(e).__name__}: {str(e)[:300]}")
    for f in failed:
        print(f"mhpo-bench prefetch: could not fetch {f}", file=sys.stderr)
    print(f"fetched {len(missing) - len(failed)} of {len(missing)}")
    return 1 if failed else 0
