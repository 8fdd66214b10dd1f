"""Parity with TRL: the same float64 tensors go through trl==1.16.0's own ``GRPOTrainer._compute_loss``
(and the experimental ``GMPOTrainer._compute_loss``) and through our objectives; loss and gradient w.r.t.
the log-probs must agree to 1e-6 relative.

The trainer is built without ``__init__`` (no model, no data): ``object.__new__`` plus the attributes that
``_compute_loss`` reads, taken from a real ``GRPOConfig`` the way ``GRPOTrainer.__init__`` takes them, and
``_get_per_token_logps_and_entropies`` returns our leaf tensor instead of running a model.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from trl import GRPOConfig, GRPOTrainer
from trl.experimental.gmpo import GMPOConfig, GMPOTrainer

from mhpo import objectives

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # TrainingArguments deprecations

B, T, PROMPT = 6, 9, 3
RTOL = 1e-6


@pytest.fixture(scope="module")
def trainer():
    """Builds trainers; the accelerator (single CPU process) is created after each config, because
    ``TrainingArguments`` resets accelerate's global state. That state is reset again at the end."""
    yield make_trainer
    AcceleratorState._reset_state(reset_partial_state=True)


def make_trainer(trainer_cls=GRPOTrainer, config_cls=GRPOConfig, **config):
    args = config_cls(output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True, **config)
    tr = object.__new__(trainer_cls)
    tr.args, tr.accelerator, tr.model = args, Accelerator(cpu=True), torch.nn.Linear(1, 1)  # .training -> "train"
    for attr in ("max_completion_length", "use_vllm", "vllm_importance_sampling_correction", "loss_type",
                 "importance_sampling_level", "off_policy_mask_threshold", "top_entropy_quantile", "beta"):
        setattr(tr, attr, getattr(args, attr))
    tr.epsilon_low = args.epsilon
    tr.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    tr.aux_loss_enabled, tr._entropy_bonus_enabled = False, False
    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    tr.current_gradient_accumulation_steps = 1
    return tr


def make_inputs(seed: int, full_rows: bool = False):
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    # Per-row drift from 1e-5 to 0.8: some sequences inside GSPO's tiny band, some far outside GRPO's.
    scale = torch.logspace(-5, -0.1, B, dtype=torch.float64)[:, None]
    old = logps + scale * torch.randn(B, T, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    if not full_rows:
        lengths[2] = 0  # one fully masked row
    mask = (torch.arange(T)[None] < lengths[:, None]).to(torch.int64)
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    adv[0] = 0.0
    ref = logps + 0.2 * torch.randn(B, T, generator=g, dtype=torch.float64)
    isw = torch.rand(B, T, generator=g, dtype=torch.float64) + 0.5
    return dict(logps=logps, old=old, mask=mask, adv=adv, ref=ref, isw=isw)


def trl_loss_and_grad(tr, x, num_items=None, with_ref=False, with_is=False):
    leaf = x["logps"].clone().requires_grad_(True)
    entropies = torch.rand(B, T, dtype=torch.float64)
    tr._get_per_token_logps_and_entropies = lambda *a, **k: (leaf, entropies, None)
    inputs = {
        "prompt_ids": torch.zeros(B, PROMPT, dtype=torch.long), "prompt_mask": torch.ones(B, PROMPT, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": x["mask"],
        "advantages": x["adv"], "old_per_token_logps": x["old"],
        "num_items_in_batch": torch.tensor(float(x["mask"].sum() if num_items is None else num_items),
                                           dtype=torch.float64),
    }
    if with_ref:
        inputs["ref_per_token_logps"] = x["ref"]
    if with_is:
        inputs["importance_sampling_ratio"] = x["isw"]
    loss = tr._compute_loss(None, inputs)
    loss.backward()
    return loss.detach(), leaf.grad


def our_loss_and_grad(name, params, x, **call):
    leaf = x["logps"].clone().requires_grad_(True)
    out = objectives.get(name, **params)(logps=leaf, old_logps=x["old"], advantages=x["adv"], mask=x["mask"], **call)
    out.loss.backward()
    assert all(isinstance(v, float) for v in out.metrics.values())
    return out.loss.detach(), leaf.grad


# (id, our objective, its parameters, TRL trainer/config, TRL config, extra inputs)
CASES = [
    ("grpo", "grpo", {}, {"loss_type": "grpo"}, {}),
    ("grpo-eps", "grpo", {"eps_low": 0.1, "eps_high": 0.3},
     {"loss_type": "grpo", "epsilon": 0.1, "epsilon_high": 0.3}, {}),
    ("grpo-kl", "grpo", {"beta": 0.04},
     {"loss_type": "grpo", "beta": 0.04, "use_bias_correction_kl": False}, {"with_ref": True}),
    ("grpo-is", "grpo", {}, {"loss_type": "grpo", "use_vllm": True}, {"with_is": True}),
    ("bnpo", "bnpo", {}, {"loss_type": "bnpo"}, {"num_items": 1000}),
    ("dapo", "dapo", {}, {"loss_type": "dapo", "epsilon_high": 0.28}, {}),
    ("dapo-global", "dapo", {}, {"loss_type": "dapo", "epsilon_high": 0.28}, {"num_items": 137}),
    ("dr_grpo", "dr_grpo", {}, {"loss_type": "dr_grpo", "max_completion_length": 16}, {"max_len": 16}),
    ("cispo", "cispo", {}, {"loss_type": "cispo", "epsilon_high": 5.0}, {}),
    ("cispo-cap", "cispo", {"eps_high": 1.05}, {"loss_type": "cispo", "epsilon_high": 1.05}, {}),
    ("sapo", "sapo", {}, {"loss_type": "sapo"}, {}),
    ("sapo-tau", "sapo", {"tau_pos": 0.5, "tau_neg": 2.0},
     {"loss_type": "sapo", "sapo_temperature_pos": 0.5, "sapo_temperature_neg": 2.0}, {}),
    ("gspo", "gspo", {},
     {"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4}, {}),
    ("luspo", "luspo", {},
     {"loss_type": "luspo", "importance_sampling_level": "sequence", "epsilon": 2e-3, "epsilon_high": 2.5e-3}, {}),
    ("vespo", "vespo", {}, {"loss_type": "vespo"}, {}),
    ("dual_clip=delta", "dual_clip", {"clip_c": 3.0}, {"loss_type": "grpo", "delta": 3.0}, {}),
]


def _compare(ours, theirs):
    (l1, g1), (l2, g2) = ours, theirs
    torch.testing.assert_close(l1, l2, rtol=RTOL, atol=1e-12)
    torch.testing.assert_close(g1, g2, rtol=RTOL, atol=1e-12)
    assert g2.abs().sum() > 0  # a vacuous all-zero gradient would prove nothing


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_trl_compute_loss(trainer, case, seed):
    _, name, params, config, extra = case
    x = make_inputs(seed)
    theirs = trl_loss_and_grad(trainer(**config), x, num_items=extra.get("num_items"),
                               with_ref=extra.get("with_ref", False), with_is=extra.get("with_is", False))
    call = {}
    if "num_items" in extra:
        call["num_tokens"] = torch.tensor(float(extra["num_items"]), dtype=torch.float64)
    elif objectives.get(name).aggregation == "token-mean":
        call["num_tokens"] = x["mask"].sum().to(torch.float64)
    if "max_len" in extra:
        call["max_len"] = extra["max_len"]
    if extra.get("with_ref"):
        call["ref_logps"] = x["ref"]
    if extra.get("with_is"):
        call["is_weights"] = x["isw"]
    _compare(our_loss_and_grad(name, params, x, **call), theirs)


@pytest.mark.parametrize("seed", [0, 1])
def test_gmpo_matches_trl_experimental(trainer, seed):
    # TRL's GMPO counts a fully masked row as −Â_i (exp(0) = 1); ours gives it no loss: use full rows.
    x = make_inputs(seed, full_rows=True)
    tr = trainer(GMPOTrainer, GMPOConfig, epsilon=0.4)
    _compare(our_loss_and_grad("gmpo", {}, x), trl_loss_and_grad(tr, x))


def test_gspo_token_equals_gspo_for_sequence_advantages():
    x = make_inputs(3)
    _compare(our_loss_and_grad("gspo_token", {}, x), our_loss_and_grad("gspo", {}, x))


def test_every_trl_loss_type_is_covered():
    """A loss type added to TRL must get a parity case here: read the supported list from TRL's own help."""
    import dataclasses
    import re

    help_ = next(f for f in dataclasses.fields(GRPOConfig) if f.name == "loss_type").metadata["help"]
    supported = help_.split("Supported values are", 1)[1].split(".", 1)[0]
    trl_types = set(re.findall(r"'(\w+)'", supported))
    assert {"grpo", "dapo", "cispo"} <= trl_types  # the parse itself worked
    covered = {c[3]["loss_type"] for c in CASES}
    assert trl_types <= covered, f"TRL loss types without a parity case: {sorted(trl_types - covered)}"


# ------------------------------------------------------------------------------- KL through the trainer
def objective_trainer(objective, **config):
    """``ObjectiveGRPOTrainer`` built like ``make_trainer``, plus the state its ``_compute_loss`` reads; its
    config passes the trainer's own check (``_check_config``), as ``__init__`` would require."""
    from mhpo.training.trainer import ObjectiveGRPOTrainer, _check_config

    tr = make_trainer(ObjectiveGRPOTrainer, **config)
    _check_config(tr.args, objective)
    tr.objective, tr.num_iterations, tr._step = objective, 1, 0
    tr._acc, tr._bad_loss = defaultdict(list), None
    tr.is_deepspeed_enabled = False  # set by transformers.Trainer.__init__
    return tr


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name, trl_config", [("grpo", {"loss_type": "grpo"}),
                                              ("dapo", {"loss_type": "dapo", "epsilon_high": 0.28})])
def test_trainer_kl_matches_trl_with_the_setting_it_allows(trainer, name, trl_config, seed):
    """With beta > 0 the trainer allows only use_bias_correction_kl=False: through ObjectiveGRPOTrainer's own
    ``_compute_loss`` it equals stock TRL's with that setting (off-policy ratios, a real reference)."""
    x = make_inputs(seed)
    kl = {"beta": 0.04, "use_bias_correction_kl": False}
    theirs = trl_loss_and_grad(trainer(**trl_config, **kl), x, with_ref=True)
    ours = trl_loss_and_grad(objective_trainer(objectives.get(name, beta=0.04), **trl_config, **kl), x, with_ref=True)
    _compare(ours, theirs)
    # TRL's default (KL × r) differs on these inputs, so the setting matters.
    default = trl_loss_and_grad(trainer(**trl_config, beta=0.04), x, with_ref=True)
    assert not torch.allclose(default[1], theirs[1], rtol=1e-6)


def test_trainer_rejects_trl_default_bias_corrected_kl(trainer):
    """TRL 1.16 defaults to use_bias_correction_kl=True; objectives add the plain k3 term, so with beta > 0 the
    trainer refuses that default (naming the fix) rather than differ from stock TRL in silence."""
    from mhpo.training.trainer import _check_config

    assert GRPOConfig(output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True).use_bias_correction_kl is True
    with pytest.raises(ValueError, match="use_bias_correction_kl=False"):
        objective_trainer(objectives.get("grpo", beta=0.04), loss_type="grpo", beta=0.04)
    _check_config(make_trainer(beta=0.0).args, objectives.get("grpo"))  # beta = 0: TRL never reads it


def test_recipes_build_a_config_the_trainer_accepts_with_kl(tmp_path):
    from mhpo.training import train
    from mhpo.training.recipe import load
    from mhpo.training.trainer import _check_config

    obj = objectives.get("grpo", beta=0.04)
    cfg, _ = train.grpo_config(load("tiny"), obj, 0, tmp_path)
    assert cfg.beta == 0.04 and cfg.use_bias_correction_kl is False
    _check_config(cfg, obj)
    AcceleratorState._reset_state(reset_partial_state=True)
