"""An on-disk cache of objective checks: whether ``mhpo.objectives.get(name, **params)`` succeeds.

Planning checks every (objective, parameters) pair of a config; the answers are kept in
``$MHPO_CACHE_DIR/mhpo-config-objectives.json`` (or ``./.cache``), keyed by the objective source files' mtimes and
sizes, so that re-planning an unchanged workflow does not import torch (a no-op rerun stays fast).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mhpo.common import codehash, io

_CHECKED: dict[str, list | None] = {}


def _sources_fingerprint() -> str:
    files = sorted((codehash.ROOT / "mhpo").glob("*.py")) + sorted((codehash.ROOT / "baselines").glob("*.py"))
    blob = [(str(f.relative_to(codehash.ROOT)), f.stat().st_mtime_ns, f.stat().st_size) for f in files]
    return json.dumps(blob)


def check(name: str, params: dict) -> tuple[str, str] | None:
    """``None`` if ``mhpo.objectives.get(name, **params)`` succeeds, else ``(key, message)`` where ``key`` is
    ``"objective"`` (unknown name) or ``"params"`` (a parameter the objective rejects)."""
    cache_path = Path(os.environ.get("MHPO_CACHE_DIR") or Path.cwd() / ".cache") / "mhpo-config-objectives.json"
    fp = _sources_fingerprint()
    if not _CHECKED:
        try:
            data = json.loads(cache_path.read_text())
            if data.get("fingerprint") == fp:
                _CHECKED.update(data["checked"])
        except (OSError, ValueError, KeyError):
            pass
    key = json.dumps([name, params], sort_keys=True, default=str)
    if key not in _CHECKED:
        from mhpo import objectives  # imports torch: only on a cache miss (start-up time of a no-op rerun)

        try:
            objectives.get(name, **params)
            result = None
        except objectives.ObjectiveError as e:
            result = ["objective" if name not in objectives.available() else "params", str(e)]
        except (TypeError, ValueError) as e:
            result = ["params", str(e)]
        _CHECKED[key] = result
        try:
            io.write_json(cache_path, {"fingerprint": fp, "checked": _CHECKED})
        except OSError:
            pass
    r = _CHECKED[key]
    return None if r is None else (r[0], r[1])
