"""DAPO's dynamic sampling as plain tensor helpers (arXiv 2503.14476, §3.2).

A prompt group whose rewards all agree has zero advantage everywhere: it adds nothing to the gradient but still
dilutes token-mean normalisers and the batch. Dynamic sampling drops such groups and generates more until the
batch is full again. TRL has no such option; ``mhpo.training.trainer`` calls these helpers from its override of
``_generate_and_score_completions``. After the advantages are computed every row stands alone, so batches from
several generation rounds can be concatenated and the surplus cut off.
"""

from __future__ import annotations

import torch

# Keys of a TRL generation batch and how each is padded when batches of different lengths are concatenated:
# (padding side, padding value or the name of the attribute that holds it).
ROW_KEYS = {
    "prompt_ids": ("left", "pad_token_id"),
    "prompt_mask": ("left", 0),
    "completion_ids": ("right", "pad_token_id"),
    "completion_mask": ("right", 0),
    "advantages": ("right", 0.0),
    "old_per_token_logps": ("right", 0.0),
    "importance_sampling_ratio": ("right", 0.0),
    "sampling_per_token_logps": ("right", 0.0),
    "ref_per_token_logps": ("right", 0.0),
    "tool_mask": ("right", 1),
}
MULTIMODAL_KEYS = ("pixel_values", "image_grid_thw", "pixel_attention_mask", "spatial_shapes", "image_sizes",
                   "token_type_ids", "mm_token_type_ids", "image_position_ids", "num_images", "num_tiles")


class DynamicSamplingError(RuntimeError):
    """The generation-round cap was reached before the batch was full of informative groups."""


def informative_rows(rewards: torch.Tensor, group_size: int, atol: float = 1e-6) -> torch.Tensor:
    """Bool mask over rows (len(rewards)): True where the row's group has rewards that do not all agree.
    NaN rewards (unscorable completions) are ignored within a group."""
    g = rewards.view(-1, group_size)
    lo = torch.where(torch.isnan(g), torch.inf, g).amin(dim=1)
    hi = torch.where(torch.isnan(g), -torch.inf, g).amax(dim=1)
    spread = torch.nan_to_num(hi - lo, nan=0.0, neginf=0.0, posinf=0.0)
    return (spread > atol).repeat_interleave(group_size)


def select(batch: dict, keep: torch.Tensor) -> dict:
    """Rows of ``batch`` where ``keep`` is True (only the per-row keys; others are dropped)."""
    idx = keep.nonzero(as_tuple=True)[0]
    return {k: v[idx.to(v.device)] for k, v in batch.items() if k in ROW_KEYS}


def _pad_to(t: torch.Tensor, width: int, side: str, value) -> torch.Tensor:
    extra = width - t.size(1)
    if extra <= 0:
        return t
    pad = t.new_full((t.size(0), extra, *t.shape[2:]), value)
    return torch.cat([pad, t] if side == "left" else [t, pad], dim=1)


def concat(batches: list[dict], pad_token_id: int) -> dict:
    """Concatenate row-selected batches, padding each per-row key to the widest batch (its own side/value).
    (B, 1) tensors (sequence-level IS ratios) stay (B, 1)."""
    out = {}
    for key in batches[0]:
        side, value = ROW_KEYS[key]
        value = pad_token_id if value == "pad_token_id" else value
        parts = [b[key] for b in batches]
        if parts[0].dim() >= 2 and not all(p.size(1) == 1 for p in parts):
            width = max(p.size(1) for p in parts)
            parts = [_pad_to(p, width, side, value) for p in parts]
        out[key] = torch.cat(parts, dim=0)
    return out
