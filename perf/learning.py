"""Does RL on the tiny default actually learn? GRPO and MHPO, several seeds each, held-out greedy accuracy of the
warm-started tiny model before training and of each final policy after.

    python perf/learning.py [--steps 200] [--seeds 0,1,2] [--objectives grpo,mhpo] [--n-eval 300] [--out DIR]

Runs go through ``mhpo.train.train`` (the code path of ``mhpo-bench train``) into ``--out`` (default a temp
folder); held-out problems are ``mhpo.tasks.load(task, "test")``, scored with ``mhpo.rewards.correctness_reward``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")


def accuracy(model_dir: str, problems: list[dict], max_new_tokens: int, batch: int = 100) -> float:
    """Greedy held-out accuracy of the model in ``model_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mhpo import rewards

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    correct = 0.0
    for i in range(0, len(problems), batch):
        rows = problems[i: i + batch]
        enc = tok([r["problem"] for r in rows], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        correct += sum(rewards.correctness_reward(completions=texts, answer=[r["answer"] for r in rows]))
    return correct / len(problems)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--objectives", default="grpo,mhpo")
    ap.add_argument("--n-eval", type=int, default=300)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--out", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override (dotted key)")
    args = ap.parse_args()

    from mhpo import env

    env.setup()
    from mhpo import objectives, recipe, tasks, train

    import yaml

    overrides = {"optim.max_steps": args.steps, "wandb.enabled": False, "checkpoint.every": max(args.steps // 2 // 2 * 2, 2)}
    overrides.update({k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)})
    rec = recipe.load(args.config, overrides=overrides)
    task = rec["data"]["task"]
    held_out = tasks.load(task, "test", n=args.n_eval, seed=0)
    max_new = rec["rollout"]["max_completion_length"]
    base = train.model_path(rec)
    before = accuracy(base, held_out, max_new)
    out = Path(args.out or tempfile.mkdtemp(prefix="mhpo-learning-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"config={args.config} {' '.join(args.set)} task={task} steps={args.steps} seeds={seeds} held-out n={len(held_out)} "
          f"(greedy); before training: {before:.3f}", flush=True)
    print("| objective | held-out acc. after, per seed | mean ± std | Δ vs before | train acc. last 10 steps | wall s/run |")
    print("|---|---|---|---|---|---|")
    for name in args.objectives.split(","):
        accs, train_accs, walls = [], [], []
        for seed in seeds:
            run_dir = out / name / f"seed{seed}"
            t0 = time.time()
            if train.train(rec, objectives.get(name, **rec["objective_params"].get(name, {})), seed, run_dir) != 0:
                print(f"{name} seed {seed} failed; see {run_dir}/manifest.json", flush=True)
                return 1
            walls.append(time.time() - t0)
            accs.append(accuracy(str(run_dir / "final"), held_out, max_new))
            from mhpo import io

            last = [r["accuracy"] for r in io.read_jsonl(run_dir / "metrics.jsonl")[-10:]]
            train_accs.append(sum(last) / len(last))
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        mean = statistics.mean(accs)
        print(f"| {name} | {', '.join(f'{a:.3f}' for a in accs)} | {mean:.3f} ± {sd:.3f} | {mean - before:+.3f} | "
              f"{statistics.mean(train_accs):.3f} | {statistics.mean(walls):.0f} |", flush=True)
    print(f"runs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
