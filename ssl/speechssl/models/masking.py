"""Input corruption of masked acoustic modelling (Mockingjay, TERA, Audio ALBERT), as S3PRL's
``pretrain/mockingjay/task.py`` draws it, in two parts: :func:`draw_plan` decides what to do
to a batch from its lengths alone (on the CPU, with the global torch RNG, so a saved RNG
state reproduces it and padding does not change it); :func:`apply_plan` does it.

Per utterance of ``length`` valid frames:

- time masking: ``round(length * proportion / span)`` span starts drawn without replacement
  from the starts whose ``span`` frames all lie in the utterance (0 .. length - span); spans
  may overlap, so at most ``proportion`` of the frames is masked.  One draw per utterance
  (not per frame or span) chooses what the masked frames become: zeros (80%), the frames of
  as many random spans of the same utterance (10%; where spans overlap the later one wins),
  or themselves (10%).  Every masked frame is in the loss, whichever was chosen.
- frequency masking (TERA): one band of ``width`` bins, width uniform in 0 .. int(max_band *
  D), start uniform over the positions where it fits, zeroed in the input and in the loss at
  every valid frame.

Per batch, magnitude alteration (TERA): with probability ``noise_prob`` Gaussian noise
N(0, noise_std^2) is added to every valid frame of the input.

Deviations from S3PRL, which are off-by-ones there: its span starts stop one short of
length - span and its band starts one short of D - width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechssl.models.layers import length_mask

ZERO, RANDOM, KEEP, NONE = 0, 1, 2, -1  # what an utterance's masked frames become
ZERO_PROB, RANDOM_PROB = 0.8, 0.1  # the rest (0.1): kept as they are


@dataclass
class MaskPlan:
    """What is done to one batch, on the CPU; T is the padded length, D the input dim."""

    source: torch.Tensor  # (B, T) long: the frame each input frame takes its values from
    zeroed: torch.Tensor  # (B, T) bool: frames set to zero
    frames: torch.Tensor  # (B, T) bool: time-masked frames (in the loss)
    actions: torch.Tensor  # (B,) long: ZERO, RANDOM or KEEP; NONE where nothing is masked
    bands: torch.Tensor  # (B, D) bool: zeroed frequency bins (in the loss at valid frames)
    noise: bool  # magnitude alteration of this batch


def span_starts(length: int, proportion: float, span: int) -> torch.Tensor:
    """``round(length * proportion / span)`` distinct starts among 0 .. length - span (fewer
    if there are not that many): ``(n,)`` long."""
    positions = length - span + 1
    if positions <= 0 or proportion <= 0:
        return torch.zeros(0, dtype=torch.long)
    count = min(round(length * proportion / span), positions)
    return torch.randperm(positions)[:count]


def choose_action() -> int:
    """ZERO, RANDOM or KEEP with probabilities 0.8, 0.1, 0.1: one draw per utterance."""
    dice = torch.rand(()).item()
    return ZERO if dice < ZERO_PROB else RANDOM if dice < ZERO_PROB + RANDOM_PROB else KEEP


def draw_band(dim: int, max_band: float) -> torch.Tensor:
    """``(dim,)`` bool: one contiguous band of width uniform in 0 .. int(max_band * dim),
    at a start uniform over the positions where it fits.  All False when ``max_band`` is 0."""
    band = torch.zeros(dim, dtype=torch.bool)
    if max_band <= 0:
        return band
    width = int(torch.randint(0, int(max_band * dim) + 1, ()).item())
    start = int(torch.randint(0, dim - width + 1, ()).item())
    band[start:start + width] = True
    return band


def draw_plan(lengths: torch.Tensor, max_len: int, dim: int, proportion: float, span: int,
              max_band: float, noise_prob: float) -> MaskPlan:
    """The corruption of a batch of ``lengths`` (padded to ``max_len``, ``dim`` bins)."""
    batch = len(lengths)
    source = torch.arange(max_len).repeat(batch, 1)  # (B, T)
    zeroed = torch.zeros(batch, max_len, dtype=torch.bool)
    frames = torch.zeros(batch, max_len, dtype=torch.bool)
    actions = torch.full((batch,), NONE, dtype=torch.long)
    bands = torch.zeros(batch, dim, dtype=torch.bool)
    for b, length in enumerate(lengths.tolist()):
        starts = span_starts(length, proportion, span)
        if len(starts):
            action = actions[b] = choose_action()
            for start in starts.tolist():
                frames[b, start:start + span] = True
            if action == ZERO:
                zeroed[b] = frames[b]
            elif action == RANDOM:
                randoms = span_starts(length, proportion, span)  # as many, same rule
                for start, other in zip(starts.tolist(), randoms.tolist(), strict=True):
                    source[b, start:start + span] = torch.arange(other, other + span)
        bands[b] = draw_band(dim, max_band)
    noise = noise_prob > 0 and torch.rand(()).item() < noise_prob
    return MaskPlan(source, zeroed, frames, actions, bands, noise)


def apply_plan(feats: torch.Tensor, lengths: torch.Tensor, plan: MaskPlan,
               noise_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The corrupted input ``(B, T, D)`` of ``feats`` and the loss positions ``(B, T, D)``
    bool.  The noise is drawn here, one row per valid frame in (b, t) order, so padding
    does not change it."""
    device = feats.device
    valid = length_mask(lengths, feats.shape[1])  # (B, T)
    source = plan.source.to(device).unsqueeze(-1).expand_as(feats)  # (B, T, D)
    inputs = torch.gather(feats, 1, source)  # random spans replaced
    band = plan.bands.to(device).unsqueeze(1) & valid.unsqueeze(-1)  # (B, T, D)
    inputs = inputs.masked_fill(plan.zeroed.to(device).unsqueeze(-1) | band, 0.0)
    if plan.noise:
        noise = torch.zeros_like(inputs)
        noise[valid] = torch.randn(int(valid.sum()), feats.shape[2], device=device,
                                   dtype=feats.dtype) * noise_std
        inputs = inputs + noise
    return inputs, plan.frames.to(device).unsqueeze(-1) | band
