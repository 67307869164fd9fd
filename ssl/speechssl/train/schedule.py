"""The learning-rate schedule: linear warmup, then constant, linear or cosine decay.

The factor for optimisation step ``s`` (0-based; the factor the step is taken with) is

- ``(s + 1) / (warmup_steps + 1)`` while ``s < warmup_steps``;
- then a decay from 1 at ``s = warmup_steps`` to ``min_lr_ratio`` at the last step,
  ``s = total_steps - 1``, with ``p = (s - warmup_steps) / (total_steps - 1 - warmup_steps)``:
  constant ``1``; linear ``1 - (1 - min_lr_ratio) * p``; cosine
  ``min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * p)) / 2``.

>>> [round(lr_factor(s, 3, 9, "linear", 0.0), 3) for s in range(9)]
[0.25, 0.5, 0.75, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
>>> [round(lr_factor(s, 0, 5, "cosine", 0.1), 3) for s in range(5)]
[1.0, 0.868, 0.55, 0.232, 0.1]
>>> lr_factor(7, 2, 9, "constant", 0.0)
1.0

It is a :class:`torch.optim.lr_scheduler.LambdaLR` over a plain function of the step, so
its checkpointed state is the step count alone and the schedule itself always comes from
the config.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from speechssl.train.config import OptimConfig


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str,
              min_lr_ratio: float) -> float:
    """The multiplier of the base learning rate at 0-based optimisation step ``step``."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    span = total_steps - 1 - warmup_steps
    progress = min(1.0, (step - warmup_steps) / span) if span > 0 else 1.0
    if schedule == "linear":
        return 1.0 - (1.0 - min_lr_ratio) * progress
    if schedule == "cosine":
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule '{schedule}'")


def build_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig,
                    total_steps: int) -> LambdaLR:
    """The schedule of ``optim`` over a run of ``total_steps`` optimisation steps; call its
    ``step()`` once after each optimiser step."""
    def factor(step: int) -> float:
        return lr_factor(step, optim.warmup_steps, total_steps, optim.schedule,
                         optim.min_lr_ratio)
    return LambdaLR(optimizer, factor)
