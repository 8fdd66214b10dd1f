"""``mhpo-bench prefetch``: download every model, dataset and benchmark of a workflow config into the site's cache (the
library is :mod:`mhpo.workflow.prefetch`)."""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from mhpo.common import env
from mhpo.workflow import config as mcfg
from mhpo.workflow.prefetch import config_path, fetch, items, site_of_profile


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="workflow config: a name (./workflow/config/NAME.yaml) or a path")
    parser.add_argument("--site", default=None,
                        help="site layer profile dir (its `config: [site={...}]` entry gives the cache paths)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be fetched; no network")


def main(args) -> int:

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
    from tqdm import tqdm  # lazy: start-up time

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
