"""The objective contract: one registered class per policy loss.

Users write against three names::

    from mhpo import objectives
    objectives.available()                   # ['cispo', 'dapo', ..., 'mhpo', ...]
    obj = objectives.get("mhpo", c=1.5)      # validated parameters
    out = obj(logps=lp, old_logps=old, advantages=adv, mask=m)
    out.loss.backward(); out.metrics         # scalar loss to minimise, dict of floats

and one decorator to add an objective in a single file::

    @objectives.register("my_obj")
    class MyObj(objectives.Objective):
        '''Formula, paper (arXiv id), defaults.'''
        aggregation = "seq-mean-token-mean"
        eps: float = 0.2
        def per_token_loss(self, b):          # b: Batch
            return -b.ratio.clamp(max=1 + self.eps) * b.advantages

Shapes: ``logps``/``old_logps``/``mask`` are (B, T); ``advantages`` is (B,) or (B, T). ``logps`` carries
the gradient, ``old_logps`` does not. Optional inputs: ``ref_logps`` (for the k3 KL penalty, coefficient
``beta``), ``rollout_logps`` (log-probs of the sampler, e.g. vLLM), ``rewards`` (B,), ``is_weights``
(rollout/training mismatch correction, multiplied into every token's loss as TRL does), ``num_tokens``
(global token count for ``token-mean``, as TRL's ``num_items_in_batch``) and ``max_len`` (the constant of
``seq-mean-token-sum-norm``, default T).

``per_token_loss`` returns the loss to minimise per token, (B, T), or per sequence, (B,). A per-sequence
loss is broadcast over the sequence's tokens, so every aggregation stays defined (TRL does the same).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import pkgutil
import typing
from collections.abc import Callable

import torch

AGGREGATIONS = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm", "seq-mean-token-sum", "sequence")
LOG_RATIO_CLAMP = 20.0  # exp(20) ~ 5e8: far beyond any trust region, small enough to stay finite in fp32.

_REGISTRY: dict[str, type[Objective]] = {}
_discovered = False


class ObjectiveError(ValueError):
    """Raised for an unknown objective name or an invalid parameter."""


# --------------------------------------------------------------------------------------------- registry
def register(name: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` a dataclass of its parameters and register it under ``name``."""

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise TypeError(f"@register({name!r}) must decorate a subclass of mhpo.objectives.Objective")
        if name in _REGISTRY and _REGISTRY[name].__qualname__ != cls.__qualname__:
            raise ObjectiveError(f"objective {name!r} is registered twice "
                                 f"({_REGISTRY[name].__module__} and {cls.__module__})")
        # A subclass may re-default an inherited parameter without annotating it
        # (``aggregation = "token-mean"``, ``eps_high = 0.28``); make that a field default, not a dead
        # class attribute (dataclasses would otherwise keep the parent's default in ``__init__``).
        own = cls.__dict__.get("__annotations__", {})
        for f in dataclasses.fields(cls):
            if f.name in cls.__dict__ and f.name not in own:
                own[f.name] = f.type
        cls.__annotations__ = own
        cls = dataclasses.dataclass(eq=False)(cls)
        cls.name = name
        if cls.aggregation not in AGGREGATIONS:
            raise ObjectiveError(f"{cls.__name__}.aggregation={cls.aggregation!r}; choose one of {AGGREGATIONS}")
        _REGISTRY[name] = cls
        return cls

    return deco


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (tests and interactive sessions that load a file by path)."""
    _REGISTRY.pop(name, None)


def _discover() -> None:
    """Import ``mhpo.mhpo`` and every module of the ``baselines`` package, so their decorators run.

    By name, at run time: the objective modules import this contract, so the contract never imports them
    statically (no import cycle; the layer contract in pyproject.toml checks it)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    importlib.import_module("mhpo.mhpo")
    baselines = importlib.import_module("baselines")

    for mod in pkgutil.iter_modules(baselines.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"baselines.{mod.name}")


def available() -> list[str]:
    """Sorted names of every registered objective (MHPO, its ablations and all baselines)."""
    _discover()
    return sorted(_REGISTRY)


def get_class(name: str) -> type[Objective]:
    _discover()
    if name not in _REGISTRY:
        raise ObjectiveError(f"unknown objective {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def get(name: str, **params) -> Objective:
    """Instantiate objective ``name`` with ``params``; unknown or invalid parameters raise ObjectiveError."""
    cls = get_class(name)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ObjectiveError(
            f"objective {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(sorted(known))}"
        )
    return cls(**params)


def parameters(name: str) -> dict[str, object]:
    """Default parameters of objective ``name`` (including ``beta`` and ``aggregation``)."""
    return dataclasses.asdict(get(name))


# ------------------------------------------------------------------------------------------------ batch
class Batch:
    """Validated, sanitised inputs of one objective call; derived quantities are computed once, lazily.

    Entries outside ``mask`` are replaced by 0 before any arithmetic, so NaN/inf padding can neither
    reach the loss nor its gradient (``torch.where`` routes no gradient to the unselected branch).
    """

    def __init__(self, logps, old_logps, advantages, mask, ref_logps=None, rollout_logps=None, rewards=None):
        if logps.dim() != 2:
            raise ValueError(f"logps must be (B, T); got shape {tuple(logps.shape)}")
        shape = logps.shape
        for key, t in (("old_logps", old_logps), ("mask", mask), ("ref_logps", ref_logps),
                       ("rollout_logps", rollout_logps)):
            if t is not None and t.shape != shape:
                raise ValueError(f"{key} must have the shape of logps {tuple(shape)}; got {tuple(t.shape)}")
        if advantages.dim() == 1:
            advantages = advantages[:, None]
        if advantages.shape not in ((shape[0], 1), shape):
            raise ValueError(f"advantages must be (B,) or (B, T) with B={shape[0]}, T={shape[1]}; "
                             f"got {tuple(advantages.shape)}")
        self.mask = mask.to(logps.dtype)
        keep = self.mask > 0
        zero = torch.zeros((), dtype=logps.dtype, device=logps.device)
        self.keep = keep
        self.logps = torch.where(keep, logps, zero)
        self.old_logps = torch.where(keep, old_logps.detach(), zero)
        adv = advantages.detach().to(logps.dtype).expand(shape)
        self.advantages = torch.where(keep, adv, zero)
        self.ref_logps = None if ref_logps is None else torch.where(keep, ref_logps.detach(), zero)
        self.rollout_logps = None if rollout_logps is None else torch.where(keep, rollout_logps.detach(), zero)
        self.rewards = rewards
        self.lengths = self.mask.sum(-1)  # |o_i|

    @functools.cached_property
    def log_ratio(self) -> torch.Tensor:
        """log r = logπ_θ − logπ_old per token, clamped to ±20 so that r stays finite."""
        return (self.logps - self.old_logps).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)

    @functools.cached_property
    def ratio(self) -> torch.Tensor:
        return torch.exp(self.log_ratio)

    @functools.cached_property
    def seq_log_ratio(self) -> torch.Tensor:
        """Length-normalised sequence log-ratio (1/|o_i|) Σ_t log r_{i,t}, shape (B, 1) (GSPO)."""
        return (self.log_ratio * self.mask).sum(-1, keepdim=True) / self.lengths.clamp(min=1.0)[:, None]

    def masked_mean(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.mask).sum() / self.mask.sum().clamp(min=1.0)


# -------------------------------------------------------------------------------------------- objective
@dataclasses.dataclass
class Output:
    """``loss``: scalar to minimise. ``metrics``: floats (one host sync when first read).

    ``tensor_metrics`` holds the same values as detached 0-dim tensors, for callers (the trainer) that
    batch the device-to-host copies into one per logging step.
    """

    loss: torch.Tensor
    tensor_metrics: dict[str, torch.Tensor]

    @functools.cached_property
    def metrics(self) -> dict[str, float]:
        if not self.tensor_metrics:
            return {}
        keys = list(self.tensor_metrics)
        values = torch.stack([self.tensor_metrics[k].float().reshape(()) for k in keys]).tolist()
        return dict(zip(keys, values))


def aggregate(loss: torch.Tensor, mask: torch.Tensor, mode: str, *, num_tokens=None, max_len=None) -> torch.Tensor:
    """Reduce a per-token loss (B, T) to a scalar.

    seq-mean-token-mean      (1/B) Σ_i (1/|o_i|) Σ_t λ_it m_it           (GRPO, arXiv 2402.03300)
    sequence                 same value; names objectives that produce one loss per sequence (GSPO, GMPO)
    token-mean               Σ λ m / N, N = Σ m or the global ``num_tokens``   (DAPO, arXiv 2503.14476)
    seq-mean-token-sum-norm  Σ λ m / (B·L), L = ``max_len`` or T            (Dr. GRPO, arXiv 2503.20783)
    seq-mean-token-sum       (1/B) Σ_i Σ_t λ_it m_it                        (LUSPO arXiv 2602.05261, TOPR)
    """
    masked = loss * mask
    if mode in ("seq-mean-token-mean", "sequence"):
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if mode == "token-mean":
        denom = mask.sum().clamp(min=1.0) if num_tokens is None else num_tokens
        return masked.sum() / denom
    if mode == "seq-mean-token-sum":
        return masked.sum(-1).mean()
    if mode == "seq-mean-token-sum-norm":
        return masked.sum() / (loss.shape[0] * (loss.shape[1] if max_len is None else max_len))
    raise ObjectiveError(f"unknown aggregation {mode!r}; choose one of {AGGREGATIONS}")


def positive(*keys: str) -> tuple:
    """``checks`` entries that require each named parameter to be > 0."""
    return tuple((k, lambda v: v > 0, "must be > 0") for k in keys)


def _check_type(cls_name: str, name: str, value, annotation) -> None:
    if isinstance(annotation, str):  # postponed annotations: resolve the few builtins we use
        annotation = {"float": float, "int": int, "bool": bool, "str": str}.get(annotation, object)
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation in (bool, str):
        ok = isinstance(value, annotation)
    else:
        ok = True
    if not ok:
        raise ObjectiveError(f"{cls_name}: parameter {name!r} must be {annotation.__name__}; "
                             f"got {value!r} ({type(value).__name__})")
    if annotation is float and not math.isfinite(value):
        raise ObjectiveError(f"{cls_name}: parameter {name!r} must be finite; got {value!r}")


@dataclasses.dataclass(eq=False)
class Objective:
    """Base class. Subclasses declare parameters as annotated class attributes and implement
    ``per_token_loss``. ``aggregation`` and ``beta`` (k3 KL to the reference) are common parameters."""

    name: typing.ClassVar[str] = "?"
    aggregation: str = "seq-mean-token-mean"
    beta: float = 0.0

    # Subclasses list (parameter, predicate, message) range checks here.
    checks: typing.ClassVar[tuple] = ()
    # On-policy (old_logps = logps.detach()) every objective is expected to give the vanilla policy gradient
    # −on_policy_scale()·Â·∇logπ, aggregated its own way (tests/test_conformance.py checks it). An objective
    # that departs from this by design names here the parameters under which it does not (the check runs
    # with them; it is never skipped), and says why in a comment.
    on_policy_params: typing.ClassVar[dict] = {}

    def __post_init__(self):
        hints = {f.name: f.type for f in dataclasses.fields(self)}
        for key, ann in hints.items():
            _check_type(self.name, key, getattr(self, key), ann)
        if self.aggregation not in AGGREGATIONS:
            raise ObjectiveError(f"{self.name}: parameter 'aggregation' must be one of {AGGREGATIONS}; "
                                 f"got {self.aggregation!r}")
        if self.beta < 0:
            raise ObjectiveError(f"{self.name}: parameter 'beta' must be >= 0; got {self.beta}")
        for key, pred, msg in self.checks:
            if not pred(getattr(self, key)):
                raise ObjectiveError(f"{self.name}: parameter {key!r}={getattr(self, key)!r} is invalid: {msg}")
        self._metrics: dict[str, torch.Tensor] = {}

    # -- to implement ------------------------------------------------------------------------------
    def per_token_loss(self, b: Batch) -> torch.Tensor:
        """Loss to minimise, (B, T) per token or (B,) per sequence."""
        raise NotImplementedError

    def on_policy_scale(self) -> float:
        """Factor c in ∇loss = −c·Â·∇logπ at r = 1 (1 for every baseline; exp(−ζ(1)) for literal MHPO)."""
        return 1.0

    # -- helpers for subclasses --------------------------------------------------------------------
    def log(self, **values: torch.Tensor | float) -> None:
        """Record diagnostics (detached); they appear in ``Output.metrics`` under ``<name>/<key>``."""
        for k, v in values.items():  # a plain number becomes a tensor on the batch's device in __call__
            self._metrics[f"{self.name}/{k}"] = v.detach() if isinstance(v, torch.Tensor) else float(v)

    # -- the call ----------------------------------------------------------------------------------
    def __call__(self, *, logps, old_logps, advantages, mask, ref_logps=None, rollout_logps=None, rewards=None,
                 is_weights=None, num_tokens=None, max_len=None) -> Output:
        b = Batch(logps, old_logps, advantages, mask, ref_logps, rollout_logps, rewards)
        self._metrics = {}
        loss = self.per_token_loss(b)
        # every metric on the batch's device: the trainer stacks and gathers them (a CPU scalar next to CUDA
        # tensors would make torch.stack fail)
        self._metrics = {k: v if isinstance(v, torch.Tensor) else torch.tensor(v, device=b.logps.device)
                         for k, v in self._metrics.items()}
        if loss.dim() == 1:
            loss = loss[:, None].expand_as(b.logps)
        if is_weights is not None:
            loss = loss * torch.where(b.keep, is_weights.detach().to(loss.dtype).expand_as(loss), 0.0)
        if self.beta > 0:
            if b.ref_logps is None:
                raise ValueError(f"{self.name}: beta={self.beta} > 0 needs ref_logps")
            d = (b.ref_logps - b.logps).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
            kl = torch.exp(d) - d - 1.0  # k3 estimator (Schulman 2020), as in TRL
            loss = loss + self.beta * kl
            self._metrics["kl_ref"] = b.masked_mean(kl).detach()
        out = aggregate(loss, b.mask, self.aggregation, num_tokens=num_tokens, max_len=max_len)
        self._metrics.update(ratio_stats(b))
        return Output(out, self._metrics)


@torch.no_grad()
def ratio_stats(b: Batch) -> dict[str, torch.Tensor]:
    """Importance-ratio diagnostics logged for every objective alike (no host sync)."""
    lr = b.log_ratio[b.keep].float()
    if lr.numel() == 0:
        z = torch.zeros((), device=b.logps.device)
        return {k: z for k in ("ratio/p1", "ratio/p50", "ratio/p99", "ratio/min", "ratio/max", "ratio/mean_abs_log",
                               "kl_old")}
    # Quantiles from an evenly strided sample of ≤ 64K tokens: a full sort of millions of tokens would
    # cost more than the loss itself, and p1/p99 of 64K draws are within ~0.1 percentile point.
    sample = lr if lr.numel() <= 1 << 16 else lr[:: lr.numel() // (1 << 16) + 1]
    levels = torch.tensor([0.01, 0.5, 0.99], device=lr.device, dtype=lr.dtype)  # quantile needs equal dtypes
    q = torch.quantile(sample, levels).exp()
    lo, hi = torch.aminmax(lr)
    return {
        "ratio/p1": q[0], "ratio/p50": q[1], "ratio/p99": q[2],
        "ratio/min": lo.exp(), "ratio/max": hi.exp(),
        "ratio/mean_abs_log": lr.abs().mean(),
        "kl_old": (torch.exp(-lr) + lr - 1.0).mean(),  # k3 estimate of KL(π_old‖π_θ) on sampled tokens
    }
