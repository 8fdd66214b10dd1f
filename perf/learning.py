"""Does RL on the tiny default actually learn? Held-out accuracy at the sampling temperature (what RL optimises and
what the workflow evaluates) and greedy, of the warm-started base model and of each arm's final policy, with a
paired bootstrap CI of (arm - base) over problems and seeds, and two controls:

* ``placebo``: the first objective (GRPO by default) with its rewards shuffled within each prompt group, so the
  advantages carry no information about correctness: what the same number of updates does without signal;
* ``sft``: supervised training on the gold answers (teacher forcing, answer + EOS) of the same train problems for
  the same number of optimizer steps at the same learning rate: what a perfect teacher gives on this budget.

    python perf/learning.py [--steps 32] [--seeds 0,1] [--arms grpo,placebo,sft] [--n-eval 200] [--k 4] [--out DIR]

RL runs go through ``mhpo.training.train.train`` (the code path of ``mhpo-bench train``) into ``--out`` (default a temp
folder); held-out problems are ``mhpo.tasks.text.load(task, "test")``, scored with
``mhpo.training.rewards.correctness_reward``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")


def per_problem(model_dir: str, problems: list[dict], max_new: int, temperature: float, k: int) -> list[float]:
    """Accuracy per problem: greedy (``temperature == 0``, one sample) or the mean over ``k`` samples at
    ``temperature`` (top_p 1, top_k off, seeded per sample index so every model sees the same noise stream)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mhpo.training import rewards

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    enc = tok([r["problem"] for r in problems], return_tensors="pt", padding=True, add_special_tokens=False)
    golds = [r["answer"] for r in problems]
    acc = [0.0] * len(problems)
    draws = 1 if temperature == 0 else k
    for j in range(draws):
        torch.manual_seed(1000 + j)
        kw = {"do_sample": False} if temperature == 0 else {"do_sample": True, "temperature": temperature,
                                                             "top_p": 1.0, "top_k": 0}
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id, **kw)
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, r in enumerate(rewards.correctness_reward(completions=texts, answer=golds)):
            acc[i] += r / draws
    return acc


def paired_ci(arm: list[list[float]], base: list[float], reps: int = 2000,
              seed: int = 0) -> tuple[float, float, float]:
    """Mean of (arm[s][p] - base[p]) over seeds s and problems p, with a 95% percentile bootstrap CI that resamples
    problems and seeds (both with replacement): the pairing removes the problems' own difficulty."""
    diffs = [[a - b for a, b in zip(row, base)] for row in arm]
    n, m = len(base), len(diffs)
    mean = sum(map(sum, diffs)) / (n * m)
    rng = random.Random(seed)
    stats = []
    for _ in range(reps):
        ps = [rng.randrange(n) for _ in range(n)]
        ss = [rng.randrange(m) for _ in range(m)]
        stats.append(sum(diffs[s][p] for s in ss for p in ps) / (n * m))
    stats.sort()
    return mean, stats[int(0.025 * reps)], stats[int(0.975 * reps) - 1]


def placebo(funcs: list, seed: int) -> list:
    """Reward functions whose rewards are permuted within each prompt group (same prompt text): the group's reward
    multiset, hence its mean and std, is kept, but which completion earned which reward is random."""
    rng = random.Random(seed)

    def shuffled(f):
        def wrapped(prompts=None, completions=None, **kw):
            out = list(f(prompts=prompts, completions=completions, **kw))
            groups: dict = {}
            for i, p in enumerate(prompts):
                groups.setdefault(str(p), []).append(i)
            for idx in groups.values():
                vals = [out[i] for i in idx]
                rng.shuffle(vals)
                for i, v in zip(idx, vals):
                    out[i] = v
            return out

        wrapped.__name__ = f.__name__  # TRL names the logged reward by the function
        return wrapped

    return [shuffled(f) for f in funcs]


def gold_sft(rec: dict, seed: int, run_dir: Path) -> None:
    """Teacher forcing on gold answers of the recipe's train rows: ``max_steps`` AdamW steps (the recipe's lr, betas,
    grad-norm clip) of ``prompts_per_rollout * group_size / updates_per_rollout`` sequences each, the RL step's
    batch; saved to ``run_dir/final``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mhpo.models import tiny
    from mhpo.tasks import text as tasks
    from mhpo.training import train

    base = train.model_path(rec)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    o, ro = rec["optim"], rec["rollout"]
    rows = tasks.load(rec["data"]["task"], "train", n=rec["data"]["n_train"], seed=seed)
    pairs = tiny._encode(tok, rows)
    per_step = ro["prompts_per_rollout"] * ro["group_size"] // ro["updates_per_rollout"]
    opt = torch.optim.AdamW(model.parameters(), lr=float(o["lr"]), betas=(o["adam_beta1"], o["adam_beta2"]),
                            weight_decay=float(o["weight_decay"]))
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(o["max_steps"]):
        idx = torch.randint(len(pairs), (per_step,), generator=g).tolist()
        loss = model(**tiny.sft_batch([pairs[i] for i in idx], tok.pad_token_id)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o["max_grad_norm"])
        opt.step()
    model.save_pretrained(run_dir / "final")
    tok.save_pretrained(run_dir / "final")


def run_arm(arm: str, rec: dict, seed: int, run_dir: Path, rl_objective: str) -> None:
    from mhpo import objectives
    from mhpo.training import train

    if arm == "sft":
        return gold_sft(rec, seed, run_dir)
    name = rl_objective if arm == "placebo" else arm
    objective = objectives.get(name, **rec["objective_params"].get(name, {}))
    if arm != "placebo":
        if train.train(rec, objective, seed, run_dir) != 0:
            raise SystemExit(f"{arm} seed {seed} failed; see {run_dir}/manifest.json")
        return
    real = train.reward_funcs
    train.reward_funcs = lambda r: placebo(real(r), seed)  # only this process, only this run
    try:
        if train.train(rec, objective, seed, run_dir) != 0:
            raise SystemExit(f"placebo seed {seed} failed; see {run_dir}/manifest.json")
    finally:
        train.reward_funcs = real


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the default workflow's)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--arms", default="grpo,placebo,sft",
                    help="objectives, plus 'placebo' (the first objective, shuffled rewards) and 'sft' (gold SFT)")
    ap.add_argument("--n-eval", type=int, default=200)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--out", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override (dotted key)")
    args = ap.parse_args()

    from mhpo.common import env

    env.setup()
    import yaml

    from mhpo.tasks import text as tasks
    from mhpo.training import recipe, train

    defaults = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/config/default.yaml").read_text())
    overrides = dict(defaults["defaults"]["set"]) if args.config == "tiny" else {}
    if args.steps:
        overrides["optim.max_steps"] = args.steps
    overrides.update({"wandb.enabled": False, "checkpoint.every": 10_000})
    overrides.update({k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)})
    rec = recipe.load(args.config, overrides=overrides)
    task, temp = rec["data"]["task"], float(rec["rollout"]["temperature"])
    held_out = tasks.load(task, "test", n=args.n_eval, seed=0)
    max_new = rec["rollout"]["max_completion_length"]
    base = train.model_path(rec)
    arms = args.arms.split(",")
    rl_objective = next((a for a in arms if a not in ("placebo", "sft")), "grpo")
    t_start = time.time()
    base_t = per_problem(base, held_out, max_new, temp, args.k)
    base_g = statistics.mean(per_problem(base, held_out, max_new, 0, 1))
    out = Path(args.out or tempfile.mkdtemp(prefix="mhpo-learning-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"config={args.config} {' '.join(args.set)} task={task} T={temp} lr={rec['optim']['lr']} "
          f"steps={rec['optim']['max_steps']} seeds={seeds} held-out n={len(held_out)} k={args.k}; "
          f"base: avg@{args.k} at T={temp} {statistics.mean(base_t):.3f}, greedy {base_g:.3f}", flush=True)
    print(f"| arm | avg@{args.k} at T={temp:g}, per seed | Δ vs base [95% paired CI] | greedy, per seed | "
          f"Δ greedy | s per run |")
    print("|---|---|---|---|---|---|")
    print(f"| base | {statistics.mean(base_t):.3f} | | {base_g:.3f} | | |")
    for arm in arms:
        accs, greedy, walls = [], [], []
        for seed in seeds:
            run_dir = out / arm / f"seed{seed}"
            t0 = time.time()
            run_arm(arm, rec, seed, run_dir, rl_objective)
            walls.append(time.time() - t0)
            accs.append(per_problem(str(run_dir / "final"), held_out, max_new, temp, args.k))
            greedy.append(statistics.mean(per_problem(str(run_dir / "final"), held_out, max_new, 0, 1)))
        d, lo, hi = paired_ci(accs, base_t)
        print(f"| {arm} | {', '.join(f'{statistics.mean(a):.3f}' for a in accs)} | {d:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
              f"{', '.join(f'{g:.3f}' for g in greedy)} | {statistics.mean(greedy) - base_g:+.3f} | "
              f"{statistics.mean(walls):.0f} |", flush=True)
    print(f"runs in {out}; total {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
