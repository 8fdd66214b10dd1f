"""The benchmark registry: one declarative YAML file per benchmark, text and vision-language alike.

A YAML entry names the local file (``<data-dir>/<name>/test.jsonl``), the field mapping, how the gold is read
(``gold_rule``), the prompt template, the chat-template flag, default ``k`` and sampling, its ``modality``
(``text``, the default, or ``vl``), and an optional Hugging Face dataset used only when the user opts in with
``MHPO_ONLINE=1``. Text entries sit in ``benchmarks/registry/``, VL entries in ``benchmarks/registry/vl/``; an
entry may start from a defaults file with ``include: FILE`` (as lm-eval task YAMLs do; its own keys win).
``_synthetic.yaml`` and ``vl/_synthetic.yaml`` hold the defaults of the ``synth_<task>`` (:mod:`mhpo.tasks.text`)
and ``synth_vl_<task>`` (:mod:`mhpo.tasks.vl`) benchmarks.

A VL entry also names ``fields.image`` (an image path relative to the benchmark's folder), optionally
``fields.choices`` and ``fields.answer_type``, and its ``answer_type`` (``multi_choice``, ``free_form`` or
``per_row``, read per row through ``mc_values``; rows with choices and no type field are multiple choice). Its
rows carry ``image`` (PIL, resized by :func:`benchmarks.images.resize_image`), ``choices`` and ``answer_type``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from benchmarks import choice, images
from benchmarks.scoring import _last_boxed

REGISTRY_DIR = Path(str(resources.files("benchmarks") / "registry"))  # package data
VL_REGISTRY_DIR = REGISTRY_DIR / "vl"
SYNTH_PREFIX = "synth_"
SYNTH_VL_PREFIX = "synth_vl_"
GOLD_RULES = ("field", "after_hashes", "last_boxed", "first_of_list")
MODALITIES = ("text", "vl")
ANSWER_TYPES = choice.ANSWER_TYPES + ("per_row",)
_REQUIRED = ("name", "description", "gold_rule", "prompt", "chat_template", "k", "sampling")


class BenchmarkError(ValueError):
    """An unknown benchmark, a malformed registry entry or missing data; the message says how to fix it."""


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark. ``load()`` gives rows ``{id, problem, gold, prompt}`` (VL rows also ``image``,
    ``choices`` and ``answer_type``)."""

    name: str
    description: str
    gold_rule: str
    prompt: str
    chat_template: bool
    k: int
    sampling: dict
    size: int | None = None
    file: str | None = None
    fields: dict = field(default_factory=dict)
    hub: dict | None = None
    task: str | None = None  # set for synth_<task> and synth_vl_<task>
    modality: str = "text"  # text | vl
    answer_type: str = "free_form"  # multi_choice | free_form | per_row (VL: read per row)
    split: str | None = None
    mc_values: dict = field(default_factory=dict)  # raw per-row type value -> multi_choice | free_form
    notes: str | None = None

    def format_prompt(self, problem: str, choices: list[str] | None = None) -> str:
        # plain replacement, not str.format: problems are full of LaTeX braces
        text = self.prompt.replace("{problem}", problem)
        if "{choices}" in text:
            listed = "\n".join(f"({choice.LETTERS[i]}) {c}" for i, c in enumerate(choices or []))
            text = text.replace("{choices}", ("\nChoices:\n" + listed) if listed else "")
        return text

    def load(self, data_dir: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0,
             max_side: int = images.DEFAULT_MAX_SIDE) -> list[dict]:
        """Problems in file order (first ``limit`` of them), each ``{id, problem, gold, prompt}``; VL rows also
        ``image`` (resized by :func:`benchmarks.images.resize_image` to ``max_side``), ``choices``, ``answer_type``."""
        if limit is not None and limit < 1:
            raise BenchmarkError(f"--limit must be a positive number of problems, got {limit}")
        if self.task is not None:
            return self._load_synthetic(limit, seed, max_side)
        path = self.local_path(data_dir)
        if path is not None:
            rows, spec, rule = _read_jsonl(path), self.fields, self.gold_rule
        elif os.environ.get("MHPO_ONLINE") == "1" and self.hub:
            rows = _load_hub(self.hub)
            spec, rule = {**self.fields, **self.hub.get("fields", {})}, self.hub.get("gold_rule", self.gold_rule)
        else:
            raise BenchmarkError(self._missing_message(data_dir))
        keys = ("problem", "gold") + (("image",) if self.modality == "vl" else ())
        out = []
        for i, row in enumerate(rows[:limit] if limit else rows):
            where = f"{self.name} row {i}"
            missing = [spec[k] for k in keys if not isinstance(row, dict) or spec[k] not in row]
            if missing:
                have = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise BenchmarkError(f"benchmark {self.name!r}: row {i} of {path or 'the Hub copy'} has no field "
                                     f"{' or '.join(map(repr, missing))} (it has: {have}); each row needs the "
                                     f"fields {', '.join(repr(spec[k]) for k in keys)} ({self._entry_file()})")
            problem = str(row[spec["problem"]])
            pid = row.get(spec["id"]) if spec.get("id") else None
            item = {"id": str(i if pid is None else pid), "problem": problem,
                    "gold": gold_of(row[spec["gold"]], rule, where=where), "prompt": self.format_prompt(problem)}
            if self.modality == "vl":
                item.update(self._vl_fields(row, spec, item["gold"], where, path, max_side))
            out.append(item)
        return out

    def _vl_fields(self, row: dict, spec: dict, gold: str, where: str, path: Path | None, max_side: int) -> dict:
        """What a VL row adds: the image, the choices, the answer type; the prompt with the choices listed."""
        choices = choice.parse_choices(row.get(spec["choices"]) if spec.get("choices") else None)
        atype = self.answer_type
        if atype == "per_row" and spec.get("answer_type"):
            raw = row.get(spec["answer_type"])
            if raw not in self.mc_values:
                raise BenchmarkError(f"{where}: {spec['answer_type']}={raw!r} is not one of {sorted(self.mc_values)}")
            atype = self.mc_values[raw]
        elif atype == "per_row":  # e.g. MathVision: options present = multiple choice
            atype = "multi_choice" if choices else "free_form"
        # the image is passed to the processor separately: drop inline "<image>" markers (Geometry3K)
        problem = str(row[spec["problem"]]).replace("<image>", "").strip()
        if atype == "multi_choice" and choice.option_letter(gold, choices) is None:
            raise BenchmarkError(f"{where}: multiple-choice gold {gold!r} is neither a letter nor one of the "
                                 f"choices {choices!r}")
        try:
            image = images.open_image(row[spec["image"]], None if path is None else path.parent, max_side)
        except ValueError as e:
            raise BenchmarkError(f"{where}: {e}") from None
        prompt = self.format_prompt(problem, choices if atype == "multi_choice" else None)
        return {"problem": problem, "prompt": prompt, "image": image, "choices": choices, "answer_type": atype}

    def _load_synthetic(self, limit: int | None, seed: int, max_side: int) -> list[dict]:
        if self.modality == "vl":  # the visual tasks' test split is always rendered with seed 0
            rows = _task_module(self.modality).load(self.task, "test", n=limit, seed=0)
            return [{"id": r["id"], "problem": r["problem"], "gold": r["answer"],
                     "prompt": self.format_prompt(r["problem"]), "image": images.resize_image(r["image"], max_side),
                     "choices": r["choices"], "answer_type": r["answer_type"]} for r in rows]
        rows = _task_module(self.modality).load(self.task, "test", n=limit, seed=seed)
        return [{"id": str(i if r.get("id") is None else r["id"]), "problem": str(r["problem"]),
                 "gold": gold_of(r["answer"], "field", where=f"{self.name} row {i}"),
                 "prompt": self.format_prompt(str(r["problem"]))} for i, r in enumerate(rows)]

    def source(self, data_dir=None) -> str:
        """Where :meth:`load` reads from (recorded in summaries as ``data``)."""
        if self.task is not None:
            vl_task = self.modality == "vl"
            return f"mhpo.tasks.vl:{self.task}/test (seed 0)" if vl_task else f"mhpo.tasks.text:{self.task}/test"
        path = self.local_path(data_dir)
        if path is None:
            return f"hub:{(self.hub or {}).get('dataset')}"
        return str(path.parent if self.modality == "vl" else path)

    def _entry_file(self) -> str:
        return f"benchmarks/registry/{'vl/' if self.modality == 'vl' else ''}{self.name}.yaml"

    def local_path(self, data_dir=None) -> Path | None:
        if self.file is None:
            return None
        for d in data_dirs(data_dir):
            p = d / self.file
            if p.is_file():
                return p
        return None

    def _missing_message(self, data_dir) -> str:
        looked = ", ".join(str(d / self.file) for d in data_dirs(data_dir)) or "(no data directory configured)"
        hub = f"; or set MHPO_ONLINE=1 to download {self.hub['dataset']} from the Hugging Face Hub" if self.hub else ""
        if self.modality == "vl":
            hub = (f" (one JSON object per line, the image field '{self.fields['image']}' holding paths relative to "
                   f"<DIR>/{Path(self.file).parent}/, e.g. images/0.png). Where the Hub is reachable, `python -m "
                   f"benchmarks.vl export --benchmark {self.name} --out DIR` writes that layout from "
                   f"{(self.hub or {}).get('dataset')}{hub}")
        return (
            f"benchmark {self.name!r}: data file not found; looked in {looked}. Put the file at "
            f"<DIR>/{self.file} and pass --data-dir DIR (or set MHPO_BENCHMARK_DIR=DIR){hub}."
        )


def data_dirs(data_dir=None) -> list[Path]:
    """Where local copies are looked for: the explicit dir (config ``data_dir``, ``--data-dir``), else
    $MHPO_BENCHMARK_DIR; nothing else (no directory is guessed from where the package sits)."""
    if data_dir:
        return [Path(data_dir).expanduser().resolve()]
    if os.environ.get("MHPO_BENCHMARK_DIR"):
        return [Path(os.environ["MHPO_BENCHMARK_DIR"]).expanduser().resolve()]
    return []


def gold_of(value, rule: str, where: str = "") -> str:
    """The gold answer string from a raw field value according to ``rule`` (see GOLD_RULES)."""

    if rule == "field":
        gold = value
    elif rule == "after_hashes":
        gold = str(value).rsplit("####", 1)[1] if "####" in str(value) else None
    elif rule == "last_boxed":
        gold = _last_boxed(str(value))
    elif rule == "first_of_list":
        gold = value[0] if isinstance(value, list) and value else None
    else:
        raise BenchmarkError(f"unknown gold_rule {rule!r}; use one of {', '.join(GOLD_RULES)}")
    if gold is None or not str(gold).strip():
        raise BenchmarkError(f"{where}: no gold answer under rule {rule!r} in {str(value)[:80]!r}")
    return str(gold).strip()


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise BenchmarkError(f"{path}:{n}: not valid JSON ({e.msg}); each line must be one object") from e
    return rows


def _load_hub(hub: dict) -> list[dict]:
    import datasets  # lazy: start-up time

    ds = datasets.load_dataset(hub["dataset"], hub.get("config"), split=hub["split"])
    return [dict(r) for r in ds]


def _task_module(modality: str = "text"):
    """``mhpo.tasks.text`` (text) or ``mhpo.tasks.vl`` (vl); None when the training package is not installed."""
    try:
        if modality == "vl":
            from mhpo.tasks import vl as tasks  # lazy: optional, its absence is handled here
        else:
            from mhpo.tasks import text as tasks  # lazy: optional, its absence is handled here
    except ImportError:
        return None
    return tasks


def _read_entry(path: Path) -> dict:
    """A YAML entry merged over its ``include:`` file (relative to it), recursively."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise BenchmarkError(f"{path}: a registry entry must be a YAML mapping")
    if "include" in data:
        base = path.parent / data.pop("include")
        if not base.is_file():
            raise BenchmarkError(f"{path}: include {base.name!r} not found next to it")
        data = {**_read_entry(base), **data}
    return data


def _entry(path: Path) -> dict:
    data = _read_entry(path)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise BenchmarkError(f"{path}: registry entry lacks {', '.join(missing)}")
    if data["gold_rule"] not in GOLD_RULES:
        raise BenchmarkError(f"{path}: gold_rule {data['gold_rule']!r} is not one of {', '.join(GOLD_RULES)}")
    if "{problem}" not in data["prompt"]:
        raise BenchmarkError(f"{path}: prompt template must contain {{problem}}")
    data.setdefault("modality", "text")
    if data["modality"] not in MODALITIES:
        raise BenchmarkError(f"{path}: modality {data['modality']!r} is not one of {', '.join(MODALITIES)}")
    if data.get("answer_type", "free_form") not in ANSWER_TYPES:
        raise BenchmarkError(f"{path}: answer_type {data['answer_type']!r} is not one of {', '.join(ANSWER_TYPES)}")
    data.pop("synthetic", None)
    return data


@functools.cache
def _static() -> dict[str, Benchmark]:
    out = {}
    for path in sorted(REGISTRY_DIR.glob("*.yaml")) + sorted(VL_REGISTRY_DIR.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        data = _entry(path)
        if data["name"] != path.stem:
            raise BenchmarkError(f"{path}: name {data['name']!r} must equal the file name {path.stem!r}")
        if "task" not in data and ("file" not in data or "fields" not in data):
            raise BenchmarkError(f"{path}: a benchmark needs `file` and `fields` (data on disk) or `task` (a task "
                                 "of mhpo.tasks.text, e.g. synthetic problems asked through a chat template)")
        if data["modality"] == "vl" and "image" not in data.get("fields", {}):
            raise BenchmarkError(f"{path}: a VL benchmark needs fields.image")
        if data["name"] in out:
            raise BenchmarkError(f"{path}: benchmark {data['name']!r} is registered twice")
        out[data["name"]] = Benchmark(**data)
    return out


def _synthetic(task: str, modality: str) -> Benchmark:
    data = copy.deepcopy(_entry((VL_REGISTRY_DIR if modality == "vl" else REGISTRY_DIR) / "_synthetic.yaml"))
    data["name"] = data["name"].replace("{task}", task)
    data["description"] = data["description"].replace("{task}", task)
    if modality == "vl":
        tasks = _task_module("vl")
        data.update(answer_type=tasks.TASKS[task]["answer_type"], size=tasks.DEFAULT_N["test"])
    return Benchmark(task=task, **data)


def _synthetic_names() -> list[str]:
    names = []
    for prefix, modality in ((SYNTH_PREFIX, "text"), (SYNTH_VL_PREFIX, "vl")):
        tasks = _task_module(modality)
        names += [prefix + t for t in tasks.available()] if tasks is not None else []
    return names


def available(modality: str | None = None) -> list[str]:
    """Every registered benchmark name, text and VL: the file-backed ones, then ``synth_<task>`` and
    ``synth_vl_<task>`` when the training package exists. ``modality`` ("text" | "vl") keeps only those."""
    names = list(_static()) + _synthetic_names()
    return names if modality is None else [n for n in names if get(n).modality == modality]


def get(name: str) -> Benchmark:
    """The benchmark called ``name``; an unknown name lists the known ones."""
    static = _static()
    if name in static:
        return static[name]
    for prefix, modality in ((SYNTH_VL_PREFIX, "vl"), (SYNTH_PREFIX, "text")):
        if name.startswith(prefix):
            tasks = _task_module(modality)
            task = name[len(prefix):]
            if tasks is not None and task in tasks.available():
                return _synthetic(task, modality)
            break
    raise BenchmarkError(f"unknown benchmark {name!r}; available: {', '.join(available())}")


def modality_of(name: str) -> str | None:
    """``"text"`` or ``"vl"`` for a registered benchmark, None for an unknown name."""
    try:
        return get(name).modality
    except BenchmarkError:
        return None


def parse_names(spec: str, modality: str = "text") -> list[str]:
    """``"a,b"`` -> validated names; ``"all"`` -> every file-backed benchmark of ``modality``."""
    if spec.strip() == "all":
        names = [n for n, b in _static().items() if b.modality == modality]
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise BenchmarkError("no benchmark named; pass e.g. --benchmarks math500,aime24 (or 'all')")
    for n in names:
        get(n)
    return names
