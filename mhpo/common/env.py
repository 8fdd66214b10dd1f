"""Process-wide defaults: offline by default, every cache inside the work tree (or ``MHPO_CACHE_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path


def setup(cache_dir: str | os.PathLike | None = None) -> Path:
    """Point HF, wandb, matplotlib and torch caches at ``cache_dir`` (default ``$MHPO_CACHE_DIR`` or
    ``./.cache``) unless the user set them, and make hub access opt-in (``MHPO_ONLINE=1`` enables it)."""
    root = Path(cache_dir or os.environ.get("MHPO_CACHE_DIR") or Path.cwd() / ".cache").resolve()
    defaults = {
        "HF_HOME": root / "hf",
        "WANDB_DIR": root / "wandb",
        "WANDB_CACHE_DIR": root / "wandb-cache",
        "WANDB_CONFIG_DIR": root / "wandb-config",
        "WANDB_DATA_DIR": root / "wandb-data",
        "MPLCONFIGDIR": root / "matplotlib",
        "TORCHINDUCTOR_CACHE_DIR": root / "torchinductor",
        "TRITON_CACHE_DIR": root / "triton",
        "TORCH_EXTENSIONS_DIR": root / "torch-extensions",  # JIT-built C++ ops (DeepSpeed), never under ~
        "XDG_CACHE_HOME": root / "xdg",
    }
    for key, value in defaults.items():
        if key not in os.environ:
            os.environ[key] = str(value)
            Path(value).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.environ.get("MHPO_ONLINE", "0") != "1":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return root


def hf_hub_cache() -> Path:
    """Where Hub models and datasets are read from (and ``mhpo-bench prefetch`` writes): ``$HF_HUB_CACHE``, else
    ``$HF_HOME/hub``, as huggingface_hub resolves them. A site's shared cache is used by exporting ``HF_HOME`` (or
    ``HF_HUB_CACHE``) before the run, or by the workflow's ``site.hf_home`` (docs/workflow.md, "Site layer")."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME") or setup() / "hf").expanduser() / "hub"


def describe_caches() -> str:
    """One line naming the caches this process (and the jobs it starts) use; printed by the Snakefile."""
    return (f"mhpo-bench caches: HF_HOME={os.environ.get('HF_HOME', '')} (hub: {hf_hub_cache()}), "
            f"MHPO_CACHE_DIR={os.environ.get('MHPO_CACHE_DIR', setup())}, "
            f"MHPO_BENCHMARK_DIR={os.environ.get('MHPO_BENCHMARK_DIR', '(default)')}, "
            f"offline={os.environ.get('HF_HUB_OFFLINE') == '1'}")
