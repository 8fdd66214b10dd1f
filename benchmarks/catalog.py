"""The benchmark registry: one declarative YAML file per benchmark in ``benchmarks/registry/``.

A YAML entry names the local file (``<data-dir>/<name>/test.jsonl``), the field mapping, how the gold is read
(``gold_rule``), the prompt template, the chat-template flag, default ``k`` and sampling, and an optional
Hugging Face dataset used only when the user opts in with ``MHPO_ONLINE=1``. ``_synthetic.yaml`` holds the
defaults of the ``synth_<task>`` benchmarks backed by :mod:`mhpo.tasks`.
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

REGISTRY_DIR = Path(str(resources.files("benchmarks") / "registry"))  # package data
SYNTH_PREFIX = "synth_"
GOLD_RULES = ("field", "after_hashes", "last_boxed", "first_of_list")
_REQUIRED = ("name", "description", "gold_rule", "prompt", "chat_template", "k", "sampling")


class BenchmarkError(ValueError):
    """An unknown benchmark, a malformed registry entry or missing data; the message says how to fix it."""


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark. ``load()`` gives rows ``{id, problem, gold, prompt}``."""

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
    task: str | None = None  # set for synth_<task>

    def format_prompt(self, problem: str) -> str:
        # plain replacement, not str.format: problems are full of LaTeX braces
        return self.prompt.replace("{problem}", problem)

    def load(self, data_dir: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0) -> list[dict]:
        """Problems in file order (first ``limit`` of them), each ``{id, problem, gold, prompt}``."""
        if limit is not None and limit < 1:
            raise BenchmarkError(f"--limit must be a positive number of problems, got {limit}")
        path = None
        if self.task is not None:
            rows = _load_synthetic(self.task, limit, seed)
            spec = {"id": "id", "problem": "problem", "gold": "answer"}
            rule = "field"
        else:
            path = self.local_path(data_dir)
            if path is not None:
                rows = _read_jsonl(path)
                spec, rule = self.fields, self.gold_rule
            elif os.environ.get("MHPO_ONLINE") == "1" and self.hub:
                rows = _load_hub(self.hub)
                spec, rule = self.hub["fields"], self.hub.get("gold_rule", self.gold_rule)
            else:
                raise BenchmarkError(self._missing_message(data_dir))
        out = []
        source = path if self.task is None and path is not None else self.name
        for i, row in enumerate(rows[:limit] if limit else rows):
            missing = [spec[k] for k in ("problem", "gold") if not isinstance(row, dict) or spec[k] not in row]
            if missing:
                have = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise BenchmarkError(f"benchmark {self.name!r}: row {i} of {source} has no field "
                                     f"{' or '.join(map(repr, missing))} (it has: {have}); each row needs the "
                                     f"fields {spec['problem']!r} and {spec['gold']!r} (benchmarks/registry/{self.name}.yaml)")
            problem = str(row[spec["problem"]])
            pid = row.get(spec["id"]) if spec.get("id") else None
            out.append(
                {
                    "id": str(i if pid is None else pid),
                    "problem": problem,
                    "gold": gold_of(row[spec["gold"]], rule, where=f"{self.name} row {i}"),
                    "prompt": self.format_prompt(problem),
                }
            )
        return out

    def local_path(self, data_dir=None) -> Path | None:
        for d in data_dirs(data_dir):
            p = d / self.file
            if p.is_file():
                return p
        return None

    def _missing_message(self, data_dir) -> str:
        looked = ", ".join(str(d / self.file) for d in data_dirs(data_dir)) or "(no data directory configured)"
        hub = f"; or set MHPO_ONLINE=1 to download {self.hub['dataset']} from the Hugging Face Hub" if self.hub else ""
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
    from benchmarks.scoring import _last_boxed

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
    import datasets

    ds = datasets.load_dataset(hub["dataset"], hub.get("config"), split=hub["split"])
    return [dict(r) for r in ds]


def _tasks_module():
    try:
        from mhpo import tasks
    except ImportError:
        return None
    return tasks


def _load_synthetic(task: str, limit: int | None, seed: int) -> list[dict]:
    tasks = _tasks_module()
    if tasks is None:
        raise BenchmarkError(f"synthetic benchmark {SYNTH_PREFIX}{task} needs mhpo.tasks, which is not importable")
    return tasks.load(task, "test", n=limit, seed=seed)


def _entry(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise BenchmarkError(f"{path}: registry entry lacks {', '.join(missing)}")
    if data["gold_rule"] not in GOLD_RULES:
        raise BenchmarkError(f"{path}: gold_rule {data['gold_rule']!r} is not one of {', '.join(GOLD_RULES)}")
    if "{problem}" not in data["prompt"]:
        raise BenchmarkError(f"{path}: prompt template must contain {{problem}}")
    return data


@functools.lru_cache(maxsize=None)
def _static() -> dict[str, Benchmark]:
    out = {}
    for path in sorted(REGISTRY_DIR.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        data = _entry(path)
        if data["name"] != path.stem:
            raise BenchmarkError(f"{path}: name {data['name']!r} must equal the file name {path.stem!r}")
        if "file" not in data or "fields" not in data:
            raise BenchmarkError(f"{path}: a file-backed benchmark needs `file` and `fields`")
        data.pop("synthetic", None)
        out[data["name"]] = Benchmark(**data)
    return out


def _synthetic(task: str) -> Benchmark:
    data = copy.deepcopy(_entry(REGISTRY_DIR / "_synthetic.yaml"))
    data.pop("synthetic", None)
    data["name"] = data["name"].replace("{task}", task)
    data["description"] = data["description"].replace("{task}", task)
    return Benchmark(task=task, **data)


def available() -> list[str]:
    """Every registered benchmark name: the file-backed ones, then ``synth_<task>`` when mhpo.tasks exists."""
    names = list(_static())
    tasks = _tasks_module()
    if tasks is not None:
        names += [SYNTH_PREFIX + t for t in tasks.available()]
    return names


def get(name: str) -> Benchmark:
    """The benchmark called ``name``; an unknown name lists the known ones."""
    static = _static()
    if name in static:
        return static[name]
    if name.startswith(SYNTH_PREFIX):
        tasks = _tasks_module()
        task = name[len(SYNTH_PREFIX) :]
        if tasks is not None and task in tasks.available():
            return _synthetic(task)
    raise BenchmarkError(f"unknown benchmark {name!r}; available: {', '.join(available())}")


def parse_names(spec: str) -> list[str]:
    """``"a,b"`` -> validated names; ``"all"`` -> every file-backed benchmark."""
    names = list(_static()) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise BenchmarkError("no benchmark named; pass e.g. --benchmarks math500,aime24 (or 'all')")
    for n in names:
        get(n)
    return names
