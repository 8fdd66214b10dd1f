"""Every registered objective keeps its logged tensors on the batch's device and works under any default dtype.

The trainer stacks an objective's ``tensor_metrics`` and gathers them across processes; one CPU scalar among
CUDA tensors makes ``torch.stack`` fail (``mhpo_lfm`` logged the float ``1.0``). A CPU test
cannot see CUDA, so the default device is set to ``meta`` while the batch stays on the CPU: any tensor built
without ``device=`` lands on ``meta``, away from the batch, and shows. Row 11: ``torch.quantile`` needs its levels
in the input's dtype, which a bare ``torch.tensor`` does not give under ``torch.set_default_dtype(torch.float64)``.
"""

from __future__ import annotations

import pytest
import torch

from mhpo import objectives

NAMES = objectives.available()


def _batch(device: str, dtype: torch.dtype, B: int = 4, T: int = 6) -> dict:
    g = torch.Generator().manual_seed(0)
    logps = -torch.rand(B, T, generator=g, dtype=dtype) * 3
    old = logps + 0.2 * torch.randn(B, T, generator=g, dtype=dtype)
    mask = (torch.arange(T)[None] < torch.tensor([6, 3, 5, 1])[:, None]).to(dtype)
    adv = torch.randn(B, generator=g, dtype=dtype)
    ref = logps + 0.1 * torch.randn(B, T, generator=g, dtype=dtype)
    out = {"logps": logps, "old_logps": old, "advantages": adv, "mask": mask, "ref_logps": ref}
    return {k: v.to(device) for k, v in out.items()}


@pytest.mark.parametrize("name", NAMES)
def test_every_logged_tensor_is_on_the_batch_device(name):
    """The batch lives on the CPU while the default device is ``meta``: a tensor made without ``device=``
    lands on ``meta`` instead of the batch's device, as it would land on the CPU next to a CUDA batch."""
    obj = objectives.get(name, beta=0.04)  # beta > 0: the KL metric is logged too
    b = _batch("cpu", torch.float32)
    b["logps"].requires_grad_(True)
    with torch.device("meta"):
        out = obj(**b)
    assert out.loss.device.type == "cpu"
    assert out.tensor_metrics, f"{name} logs nothing"
    wrong = {k: str(v.device) if isinstance(v, torch.Tensor) else type(v).__name__
             for k, v in out.tensor_metrics.items() if not isinstance(v, torch.Tensor) or v.device.type != "cpu"}
    assert not wrong, f"{name} logs metrics off the batch's device: {wrong}"
    torch.stack([v.float().reshape(()) for v in out.tensor_metrics.values()])  # what the trainer does


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_runs_under_a_float64_default_dtype(name):
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for dtype in (torch.float32, torch.float64):
            b = _batch("cpu", dtype)
            b["logps"].requires_grad_(True)
            out = objectives.get(name)(**b)
            out.loss.backward()
            assert torch.isfinite(out.loss) and torch.isfinite(b["logps"].grad).all()
            assert all(torch.isfinite(torch.tensor(v)) for v in out.metrics.values())
    finally:
        torch.set_default_dtype(before)
