"""Real tiny training runs through ``mhpo-bench train`` (TRL GRPOTrainer + objective contract, CPU, offline).

Each run is a few optimizer steps of the shipped ``tiny`` recipe; the tiny model is built once per session.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from mhpo import objectives
from mhpo.common import io
from mhpo.training import sampling
from mhpo.training import train as train_mod
from mhpo.training.recipe import load as load_recipe

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

ROOT = Path(__file__).resolve().parents[1]
GA = 2  # micro-batches per optimizer step in the SMALL configuration below (checked in test_same_updates_as_stock_trl)
REQUIRED = ("step", "reward/mean", "reward/std", "accuracy", "completion_length", "frac_zero_std", "entropy",
            "grad_norm", "loss", "lr", "ratio/p1", "ratio/p50", "ratio/p99", "ratio/min", "ratio/max",
            "ratio/mean_abs_log", "kl_old", "kl_ref", "step_time", "tokens_per_s")


@pytest.fixture(scope="session")
def tiny_cache():
    """One cache (and one tiny model build) for every training test, shared with subprocesses."""
    cache = Path(os.environ["MHPO_CACHE_DIR"])  # the session's (tests/conftest.py)
    train_mod.model_path(load_recipe("tiny"))
    return cache


# Smaller rollouts than the default (32 instead of 256 completions) keep the suite inside its CPU budget; the
# off-policy structure (updates_per_rollout = 2, two micro-batches per step) is the default's.
SMALL = {"rollout.group_size": 8, "rollout.prompts_per_rollout": 4, "rollout.micro_batch_size": 8}


def run(out: Path, objective: str, *extra: str, steps: int = 4, small: bool = True) -> int:
    sets = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")] if small else []
    args = ["train", "--config", "tiny", "--objective", objective, "--seed", "0", "--out", str(out),
            "--max-steps", str(steps), *sets, *extra]
    from mhpo import cli

    return cli.main(args)


def rows(run_dir: Path) -> list[dict]:
    return io.read_jsonl(run_dir / "metrics.jsonl")


@pytest.mark.parametrize("objective", ["mhpo", "grpo"])
def test_tiny_run_writes_the_documented_run_directory(tiny_cache, tmp_path, objective):
    out = tmp_path / objective
    wandb = [] if objective == "mhpo" else ["--set", "wandb.enabled=false"]
    assert run(out, objective, *wandb) == 0
    metrics = rows(out)
    assert [r["step"] for r in metrics] == [1, 2, 3, 4]
    for r in metrics:
        missing = [k for k in REQUIRED if k not in r]
        assert not missing, f"step {r['step']} lacks {missing}"
        assert math.isfinite(r["loss"]) and r["grad_norm"] >= 0 and r["tokens_per_s"] > 0
        assert 0.0 <= r["accuracy"] <= 1.0
    assert any(k.startswith(f"{objective}/") for k in metrics[-1]) or objective == "grpo"
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["objective"] == objective and man["seed"] == 0
    assert {"torch", "transformers", "trl"} <= set(man["versions"]) and "sha" in man["git"]
    assert (man["config"]["derived"]["steps_per_generation"]
            == 2 * man["config"]["derived"]["gradient_accumulation_steps"])
    assert man["config"]["vllm_is_correction"]["enabled"] is False
    assert ((out / "checkpoints" / "checkpoint-4").is_dir()
            and not (out / "checkpoints" / ".staging" / "checkpoint-4").exists())
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out / "final")
    AutoTokenizer.from_pretrained(out / "final")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert (out / "wandb").is_dir() == (objective == "mhpo")


def test_ratio_departs_from_one_under_the_default_config(tiny_cache, tmp_path):
    """Default tiny recipe: updates_per_rollout=2, so step 1 of each rollout is on-policy (r ≡ 1) and step 2 is
    one update stale (r ≠ 1) -- for every objective alike."""
    assert load_recipe("tiny")["rollout"]["updates_per_rollout"] >= 2
    out = tmp_path / "dapo"
    assert run(out, "dapo", "--set", "wandb.enabled=false", steps=4, small=False) == 0
    metrics = rows(out)
    on, off = metrics[0::2], metrics[1::2]
    assert all(r["ratio/mean_abs_log"] < 1e-6 and abs(r["kl_old"]) < 1e-9 for r in on)
    # An off-policy step sees r ≠ 1 whenever the previous step changed the weights (a step whose groups all
    # have zero reward variance has no gradient); at least one of them does in 4 steps.
    moved = [r for r in off if r["ratio/mean_abs_log"] > 1e-4]
    assert moved, [(r["step"], r["ratio/mean_abs_log"], r["frac_zero_std"]) for r in metrics]
    for r in moved:
        assert r["kl_old"] > 0 and r["ratio/min"] < 1.0 < r["ratio/max"]
    # rollout/train log-prob gap: measured on rollout-starting steps, before any update; HF generation in fp32
    # reuses the trainer's own old log-probs, so the gap is ~0 there (a vLLM sampler would show its mismatch)
    assert all(r["rollout/logp_gap"] is not None and 0.0 <= r["rollout/logp_gap"] < 1e-4 for r in on)
    assert all(r["rollout/logp_gap"] is None for r in off)


class NanOnEvenSteps(objectives.Objective):
    """GRPO-style surrogate whose loss is NaN on every second optimizer step (calls are counted per micro-batch;
    the tiny recipe has ``GA`` micro-batches per step)."""

    calls = 0

    def per_token_loss(self, b):
        step = NanOnEvenSteps.calls // GA + 1
        NanOnEvenSteps.calls += 1
        loss = -b.ratio * b.advantages
        return loss * math.nan if step % 2 == 0 else loss


class AlwaysNan(objectives.Objective):
    def per_token_loss(self, b):
        return b.logps * math.nan


@pytest.fixture
def nan_objectives():
    """Register the NaN objectives only for the test that uses them (other tests iterate over the registry)."""
    NanOnEvenSteps.calls = 0
    objectives.register("test_nan_on_even_steps")(NanOnEvenSteps)
    objectives.register("test_always_nan")(AlwaysNan)
    yield
    objectives.unregister("test_nan_on_even_steps")
    objectives.unregister("test_always_nan")


def test_nonfinite_steps_are_skipped_and_counted(tiny_cache, nan_objectives, tmp_path):
    out = tmp_path / "skip"
    assert run(out, "test_nan_on_even_steps", "--set", "wandb.enabled=false") == 0
    metrics = rows(out)
    assert [r["nonfinite_skipped"] for r in metrics] == [0, 1, 1, 2]
    assert [r["loss"] is None for r in metrics] == [False, True, False, True]
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "final")  # NaN gradients never reached the weights
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_consecutive_nonfinite_steps_abort_with_a_clear_error(tiny_cache, nan_objectives, tmp_path, capsys):
    out = tmp_path / "abort"
    assert run(out, "test_always_nan", "--set", "wandb.enabled=false",
               "--set", "optim.max_consecutive_nonfinite=2") == 1
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "failed" and "NonFiniteLossError" in man["error"] and "consecutive" in man["error"]
    assert "consecutive" in capsys.readouterr().err
    assert not (out / "final").exists()


def test_dapo_data_options_work_with_any_objective(tiny_cache, tmp_path):
    out = tmp_path / "dapo-options"
    assert run(out, "mhpo", "--set", "wandb.enabled=false", "--set", "dapo.dynamic_sampling=true",
               "--set", "dapo.overlong_shaping=true", "--set", "dapo.mask_truncated=true",
               "--set", "advantage.mode=mean_only") == 0
    metrics = rows(out)
    assert [r["step"] for r in metrics] == [1, 2, 3, 4]
    assert all(r["dynamic_sampling/rounds"] >= 1 for r in metrics)
    assert any(k.startswith("rewards/") and k != "rewards/correctness_reward/mean" and k.endswith("/mean")
               for k in metrics[0])  # the overlong penalty is a second reward function
    man = json.loads((out / "manifest.json").read_text())
    assert man["config"]["dapo"]["dynamic_sampling"] is True and man["config"]["advantage"]["mode"] == "mean_only"


def test_dynamic_sampling_helpers():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, float("nan"), 0.0, 0.0, 0.0])
    assert sampling.informative_rows(rewards, 2).tolist() == [False, False, True, True, False, False, False, False]
    a = {"prompt_ids": torch.tensor([[5, 6]]), "completion_ids": torch.tensor([[1, 2, 3]]),
         "completion_mask": torch.tensor([[1, 1, 1]]), "advantages": torch.tensor([0.5])}
    b = {"prompt_ids": torch.tensor([[7, 8, 9]]), "completion_ids": torch.tensor([[4]]),
         "completion_mask": torch.tensor([[1]]), "advantages": torch.tensor([-0.5])}
    m = sampling.concat([a, b], pad_token_id=0)
    assert m["prompt_ids"].tolist() == [[0, 5, 6], [7, 8, 9]]  # prompts pad on the left
    assert m["completion_ids"].tolist() == [[1, 2, 3], [4, 0, 0]] and m["completion_mask"].tolist()[1] == [1, 0, 0]


def test_dynamic_sampling_cap_fails_clearly(tiny_cache, tmp_path):
    """With a zero reward weight every group agrees, so no round adds anything: the cap must end the run."""
    out = tmp_path / "cap"
    rc = run(out, "grpo", "--set", "wandb.enabled=false", "--set", "dapo.dynamic_sampling=true",
             "--set", "dapo.max_generation_rounds=2", "--set", "reward.correctness=0.0")
    assert rc == 1
    err = json.loads((out / "manifest.json").read_text())["error"]
    assert "DynamicSamplingError" in err and "max_generation_rounds=2" in err


@pytest.mark.parametrize("objective, trl_loss", [("grpo", {"loss_type": "grpo"}),
                                                 ("dapo", {"loss_type": "dapo", "epsilon_high": 0.28})])
def test_same_updates_as_stock_trl(tiny_cache, tmp_path, objective, trl_loss):
    """Stock GRPOTrainer(loss_type=...) and ObjectiveGRPOTrainer(objective) from the same seed make the same
    updates (one rollout: an on-policy and an off-policy step, two micro-batches each)."""
    from trl import GRPOTrainer

    from mhpo.training.trainer import ObjectiveGRPOTrainer

    rec = load_recipe("tiny", overrides={"optim.max_steps": 2, "wandb.enabled": False, **SMALL})
    from mhpo.training.recipe import batches

    assert batches(rec, 1)["gradient_accumulation_steps"] == GA
    obj = objectives.get(objective)
    finals = []
    for kind in ("stock", "ours"):
        cfg, _ = train_mod.grpo_config(rec, obj, 0, tmp_path / kind)
        cfg.save_strategy = "no"
        for k, v in trl_loss.items():
            setattr(cfg, k, v)
        common = dict(model=train_mod.model_path(rec), reward_funcs=train_mod.reward_funcs(rec), args=cfg,
                      train_dataset=train_mod.dataset(rec))
        tr = GRPOTrainer(**common) if kind == "stock" else ObjectiveGRPOTrainer(**common, objective=obj)
        tr.train()
        finals.append({n: p.detach().clone() for n, p in tr.model.named_parameters()})
        train_mod._reset_accelerate()
    start = train_mod.model_path(rec)
    from transformers import AutoModelForCausalLM

    init = dict(AutoModelForCausalLM.from_pretrained(start).named_parameters())
    moved = max((finals[0][n] - init[n]).abs().max().item() for n in init)
    assert moved > 1e-4  # the steps did update the weights
    for name, p in finals[0].items():
        torch.testing.assert_close(finals[1][name], p, rtol=1e-4, atol=1e-6, msg=name)


def test_several_seeds_in_one_process(tiny_cache, tmp_path):
    from mhpo import cli

    out = str(tmp_path / "grpo" / "seed{seed}")
    sets = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]
    assert cli.main(["train", "--config", "tiny", "--objective", "grpo", "--seed", "3,4", "--out", out,
                     "--max-steps", "2", "--set", "wandb.enabled=false", *sets]) == 0
    for seed in (3, 4):
        run_dir = tmp_path / "grpo" / f"seed{seed}"
        assert json.loads((run_dir / "manifest.json").read_text())["seed"] == seed
        assert [r["step"] for r in rows(run_dir)] == [1, 2] and (run_dir / "final").is_dir()
