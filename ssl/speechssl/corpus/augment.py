"""Optional distortions: reverberation, band-pass, additive noise and gain.

Every draw comes from the utterance's augmentation stream, independent of the stream that
chooses sentences and prosody, so a clean and an augmented corpus made with the same seed
share texts and alignments.  The synthetic room response is causal with the direct path
at lag 0, so no word moves.
"""

from __future__ import annotations

import numpy as np

# scipy.signal takes about a second to import: it is imported where it is used, so that
# programs that only might augment (feature extraction, model extraction) start fast.

RT60 = (0.15, 0.7)           # seconds
SNR_DB = (5.0, 25.0)
BAND_LOW_HZ = (60.0, 300.0)
BAND_HIGH_HZ = (3000.0, 7000.0)
GAIN_DB = (-6.0, 3.0)
NOISE_COLOURS = (0.0, 1.0, 2.0)  # spectral slope: white, pink, brown


def reverberate(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Convolve with exponentially decaying noise (60 dB down after RT60), direct path 1."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(*RT60)
    t = np.arange(int(rt60 * sr)) / sr
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * rng.uniform(0.1, 0.4)
    rir[0] = 1.0
    y = fftconvolve(x, rir)[: len(x)]
    return y * np.sqrt(np.sum(x ** 2) / max(np.sum(y ** 2), 1e-12))


def coloured_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise with power spectrum ~ 1/f**slope."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (slope / 2), n)
    return noise / max(np.sqrt(np.mean(noise ** 2)), 1e-12)


def add_noise(x: np.ndarray, rng: np.random.Generator,
              snr_db: tuple[float, float] = SNR_DB) -> np.ndarray:
    """Noise at a random SNR in ``snr_db`` relative to the power of the speech
    (non-silent samples)."""
    snr = rng.uniform(*snr_db)
    slope = NOISE_COLOURS[int(rng.integers(len(NOISE_COLOURS)))]
    active = x[np.abs(x) > 1e-3]
    power = np.mean(active ** 2) if active.size else 1e-6
    return x + coloured_noise(len(x), slope, rng) * np.sqrt(power / 10 ** (snr / 10))


def band_pass(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [rng.uniform(*BAND_LOW_HZ), rng.uniform(*BAND_HIGH_HZ)], btype="band",
                 fs=sr, output="sos")
    return sosfilt(sos, x)


def augment(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Each distortion with probability 1/2 (noise 3/4), then a gain that never clips."""
    y = x.astype(np.float64)
    if rng.random() < 0.5:
        y = reverberate(y, rng, sr)
    if rng.random() < 0.5:
        y = band_pass(y, rng, sr)
    if rng.random() < 0.75:
        y = add_noise(y, rng)
    y = y * 10 ** (rng.uniform(*GAIN_DB) / 20)
    peak = np.abs(y).max()
    return (y * (0.99 / peak if peak > 0.99 else 1.0)).astype(np.float32)
