"""``mhpo-bench`` as launched by tests/test_multiprocess.py under ``accelerate launch``, plus what a test needs inside
every rank: one test-only objective and two fault injections, each switched on by an environment variable.

- objective ``test_nonfinite_from_step_3`` (GRPO surrogate): from optimizer step 3 on, the loss is not finite.
  Step 3: +inf added per token, so the loss is non-finite while its gradient stays finite (DeepSpeed alone would
  apply that step). Step 4 and later: NaN times the surrogate, so the gradient is NaN too.
- ``MP_SLOW_RNG_RANK=r``: rank r sleeps 2 s before writing its ``rng_state_{r}.pth`` into a staged checkpoint
  (a race: the folder must not be renamed before every rank has written into it).
- ``MP_STEP_DELAY=s``: every rank sleeps s seconds per micro-step after optimizer step 2, so that a test can
  ``kill -9`` a rank mid-run, after the first checkpoint.
"""

from __future__ import annotations

import math
import os
import sys
import time

from mhpo import cli, objectives
from mhpo.training.trainer import ObjectiveGRPOTrainer

MICRO_STEPS_PER_STEP = int(os.environ.get("MP_GA", "1"))  # gradient accumulation of the test's configuration


@objectives.register("test_nonfinite_from_step_3")
class NonFiniteFromStep3(objectives.Objective):
    calls = 0

    def per_token_loss(self, b):
        step = NonFiniteFromStep3.calls // MICRO_STEPS_PER_STEP + 1
        NonFiniteFromStep3.calls += 1
        loss = -b.ratio * b.advantages
        if step == 3:
            return loss + math.inf  # d(loss + inf)/dθ = d(loss)/dθ: finite gradient, non-finite loss
        return loss * math.nan if step > 3 else loss


def _inject_faults() -> None:
    slow_rank, delay = os.environ.get("MP_SLOW_RNG_RANK"), float(os.environ.get("MP_STEP_DELAY", "0"))
    rank = int(os.environ.get("RANK", "0"))
    if slow_rank is not None and int(slow_rank) == rank:
        save_rng = ObjectiveGRPOTrainer._save_rng_state

        def slow_save_rng(self, output_dir):
            time.sleep(2.0)
            return save_rng(self, output_dir)

        ObjectiveGRPOTrainer._save_rng_state = slow_save_rng
    if delay:
        step = ObjectiveGRPOTrainer.training_step

        def slow_step(self, *args, **kwargs):
            if self.state.global_step >= 2:
                time.sleep(delay)
            return step(self, *args, **kwargs)

        ObjectiveGRPOTrainer.training_step = slow_step


if __name__ == "__main__":
    _inject_faults()
    sys.exit(cli.main(sys.argv[1:]))
