"""DTW against brute force: every monotone path enumerated, and a plain-Python recurrence."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from speechssl.dtw import (
    align_to,
    condensed_dtw,
    cosine_cost,
    dtw,
    dtw_path,
    normalise_rows,
    pair_alignments,
)


def all_path_costs(cost: np.ndarray) -> list[float]:
    """The summed local cost of every path from (0, 0) to (n-1, m-1) with steps
    (1, 0), (0, 1), (1, 1): exhaustive, for small matrices."""
    n, m = cost.shape

    @functools.cache
    def sums(i: int, j: int) -> tuple[float, ...]:
        here = float(cost[i, j])
        if (i, j) == (0, 0):
            return (here,)
        before = []
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i - di >= 0 and j - dj >= 0:
                before.extend(sums(i - di, j - dj))
        return tuple(s + here for s in before)

    return list(sums(n - 1, m - 1))


def python_dtw(cost: np.ndarray) -> float:
    """Kamper's samediff recurrence in plain Python, over n + m."""
    n, m = cost.shape
    acc = [[float("inf")] * (m + 1) for _ in range(n + 1)]
    acc[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i][j] = float(cost[i - 1, j - 1]) + min(acc[i - 1][j - 1], acc[i - 1][j],
                                                       acc[i][j - 1])
    return acc[n][m] / (n + m)


def check_path(ix: np.ndarray, iy: np.ndarray, n: int, m: int) -> None:
    assert (ix[0], iy[0]) == (0, 0) and (ix[-1], iy[-1]) == (n - 1, m - 1)
    steps = set(zip(np.diff(ix).tolist(), np.diff(iy).tolist(), strict=True))
    assert steps <= {(1, 0), (0, 1), (1, 1)}, steps


@pytest.mark.parametrize("n,m", [(1, 1), (1, 4), (4, 1), (3, 3), (4, 6), (6, 5)])
def test_dtw_and_path_equal_brute_force_over_all_paths(n, m):
    rng = np.random.default_rng(n * 10 + m)
    for trial in range(5):
        cost = rng.random((n, m))
        best = min(all_path_costs(cost))
        assert dtw(cost) == pytest.approx(best / (n + m), abs=1e-12), trial
        ix, iy = dtw_path(cost)
        check_path(ix, iy, n, m)
        assert cost[ix, iy].sum() == pytest.approx(best, abs=1e-12), trial


def test_dtw_equals_python_recurrence_on_cosine_costs():
    rng = np.random.default_rng(1)
    for n, m in [(17, 23), (40, 9), (31, 31)]:
        x, y = rng.standard_normal((n, 13)), rng.standard_normal((m, 13))
        cost = cosine_cost(x, y)
        assert dtw(cost) == pytest.approx(python_dtw(cost), rel=1e-12), (n, m)
        assert dtw(cost.astype(np.float32)) == pytest.approx(python_dtw(cost), rel=1e-6)
        ix, iy = dtw_path(cost)
        check_path(ix, iy, n, m)
        assert cost[ix, iy].sum() / (n + m) == pytest.approx(dtw(cost), rel=1e-12)


def test_cosine_cost_matches_scipy_and_handles_zero_frames():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 7)), rng.standard_normal((6, 7))
    np.testing.assert_allclose(cosine_cost(x, y), cdist(x, y, "cosine"), atol=1e-12)
    x[2] = 0.0
    cost = cosine_cost(x, y)
    assert np.all(np.isfinite(cost)) and np.allclose(cost[2], 1.0)
    assert np.all(cost >= 0.0)
    with pytest.raises(ValueError, match="matrices"):
        cosine_cost(x, y[:, :3])


def test_identical_sequences_align_on_the_diagonal_at_zero_cost():
    x = np.random.default_rng(3).standard_normal((12, 4))
    cost = cosine_cost(x, x)
    assert dtw(cost) == pytest.approx(0.0, abs=1e-12)
    ix, iy = dtw_path(cost)
    assert ix.tolist() == iy.tolist() == list(range(12))
    assert align_to(12, (ix, iy)).tolist() == list(range(12))


def test_align_to_takes_the_middle_of_repeated_frames():
    x = np.random.default_rng(4).standard_normal((6, 5))
    y = np.repeat(x, 3, axis=0)  # every frame three times: frame t is y's 3t, 3t+1, 3t+2
    align = align_to(6, dtw_path(cosine_cost(x, y)))
    assert align.tolist() == [3 * t + 1 for t in range(6)]
    y2 = np.repeat(x, 2, axis=0)  # an even run: the lower middle
    assert align_to(6, dtw_path(cosine_cost(x, y2))).tolist() == [2 * t for t in range(6)]


def test_align_to_properties_on_random_paths():
    rng = np.random.default_rng(5)
    for _ in range(20):
        n, m = rng.integers(1, 30, size=2)
        ix, iy = dtw_path(rng.random((n, m)))
        align = align_to(n, (ix, iy))
        assert align.shape == (n,) and align.min() >= 0 and align.max() < m
        assert np.all(np.diff(align) >= 0)
        on_path = set(zip(ix.tolist(), iy.tolist(), strict=True))
        assert all((t, int(a)) in on_path for t, a in enumerate(align))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        dtw(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        dtw_path(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="path"):
        align_to(4, (np.array([0, 1, 2]), np.array([0, 1, 2])))


def test_batched_kernels_equal_one_pair_at_a_time():
    rng = np.random.default_rng(6)
    lengths = rng.integers(3, 25, size=6)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    frames = rng.standard_normal((offsets[-1], 8))
    unit = normalise_rows(frames)
    pairs = np.array([[0, 1], [2, 5], [4, 3], [1, 0]])
    align, align_offsets = pair_alignments(unit, offsets, pairs)
    seg = [frames[offsets[k]:offsets[k + 1]] for k in range(6)]
    for p, (a, b) in enumerate(pairs):
        cost = cosine_cost(seg[a], seg[b])
        ix, iy = dtw_path(cost)
        forward = align[align_offsets[p]:align_offsets[p + 1]]
        backward = align[align_offsets[len(pairs) + p]:align_offsets[len(pairs) + p + 1]]
        np.testing.assert_array_equal(forward, align_to(lengths[a], (ix, iy)))
        np.testing.assert_array_equal(backward, align_to(lengths[b], (iy, ix)))


def test_condensed_dtw_equals_dtw_of_each_pair_whatever_the_chunks():
    rng = np.random.default_rng(7)
    lengths = rng.integers(3, 25, size=7)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    frames = rng.standard_normal((offsets[-1], 8))
    seg = [frames[offsets[k]:offsets[k + 1]] for k in range(7)]
    want = [dtw(cosine_cost(seg[a], seg[b])) for a in range(7) for b in range(a + 1, 7)]
    unit = normalise_rows(frames)
    whole = condensed_dtw(unit, offsets)
    np.testing.assert_allclose(whole, want, rtol=1e-9)
    for cuts in ([0, 1, 21], [0, 5, 6, 13, 21], [0, 20, 21]):  # chunks inside rows too
        parts = [condensed_dtw(unit, offsets, lo, hi) for lo, hi in zip(cuts, cuts[1:],
                                                                         strict=False)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
