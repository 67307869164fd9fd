"""Epoch plans: which rows make each batch, from the seed, the epoch and metadata alone.

A plan is computed identically in every process, so ranks take disjoint slices of it
and a resumed run can start anywhere in it.  All randomness comes from generators seeded
by (seed, epoch, stream, batch index), never from global state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

BUCKET_SIZE = 100         # utterances sorted by length together before cutting batches
PLAN_STREAM, BATCH_STREAM = 0, 1


def batch_rng(seed: int, epoch: int, stream: int, index: int = 0) -> np.random.Generator:
    """The generator of one (seed, epoch, stream, batch index): no global state."""
    return np.random.default_rng([seed % 2**32, epoch, stream, index])


@dataclass(frozen=True)
class BatchSpec:
    """One batch of a plan: its epoch, its index in the epoch's full (all-rank) plan, and
    its rows (utterance or pair indices, and crops for frames)."""

    epoch: int
    index: int
    rows: np.ndarray


def bucket_batches(lengths: np.ndarray, batch_frames: int, max_batch_size: int,
                   ) -> list[np.ndarray]:
    """Cut items (in the given order) into batches of similar lengths: within each run of
    ``BUCKET_SIZE`` items, longest first, then greedily while the padded size
    ``len(batch) * max(lengths) <= batch_frames`` and ``len(batch) <= max_batch_size``.

    >>> [b.tolist() for b in bucket_batches(np.array([3, 9, 4, 8]), 16, 8)]
    [[1], [3, 2], [0]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    starts = np.arange(0, n, BUCKET_SIZE)
    bucket = np.repeat(starts, np.diff(np.append(starts, n)))  # (N,) bucket of each item
    order = np.lexsort((-lengths, bucket))  # by bucket, then longest first (stable)
    cuts = greedy_cuts(lengths[order], batch_frames, max_batch_size)
    return [b for b in np.split(order, cuts) if len(b)]


@numba.njit(cache=True)
def greedy_cuts(lengths: np.ndarray, batch_frames: int, max_batch_size: int) -> np.ndarray:
    """Where to cut ``lengths`` so each piece has ``size * max <= batch_frames`` and
    ``size <= max_batch_size`` (a single longer item stays alone): ``(num_cuts,)``."""
    cuts = np.empty(len(lengths), dtype=np.int64)
    num_cuts, size, longest = 0, 0, 0
    for i in range(len(lengths)):
        new_longest = max(longest, lengths[i])
        if size > 0 and ((size + 1) * new_longest > batch_frames or size + 1 > max_batch_size):
            cuts[num_cuts] = i
            num_cuts += 1
            size, new_longest = 0, lengths[i]
        size += 1
        longest = new_longest
    return cuts[:num_cuts]


def crop_rows(lengths: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffled ``(N, 3)`` rows ``[utt index, offset, crop length]``: a random window of
    ``crop`` frames of every utterance longer than that, the whole of the others."""
    order = rng.permutation(len(lengths))
    full = lengths[order]
    size = np.minimum(full, crop)
    offset = np.floor(rng.random(len(order)) * (full - size + 1)).astype(np.int64)
    return np.stack([order, offset, size], axis=1).astype(np.int64)


def shuffled(batches: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    return [batches[i] for i in rng.permutation(len(batches))]


def rank_slice(items: list, rank: int, world_size: int) -> list:
    """Items ``rank, rank + W, ...``, truncated so every rank has ``len // W`` of them."""
    per_rank = len(items) // world_size
    return items[rank:per_rank * world_size:world_size]
