"""Training data in the layouts datasets are published in (recipe section ``data``).

``data.hf_dataset`` is one of

* a local ``.parquet`` / ``.jsonl`` / ``.json`` file;
* a local directory laid out like a Hugging Face dataset repository: the data files named by the ``configs:``
  block of its ``README.md`` (``data.hf_config`` picks the config), else found by the Hub's split-name
  conventions (``data/train-*.parquet``, ``train.jsonl``, a single file = ``train``);
* a Hub id (``org/name``), read from the local Hugging Face cache (``$HF_HOME/hub``, filled by
  ``mhpo-bench prefetch`` on a machine with internet), or downloaded when ``MHPO_ONLINE=1``.

Fields are dotted paths into nested columns: ``reward_model.ground_truth`` is ``row["reward_model"]
["ground_truth"]`` (BytedTsinghua-SIA/DAPO-Math-17k). A problem is a string or a list of chat messages
(``[{"role": "user", "content": ...}]``); ``data.strip_text`` removes literal strings from it (a dataset's own
answer-format instruction), so that training prompts can match the evaluation prompts.

:func:`check_fields` reads only the schema (parquet footer, first JSON line), so the workflow planner can refuse a
wrong field name before any job runs, naming the columns that exist. Layouts of the named datasets:
``tests/fixtures/data/README.md``.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

import yaml

from mhpo.common import env
from mhpo.training.recipe import get  # row[a][b] for the dotted field a.b

FILE_TYPES = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}


class DataError(ValueError):
    """The recipe's data cannot be found or does not have the named fields; the message says what exists."""


# ------------------------------------------------------------------------------------------ locating
def _hub_snapshot(repo_id: str, download: bool) -> Path | None:
    """The local snapshot directory of dataset ``repo_id`` in the HF cache (downloading it if ``download``)."""
    from huggingface_hub import snapshot_download  # lazy: start-up time

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", local_files_only=not download))
    except Exception:  # LocalEntryNotFoundError, offline mode, ...: not cached
        if download:
            raise
        return None


def local_root(d: dict, download: bool = False) -> Path | None:
    """Where the data of recipe section ``d`` lie on this machine: a file or directory, or None (a Hub id that
    is not cached). ``download``: fetch a Hub id into the cache first (``MHPO_ONLINE=1`` / prefetch)."""
    src = d["hf_dataset"]
    p = Path(src).expanduser()
    if p.exists():
        return p
    if src.startswith((".", "/", "~")) or src.count("/") != 1:
        raise DataError(f"data.hf_dataset: {src!r} is neither an existing file or directory nor a Hub id (org/name)")
    return _hub_snapshot(src, download)


def _card_configs(root: Path) -> list[dict]:
    """The ``configs:`` block of a dataset card's YAML header (``README.md``), or []."""
    card = root / "README.md"
    if not card.is_file():
        return []
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return []
    return list(meta.get("configs") or [])


def _glob(root: Path, patterns) -> list[Path]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found = []
    for pat in patterns:
        found += sorted(f for f in root.glob(pat) if f.is_file() and f.suffix in FILE_TYPES)
    return found


def data_files(d: dict, root: Path) -> list[Path]:
    """The files of split ``d['split']`` (config ``d['hf_config']``) under ``root`` (a file or a repo dir)."""
    if root.is_file():
        if root.suffix not in FILE_TYPES:
            raise DataError(f"data.hf_dataset: {root} is not a {'/'.join(FILE_TYPES)} file")
        return [root]
    split, config = d["split"], d["hf_config"]
    configs = _card_configs(root)
    if configs:
        names = [c.get("config_name", "default") for c in configs]
        if config is None:
            chosen = (next((c for c in configs if c.get("default")), None)
                      or (configs[0] if len(configs) == 1 else None))
            chosen = chosen or next((c for c in configs if c.get("config_name") == "default"), None)
            if chosen is None:
                raise DataError(f"data.hf_config: {root} has configs {names}; set data.hf_config to one of them")
        else:
            chosen = next((c for c in configs if c.get("config_name") == config), None)
            if chosen is None:
                raise DataError(f"data.hf_config: {config!r} is not a config of {root}; configs: {names}")
        entries = chosen.get("data_files") or []
        entries = [{"split": "train", "path": entries}] if isinstance(entries, (str, list)) and not (
            entries and isinstance(entries[0], dict)) else entries
        splits = {e["split"]: e["path"] for e in entries}
        if split not in splits:
            raise DataError(f"data.split: {split!r} is not a split of {root} (config "
                            f"{chosen.get('config_name', 'default')!r}); splits: {sorted(splits)}")
        files = _glob(root, splits[split])
    else:
        if config is not None:
            raise DataError(f"data.hf_config: {root} has no dataset card with configs; set data.hf_config: null")
        every = [f for f in _glob(root, "**/*") if ".cache" not in f.parts]
        # the Hub's conventions: a file or folder named after the split, else all files are one "train" split
        named = [f for f in every if any(fnmatch.fnmatch(part, f"{split}*") or fnmatch.fnmatch(part, f"*[-_.]{split}*")
                                         for part in f.relative_to(root).parts)]
        files = named or (every if split == "train" else [])
        if not files:
            raise DataError(f"data.split: no {split!r} files under {root} "
                            f"(files: {[str(f.relative_to(root)) for f in every][:10]})")
    if not files:
        raise DataError(f"data.hf_dataset: no data files for split {split!r} under {root}")
    return files


# ------------------------------------------------------------------------------------------ schema
def _arrow_fields(t) -> dict | None:
    """{name: sub-schema} of a pyarrow type: a dict for structs (and lists of structs), None for leaves."""
    import pyarrow as pa  # lazy: start-up time

    if pa.types.is_struct(t):
        return {t.field(i).name: _arrow_fields(t.field(i).type) for i in range(t.num_fields)}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _arrow_fields(t.value_type)
        return {"[]": inner} if inner is not None else None
    return None


def _json_fields(v) -> dict | None:
    if isinstance(v, dict):
        return {k: _json_fields(x) for k, x in v.items()}
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return {"[]": _json_fields(v[0])}
    return None


def schema(path: Path) -> dict:
    """Column tree of one data file without reading its rows: {column: sub-tree or None}."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # lazy: start-up time

        s = pq.read_schema(path)
        return {f.name: _arrow_fields(f.type) for f in s}
    with open(path, encoding="utf-8") as fh:
        if path.suffix == ".json" and fh.read(1) == "[":
            fh.seek(0)
            rows = json.load(fh)
            first = rows[0] if rows else {}
        else:
            fh.seek(0)
            line = next((ln for ln in fh if ln.strip()), "{}")
            first = json.loads(line)
    return {k: _json_fields(v) for k, v in first.items()}


def _describe(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for k, sub in tree.items():
        if k == "[]":
            out += _describe(sub, prefix) if sub else []
            continue
        name = f"{prefix}{k}"
        out.append(name)
        if sub:
            out += _describe(sub, name + ".")
    return out


def has_field(tree: dict, dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if isinstance(node, dict) and "[]" in node and part not in node:
            node = node["[]"]
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def field_keys(d: dict) -> list[str]:
    return [k for k in ("problem_field", "answer_field", "image_field") if d.get(k)]


def check_fields(d: dict, root: Path | None = None) -> list[str] | None:
    """Raise :class:`DataError` when a field named by recipe section ``d`` is not in its local data (message: the
    columns that exist). Returns the columns, or None when the data are not on this machine (an uncached Hub id)."""
    if d.get("task"):
        return None
    root = root or local_root(d)
    if root is None:
        return None
    files = data_files(d, root)
    tree = schema(files[0])
    columns = _describe(tree)
    for key in field_keys(d):
        if not has_field(tree, d[key]):
            raise DataError(f"data.{key}: {d[key]!r} is not a field of {d['hf_dataset']} (split {d['split']!r}, "
                            f"{files[0].name}); its fields are {columns}")
    return columns


# ------------------------------------------------------------------------------------------ rows
def load_rows(d: dict) -> list[dict]:
    """Every row of the recipe's split as dicts (images decoded to PIL by ``datasets``), ``n_train`` first ones."""
    from datasets import load_dataset  # lazy: start-up time

    root = local_root(d, download=os.environ.get("MHPO_ONLINE") == "1")
    if root is None:

        raise DataError(f"data.hf_dataset: {d['hf_dataset']!r} is not in the Hugging Face cache "
                        f"({env.hf_hub_cache()}); run `mhpo-bench prefetch` where the Hub is reachable (e.g. a login "
                        "node) with the same HF_HOME, set MHPO_ONLINE=1, or point data.hf_dataset at a local copy")
    check_fields(d, root)
    files = data_files(d, root)
    kind = FILE_TYPES[files[0].suffix]
    ds = load_dataset(kind, data_files=[str(f) for f in files], split="train")
    if d["n_train"]:
        ds = ds.select(range(min(d["n_train"], len(ds))))
    return list(ds)


def _strip(text: str, strip: list[str]) -> str:
    for s in strip:
        text = text.replace(s, "")
    return text.strip()


def is_chat(value) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def problem(value, d: dict, where: str):
    """A row's problem: text, or (for chat-message prompts) the messages, with ``strip_text`` removed."""
    strip = d.get("strip_text") or []
    if isinstance(value, str):
        return _strip(value, strip)
    if is_chat(value) and value:
        return [{"role": m["role"], "content": _strip(str(m["content"]), strip)} for m in value]
    raise DataError(f"{where}: data.problem_field {d['problem_field']!r} holds {type(value).__name__}, not text or a "
                    "list of chat messages ({role, content})")


def prompt(problem_value, d: dict):
    """The training prompt: text (``prompt_format: plain``) or messages (``chat``), with the recipe's system prompt
    and instruction. A chat-message problem keeps its own messages; the instruction goes after its last user turn."""
    instruction = f"\n{d['instruction']}" if d.get("instruction") else ""
    if isinstance(problem_value, str):
        text = problem_value + instruction
        if d["prompt_format"] != "chat":
            return text
        msgs = [{"role": "user", "content": text}]
    else:
        msgs = [dict(m) for m in problem_value]
        users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
        if not users:
            raise DataError("data.problem_field: a chat-message prompt without a user message")
        msgs[users[-1]]["content"] += instruction
        if d["prompt_format"] != "chat":  # plain: the last user turn's text, as a base model sees it
            return msgs[users[-1]]["content"]
    if d.get("system_prompt") and not any(m["role"] == "system" for m in msgs):
        msgs = [{"role": "system", "content": d["system_prompt"]}] + msgs
    return msgs


def text_rows(d: dict) -> list[dict]:
    """``[{id, problem, answer}]`` from a dataset (problem: text or chat messages, answer: str)."""
    rows = load_rows(d)
    return [{"id": str(i), "problem": problem(get(r, d["problem_field"]), d, f"row {i}"),
             "answer": str(get(r, d["answer_field"]))} for i, r in enumerate(rows)]


def vl_rows(d: dict) -> list[dict]:
    """``[{id, problem, answer, image, choices, answer_type}]`` from an image dataset (the first image of a list)."""
    out = []
    for i, r in enumerate(load_rows(d)):
        img = get(r, d["image_field"])
        img = img[0] if isinstance(img, list) and img else img  # Geometry3K: a list with one figure
        if img is None or img == []:
            raise DataError(f"data.hf_dataset {d['hf_dataset']!r} row {i}: {d['image_field']!r} has no image")
        out.append({"id": str(i), "problem": problem(get(r, d["problem_field"]), d, f"row {i}"),
                    "answer": str(get(r, d["answer_field"])), "image": img, "choices": None,
                    "answer_type": "free_form"})
    return out
