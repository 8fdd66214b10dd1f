"""Sampling completions: one interface, two backends with the same sampling parameters.

* ``hf``: Hugging Face transformers ``generate`` (CPU or GPU, batched, left padding); the default.
* ``vllm``: vLLM's ``LLM.generate`` with ``SamplingParams`` (optional ``gpu`` extra; imported only when chosen).

Both backends tokenize prompts the same way (:func:`encode_prompt`): the chat template when the benchmark
asks for it and the tokenizer has one, else the raw prompt (e.g. the tiny char-level model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


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


def resolve_model(model: str) -> str:
    """A training run directory means its ``final/`` policy; a checkpoint dir or hub name is used as is.
    A local directory must be a complete model (``mhpo.models.check_checkpoint``: config.json, untruncated
    weights); a local-looking path that does not exist is an error, not a hub name."""
    from mhpo.models import ModelLoadError, check_checkpoint

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
    """transformers backend: batches of prompts, ``n`` samples each, seeded per batch."""

    name = "hf"

    def __init__(self, model: str, device: str | None = None, batch_size: int = 8, dtype: str | None = None,
                 trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device != "cpu" else torch.float32)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        self.model = self.model.to(self.device).eval()
        self.batch_size = max(1, batch_size)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self.eos_ids = self._eos_ids()

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def encode(self, prompt: str, chat_template: bool) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, chat_template)

    def generate(self, prompts: list[list[int]], sampling: Sampling, seed_offset: int = 0) -> list[list[tuple[str, int]]]:
        """For each tokenized prompt, ``sampling.n`` completions as ``(text, n_tokens)``."""
        torch = self.torch
        greedy = sampling.temperature == 0
        n_seq = 1 if greedy else sampling.n
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: generation continues right after each prompt
            ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p) :] = 1
        kwargs = dict(max_new_tokens=sampling.max_tokens, pad_token_id=self.pad_id, num_return_sequences=n_seq)
        if greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        torch.manual_seed(sampling.seed + seed_offset)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
        gen = out[:, width:].tolist()
        results = []
        for i in range(len(prompts)):
            samples = []
            for j in range(n_seq):
                toks = self._trim(gen[i * n_seq + j])
                samples.append((self.tokenizer.decode(toks, skip_special_tokens=True), len(toks)))
            results.append(samples * sampling.n if greedy else samples)
        return results

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
            from vllm import LLM, SamplingParams
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

    def generate(self, prompts: list[list[int]], sampling: Sampling, seed_offset: int = 0) -> list[list[tuple[str, int]]]:
        greedy = sampling.temperature == 0  # one greedy sample, replicated (some vLLM versions reject n > 1)
        params = [
            self._SamplingParams(
                n=1 if greedy else sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                seed=sampling.seed + seed_offset + i,  # per-request seed: reproducible whatever the batching
            )
            for i in range(len(prompts))
        ]
        outs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        samples = [[(c.text, len(c.token_ids)) for c in o.outputs] for o in outs]
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
