"""Dynamic time warping on frame features, as in Kamper's same-different evaluation.

The local cost is the cosine distance between frames; each step of a path (diagonal, up or
left) adds the local cost of the cell it enters once, the first cell included, and the total
is divided by ``n + m`` (the ``speech_dtw`` definition used by the samediff scripts, see
REFERENCES.md section 2).  So the value is the cheapest path's summed local cost over
``n + m``, whatever the number of steps.

:func:`dtw` and :func:`dtw_path` are numba kernels, callable from numpy code and from other
numba code (a same-different scorer can loop over all pairs inside one kernel).  The
distance-only :func:`dtw` keeps two rows of the accumulated cost, not the whole matrix.

>>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
>>> y = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
>>> cost = cosine_cost(x, y)
>>> float(dtw(cost))
0.0
>>> ix, iy = dtw_path(cost)
>>> ix.tolist(), iy.tolist()
([0, 0, 1], [0, 1, 2])
>>> align_to(2, (ix, iy)).tolist()
[0, 2]
"""

from __future__ import annotations

import numba
import numpy as np

NORM_FLOOR = 1e-12  # rows with a smaller L2 norm (all-zero frames) are left at zero


def cosine_cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cosine distances ``1 - cos(x_i, y_j)``: ``(n, D), (m, D) -> (n, m)`` float64.

    One matrix product of L2-normalised rows.  An all-zero frame has distance 1 to
    everything (cosine 0), rather than NaN.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need (n, D) and (m, D) matrices, got {x.shape} and {y.shape}")
    return normalised_cost(normalise_rows(x), normalise_rows(y))


def normalise_rows(x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """``(n, D)`` rows scaled to unit L2 norm (all-zero rows stay zero), C-contiguous.

    Normalise each token once when it is compared with many others, then use
    :func:`normalised_cost`, :func:`pair_alignments` or :func:`condensed_dtw`.
    """
    x = np.ascontiguousarray(x, dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), NORM_FLOOR)


def normalised_cost(xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Cosine distances of already normalised rows: ``(n, D), (m, D) -> (n, m)``."""
    return np.maximum(1.0 - xn @ yn.T, 0.0)  # clip rounding below 0


@numba.njit(cache=True)
def dtw(cost: np.ndarray) -> float:
    """Normalised DTW distance of an ``(n, m)`` local cost matrix: the cheapest monotone
    path from ``(0, 0)`` to ``(n-1, m-1)``, local costs summed once per cell, over ``n+m``.

    Two rolling rows of the accumulated cost: O(m) memory, no allocation per cell.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        raise ValueError("dtw: empty cost matrix")
    prev = np.empty(m)
    cur = np.empty(m)
    prev[0] = cost[0, 0]
    for j in range(1, m):
        prev[j] = prev[j - 1] + cost[0, j]
    for i in range(1, n):
        cur[0] = prev[0] + cost[i, 0]
        for j in range(1, m):
            best = min(prev[j - 1], prev[j], cur[j - 1])
            cur[j] = best + cost[i, j]
        prev, cur = cur, prev
    return prev[m - 1] / (n + m)


@numba.njit(cache=True)
def _accumulated(cost: np.ndarray) -> np.ndarray:
    """The full ``(n, m)`` accumulated cost matrix that :func:`dtw_path` backtracks."""
    n, m = cost.shape
    acc = np.empty((n, m))
    acc[0, 0] = cost[0, 0]
    for j in range(1, m):
        acc[0, j] = acc[0, j - 1] + cost[0, j]
    for i in range(1, n):
        acc[i, 0] = acc[i - 1, 0] + cost[i, 0]
        for j in range(1, m):
            acc[i, j] = min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]) + cost[i, j]
    return acc


@numba.njit(cache=True)
def _backtrack(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The path through an accumulated cost matrix, from ``(0, 0)``; ties prefer the
    diagonal, then the step that keeps ``y`` (up), then left."""
    n, m = acc.shape
    ix = np.empty(n + m - 1, dtype=np.int64)
    iy = np.empty(n + m - 1, dtype=np.int64)
    i, j, k = n - 1, m - 1, 0
    while True:
        ix[k], iy[k] = i, j
        k += 1
        if i == 0 and j == 0:
            break
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diag, up, left = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
            if diag <= up and diag <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
    return ix[:k][::-1].copy(), iy[:k][::-1].copy()


@numba.njit(cache=True)
def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The optimal warping path of an ``(n, m)`` cost matrix as ``(ix, iy)`` int64 arrays,
    from ``(0, 0)`` to ``(n-1, m-1)``, both non-decreasing, one step at a time.

    Ties prefer the diagonal, then the step that keeps ``y`` (up), then left.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        raise ValueError("dtw_path: empty cost matrix")
    return _backtrack(_accumulated(cost))


@numba.njit(cache=True)
def _middle_of_runs(ix: np.ndarray, iy: np.ndarray, x_len: int) -> np.ndarray:
    """For each x frame, the middle y frame of the path steps at that frame."""
    first = np.empty(x_len, dtype=np.int64)
    last = np.empty(x_len, dtype=np.int64)
    for k in range(len(ix) - 1, -1, -1):
        first[ix[k]] = iy[k]
    for k in range(len(ix)):
        last[ix[k]] = iy[k]
    return (first + last) // 2


def align_to(x_len: int, path: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """For each frame ``t`` of x, the index of the one y frame aligned to it: ``(x_len,)``.

    Where the path maps several y frames to one x frame (a run of left steps), the middle
    one is taken (the lower middle for an even count): one real frame of y per frame of x,
    rather than a mean of frames, which would be a frame the speaker never produced.
    Correspondence targets (CAPC, CAE) need exactly one y frame per x frame.
    """
    ix, iy = (np.asarray(a, dtype=np.int64) for a in path)
    if ix.size == 0 or ix[0] != 0 or ix[-1] != x_len - 1 or np.any(np.diff(ix) < 0):
        raise ValueError(f"path does not run monotonically over x frames 0..{x_len - 1}")
    return _middle_of_runs(ix, iy, x_len)


@numba.njit(cache=True, fastmath=True)
def _unit_cost(xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """Cosine distances of unit rows ``(n, D), (m, D) -> (n, m)``, inside numba."""
    n, m, dim = xn.shape[0], yn.shape[0], xn.shape[1]
    cost = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            dot = 0.0
            for k in range(dim):
                dot += xn[i, k] * yn[j, k]
            cost[i, j] = max(1.0 - dot, 0.0)
    return cost


@numba.njit(cache=True)
def pair_alignments(unit: np.ndarray, offsets: np.ndarray, pairs: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """DTW alignments (cosine cost) of many pairs of segments, in both directions.

    ``unit``: ``(F, D)`` L2-normalised frames (:func:`normalise_rows`), segment s at rows
    ``offsets[s]:offsets[s+1]``; ``pairs``: ``(P, 2)`` segment indices.  Returns ``align``
    and ``align_offsets`` ``(2P + 1,)``: for d < P, pair d aligned forwards (its first
    segment's frames -> frames of the second, :func:`align_to`) is
    ``align[align_offsets[d]:align_offsets[d+1]]``; d = P + p is pair p backwards, read
    off the same path.  One compiled loop: no Python work per pair.
    """
    num = pairs.shape[0]
    lengths = offsets[1:] - offsets[:-1]
    align_offsets = np.zeros(2 * num + 1, dtype=np.int64)
    for d in range(2 * num):
        align_offsets[d + 1] = align_offsets[d] + lengths[pairs[d % num, d // num]]
    align = np.empty(align_offsets[-1], dtype=np.int32)
    for p in range(num):
        a, b = pairs[p, 0], pairs[p, 1]
        cost = _unit_cost(unit[offsets[a]:offsets[a + 1]], unit[offsets[b]:offsets[b + 1]])
        ix, iy = _backtrack(_accumulated(cost))
        align[align_offsets[p]:align_offsets[p + 1]] = _middle_of_runs(ix, iy, lengths[a])
        align[align_offsets[num + p]:align_offsets[num + p + 1]] = _middle_of_runs(
            iy, ix, lengths[b])
    return align, align_offsets


@numba.njit(cache=True)
def _cost(dot: float) -> float:
    return max(1.0 - dot, 0.0)  # cosine distance of unit rows, rounding below 0 clipped


@numba.njit(cache=True)
def _dtw_columns(dots: np.ndarray, c0: int, c1: int, prev: np.ndarray,
                 cur: np.ndarray) -> float:
    """:func:`dtw` of the cosine costs of the column block ``dots[:, c0:c1]`` of unit-row
    dot products, in place, with caller buffers (no allocation per pair)."""
    n, m = dots.shape[0], c1 - c0
    prev[0] = _cost(dots[0, c0])
    for j in range(1, m):
        prev[j] = prev[j - 1] + _cost(dots[0, c0 + j])
    for i in range(1, n):
        row = dots[i]
        left = prev[0] + _cost(row[c0])
        cur[0] = left
        for j in range(1, m):
            left = min(prev[j - 1], prev[j], left) + _cost(row[c0 + j])
            cur[j] = left
        prev, cur = cur, prev
    return prev[m - 1] / (n + m)


@numba.njit(cache=True)
def _row_distances(dots: np.ndarray, col_offsets: np.ndarray, first: int,
                   out: np.ndarray) -> None:
    """DTW of one segment against segments ``first, first+1, ...`` whose frames are the
    column blocks ``col_offsets[k]:col_offsets[k+1]`` of ``dots``; fills ``out``."""
    width = 0
    for k in range(first, first + out.size):
        width = max(width, col_offsets[k + 1] - col_offsets[k])
    prev, cur = np.empty(width), np.empty(width)
    for p in range(out.size):
        k = first + p
        out[p] = _dtw_columns(dots, col_offsets[k], col_offsets[k + 1], prev, cur)


def condensed_dtw(unit: np.ndarray, offsets: np.ndarray, lo: int = 0,
                  hi: int | None = None) -> np.ndarray:
    """DTW distances (cosine cost) of segment pairs at condensed (``pdist``) indices
    ``lo:hi``; ``unit``: ``(F, D)`` L2-normalised frames, segment s at rows
    ``offsets[s]:offsets[s+1]`` (as in :func:`pair_alignments`).

    For each segment, the costs against all later segments come from ONE matrix product
    of unit rows (BLAS), then compiled DTW runs over column blocks of it: a few ns per
    cell.  A row's product always spans all its later segments, so a pair's distance does
    not depend on how ``lo:hi`` cuts the pairs (parallel chunks agree bit for bit).
    """
    n = len(offsets) - 1
    total = n * (n - 1) // 2
    hi = total if hi is None else hi
    out = np.empty(hi - lo)
    a = int(np.searchsorted(_row_starts(n), lo, side="right")) - 1
    done = 0
    while done < hi - lo:
        row_first = a * n - a * (a + 1) // 2          # condensed index of (a, a + 1)
        skip = lo + done - row_first                   # pairs of this row already done
        count = min(n - a - 1 - skip, hi - lo - done)
        x = unit[offsets[a]:offsets[a + 1]]            # (n_a, D)
        ys = unit[offsets[a + 1]:]                     # (frames of segments a+1.., D)
        dots = x @ ys.T                                # (n_a, F_after)
        _row_distances(dots, offsets[a + 1:] - offsets[a + 1], skip, out[done:done + count])
        done += count
        a += 1
    return out


def listed_pairs_dtw(unit: np.ndarray, offsets: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """DTW distances (cosine cost) of the listed segment pairs ``(P, 2)``, as
    :func:`condensed_dtw` computes them: one matrix product per first segment, against the
    frames of its listed partners only (equal to :func:`condensed_dtw` up to the rounding
    of the products, whose shapes differ)."""
    out = np.empty(len(pairs))
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    ordered = pairs[order]
    bounds = np.flatnonzero(np.diff(ordered[:, 0], prepend=-1, append=-1))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        a, partners = ordered[lo, 0], ordered[lo:hi, 1]
        lengths = offsets[partners + 1] - offsets[partners]
        col_offsets = np.concatenate([[0], np.cumsum(lengths)])
        # Frame rows of the partners, one block after another.
        rows = np.repeat(offsets[partners] - col_offsets[:-1], lengths) + np.arange(
            col_offsets[-1])
        dots = unit[offsets[a]:offsets[a + 1]] @ unit[rows].T
        distances = np.empty(hi - lo)
        _row_distances(dots, col_offsets, 0, distances)
        out[order[lo:hi]] = distances
    return out


def _row_starts(n: int) -> np.ndarray:
    rows = np.arange(n, dtype=np.int64)
    return rows * n - rows * (rows + 1) // 2
