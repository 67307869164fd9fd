"""The LR schedule: warmup, each decay shape reaching lr * min_lr_ratio at the last step,
the LambdaLR driving the optimiser, and its state surviving a checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch

from speechssl.train.config import OptimConfig
from speechssl.train.schedule import build_scheduler, lr_factor


def _lrs(optim: OptimConfig, total: int, steps: int | None = None) -> list[float]:
    """The learning rate each of the first ``steps`` optimisation steps is taken with."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=optim.lr)
    sched = build_scheduler(opt, optim, total)
    out = []
    for _ in range(total if steps is None else steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_warmup_then_decay_to_the_floor_at_the_last_step(schedule):
    optim = OptimConfig(lr=0.5, warmup_steps=4, schedule=schedule, min_lr_ratio=0.2)
    lrs = _lrs(optim, total=20)
    assert lrs[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])   # linear warmup to lr
    floor = 0.5 if schedule == "constant" else 0.5 * 0.2
    assert lrs[-1] == pytest.approx(floor)
    assert all(a >= b - 1e-12 for a, b in zip(lrs[4:], lrs[5:], strict=False)), lrs  # no rise


def test_decay_shapes_halfway():
    # Decay runs over steps 2..12 (10 intervals); step 7 is halfway.
    assert lr_factor(7, 2, 13, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(7, 2, 13, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_factor(4, 2, 13, "cosine", 0.0) == pytest.approx(0.5 * (1 + math.cos(0.2 * math.pi)))
    assert lr_factor(4, 2, 13, "linear", 0.5) == pytest.approx(1 - 0.5 * 0.2)
    assert lr_factor(50, 2, 13, "linear", 0.1) == pytest.approx(0.1)  # past the end: the floor


def test_no_warmup_starts_at_lr_and_tiny_runs_do_not_divide_by_zero():
    assert _lrs(OptimConfig(lr=1.0, schedule="linear"), total=3) == pytest.approx([1, 0.5, 0])
    assert lr_factor(0, 0, 1, "cosine", 0.3) == pytest.approx(0.3)
    assert lr_factor(3, 3, 3, "linear", 0.0) == pytest.approx(0.0)


def test_state_round_trip_resumes_the_schedule():
    optim = OptimConfig(lr=1.0, warmup_steps=3, schedule="cosine", min_lr_ratio=0.1)
    full = _lrs(optim, total=12)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=optim.lr)
    sched = build_scheduler(opt, optim, 12)
    for _ in range(5):
        opt.step()
        sched.step()
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert saved_sched["lr_lambdas"] == [None]   # the schedule comes from the config
    param2 = torch.nn.Parameter(torch.zeros(1))
    opt2 = torch.optim.Adam([param2], lr=optim.lr)
    sched2 = build_scheduler(opt2, optim, 12)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    rest = []
    for _ in range(7):
        rest.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step()
    assert rest == full[5:]
