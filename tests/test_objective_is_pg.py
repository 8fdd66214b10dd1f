"""The positive control ``is_pg`` (unclipped importance-weighted policy gradient, baselines/is_pg.py): its per-token
gradient weight is r·Â at every ratio, so it equals GRPO's inside the clip band and keeps growing outside it, where
GRPO's is zero. That unbounded weight is what the stability study's positive control relies on."""

from __future__ import annotations

import torch

from mhpo.analysis.atlas import gradient_weights


def test_is_pg_weight_is_r_times_advantage_and_matches_grpo_inside_the_band():
    r = torch.tensor([0.05, 0.5, 0.9, 1.0, 1.1, 1.5, 3.0, 50.0], dtype=torch.float64)
    for adv in (1.0, -1.0):
        w = gradient_weights("is_pg", r, adv)
        torch.testing.assert_close(w, r * adv)
        inside = (r > 0.8) & (r < 1.2)
        torch.testing.assert_close(w[inside], gradient_weights("grpo", r, adv)[inside])
    # outside GRPO's band, on the side its clip acts on, GRPO's weight is 0 and is_pg's grows with r
    far = torch.tensor([3.0, 50.0], dtype=torch.float64)
    assert torch.all(gradient_weights("grpo", far, 1.0) == 0)
    assert gradient_weights("is_pg", far, 1.0)[1] > 10 * gradient_weights("is_pg", far, 1.0)[0]
