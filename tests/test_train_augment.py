"""Training views (speechssl.train.view_augment.augment_view) against independent references:
each distortion alone against np.convolve, scipy's Butterworth filter, the measured SNR
and the drawn gain, then all together, with the coin flips deciding which apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechssl.augment import (
    BAND_HIGH_HZ,
    BAND_LOW_HZ,
    add_noise,
    noise_bank,
    room_response,
    speech_power,
)
from speechssl.train import view_augment as augment
from speechssl.train.config import AugmentConfig

SR, N = 16000, 24000
OFF = dict(noise_prob=0, reverb_prob=0, bandpass_prob=0, gain_prob=0)


def copy_of(rng: np.random.Generator) -> np.random.Generator:
    twin = np.random.default_rng()
    twin.bit_generator.state = rng.bit_generator.state
    return twin


def speech(seed: int) -> np.ndarray:
    """Noise-like "speech" ``(N,)`` float32, at least 0.1 in magnitude but for a silent
    stretch, so that its SNR reference is the power of its non-zero samples."""
    rng = np.random.default_rng(100 + seed)
    x = 0.1 * (1 + rng.random(N)) * rng.choice([-1.0, 1.0], N)
    x[N // 3: N // 3 + 4000] = 0.0
    return x.astype(np.float32)


def reference_reverb(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.convolve(y, room_response(rng, SR))[:len(y)]
    return out * np.sqrt(np.sum(y ** 2) / np.sum(out ** 2))


def reference_band_pass(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    low, high = rng.uniform(*BAND_LOW_HZ), rng.uniform(*BAND_HIGH_HZ)
    return sosfilt(butter(4, [low, high], btype="band", fs=SR, output="sos"), y)


def assert_close(got: np.ndarray, want: np.ndarray, tol: float, what: str):
    err = np.abs(got.astype(np.float64) - want)
    assert err.max() <= tol * np.abs(want).max(), (
        f"{what}: max diff {err.max():g} at sample {err.argmax()}")


@pytest.mark.parametrize("seed", range(4))
def test_view_reverberation_is_the_drawn_room_convolved(seed):
    x, rng = speech(seed), np.random.default_rng(seed)
    twin = copy_of(rng)
    twin.random(4)  # the coin flips
    got = augment.augment_view(x, rng, SR, AugmentConfig(**{**OFF, "reverb_prob": 1}))
    assert_close(got, reference_reverb(x.astype(np.float64), twin), 1e-5, f"seed {seed}")


@pytest.mark.parametrize("seed", range(4))
def test_view_band_pass_is_scipy_butter_with_the_drawn_edges(seed):
    x, rng = speech(seed), np.random.default_rng(seed)
    twin = copy_of(rng)
    twin.random(4)
    got = augment.augment_view(x, rng, SR, AugmentConfig(**{**OFF, "bandpass_prob": 1}))
    assert_close(got, reference_band_pass(x.astype(np.float64), twin), 1e-6, f"seed {seed}")


@pytest.mark.parametrize("seed", range(4))
def test_view_noise_is_at_the_drawn_snr(seed):
    x, rng = speech(seed), np.random.default_rng(seed)
    twin = copy_of(rng)
    twin.random(4)
    config = AugmentConfig(**{**OFF, "noise_prob": 1})
    snr = twin.uniform(*config.snr_db)
    got = augment.augment_view(x, rng, SR, config)
    x64 = x.astype(np.float64)
    measured = 10 * np.log10(np.mean(x64[x64 != 0] ** 2) / np.mean((got - x64) ** 2))
    assert abs(measured - snr) < 1e-4, f"seed {seed}: {measured} dB, drawn {snr} dB"


@pytest.mark.parametrize("seed", range(4))
def test_view_gain_is_the_drawn_gain(seed):
    x, rng = speech(seed), np.random.default_rng(seed)
    twin = copy_of(rng)
    twin.random(4)
    config = AugmentConfig(**{**OFF, "gain_prob": 1})
    want = x.astype(np.float64) * 10 ** (twin.uniform(*config.gain_db) / 20)
    assert_close(augment.augment_view(x, rng, SR, config), want, 1e-7, f"seed {seed}")


@pytest.mark.parametrize("prob", [1.0, 0.5])
def test_view_chains_reverb_band_pass_noise_gain_as_its_coins_say(prob):
    # The noise step is the shared add_noise (tested against its SNR in test_augment.py),
    # with the same bank; the filters are the references above.
    config = AugmentConfig(noise_prob=prob, reverb_prob=prob, bandpass_prob=prob,
                           gain_prob=prob)
    bank = noise_bank(0, SR, N)
    applied = set()
    for seed in range(8):
        x, rng = speech(seed), np.random.default_rng(seed)
        twin = copy_of(rng)
        flips = twin.random(4) < prob
        applied.add(tuple(flips))
        y = x.astype(np.float64)
        y = reference_reverb(y, twin) if flips[0] else y
        y = reference_band_pass(y, twin) if flips[1] else y
        y = add_noise(y, twin, config.snr_db, bank) if flips[2] else y
        y = y * 10 ** (twin.uniform(*config.gain_db) / 20) if flips[3] else y
        assert_close(augment.augment_view(x, rng, SR, config), y, 1e-5, f"seed {seed}")
    if prob < 1:
        assert len(applied) > 1, "every seed applied the same distortions"


def test_augment_view_is_deterministic_and_keeps_the_length():
    x = np.random.default_rng(2).standard_normal(N).astype(np.float32)
    on = AugmentConfig(noise_prob=1, reverb_prob=1, bandpass_prob=1, gain_prob=1)
    bank = noise_bank(0, SR, N)
    a = augment.augment_view(x, np.random.default_rng(4), SR, on, bank)
    b = augment.augment_view(x, np.random.default_rng(4), SR, on)
    assert a.shape == x.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.allclose(a, x)
    assert torch.isfinite(torch.from_numpy(a)).all()


def test_speech_power_ignores_the_silence():
    x = speech(0).astype(np.float64)
    assert speech_power(x) == pytest.approx(np.mean(x[x != 0] ** 2), rel=1e-12)
