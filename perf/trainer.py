"""Trainer overhead: stock ``trl.GRPOTrainer`` (loss_type="grpo") vs ``ObjectiveGRPOTrainer`` with the ``grpo``
objective, same tiny recipe, same off-policy settings (updates_per_rollout from the recipe), same seed.

Each trainer runs ``--steps`` optimizer steps, alternately, ``--repeats`` times in this process. Reported: median
time per optimizer step (first rollout excluded: warm-up), tokens/s (TRL's ``num_tokens`` counter: prompt +
completion tokens), and ours/stock. Target: ≤ 1.05.

    python perf/trainer.py [--steps 30] [--repeats 2]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--config", default="tiny")
    args = ap.parse_args()

    from mhpo.common import env

    env.setup()
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    from mhpo import objectives
    from mhpo.training import recipe, train
    from mhpo.training.trainer import ObjectiveGRPOTrainer

    rec = recipe.load(args.config, overrides={"optim.max_steps": args.steps, "checkpoint.every": 10**6 * 2,
                                              "wandb.enabled": False})
    objective = objectives.get("grpo")
    path = train.model_path(rec)
    data, funcs = train.dataset(rec), train.reward_funcs(rec)
    u = rec["rollout"]["updates_per_rollout"]

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self.tokens, self._t = [], [], None

        def on_step_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self._t)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                self.tokens.append(logs["num_tokens"])

    def once(kind: str) -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as tmp:
            cfg, _ = train.grpo_config(rec, objective, 0, Path(tmp))
            cfg.save_strategy = "no"
            common = dict(model=path, reward_funcs=funcs, args=cfg, train_dataset=data)
            tr = GRPOTrainer(**common) if kind == "stock" else ObjectiveGRPOTrainer(**common, objective=objective)
            for cb in (PrinterCallback, ProgressCallback):
                tr.remove_callback(cb)
            clock = Clock()
            tr.add_callback(clock)
            tr.train()
            train._reset_accelerate()
        times = clock.times[u:]  # drop the first rollout (warm-up)
        tokens = clock.tokens[-1] - clock.tokens[u - 1]
        return statistics.median(times), tokens / sum(times)

    results = {"stock": [], "ours": []}
    for _ in range(args.repeats):
        for kind in ("stock", "ours"):
            results[kind].append(once(kind))
    print(f"config={args.config} steps={args.steps} repeats={args.repeats} updates_per_rollout={u} "
          f"torch_threads={torch.get_num_threads()}")
    print("| trainer | median step ms (per repeat) | tokens/s (per repeat) |")
    print("|---|---|---|")
    for kind, rows in results.items():
        print(f"| {kind} | {', '.join(f'{t * 1e3:.1f}' for t, _ in rows)} | "
              f"{', '.join(f'{k:.0f}' for _, k in rows)} |")
    best = {k: min(t for t, _ in v) for k, v in results.items()}
    tps = {k: max(s for _, s in v) for k, v in results.items()}
    print(f"best step time: stock {best['stock'] * 1e3:.1f} ms, ours {best['ours'] * 1e3:.1f} ms, "
          f"ratio ours/stock {best['ours'] / best['stock']:.3f}")
    print(f"best tokens/s: stock {tps['stock']:.0f}, ours {tps['ours']:.0f}, "
          f"ratio ours/stock {tps['ours'] / tps['stock']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
