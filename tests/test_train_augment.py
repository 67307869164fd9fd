"""The fast training-view distortions of speechssl.train.augment against the corpus's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechssl.corpus import augment as corpus_augment
from speechssl.corpus.augment import NOISE_COLOURS, coloured_noise
from speechssl.train import augment
from speechssl.train.config import AugmentConfig

SR, N = 16000, 24000


def spectral_slope(noise: np.ndarray) -> float:
    """Least-squares slope of log power against log frequency, 50 Hz..4 kHz, (M, N) rows."""
    power = np.mean(np.abs(np.fft.rfft(noise, axis=-1)) ** 2, axis=0)
    f = np.fft.rfftfreq(noise.shape[-1], 1 / SR)
    band = (f > 50) & (f < 4000)
    return float(-np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0])


@pytest.mark.parametrize("colour", range(len(NOISE_COLOURS)))
def test_bank_noise_is_unit_power_noise_of_its_colour(colour):
    bank = augment.noise_bank(7, SR, N)
    assert bank.shape == (len(NOISE_COLOURS), int(augment.NOISE_BANK_SECONDS * SR) + N)
    rng = np.random.default_rng(0)
    segments = np.stack([augment.bank_noise(N, colour, bank, rng) for _ in range(64)])
    assert np.allclose(np.mean(segments ** 2, axis=1), 1.0)
    reference = np.stack([coloured_noise(N, NOISE_COLOURS[colour], rng) for _ in range(64)])
    slope = spectral_slope(segments)
    assert abs(slope - NOISE_COLOURS[colour]) < 0.1
    assert abs(slope - spectral_slope(reference)) < 0.1
    # Per bin, the same power spectrum as noise made for the segment (within sampling).
    ratio = (np.mean(np.abs(np.fft.rfft(segments)) ** 2, axis=0)[1:2000]
             / np.mean(np.abs(np.fft.rfft(reference)) ** 2, axis=0)[1:2000])
    assert 0.8 < np.median(ratio) < 1.25


def test_noise_bank_is_a_function_of_its_seed_and_wraps_seamlessly():
    a, b = augment.noise_bank(1, SR, N), augment.noise_bank(2, SR, N)
    assert augment.noise_bank(1, SR, N) is a  # cached
    assert not np.allclose(a[:, :100], b[:, :100])
    length = a.shape[1] - N
    assert np.array_equal(a[:, length:], a[:, :N])
    again = augment.noise_bank.__wrapped__(1, SR, N)
    assert np.array_equal(again, a)


def test_band_pass_sos_is_scipy_butter():
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(0)
    x = rng.standard_normal(N)
    for _ in range(20):
        low, high = rng.uniform(60, 300), rng.uniform(3000, 7000)
        want = sosfilt(butter(4, [low, high], btype="band", fs=SR, output="sos"), x)
        got = sosfilt(augment.band_pass_sos(low, high, SR), x)
        assert np.abs(got - want).max() < 1e-9 * np.abs(want).max()


def test_reverberate_and_band_pass_match_the_corpus_draw_for_draw():
    x = np.random.default_rng(1).standard_normal(N)
    for fast, slow, tol in [(augment.reverberate, corpus_augment.reverberate, 1e-5),
                            (augment.band_pass, corpus_augment.band_pass, 1e-9)]:
        rng_fast, rng_slow = np.random.default_rng(5), np.random.default_rng(5)
        got, want = fast(x, rng_fast, SR), slow(x, rng_slow, SR)
        assert np.abs(got - want).max() < tol * np.abs(want).max()
        assert rng_fast.random() == rng_slow.random()  # the same numbers were drawn


def test_bank_noise_is_added_at_the_snr():
    x = np.sin(np.arange(N) / 7.0)
    bank = augment.noise_bank(0, SR, N)
    y = augment.add_bank_noise(x, np.random.default_rng(3), (10.0, 10.0), bank)
    snr = 10 * np.log10(np.mean(x ** 2) / np.mean((y - x) ** 2))
    assert abs(snr - 10.0) < 0.01  # the power is of the non-silent samples


def test_augment_view_is_deterministic_and_keeps_the_length():
    x = np.random.default_rng(2).standard_normal(N).astype(np.float32)
    on = AugmentConfig(noise_prob=1, reverb_prob=1, bandpass_prob=1, gain_prob=1)
    bank = augment.noise_bank(0, SR, N)
    a = augment.augment_view(x, np.random.default_rng(4), SR, on, bank)
    b = augment.augment_view(x, np.random.default_rng(4), SR, on)
    assert a.shape == x.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.allclose(a, x)
    assert torch.isfinite(torch.from_numpy(a)).all()
