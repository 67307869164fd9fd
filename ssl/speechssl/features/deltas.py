"""Delta features, as Kaldi's ``add-deltas`` (``DeltaFeatures`` in feat/feature-functions.cc).

The order-i block is one filter applied to the *static* features, whose window is the
i-fold convolution of the first-order regression window ``j / sum(k^2)``, ``j = -N..N``.
Frames past the edges repeat the first or last frame.  (This is not the same, at the edges,
as taking deltas of the deltas.)

>>> x = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
>>> add_deltas(x, order=2, window=1).tolist()
[[1.0, 0.5, 0.75], [2.0, 1.5, 0.25], [4.0, 1.0, -0.75]]
"""

from __future__ import annotations

import numpy as np

from speechssl.errors import InputError


def delta_windows(order: int, window: int) -> list[np.ndarray]:
    """Kaldi's ``scales_``: the float32 filter of each order, of length ``1 + 2*i*window``."""
    if not (0 <= order < 1000 and 0 < window < 1000):
        raise InputError(f"bad delta options: order {order}, window {window}")
    taps = np.arange(-window, window + 1, dtype=np.float32)
    normalizer = np.float32(1.0 / float((taps * taps).sum()))
    scales = [np.ones(1, dtype=np.float32)]
    for _ in range(order):
        scales.append(np.convolve(scales[-1], taps) * normalizer)  # float32, as in Kaldi
    return scales


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """``[x, delta x, delta^2 x, ...]`` of ``feats`` ``(T, D)``: ``(T, D*(order+1))`` float32."""
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise InputError(f"expected a non-empty (frames, dim) matrix, got {feats.shape}")
    num_frames = feats.shape[0]
    pad = order * window
    padded = np.pad(feats, ((pad, pad), (0, 0)), mode="edge")  # (T + 2*pad, D)
    blocks = []
    for scales in delta_windows(order, window):
        half = (scales.size - 1) // 2
        block = np.zeros_like(feats)  # (T, D)
        for j, scale in enumerate(scales, start=-half):
            if scale != 0.0:
                block += scale * padded[pad + j: pad + j + num_frames]
        blocks.append(block)
    return np.concatenate(blocks, axis=1)
