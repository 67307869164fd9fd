"""Waveform augmentation of training views (VICReg, SimCLR, ...), from ``data.augment``.

The distortions are the embedded corpus's (:mod:`speechssl.corpus.augment`): a synthetic
room reverberation, a random band-pass, coloured noise at an SNR, here each with the
probability and range an :class:`AugmentConfig` gives, then a gain.  Every draw comes from
the generator passed in, so a view is a function of that generator's seed alone.

>>> from speechssl.train.config import AugmentConfig
>>> x = np.sin(np.arange(1600) / 5.0).astype(np.float32)
>>> off = AugmentConfig(noise_prob=0, reverb_prob=0, bandpass_prob=0, gain_prob=0)
>>> bool(np.array_equal(augment_view(x, np.random.default_rng(0), 16000, off), x))
True
"""

from __future__ import annotations

import numpy as np

from speechssl.corpus.augment import add_noise, band_pass, reverberate
from speechssl.train.config import AugmentConfig


def augment_view(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
                 config: AugmentConfig) -> np.ndarray:
    """One augmented copy of ``x`` ``(N,)`` float32: reverberation, band-pass, noise and
    gain, each applied with its probability; the output keeps the length ``(N,)``.

    The four coin flips are always drawn, so whether one distortion applies does not shift
    the random numbers the next one sees from the same generator.  No clipping: the
    features are computed from floats, so a gain above 0 dB is harmless.
    """
    flips = rng.random(4)  # (4,): reverb, band-pass, noise, gain
    y = x.astype(np.float64)
    if flips[0] < config.reverb_prob:
        y = reverberate(y, rng, sample_rate)
    if flips[1] < config.bandpass_prob:
        y = band_pass(y, rng, sample_rate)
    if flips[2] < config.noise_prob:
        y = add_noise(y, rng, config.snr_db)
    if flips[3] < config.gain_prob:
        y = y * 10 ** (rng.uniform(*config.gain_db) / 20)
    return y.astype(np.float32)
