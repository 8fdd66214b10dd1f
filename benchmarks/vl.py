"""Vision-language benchmarks: registry, loading (local copies, offline), image resizing, scoring, evaluation.

    from benchmarks import vl
    vl.available()                           # ['geometry3k', 'mathverse', 'mathvision', 'mathvista', 'wemath']
    rows = vl.get("mathvista").load(data_dir) # [{id, problem, prompt, gold, image (PIL), choices, answer_type}]
    vl.is_correct_vl("The answer is (B).", gold="B", answer_type="multi_choice", choices=["1", "2"])  # True

Registry: one declarative YAML per benchmark in ``benchmarks/registry/vl/`` (same keys as the text entries —
``name``, ``description``, ``size``, ``file``, ``fields``, ``gold_rule``, ``prompt``, ``chat_template``, ``k``,
``sampling``, ``hub`` — plus ``fields.image``, ``fields.choices``, ``answer_type`` and ``split``). They live
in a sub-folder so that the text catalog (``benchmarks.catalog``, which globs ``registry/*.yaml``) is unchanged.

Local layout (offline; nothing is downloaded unless ``MHPO_ONLINE=1``)::

    <DIR>/<name>/test.jsonl     one JSON object per problem, with the hub's field names
    <DIR>/<name>/images/...     image files; the image field holds a path relative to <DIR>/<name>/
                                (a list of paths for list-valued fields such as Geometry3K's ``images``)

``python -m benchmarks.vl export --benchmark NAME --out DIR`` writes that layout from the Hub (run it where
the Hub is reachable, then copy DIR). DIR is ``--data-dir``, else ``$MHPO_BENCHMARK_DIR``
(``benchmarks.catalog.data_dirs``).

Image rule (recorded in every summary as ``image_resize``): an image whose longest side exceeds
``max_side`` (default 1024 px) is downscaled so that its longest side equals ``max_side``, keeping the aspect
ratio (bicubic); smaller images are left as they are (no upscaling); every image is converted to RGB. The
model's own processor may resize further (e.g. Qwen2.5-VL's min/max pixels), which is part of the model.

Scoring: multiple choice — the predicted option is read as a letter ("B", "(B)", "B.", "Answer: B",
``\\boxed{B}``) or as an option's text, and compared with the gold letter (a gold given as option text is
mapped to its letter first). Free form — ``benchmarks.scoring.is_correct`` (math-verify).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmarks import catalog
from benchmarks.catalog import BenchmarkError

VL_REGISTRY_DIR = catalog.REGISTRY_DIR / "vl"
ANSWER_TYPES = ("multi_choice", "free_form", "per_row")
DEFAULT_MAX_SIDE = 1024
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_REQUIRED = ("name", "description", "file", "fields", "prompt", "chat_template", "k", "sampling", "answer_type")


# --------------------------------------------------------------------------------------------- images
def resize_rule(max_side: int = DEFAULT_MAX_SIDE) -> dict:
    """The resize rule as recorded in summaries."""
    return {"rule": "longest side <= max_side px, aspect kept, bicubic, no upscaling, RGB", "max_side": int(max_side)}


def resize_image(img, max_side: int = DEFAULT_MAX_SIDE):
    """Apply the documented rule to one PIL image (returns a new RGB image)."""
    from PIL import Image

    if max_side < 1:
        raise ValueError(f"max_side must be >= 1 px; got {max_side}")
    img = img.convert("RGB")
    w, h = img.size
    longest = max(w, h)
    if longest <= max_side:
        return img
    scale = max_side / longest
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)


# -------------------------------------------------------------------------------------------- scoring
_BOXED = re.compile(r"\\(?:boxed|fbox)\{([^{}]*)\}")
_ANSWER_PHRASE = re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)\s*[:\-]?\s*(.+)", re.IGNORECASE)
# A whole span that is one option letter: "B", "(B)", "B.", "B:", "B)", "(b)"; lower case only in parentheses
# (a bare "a" is an article far more often than an option).
_LETTER_ONLY = re.compile(r"^(?:\(\s*([A-Za-z])\s*\)|([A-Z])[.:)]?)$")
# A span that starts with a marked letter: "(B) 145°", "B. 3", "B: yes", "B) no" (not "A triangle ...").
_LETTER_LEAD = re.compile(r"^(?:\(([A-Z])\)|([A-Z])[.:)])\s*\S")


def normalize_text(s: str) -> str:
    """Lower-case, drop ``$``, LaTeX spacing, braces and surrounding punctuation, collapse spaces."""
    s = str(s).strip().replace("$", "")
    s = re.sub(r"\^\{?\\circ\}?|°|\\circ", "", s)  # degrees: "145°", "145^\\circ", "145^{\\circ}" -> "145"
    s = re.sub(r"\\(?:left|right|,|;|!|\s)", "", s)
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    s = s.replace("{", "").replace("}", "")
    s = re.sub(r"\s+", " ", s).strip().strip(".;,").strip()
    return s.lower()


def option_letter(gold: str, choices: list[str] | None) -> str | None:
    """The gold's letter: ``gold`` itself if it is a letter (``"B"``, ``"(B)"``), else the letter of the choice
    whose text equals ``gold`` after :func:`normalize_text`; None if neither."""
    g = str(gold).strip()
    m = _LETTER_ONLY.match(g)
    letter = (m.group(1) or m.group(2)).upper() if m else None
    if letter and (not choices or LETTERS.index(letter) < len(choices)):
        return letter
    if choices:
        ng = normalize_text(g)
        for i, c in enumerate(choices):
            if normalize_text(c) == ng:
                return LETTERS[i]
    return None


def _candidates(completion: str) -> list[str]:
    """Answer spans, most specific first: last \\boxed{}, text after the last "answer is"/"Answer:", last line."""
    text = str(completion).strip()
    out = []
    boxed = _BOXED.findall(text)
    if boxed:
        out.append(boxed[-1])
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        out.append(phrases[-1].group(1).strip().split("\n")[0])
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if lines:
        out.append(lines[-1])
    return out


def extract_choice(completion: str, choices: list[str] | None, n_options: int | None = None) -> str | None:
    """The option letter a completion picks, or None. A span that is a single letter (``B``, ``(B)``, ``B.``),
    starts with one (``(B) 145°``, ``B. 3``), or equals an option's text counts; letters beyond the number of
    options (``n_options`` or ``len(choices)``; all 26 when both are unknown) do not."""
    limit = n_options or (len(choices) if choices else len(LETTERS))
    valid = set(LETTERS[:limit])
    for span in _candidates(completion):
        span = span.strip().strip("*").strip()
        m = _LETTER_ONLY.match(span) or _LETTER_LEAD.match(span)
        letter = (m.group(1) or m.group(2)).upper() if m else None
        if letter in valid:
            return letter
        if choices:
            ns = normalize_text(span)
            for i, c in enumerate(choices):
                if ns and normalize_text(c) == ns:
                    return LETTERS[i]
    return None


def is_correct_vl(completion: str, gold: str, answer_type: str, choices: list[str] | None = None,
                  timeout: float | None = None) -> bool:
    """Score one completion. ``answer_type``: ``multi_choice`` or ``free_form`` (see the module docstring)."""
    from benchmarks import scoring

    if answer_type not in ("multi_choice", "free_form"):
        raise ValueError(f"answer_type must be 'multi_choice' or 'free_form'; got {answer_type!r}")
    if answer_type == "free_form":
        return scoring.is_correct(str(completion), str(gold), **({"timeout": timeout} if timeout else {}))
    gold_letter = option_letter(gold, choices)
    if gold_letter is None:
        raise ValueError(f"multiple-choice gold {gold!r} is neither a letter nor one of the choices {choices!r}")
    picked = extract_choice(completion, choices)
    if picked is not None:
        return picked == gold_letter
    if choices:  # no letter: an equivalent value of the gold option (e.g. "145" for "145°") still counts
        gold_text = choices[LETTERS.index(gold_letter)]
        extracted = scoring.extract_answer(str(completion))
        if extracted is not None and normalize_text(extracted) == normalize_text(gold_text):
            return True
        return scoring.is_correct(str(completion), normalize_text(gold_text) or gold_text,
                                  **({"timeout": timeout} if timeout else {}))
    return False


def extracted_answer(completion: str, answer_type: str, choices: list[str] | None = None) -> str | None:
    """What the scorer read from a completion (for the records' ``extracted`` field and maj@k)."""
    from benchmarks import scoring

    if answer_type == "multi_choice":
        return extract_choice(completion, choices) or scoring.extract_answer(str(completion))
    return scoring.extract_answer(str(completion))


# ------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class VLBenchmark:
    """One VL benchmark. ``load()`` gives rows ``{id, problem, prompt, gold, image, choices, answer_type}``."""

    name: str
    description: str
    file: str
    fields: dict
    prompt: str
    chat_template: bool
    k: int
    sampling: dict
    answer_type: str  # multi_choice | free_form | per_row (read from fields.answer_type per row)
    gold_rule: str = "field"
    size: int | None = None
    split: str | None = None
    hub: dict | None = None
    mc_values: dict = field(default_factory=dict)  # raw per-row type value -> multi_choice | free_form
    notes: str | None = None

    def local_dir(self, data_dir=None) -> Path | None:
        for d in catalog.data_dirs(data_dir):
            if (d / self.file).is_file():
                return (d / self.file).parent
        return None

    def _missing_message(self, data_dir) -> str:
        looked = ", ".join(str(d / self.file) for d in catalog.data_dirs(data_dir)) or "(no data directory configured)"
        hub = self.hub or {}
        return (
            f"VL benchmark {self.name!r}: data not found offline; looked in {looked}. Provide it as "
            f"<DIR>/{self.file} (one JSON object per line, the image field '{self.fields['image']}' holding paths "
            f"relative to <DIR>/{Path(self.file).parent}/, e.g. images/0.png) and pass --data-dir DIR (or set "
            f"MHPO_BENCHMARK_DIR=DIR). Where the Hub is reachable, `python -m benchmarks.vl export --benchmark "
            f"{self.name} --out DIR` writes that layout from {hub.get('dataset')} (split {hub.get('split')}); "
            "or set MHPO_ONLINE=1 to load it directly."
        )

    def load(self, data_dir=None, limit: int | None = None, max_side: int = DEFAULT_MAX_SIDE) -> list[dict]:
        """Problems in file order (first ``limit``), images opened and resized by :func:`resize_image`."""
        if limit is not None and limit < 1:
            raise BenchmarkError(f"--limit must be a positive number of problems, got {limit}")
        base = self.local_dir(data_dir)
        if base is not None:
            raw = catalog._read_jsonl(base / Path(self.file).name)
            spec = self.fields
        elif os.environ.get("MHPO_ONLINE") == "1" and self.hub:
            raw, base = catalog._load_hub(self.hub), None
            spec = {**self.fields, **self.hub.get("fields", {})}
        else:
            raise BenchmarkError(self._missing_message(data_dir))
        rows = []
        for i, r in enumerate(raw[:limit] if limit else raw):
            where = f"{self.name} row {i}"
            for key in ("problem", "gold", "image"):
                if spec[key] not in r:
                    raise BenchmarkError(f"{where}: field {spec[key]!r} (fields.{key}) missing; the row has {sorted(r)}")
            choices = _choices(r.get(spec["choices"]) if spec.get("choices") else None)
            atype = self._answer_type(r, spec, choices, where)
            # the image is passed to the processor separately: drop inline "<image>" markers (Geometry3K)
            problem = str(r[spec["problem"]]).replace("<image>", "").strip()
            rows.append({
                "id": str(r.get(spec["id"], i) if spec.get("id") else i),
                "problem": problem,
                "prompt": self.format_prompt(problem, choices if atype == "multi_choice" else None),
                "gold": catalog.gold_of(r[spec["gold"]], self.gold_rule, where=where),
                "image": _open_image(r[spec["image"]], base, where, max_side),
                "choices": choices,
                "answer_type": atype,
            })
        if any(r["answer_type"] == "multi_choice" and option_letter(r["gold"], r["choices"]) is None for r in rows):
            bad = next(r for r in rows if r["answer_type"] == "multi_choice" and option_letter(r["gold"], r["choices"]) is None)
            raise BenchmarkError(f"{self.name} problem {bad['id']}: multiple-choice gold {bad['gold']!r} is neither a "
                                 f"letter nor one of the choices {bad['choices']!r}")
        return rows

    def _answer_type(self, r: dict, spec: dict, choices, where: str) -> str:
        if self.answer_type != "per_row":
            return self.answer_type
        if spec.get("answer_type"):
            raw = r.get(spec["answer_type"])
            if raw not in self.mc_values:
                raise BenchmarkError(f"{where}: {spec['answer_type']}={raw!r} is not one of {sorted(self.mc_values)}")
            return self.mc_values[raw]
        return "multi_choice" if choices else "free_form"  # e.g. MathVision: options present = multiple choice

    def format_prompt(self, problem: str, choices: list[str] | None = None) -> str:
        text = self.prompt.replace("{problem}", problem)
        if "{choices}" in text:
            listed = "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices)) if choices else ""
            text = text.replace("{choices}", ("\nChoices:\n" + listed) if listed else "")
        return text


    def source(self, data_dir=None) -> str:
        """Where :meth:`load` reads from (recorded in summaries as ``data``)."""
        base = self.local_dir(data_dir)
        return str(base) if base is not None else f"hub:{(self.hub or {}).get('dataset')}"


@dataclass(frozen=True)
class SyntheticVLBenchmark(VLBenchmark):
    """``synth_vl_<task>``: the test split of a ``mhpo.vl.tasks`` task (rendered offline, seed 0), scored like the
    registry benchmarks. The prompt is the task's problem text alone, as the tiny VLM is trained on it."""

    task: str = ""

    def local_dir(self, data_dir=None) -> Path | None:
        return None

    def source(self, data_dir=None) -> str:
        return f"mhpo.vl.tasks:{self.task}/test (seed 0)"

    def load(self, data_dir=None, limit: int | None = None, max_side: int = DEFAULT_MAX_SIDE) -> list[dict]:
        from mhpo.vl import tasks

        if limit is not None and limit < 1:
            raise BenchmarkError(f"--limit must be a positive number of problems, got {limit}")
        return [{"id": r["id"], "problem": r["problem"], "prompt": self.format_prompt(r["problem"]),
                 "gold": r["answer"], "image": resize_image(r["image"], max_side), "choices": r["choices"],
                 "answer_type": r["answer_type"]} for r in tasks.load(self.task, "test", n=limit, seed=0)]


SYNTH_PREFIX = "synth_vl_"


def _synthetic(name: str) -> SyntheticVLBenchmark:
    from mhpo.vl import tasks

    task = name[len(SYNTH_PREFIX):]
    if task not in tasks.TASKS:
        raise BenchmarkError(f"unknown synthetic VL benchmark {name!r}; available: "
                             f"{', '.join(SYNTH_PREFIX + t for t in tasks.available())}")
    return SyntheticVLBenchmark(
        name=name, description=f"synthetic visual task {task!r} (mhpo.vl.tasks), test split", file="", fields={},
        prompt="{problem}", chat_template=True, k=4, sampling={"temperature": 1.0, "top_p": 1.0, "max_tokens": 4},
        answer_type=tasks.TASKS[task]["answer_type"], size=tasks.DEFAULT_N["test"], split="test", task=task)


def is_vl(name: str) -> bool:
    """A VL benchmark name: a registry entry or ``synth_vl_<task>``."""
    return name in _registry() or name.startswith(SYNTH_PREFIX)


def _choices(value) -> list[str] | None:
    """Choices as a list of strings: lists pass through; We-Math's "A. x; B. y" strings are split."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        return [str(c) for c in value]
    parts = re.split(r"\s*;\s*(?=[A-Z][.:])", str(value).strip())
    out = [re.sub(r"^[A-Z][.:]\s*", "", p).strip() for p in parts if p.strip()]
    return out or None


def _open_image(value, base: Path | None, where: str, max_side: int):
    from PIL import Image

    if isinstance(value, list):  # Geometry3K: a list of images; these benchmarks use the first
        if not value:
            raise BenchmarkError(f"{where}: empty image list")
        value = value[0]
    if hasattr(value, "convert"):  # a PIL image (hub rows)
        return resize_image(value, max_side)
    if isinstance(value, dict) and value.get("bytes"):
        import io as _io

        return resize_image(Image.open(_io.BytesIO(value["bytes"])), max_side)
    if isinstance(value, dict) and value.get("path"):
        value = value["path"]
    if not isinstance(value, str) or base is None:
        raise BenchmarkError(f"{where}: cannot read an image from {type(value).__name__} {str(value)[:60]!r}")
    path = (base / value).resolve()
    if not path.is_file():
        raise BenchmarkError(f"{where}: image file {path} not found (image paths are relative to {base})")
    with Image.open(path) as img:
        return resize_image(img, max_side)


def _entry(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise BenchmarkError(f"{path}: VL registry entry lacks {', '.join(missing)}")
    if data["name"] != path.stem:
        raise BenchmarkError(f"{path}: name {data['name']!r} must equal the file name {path.stem!r}")
    if data["answer_type"] not in ANSWER_TYPES:
        raise BenchmarkError(f"{path}: answer_type {data['answer_type']!r} is not one of {', '.join(ANSWER_TYPES)}")
    for key in ("problem", "gold", "image"):
        if key not in data["fields"]:
            raise BenchmarkError(f"{path}: fields.{key} is required")
    if "{problem}" not in data["prompt"]:
        raise BenchmarkError(f"{path}: prompt template must contain {{problem}}")
    return data


@functools.lru_cache(maxsize=None)
def _registry() -> dict[str, VLBenchmark]:
    return {p.stem: VLBenchmark(**_entry(p)) for p in sorted(VL_REGISTRY_DIR.glob("*.yaml"))}


def available() -> list[str]:
    return sorted(_registry())


def get(name: str) -> VLBenchmark:
    """A registry benchmark, or ``synth_vl_<task>`` (a synthetic visual task's test split)."""
    if name.startswith(SYNTH_PREFIX):
        return _synthetic(name)
    reg = _registry()
    if name not in reg:
        raise BenchmarkError(f"unknown VL benchmark {name!r}; available: {', '.join(available())}")
    return reg[name]


def parse_names(spec: str) -> list[str]:
    names = available() if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise BenchmarkError("no VL benchmark named; pass e.g. --benchmarks mathvista,geometry3k (or 'all')")
    for n in names:
        get(n)
    return names


# ----------------------------------------------------------------------------------------- generation
class HFVLGenerator:
    """transformers backend for image-text-to-text models: processor chat template + ``generate``."""

    name = "hf"

    def __init__(self, model: str, device: str | None = None, dtype: str | None = None,
                 trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device != "cpu" else torch.float32)
        self.model = AutoModelForImageTextToText.from_pretrained(
            model, dtype=torch_dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        self.tokenizer.padding_side = "left"
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id

    def render(self, prompt: str) -> str:
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def identity(self) -> dict:
        return {"dtype": str(self.model.dtype).removeprefix("torch."), "device": str(self.device).split(":")[0]}

    def generate(self, rows: list[dict], sampling) -> list[list[tuple[str, int]]]:
        """``sampling.n`` completions per row, one problem per ``generate`` call, sample ``j`` of problem ``p``
        seeded by ``benchmarks.generation.sample_seed(seed, p, j)``: the same whatever the batch size
        (benchmarks.generation explains the scheme)."""
        return [self._generate_one(r, sampling) for r in rows]

    def _generate_one(self, row: dict, sampling) -> list[tuple[str, int]]:
        from transformers import LogitsProcessorList

        from benchmarks.generation import sample_seed, seeded_sampler

        torch = self.torch
        greedy = sampling.temperature == 0
        n_rows = 1 if greedy else sampling.n
        text = self.render(row["prompt"])  # identical rows: no padding
        enc = self.processor(text=[text] * n_rows, images=[row["image"]] * n_rows, return_tensors="pt", padding=True)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kwargs = dict(max_new_tokens=sampling.max_tokens, pad_token_id=self.pad_id, do_sample=False,
                      temperature=None, top_p=None, top_k=None)
        if not greedy:
            seeds = [sample_seed(sampling.seed, row["id"], j) for j in range(n_rows)]
            kwargs["logits_processor"] = LogitsProcessorList(
                [seeded_sampler(seeds, sampling.temperature, sampling.top_p, self.device)])
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        gen = out[:, enc["input_ids"].shape[1]:].tolist()
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos if eos is not None else self.tokenizer.eos_token_id])
        samples = []
        for toks in gen:
            cut = next((t + 1 for t, tok in enumerate(toks) if tok in eos), len(toks))
            toks = [t for t in toks[:cut] if t != self.pad_id or t in eos]
            samples.append((self.tokenizer.decode(toks, skip_special_tokens=True), len(toks)))
        return samples * sampling.n if greedy else samples


# ----------------------------------------------------------------------------------------- evaluation
def evaluate(model: str, names: list[str], out, k: int | None = None, data_dir=None, limit: int | None = None,
             temperature: float | None = None, top_p: float | None = None, max_tokens: int | None = None,
             seed: int = 0, batch_size: int = 8, max_side: int = DEFAULT_MAX_SIDE, device: str | None = None,
             label: str | None = None, step: int | None = None, timeout: float | None = None,
             trust_remote_code: bool = False) -> dict[str, dict]:
    """Evaluate ``model`` on VL benchmarks; writes ``{bench}.jsonl`` and ``{bench}.summary.json`` (the schema of
    docs/interfaces.md, plus ``image_resize`` and ``throughput`` in the summary). Returns the summaries.
    ``trust_remote_code`` (opt-in) lets the model directory's own Python code run on load."""
    from mhpo import io

    from benchmarks import metrics
    from benchmarks.evaluate import _checkpoint_and_step, _versions
    from benchmarks.generation import SAMPLING_SCHEME, Sampling, remote_code_refusal, resolve_model
    from mhpo import codehash

    model_path = resolve_model(model)
    benches = [get(n) for n in names]
    loaded = {b.name: b.load(data_dir, limit=limit, max_side=max_side) for b in benches}  # fail before the model
    try:
        gen = HFVLGenerator(model_path, device=device, trust_remote_code=trust_remote_code)
    except ValueError as e:
        refusal = remote_code_refusal(model, e, trust_remote_code)
        if refusal is None:
            raise
        raise ValueError(refusal) from e
    from benchmarks.generation import check_finite

    try:  # before the output folder exists: nothing is left behind
        check_finite(gen.model)
    except ValueError as e:
        raise ValueError(f"{model}: {e}") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint, step = _checkpoint_and_step(model_path, step)
    summaries = {}
    for b in benches:
        t0 = time.time()
        problems = loaded[b.name]
        sampling = Sampling(
            temperature=b.sampling["temperature"] if temperature is None else temperature,
            top_p=b.sampling["top_p"] if top_p is None else top_p,
            max_tokens=b.sampling["max_tokens"] if max_tokens is None else max_tokens,
            n=b.k if k is None else k, seed=seed)
        samples: list[list[tuple[str, int]]] = []
        t_gen = time.perf_counter()
        for s in range(0, len(problems), max(1, batch_size)):
            samples += gen.generate(problems[s: s + batch_size], sampling)
        t_gen = time.perf_counter() - t_gen
        records, per_problem = [], {}
        for p, outs in zip(problems, samples):
            for j, (text, ntok) in enumerate(outs[: sampling.n]):
                ok = is_correct_vl(text, p["gold"], p["answer_type"], p["choices"], timeout=timeout)
                ext = extracted_answer(text, p["answer_type"], p["choices"])
                records.append({"run": label or model, "model": model, "checkpoint": checkpoint, "step": step,
                                "benchmark": b.name, "problem_id": p["id"], "sample": j, "completion": text,
                                "extracted": ext, "correct": bool(ok), "n_tokens": int(ntok),
                                "answer_type": p["answer_type"]})
                per_problem.setdefault(p["id"], []).append((ext, bool(ok)))
        n_samples = len(records)
        summary = {
            "benchmark": b.name, "k": sampling.n, "n_problems": len(problems),
            "metrics": metrics.summarize(per_problem, sampling.n, seed=seed),
            "sampling": {**sampling.asdict(), "backend": gen.name, "scheme": SAMPLING_SCHEME, **gen.identity()},
            "code_hash": codehash.eval_hash(vl=True),
            "image_resize": resize_rule(max_side), "data": b.source(data_dir),
            "throughput": {"samples_per_s": round(n_samples / t_gen, 3) if t_gen > 0 else None,
                           "problems_per_s": round(len(problems) / t_gen, 3) if t_gen > 0 else None,
                           "generation_s": round(t_gen, 3)},
            "versions": _versions(gen.name), "model": model, "run": label or model, "checkpoint": checkpoint,
            "step": step, "limit": limit, "wall_time_s": round(time.time() - t0, 3),
        }
        io.write_jsonl(out / f"{b.name}.jsonl", records)
        io.write_json(out / f"{b.name}.summary.json", summary)  # the summary last: it marks the benchmark done
        summaries[b.name] = summary
    return summaries


# ----------------------------------------------------------------------------------------------- export
def export(name: str, out_dir, limit: int | None = None) -> Path:
    """Write ``<out_dir>/<name>/test.jsonl`` + ``images/`` from the Hub dataset (needs network / HF cache)."""
    from mhpo import io

    b = get(name)
    if not b.hub:
        raise BenchmarkError(f"{name}: no hub dataset in its registry entry")
    rows = catalog._load_hub(b.hub)[:limit] if limit else catalog._load_hub(b.hub)
    target = Path(out_dir) / Path(b.file).parent
    (target / "images").mkdir(parents=True, exist_ok=True)
    image_key = b.hub.get("fields", {}).get("image", b.fields["image"])
    out_rows = []
    for i, r in enumerate(rows):
        img = r.pop(image_key)
        img = img[0] if isinstance(img, list) else img
        rel = f"images/{i}.png"
        img.convert("RGB").save(target / rel)
        for key, v in list(r.items()):
            if hasattr(v, "convert"):
                r.pop(key)  # other image columns (e.g. MathVista's decoded_image) are not needed
        r[b.fields["image"]] = rel
        out_rows.append(r)
    io.write_jsonl(target / Path(b.file).name, out_rows)
    return target


# --------------------------------------------------------------------------------------------------- CLI
def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="vl_command", required=True)
    e = sub.add_parser("evaluate", help="evaluate an image-text-to-text model on VL benchmarks")
    e.add_argument("--model", required=True, help="VLM directory, a run dir (uses final/) or checkpoint dir")
    e.add_argument("--benchmarks", required=True,
                   help=f"comma-separated ({', '.join(available())}, {SYNTH_PREFIX}<task>) or 'all' (the registry)")
    e.add_argument("--out", required=True, help="evaluation directory")
    e.add_argument("--k", type=int, default=None, help="samples per problem (default: the benchmark's k)")
    e.add_argument("--data-dir", default=None, help="local benchmark copies <DIR>/<name>/ (python -m benchmarks.vl export)")
    e.add_argument("--limit", type=int, default=None, help="only the first N problems of each benchmark")
    e.add_argument("--temperature", type=float, default=None, help="0 = greedy (default: the benchmark's)")
    e.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass in (0, 1] (default: the benchmark's)")
    e.add_argument("--max-tokens", type=int, default=None, help="most generated tokens per sample")
    e.add_argument("--seed", type=int, default=0, help="sampling seed; sample j of problem p uses (seed, p, j)")
    e.add_argument("--batch-size", type=int, default=8, help="problems per call; completions do not depend on it")
    e.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="image resize rule: longest side in px")
    e.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    e.add_argument("--label", default=None, help="run label written to each record's `run` (default: the model)")
    e.add_argument("--step", type=int, default=None, help="training step of the checkpoint (default: from its name)")
    e.add_argument("--trust-remote-code", action="store_true",
                   help="run the model repository's own Python code on load (opt-in; review that code first)")
    x = sub.add_parser("export", help="write a benchmark's local copy (jsonl + images) from the Hub")
    x.add_argument("--benchmark", required=True, help="registered VL benchmark to export (needs the Hub)")
    x.add_argument("--out", required=True, help="writes OUT/<benchmark>/test.jsonl and its images")
    x.add_argument("--limit", type=int, default=None, help="only the first N problems")


def main(args) -> int:
    try:
        if args.vl_command == "export":
            print(export(args.benchmark, args.out, args.limit))
            return 0
        summaries = evaluate(args.model, parse_names(args.benchmarks), args.out, k=args.k, data_dir=args.data_dir,
                             limit=args.limit, temperature=args.temperature, top_p=args.top_p,
                             max_tokens=args.max_tokens, seed=args.seed, batch_size=args.batch_size,
                             max_side=args.max_side, device=args.device, label=args.label, step=args.step,
                             trust_remote_code=args.trust_remote_code)
    except (BenchmarkError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, s in summaries.items():
        m = s["metrics"]
        print(f"{name:<12} k={s['k']:<3} n={s['n_problems']:<5} avg@k {m['avg@k']['mean']:.3f}  pass@k "
              f"{m['pass@k']['mean']:.3f}  maj@k {m['maj@k']['mean']:.3f}  ({s['throughput']['samples_per_s']} samples/s)")
    return 0


if __name__ == "__main__":
    _p = argparse.ArgumentParser(prog="python -m benchmarks.vl", description=__doc__.split("\n")[0])
    configure(_p)
    sys.exit(main(_p.parse_args()))
