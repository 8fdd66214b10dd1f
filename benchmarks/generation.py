"""Sampling completions: one interface, two backends with the same sampling parameters.

* ``hf``: Hugging Face transformers ``generate`` (CPU or GPU); the default.
* ``vllm``: vLLM's ``LLM.generate`` with ``SamplingParams`` (optional ``gpu`` extra; imported only when chosen).

Batch- and resume-invariant sampling: sample ``j`` of problem ``p`` is drawn with its own random stream, seeded
by :func:`sample_seed` ``(seed, p, j)``, never by a shared generator whose state depends on which problems were
batched together. The HF backend generates one problem at a time, its k samples as k identical rows (no padding,
so every row's logits are computed the same way whatever ``--batch-size`` or the resume point), and samples
each row by the Gumbel-max trick with the row's own ``torch.Generator`` (:class:`SeededSampler`: argmax of
log softmax(logits / T, top-p filtered) + Gumbel noise is an exact draw from the top-p distribution). vLLM gets
one request per sample with ``SamplingParams(seed=sample_seed(...))``. Greedy decoding (T = 0) has no
randomness: one completion per problem, repeated k times.

Both backends tokenize prompts the same way (:func:`encode_prompt`): the chat template when the benchmark
asks for it and the tokenizer has one, else the raw prompt (e.g. the tiny char-level model).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from mhpo.models.loading import PRESETS, ModelLoadError, check_checkpoint, resolve

# Version of the sampling scheme, part of every evaluation fingerprint: bump when a change to how completions are
# drawn would change them for the same checkpoint, seed and settings.
SAMPLING_SCHEME = "per-sample-gumbel-v1"


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters shared by every backend. ``temperature == 0`` means greedy."""

    temperature: float
    top_p: float
    max_tokens: int
    n: int
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1 or self.n < 1:
            raise ValueError(f"--max-tokens and --k must be >= 1, got {self.max_tokens} and {self.n}")

    def asdict(self) -> dict:
        return asdict(self)


def sample_seed(seed: int, problem_id, sample: int) -> int:
    """The seed of sample ``sample`` of problem ``problem_id`` (a 63-bit integer from sha256): the same for
    the same triple whatever the batch, the worker or the resume point."""
    h = hashlib.sha256(f"{int(seed)}\0{problem_id}\0{int(sample)}".encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


def seeded_sampler(seeds: list[int], temperature: float, top_p: float, device):
    """A transformers ``LogitsProcessor`` that turns greedy decoding into sampling, row ``r`` from its own
    ``torch.Generator(seed=seeds[r])`` (Gumbel-max: argmax(log p + G), G = -log(-log U), U ~ Uniform(0, 1))."""
    import torch  # lazy: start-up time
    from transformers import LogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

    class SeededSampler(LogitsProcessor):
        def __init__(self):
            self.gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
            self.warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1 else [])

        def __call__(self, input_ids, scores):
            for w in self.warpers:
                scores = w(input_ids, scores)
            logp = torch.log_softmax(scores.float(), dim=-1)
            V = logp.shape[-1]
            u = torch.stack([torch.rand(V, generator=g, device=logp.device) for g in self.gens])
            tiny = torch.finfo(u.dtype).tiny
            return logp - torch.log(-torch.log(u.clamp(tiny, 1 - 2**-24)))

    return SeededSampler()


def check_finite(model) -> None:
    """Refuse weights with NaN/inf (a corrupt or diverged checkpoint) before sampling anything: a ValueError
    naming the parameters or buffers that hold them."""
    import torch  # lazy: start-up time

    bad = [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"the checkpoint has NaN/inf weights in {len(bad)} tensor(s) (first: {', '.join(bad[:3])}); "
                         "it cannot be sampled. Evaluate an earlier checkpoint (checkpoints/checkpoint-N) or retrain")


def resolve_model(model: str) -> str:
    """A training run directory means its ``final/`` policy; a checkpoint dir or hub name is used as is.
    A local directory must be a complete model (``mhpo.models.loading.check_checkpoint``: config.json, untruncated
    weights); a local-looking path that does not exist is an error, not a hub name."""

    if model in PRESETS:  # e.g. smollm2-135m: its cached or converted local directory, as training loads it
        return resolve(model)["path"]
    p = Path(model).expanduser()
    if p.is_dir() and not (p / "config.json").exists() and (p / "final" / "config.json").exists():
        p = p / "final"
    if p.is_dir():
        if not (p / "config.json").exists():
            raise FileNotFoundError(
                f"{p} has no config.json: pass a Hugging Face model directory, a run's final/ or checkpoint-N/ "
                "directory, or a hub name (hub names need MHPO_ONLINE=1 or a populated HF cache)"
            )
        try:
            return str(check_checkpoint(p).resolve())
        except ModelLoadError as e:
            raise FileNotFoundError(str(e)) from None
    if p.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise FileNotFoundError(f"model path {model!r} does not exist (or is not a directory); pass a Hugging Face "
                                "model directory, a run directory, or a hub name such as 'org/name'")
    return model


def encode_prompt(tokenizer, prompt: str, chat_template: bool) -> list[int]:
    """Token ids of the prompt as the model sees it."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


class HFGenerator:
    """transformers backend: one problem per ``generate`` call, its samples seeded one by one (module doc)."""

    name = "hf"

    def __init__(self, model: str, device: str | None = None, batch_size: int = 8, dtype: str | None = None,
                 trust_remote_code: bool = False):
        import torch  # lazy: start-up time
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device != "cpu" else torch.float32)
        self.dtype = str(torch_dtype).removeprefix("torch.")
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype,
                                                          trust_remote_code=trust_remote_code)
        self.model = self.model.to(self.device).eval()
        self.batch_size = max(1, batch_size)  # problems per progress flush; does not change any completion
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self.eos_ids = self._eos_ids()

    def check_finite(self) -> None:
        """Refuse weights with NaN/inf before sampling anything (:func:`check_finite`)."""
        check_finite(self.model)

    def identity(self) -> dict:
        """What, besides the model and the sampling settings, can change a completion (fingerprint)."""
        return {"dtype": self.dtype, "device": str(self.device).split(":")[0]}

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def encode(self, prompt: str, chat_template: bool) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, chat_template)

    def generate(self, prompts: list[list[int]], sampling: Sampling,
                 problem_ids: list | None = None) -> list[list[tuple[str, int]]]:
        """For each tokenized prompt, ``sampling.n`` completions as ``(text, n_tokens)``; sample ``j`` of problem
        ``problem_ids[i]`` (default: ``i``) is seeded by :func:`sample_seed` ``(sampling.seed, problem_ids[i], j)``."""
        problem_ids = range(len(prompts)) if problem_ids is None else problem_ids
        return [self._generate_one(p, sampling, pid) for p, pid in zip(prompts, problem_ids)]

    def _inputs(self, prompt: list[int], rows: int) -> dict:
        """``generate`` inputs: ``rows`` identical copies of the prompt (no padding)."""
        ids = self.torch.tensor([prompt] * rows, dtype=self.torch.long, device=self.device)
        return {"input_ids": ids, "attention_mask": self.torch.ones_like(ids)}

    def _generate_one(self, prompt, sampling: Sampling, problem_id) -> list[tuple[str, int]]:
        from transformers import LogitsProcessorList  # lazy: start-up time

        torch = self.torch
        greedy = sampling.temperature == 0
        rows = 1 if greedy else sampling.n
        inputs = self._inputs(prompt, rows)  # identical rows: no padding
        kwargs = dict(max_new_tokens=sampling.max_tokens, pad_token_id=self.pad_id, do_sample=False,
                      temperature=None, top_p=None, top_k=None)
        if not greedy:
            seeds = [sample_seed(sampling.seed, problem_id, j) for j in range(rows)]
            kwargs["logits_processor"] = LogitsProcessorList(
                [seeded_sampler(seeds, sampling.temperature, sampling.top_p, self.device)])
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        samples = []
        for toks in out[:, inputs["input_ids"].shape[1]:].tolist():
            toks = self._trim(toks)
            samples.append((self.tokenizer.decode(toks, skip_special_tokens=True), len(toks)))
        return samples * sampling.n if greedy else samples

    def _trim(self, toks: list[int]) -> list[int]:
        for k, t in enumerate(toks):
            if t in self.eos_ids:
                return toks[: k + 1]  # the EOS counts as a generated token
        return toks


class VLLMGenerator:
    """vLLM backend (``pip install 'mhpo-bench[gpu]'``). Same prompts and sampling as the HF backend."""

    name = "vllm"

    def __init__(self, model: str, seed: int = 0, trust_remote_code: bool = False, **engine_kwargs):
        try:
            from vllm import LLM, SamplingParams  # lazy: optional, its absence is handled here
        except ImportError as e:
            raise ImportError(
                "the vllm backend needs vLLM: install the GPU extra (pip install 'mhpo-bench[gpu]') "
                "or use --backend hf"
            ) from e
        self._SamplingParams = SamplingParams
        self.llm = LLM(model=model, seed=seed, trust_remote_code=trust_remote_code, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def encode(self, prompt: str, chat_template: bool) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, chat_template)

    def identity(self) -> dict:
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)  # engine internals vary
        return {"dtype": str(getattr(config, "dtype", "unknown")).removeprefix("torch."), "device": "cuda"}

    def generate(self, prompts: list[list[int]], sampling: Sampling,
                 problem_ids: list | None = None) -> list[list[tuple[str, int]]]:
        """One request per sample, seeded by :func:`sample_seed` (vLLM's per-request seeded sampling), so that
        a sample's random stream does not depend on the batch; greedy: one request per problem, replicated."""
        greedy = sampling.temperature == 0
        rows = 1 if greedy else sampling.n
        problem_ids = range(len(prompts)) if problem_ids is None else problem_ids
        reqs, params = [], []
        for p, pid in zip(prompts, problem_ids):
            for j in range(rows):
                reqs.append({"prompt_token_ids": p})
                params.append(self._SamplingParams(n=1, temperature=sampling.temperature, top_p=sampling.top_p,
                                                   max_tokens=sampling.max_tokens,
                                                   seed=sample_seed(sampling.seed, pid, j)))
        outs = self.llm.generate(reqs, params, use_tqdm=False)
        flat = [(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outs]
        samples = [flat[i * rows:(i + 1) * rows] for i in range(len(prompts))]
        return [s * sampling.n for s in samples] if greedy else samples


def remote_code_refusal(model: str, error: Exception, trusted: bool) -> str | None:
    """The message for a load that failed because ``model`` ships its own code and the user did not opt in
    (``--trust-remote-code``); ``None`` if ``error`` is anything else."""
    if trusted or "trust_remote_code" not in str(error):
        return None
    return (f"{model!r} ships its own modelling code, which is not run unless you opt in: review it, then pass "
            "--trust-remote-code (workflow: models.<name>.trust_remote_code: true)")


def make_generator(backend: str, model: str, seed: int = 0, batch_size: int = 8, device: str | None = None,
                   trust_remote_code: bool = False):
    """``trust_remote_code`` (opt-in) lets a model directory's own Python code run on load."""
    model = resolve_model(model)
    if backend == "hf":
        return HFGenerator(model, device=device, batch_size=batch_size, trust_remote_code=trust_remote_code)
    if backend == "vllm":
        return VLLMGenerator(model, seed=seed, trust_remote_code=trust_remote_code)
    raise ValueError(f"--backend must be 'hf' or 'vllm', got {backend!r}")
