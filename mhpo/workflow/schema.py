"""Workflow-config schema: JSON Schema validation with defaults, the in-place preparation before it, and the
site layer's cache paths. The schema is package data (``mhpo/resources/schemas/config.schema.yaml``); the
Snakefile validates with the same file. Every error is a :class:`ConfigError` whose message starts with the
offending key."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import yaml

from mhpo import resources

SCHEMA_PATH = resources.schema_path()  # package data (mhpo/resources/schemas)


class ConfigError(ValueError):
    """A workflow config that cannot run; the message names the key."""


def _schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _where(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<config>"


def validate_schema(cfg: dict) -> dict:
    """Validate ``cfg`` against the JSON schema and fill in its defaults (as ``snakemake.utils.validate``)."""
    import jsonschema  # lazy: start-up time

    cls = jsonschema.validators.validator_for(_schema())

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from cls.VALIDATORS["properties"](validator, properties, instance, schema)

    Validator = jsonschema.validators.extend(cls, {"properties": set_defaults})
    cfg = copy.deepcopy(cfg)
    errors = sorted(Validator(_schema()).iter_errors(cfg),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = errors[0]
        msg = e.message
        if e.validator == "additionalProperties":
            m = re.search(r"\('(.+)' was unexpected\)|\((.+) were unexpected\)", msg)
            if m:
                known = sorted((e.schema.get("properties") or {}).keys()) if isinstance(e.schema, dict) else []
                msg = (f"unknown key {(m.group(1) or m.group(2))!r}"
                       + (f"; known keys: {', '.join(known)}" if known else ""))
        elif e.validator == "pattern":
            msg = f"{e.instance!r} is not a valid label (no '/', control characters, or leading '.'/'-')"
        raise ConfigError(f"{_where(e.absolute_path)}: {msg}")
    return cfg



SITE_ENV = {"hf_home": "HF_HOME", "cache_dir": "MHPO_CACHE_DIR", "benchmark_dir": "MHPO_BENCHMARK_DIR"}


def apply_site(raw: dict | None) -> dict[str, str]:
    """Export the config's ``site`` cache paths (the site layer) into this process's environment, so that the
    planner, `mhpo-bench prefetch` and every job submitted from here (sbatch --export=ALL) use the site's caches.
    Call before anything imports huggingface_hub (it reads HF_HOME once). Returns what was set."""
    site = (raw or {}).get("site") or {}
    if not isinstance(site, dict):
        raise ConfigError("site: must be a mapping (hf_home, cache_dir, benchmark_dir)")
    out = {}
    for key, var in SITE_ENV.items():
        if site.get(key):
            out[var] = str(Path(os.path.expandvars(site[key])).expanduser().resolve())
    os.environ.update(out)
    return out


def prepare(raw: dict, name: str | None = None) -> dict:
    """In place, before schema validation: ``checkpoints`` keys as strings (YAML reads ``{0: path}`` with an
    int key), and the default ``results_dir`` of a config that only evaluates existing runs or checkpoints
    (Flow 2): ``results/<config name>``, so that regenerating tables never writes over another run's files."""
    for exp in [raw.get("defaults")] + list(raw.get("experiments") or []):
        if isinstance(exp, dict) and isinstance(exp.get("checkpoints"), dict):
            exp["checkpoints"] = {str(k): v for k, v in exp["checkpoints"].items()}
    if "results_dir" not in raw and _evaluates_only(raw):
        raw["results_dir"] = f"results/{name or 'regenerated'}"
    return raw


def _evaluates_only(raw: dict) -> bool:
    defaults = raw.get("defaults") if isinstance(raw.get("defaults"), dict) else {}
    exps = [e for e in raw.get("experiments") or [] if isinstance(e, dict)]
    return bool(exps) and all(any(k in e or k in defaults for k in ("from_runs", "checkpoints")) for e in exps)
