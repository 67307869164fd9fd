"""Data-parallel training with torchrun: the process group, rank-0 duties, DDP wrapping.

Under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``) each process trains on its own share of the batches and DDP averages the
gradients; without it there is one process and every helper here is a no-op.  The backend
is gloo on CPU and nccl on CUDA.  Rank 0 alone logs at INFO level, writes checkpoints and
TensorBoard events; the other ranks log warnings and errors only.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from speechssl.errors import SpeechSSLError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SpeechSSLError(f"environment variable {name}={value!r} is not an integer") from None


def dist_info_from_env() -> DistInfo:
    """The rank and world size torchrun gave this process (rank 0 of 1 without torchrun)."""
    return DistInfo(rank=_env_int("RANK", 0), local_rank=_env_int("LOCAL_RANK", 0),
                    world_size=_env_int("WORLD_SIZE", 1))


def select_device(name: str | None) -> torch.device:
    """The device an entry point's ``--device`` names: "cpu", "cuda", "cuda:N", or "auto"
    (also None or ""): CUDA if this machine has it, else the CPU.  The one choice of device
    of train_ssl, train_awe, train_probe and extract_ssl.

    >>> select_device("cpu")
    device(type='cpu')
    """
    if name in (None, "", "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SpeechSSLError(f"unsupported device '{name}': use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpeechSSLError(f"device '{name}' requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise SpeechSSLError(f"unsupported device '{name}': use auto, cpu or cuda")
    return dev


def resolve_device(device: str | None, info: DistInfo) -> torch.device:
    """:func:`select_device`; under torchrun a bare "cuda" means this process's GPU,
    ``cuda:<LOCAL_RANK>``."""
    dev = select_device(device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", info.local_rank if info.distributed else 0)
        torch.cuda.set_device(dev)
    return dev


def join_process_group(device: torch.device, info: DistInfo) -> None:
    """Join the group of torchrun's processes, once per process: a no-op with one process or
    once joined.  The group is left at exit, not before, so that a second training run in
    the same process reuses it (leaving and re-joining under torchrun can hang: the
    rendezvous store still holds the first group's keys)."""
    if not info.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=info.rank, world_size=info.world_size,
                            device_id=device if device.type == "cuda" else None)
    atexit.register(_leave_process_group)
    log.info("Joined a process group of %d (%s) as rank %d", info.world_size, backend, info.rank)


def leave_process_group() -> None:
    """Leave the group at the clean end of a run, every rank together.

    The barrier keeps a rank from tearing its connections down while a peer is still
    using them, and the collection frees modules caught in reference cycles (DDP holds
    the group) while the interpreter is whole: a gloo group that outlives either can
    abort the process at exit ("terminate called without an active exception"), which
    torchrun reports as a failed run although training ended."""
    if dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def _leave_process_group() -> None:
    """At exit, after an error too: no barrier, a failed peer may never reach it."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def quiet_other_ranks(info: DistInfo) -> None:
    """Logging at INFO on rank 0 only: the other ranks keep warnings and errors."""
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of ``values`` (returned as it is with one process)."""
    if dist.is_initialized():
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (so that every rank takes the same branch)."""
    if not dist.is_initialized():
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=device)).item() > 0)


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` with one process)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class LossModule(nn.Module):
    """``forward(batch)`` is ``method.loss(batch)``: what DDP wraps, so that the loss goes
    through DDP's forward and its gradient synchronisation hooks run."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.method.loss(batch)


def wrap_for_training(method: nn.Module, device: torch.device) -> nn.Module:
    """A module whose ``forward(batch)`` returns the loss terms: DDP around
    :class:`LossModule` with more than one process, :class:`LossModule` alone otherwise.
    Every parameter must take part in every loss (``find_unused_parameters`` is off)."""
    module = LossModule(method)
    if not dist.is_initialized():
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)
