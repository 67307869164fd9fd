"""Small pieces the frame-level methods share: length masks and masked means.

Every frame-level loss here is a mean over the valid (unpadded) positions only, so that the
same utterances padded to different lengths give the same loss.

>>> import torch
>>> length_mask(torch.tensor([2, 3]), 4)
tensor([[ True,  True, False, False],
        [ True,  True,  True, False]])
>>> values = torch.tensor([[[1.0, 3.0], [5.0, 7.0], [100.0, 100.0]]])
>>> masked_mean(values, length_mask(torch.tensor([2]), 3)).item()
4.0
"""

from __future__ import annotations

import torch


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B, max_len)`` bool: True at frames ``t < lengths[b]``."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` ``(B, T, ...)`` over the positions where ``mask`` ``(B, T)`` is
    True and over all trailing dimensions.  Zero (not NaN) when nothing is valid."""
    per_position = values.reshape(values.shape[0], values.shape[1], -1)  # (B, T, F)
    kept = torch.where(mask.unsqueeze(-1), per_position, torch.zeros_like(per_position))
    count = mask.sum() * per_position.shape[-1]
    return kept.sum() / count.clamp(min=1)


def check_layer(layer: int | None, num_layers: int, default: int, method: str,
                first: int = 1) -> int:
    """Resolve a 1-based ``layer`` choice (None: ``default``); out of range is an error.
    ``first=0`` also allows 0, for methods whose layer 0 is their input representation."""
    chosen = default if layer is None else layer
    if not first <= chosen <= num_layers:
        raise ValueError(f"{method}: layer must be {first}..{num_layers}, got {layer}")
    return chosen
