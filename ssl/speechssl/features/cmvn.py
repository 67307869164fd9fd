"""Cepstral mean and variance normalisation, as Kaldi's compute-cmvn-stats and apply-cmvn.

The stats are Kaldi's 2 x (D+1) double matrix (``transform/cmvn.cc``): row 0 holds the sum
of the frames and, last, the frame count; row 1 the sum of squares and 0.  Stats of a
speaker are the sum of the stats of its utterances, so they can be accumulated in pieces.
The arithmetic follows Kaldi's precision choices (float32 squares accumulated in double,
offsets and scales computed in double and applied in float32) so that the results agree
with Kaldi to the last bit or two.  (kaldi-native-fbank squares in double: its sums of
squares differ from Kaldi's, and ours, by about 1e-8 relative.)

>>> x = np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32)
>>> cmvn_stats([x]).tolist()
[[4.0, 40.0, 2.0], [10.0, 1000.0, 0.0]]
>>> apply_cmvn(x, cmvn_stats([x]), norm_vars=True).tolist()
[[-1.0, -1.0], [1.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from speechssl.errors import InputError

VAR_FLOOR = 1.0e-20  # Kaldi's floor on the variance in ApplyCmvn


def cmvn_stats(feats_list: Iterable[np.ndarray]) -> np.ndarray:
    """Kaldi's CMVN stats ``(2, D+1)`` float64 over all frames of all matrices ``(T, D)``.

    Unlike Kaldi, a NaN or infinite value is an error: it would make the stats, and so
    every normalised utterance of the speaker, NaN."""
    stats = None
    for i, feats in enumerate(feats_list):
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2:
            raise InputError(f"expected a (frames, dim) matrix, got shape {feats.shape}")
        if not np.isfinite(feats).all():
            raise InputError(f"matrix {i} holds NaN or infinite values")
        if stats is None:
            stats = np.zeros((2, feats.shape[1] + 1), dtype=np.float64)
        elif feats.shape[1] != stats.shape[1] - 1:
            raise InputError(f"feature dim {feats.shape[1]} differs from the earlier "
                             f"{stats.shape[1] - 1}")
        _accumulate(stats, feats)
    if stats is None:
        raise InputError("no feature matrices to compute CMVN stats from")
    return stats


def _accumulate(stats: np.ndarray, feats: np.ndarray) -> None:
    """Add one matrix to the stats: Kaldi squares in float32 and sums in double."""
    stats[0, :-1] += feats.sum(axis=0, dtype=np.float64)
    stats[1, :-1] += (feats * feats).sum(axis=0, dtype=np.float64)
    stats[0, -1] += feats.shape[0]


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = False) -> np.ndarray:
    """Normalise ``feats`` ``(T, D)`` with Kaldi stats; returns a new float32 matrix.

    As Kaldi's ``ApplyCmvn``: subtract the mean; with ``norm_vars`` also divide by the
    standard deviation (variance floored at 1e-20).  Stats with a count below 1 are an
    error, as in Kaldi.  Mean-only (1-row) stats are accepted without ``norm_vars``.
    """
    feats = np.asarray(feats, dtype=np.float32)
    stats = np.asarray(stats, dtype=np.float64)
    dim = _check_stats(feats, stats, norm_vars)
    count = stats[0, dim]
    mean = stats[0, :dim] / count
    if not norm_vars:
        return feats + (-mean).astype(np.float32)
    var = np.maximum(stats[1, :dim] / count - mean * mean, VAR_FLOOR)
    scale = 1.0 / np.sqrt(var)
    offset = -(mean * scale)
    return feats * scale.astype(np.float32) + offset.astype(np.float32)


def _check_stats(feats: np.ndarray, stats: np.ndarray, norm_vars: bool) -> int:
    """Kaldi's checks on the shapes and the count; returns the feature dim."""
    dim = stats.shape[-1] - 1
    if stats.ndim != 2 or stats.shape[0] not in (1, 2) or feats.ndim != 2 or (
            feats.shape[1] != dim):
        raise InputError(f"dim mismatch: cmvn stats {stats.shape}, features {feats.shape}")
    if norm_vars and stats.shape[0] == 1:
        raise InputError("variance normalisation asked for, but the stats have no variance")
    if not np.isfinite(stats).all():
        raise InputError("NaN or infinity in the CMVN stats")
    count = stats[0, dim]
    if not count >= 1.0:
        raise InputError(f"insufficient stats for CMVN: count = {count}")
    return dim
