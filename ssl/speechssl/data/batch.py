"""The batches methods train on.  Every tensor is padded; ``lengths`` say how much is real.

Three kinds, one per way self-supervised methods see data:

- :class:`FrameBatch`: crops of utterances (APC, CPC, masked prediction).
- :class:`PairBatch`: two tokens of the same word, the second aligned frame by frame to the
  first by DTW (CAPC, the correspondence autoencoder).
- :class:`ViewBatch`: two augmented crops of the same utterance (VICReg, SimCLR, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


class _Batch:
    def to(self, device: torch.device | str, non_blocking: bool = False):
        """A copy with every tensor moved to ``device``."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device, non_blocking=non_blocking)
        return replace(self, **moved)

    @property
    def num_frames(self) -> int:
        """Real (unpadded) input frames, for frames/s."""
        return int(self.lengths.sum())


@dataclass
class FrameBatch(_Batch):
    feats: torch.Tensor      # (B, T, D) float, zero-padded
    lengths: torch.Tensor    # (B,) long
    speakers: torch.Tensor   # (B,) long: speaker index in the training set (-1: unknown)
    keys: list[str]          # utterance ids


@dataclass
class PairBatch(_Batch):
    x: torch.Tensor          # (B, T, D) the input token, zero-padded
    y: torch.Tensor          # (B, T, D) the other token, DTW-aligned to x's frames
    lengths: torch.Tensor    # (B,) long: frames of x (and of aligned y)
    keys: list[str]          # "<x-token>~<y-token>"


@dataclass
class ViewBatch(_Batch):
    view_a: torch.Tensor     # (B, T, D) first augmented crop
    view_b: torch.Tensor     # (B, T, D) second augmented crop of the same utterance
    lengths: torch.Tensor    # (B,) long: frames of each view (equal crops: all T)
    keys: list[str]          # utterance ids
