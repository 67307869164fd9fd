"""CMVN stats, apply-cmvn and add-deltas against kaldi-native-fbank and Kaldi's formulas."""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np
import pytest

from speechssl.errors import InputError
from speechssl.features import add_deltas, apply_cmvn, cmvn_stats
from speechssl.features.deltas import delta_windows


def feats(num_frames: int, dim: int = 13, seed: int = 0, loc: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.5, 4.0, size=dim)
    return (loc + scale * rng.standard_normal((num_frames, dim))).astype(np.float32)


def assert_close(got, want, atol: float, rtol: float = 0.0) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    excess = np.abs(got - want) - (atol + rtol * np.abs(want))
    idx = np.unravel_index(excess.argmax(), excess.shape)
    assert excess.max() <= 0, (f"max diff {np.abs(got - want).max():.3e}, worst at {idx}: "
                               f"{got[idx]!r} vs {want[idx]!r}")


def kaldi_acc_cmvn_stats(mats) -> np.ndarray:
    """Kaldi's AccCmvnStats, frame by frame: float32 x*x added to double sums."""
    dim = mats[0].shape[1]
    stats = np.zeros((2, dim + 1))
    for mat in mats:
        for frame in mat:
            stats[0, :dim] += frame
            stats[1, :dim] += frame * frame  # float32 product, as in Kaldi
            stats[0, dim] += 1.0
    return stats


def test_stats_layout_and_kaldi_arithmetic():
    mats = [feats(50, seed=1), feats(17, seed=2, loc=-3.0), feats(1, seed=3)]
    stats = cmvn_stats(mats)
    assert stats.dtype == np.float64 and stats.shape == (2, 14)
    assert stats[0, -1] == 68 and stats[1, -1] == 0
    assert_close(stats, kaldi_acc_cmvn_stats(mats), atol=0, rtol=1e-12)


def test_stats_sum_over_utterances_match_knf_accumulator():
    mats = [feats(300, seed=4), feats(77, seed=5, loc=-2.0)]
    acc = knf.CmvnAccumulator(13)
    for mat in mats:
        acc.accumulate(mat)
    # knf squares in double, Kaldi (and we) in float32: ~1e-8 relative apart.
    assert_close(cmvn_stats(mats), acc.stats, atol=0, rtol=1e-7)
    assert_close(cmvn_stats(iter(mats)), cmvn_stats(mats[:1]) + cmvn_stats(mats[1:]),
                 atol=0, rtol=1e-12)


@pytest.mark.parametrize("norm_vars", [False, True])
def test_apply_cmvn_matches_knf(norm_vars):
    x = feats(120, seed=6)
    stats = cmvn_stats([x, feats(40, seed=7, loc=1.0)])
    want = knf.apply_cmvn(stats, knf.CmvnOptions(norm_vars=norm_vars), x)
    got = apply_cmvn(x, stats, norm_vars=norm_vars)
    assert got.dtype == np.float32
    assert_close(got, want, atol=1e-6)


@pytest.mark.parametrize("norm_vars", [False, True])
def test_apply_cmvn_formula(norm_vars):
    x = feats(80, seed=8)
    stats = cmvn_stats([x])
    count = stats[0, -1]
    mean = stats[0, :-1] / count
    std = np.sqrt(stats[1, :-1] / count - mean**2) if norm_vars else 1.0
    assert_close(apply_cmvn(x, stats, norm_vars), (x - mean) / std, atol=2e-5)
    if norm_vars:
        normed = apply_cmvn(x, stats, True).astype(np.float64)
        assert_close(normed.mean(0), np.zeros(13), atol=1e-5)
        assert_close(normed.std(0), np.ones(13), atol=1e-5)


def test_apply_cmvn_floors_the_variance():
    x = np.full((5, 2), 3.0, dtype=np.float32)
    out = apply_cmvn(x, cmvn_stats([x]), norm_vars=True)
    assert np.isfinite(out).all() and np.abs(out).max() < 1e-3


def test_apply_cmvn_errors():
    x = feats(10)
    stats = cmvn_stats([x])
    with pytest.raises(InputError, match="count"):
        apply_cmvn(x, stats * 0.0)
    with pytest.raises(InputError, match="dim"):
        apply_cmvn(x[:, :5], stats)
    with pytest.raises(InputError, match="variance"):
        apply_cmvn(x, stats[:1], norm_vars=True)
    assert_close(apply_cmvn(x, stats[:1]), apply_cmvn(x, stats), atol=0)
    with pytest.raises(InputError, match="no feature"):
        cmvn_stats([])
    with pytest.raises(InputError, match="differs"):
        cmvn_stats([x, x[:, :3]])


def brute_force_deltas(x: np.ndarray, order: int, window: int) -> np.ndarray:
    """Kaldi's DeltaFeatures::Process frame by frame, windows convolved in float64."""
    first = np.arange(-window, window + 1) / (2.0 * sum(j * j for j in range(1, window + 1)))
    scales = [np.ones(1)]
    for _ in range(order):
        scales.append(np.convolve(scales[-1], first))
    num_frames = x.shape[0]
    out = np.zeros((num_frames, x.shape[1] * (order + 1)))
    for t in range(num_frames):
        for i, w in enumerate(scales):
            half = (w.size - 1) // 2
            for j in range(-half, half + 1):
                src = min(max(t + j, 0), num_frames - 1)
                out[t, i * x.shape[1]:(i + 1) * x.shape[1]] += w[j + half] * x[src]
    return out


@pytest.mark.parametrize("order, window, num_frames", [
    (2, 2, 40), (3, 1, 12), (1, 3, 9), (0, 2, 5), (2, 2, 3), (2, 2, 1)])
def test_deltas_match_knf_and_kaldis_formula(order, window, num_frames):
    x = feats(num_frames, dim=7, seed=num_frames)
    got = add_deltas(x, order=order, window=window)
    assert got.dtype == np.float32 and got.shape == (num_frames, 7 * (order + 1))
    assert_close(got, knf.compute_deltas(knf.DeltaOptions(order=order, window=window), x),
                 atol=1e-5, rtol=1e-5)
    assert_close(got, brute_force_deltas(x, order, window), atol=1e-5, rtol=1e-5)


def test_delta_windows_are_kaldis():
    assert delta_windows(2, 2)[1].tolist() == pytest.approx([-0.2, -0.1, 0, 0.1, 0.2])
    assert delta_windows(2, 2)[2].tolist() == pytest.approx(
        [0.04, 0.04, 0.01, -0.04, -0.1, -0.04, 0.01, 0.04, 0.04])


def test_deltas_of_a_line_are_its_slope():
    ramp = np.arange(20, dtype=np.float32)[:, None] * 3.0  # (T, 1), slope 3 per frame
    out = add_deltas(ramp, order=2, window=2)
    assert_close(out[4:-4, 1], np.full(12, 3.0), atol=1e-5)
    assert_close(out[4:-4, 2], np.zeros(12), atol=1e-5)


def test_deltas_bad_input():
    with pytest.raises(InputError):
        add_deltas(np.zeros((0, 3)))
    with pytest.raises(InputError):
        add_deltas(np.zeros((4, 3)), window=0)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_values_are_refused_not_spread(value):
    """Kaldi would give NaN stats, and so NaN features for every utterance of the speaker."""
    x, bad = feats(10), feats(10, seed=1)
    bad[4, 2] = value
    with pytest.raises(InputError, match="matrix 1 holds NaN or infinite values"):
        cmvn_stats([x, bad])
    stats = cmvn_stats([x])
    stats[0, 2] = value
    for norm_vars in (False, True):
        with pytest.raises(InputError, match="NaN or infinity in the CMVN stats"):
            apply_cmvn(x, stats, norm_vars=norm_vars)
