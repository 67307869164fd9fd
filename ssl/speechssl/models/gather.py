"""All-gather that keeps gradients, for losses over the whole (global) batch.

Batch-statistics losses (VICReg's variance and covariance, Barlow Twins' cross-correlation)
must see every process's embeddings.  ``torch.distributed.all_gather`` cuts the graph; this
gather keeps it: the backward pass sums, over processes, the gradient each process computed
for every slice of the gathered tensor, and hands each process the sum for its own slice
(what VICReg's reference FullGatherLayer does).  Every process computes the same global
loss L, so a process receives ``world_size * dL/dx_local``; DDP then averages parameter
gradients over the processes, which cancels the factor: the result is the single-process
gradient of L on the full batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate ``(B_r, D)`` tensors from every rank r along dim 0 (ranks in order; batch
    sizes may differ between ranks)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        size = torch.tensor([x.shape[0]], device=x.device)
        sizes = [torch.zeros_like(size) for _ in range(world)]
        dist.all_gather(sizes, size)
        sizes = [int(s) for s in sizes]
        padded = x.new_zeros((max(sizes), *x.shape[1:]))                     # (B_max, D)
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        rank = dist.get_rank()
        ctx.start, ctx.stop = sum(sizes[:rank]), sum(sizes[: rank + 1])
        return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])  # (sum B_r, D)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()                                             # (sum B_r, D)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start: ctx.stop]                                     # (B, D)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All processes' ``x`` ``(B, D)`` concatenated in rank order ``(sum B, D)``, with the
    gradient flowing back to the local part; ``x`` itself outside a process group.

    >>> x = torch.ones(2, 3)
    >>> gather_with_grad(x) is x
    True
    """
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)
