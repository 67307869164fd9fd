"""Optional distortions of the embedded corpus: reverberation, band-pass, noise and gain.

The distortions and their ranges are :mod:`speechssl.augment`'s, in their exact variants
(float64 FFTs, scipy's filter design, noise shaped per utterance); this module chooses
which apply.  Every draw comes from the utterance's augmentation stream, independent of
the stream that chooses sentences and prosody, so a clean and an augmented corpus made
with the same seed share texts and alignments.  The synthetic room response is causal
with the direct path at lag 0, so no word moves.
"""

from __future__ import annotations

import numpy as np

from speechssl.augment import add_noise, band_pass, gain, reverberate


def augment(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Each distortion with probability 1/2 (noise 3/4), then a gain that never clips.

    A coin is drawn just before its distortion (unlike training's views), which fixes
    the corpus's bytes for a seed: keep the order.
    """
    y = x.astype(np.float64)
    if rng.random() < 0.5:
        y = reverberate(y, rng, sr)
    if rng.random() < 0.5:
        y = band_pass(y, rng, sr)
    if rng.random() < 0.75:
        y = add_noise(y, rng)
    y = gain(y, rng)
    peak = np.abs(y).max()
    return (y * (0.99 / peak if peak > 0.99 else 1.0)).astype(np.float32)
