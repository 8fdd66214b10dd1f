"""``manifest.json`` of a training run: what ran (resolved config, objective, seed), on what code (git sha,
dirty flag, package versions) and hardware, for how long, and how it ended. Written atomically."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

from mhpo.common import codehash, io

PACKAGE_DIR = Path(__file__).resolve().parents[0]
PACKAGES = ("mhpo-bench", "torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "vllm", "deepspeed",
            "peft", "wandb", "math-verify", "numpy")


def git_info(package_dir: Path = PACKAGE_DIR) -> dict:
    """``{sha, dirty}`` of the git work tree this package's code is tracked in (an editable install of a
    checkout), or ``{sha: None, dirty: None}`` for an installed package, even one inside some git repository."""
    def run(*cmd):
        return subprocess.run(["git", *cmd], cwd=package_dir, capture_output=True, text=True, timeout=30)

    try:
        sha = run("rev-parse", "HEAD")
        tracked = run("ls-files", "--error-unmatch", "__init__.py")  # this package's files, not an enclosing repo's
        if sha.returncode or tracked.returncode:
            return {"sha": None, "dirty": None}
        status = run("status", "--porcelain", "--untracked-files=no")
        return {"sha": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


def versions() -> dict:
    """Installed versions of the packages that shape a run (absent ones are left out), plus Python."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def hardware() -> dict:
    import torch  # lazy: start-up time

    hw = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
          "torch_threads": torch.get_num_threads(), "world_size": int(os.environ.get("WORLD_SIZE", "1"))}
    if torch.cuda.is_available():
        hw["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        hw["cuda"] = torch.version.cuda
    else:
        hw["gpus"] = []
    try:
        hw["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return hw


def read(path) -> dict | None:
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def write(path, manifest: dict) -> None:
    """Write atomically; a run's manifest also records ``code_hash``, the hash of the code that trains its
    objective (``mhpo.common.codehash.train_files``: the objective's file, the contract, the trainer), which
    ``mhpo-bench aggregate`` compares across the seeds of one label."""
    if manifest.get("objective") and "code_hash" not in manifest:

        vl = ((manifest.get("config") or {}).get("data") or {}).get("image_field") is not None
        manifest = {**manifest, "code_hash": codehash.digest(codehash.train_files(manifest["objective"], vl))}
    io.write_json(path, manifest)
