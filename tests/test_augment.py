"""The shared distortions of speechssl.augment against independent references: the room
response's decay, np.convolve and scipy's fftconvolve, scipy's Butterworth design, the
measured SNR and spectral slope of the noise, the gain in dB."""

from __future__ import annotations

import numpy as np
import pytest

from speechssl import augment
from speechssl.augment import (
    BAND_HIGH_HZ,
    BAND_LOW_HZ,
    GAIN_DB,
    NOISE_COLOURS,
    RT60,
    SNR_DB,
    coloured_noise,
)

SR, N = 16000, 24000


def copy_of(rng: np.random.Generator) -> np.random.Generator:
    """A generator in the same state, to draw the reference's numbers from."""
    twin = np.random.default_rng()
    twin.bit_generator.state = rng.bit_generator.state
    return twin


def renormalised(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return y * np.sqrt(np.sum(x ** 2) / np.sum(y ** 2))


def spectral_slope(noise: np.ndarray) -> float:
    """Least-squares slope of log power against log frequency, 50 Hz..4 kHz, (M, N) rows."""
    power = np.mean(np.abs(np.fft.rfft(noise, axis=-1)) ** 2, axis=0)
    f = np.fft.rfftfreq(noise.shape[-1], 1 / SR)
    band = (f > 50) & (f < 4000)
    return float(-np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0])


def speech_with_pauses(seed: int) -> np.ndarray:
    """A wave of at least 0.1 in magnitude with silent stretches: the SNR reference (the
    power of the non-silent samples) is the power of the wave alone."""
    s = np.sin(np.arange(N) / 7.0 + seed)
    x = 0.5 * np.where(s >= 0, 1.0, -1.0) * (0.2 + np.abs(s))
    x[: N // 4] = 0.0
    x[N // 2: N // 2 + 2000] = 0.0
    return x


# ---------------------------------------------------------------- reverberation

@pytest.mark.parametrize("seed", range(5))
def test_room_response_is_causal_and_60_db_down_after_its_rt60(seed):
    rir = augment.room_response(np.random.default_rng(seed), SR)
    assert rir[0] == 1.0  # the direct path, at lag 0
    rt60 = len(rir) / SR
    assert RT60[0] - 1 / SR <= rt60 <= RT60[1]
    # The power envelope's slope from a line through log(h^2) (the noise's log-chi2
    # scatter averages out over thousands of taps).
    t = np.arange(1, len(rir)) / SR
    slope = np.polyfit(t, np.log(rir[1:] ** 2), 1)[0]  # nepers of power per second
    decay_db = -slope * rt60 * 10 / np.log(10)
    assert abs(decay_db - 60) < 3, f"seed {seed}: {decay_db:.1f} dB down after the RT60"


@pytest.mark.parametrize("fft_dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shift", [0, 37])
def test_convolve_is_a_direct_convolution_cut_and_renormalised(fft_dtype, tol, shift):
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal(N), rng.standard_normal(3000) * np.exp(-np.arange(3000) / 400)
    got = augment.convolve(x, h, shift=shift, fft_dtype=fft_dtype)
    want = renormalised(np.convolve(x, h)[shift:shift + N], x)
    err = np.abs(got - want)
    assert err.max() < tol * np.abs(want).max(), f"max diff {err.max():g} at {err.argmax()}"


def test_convolve_in_float64_is_fftconvolve_to_the_bit():
    # The corpus's wavs were made with fftconvolve: the same bytes need the same FFTs.
    from scipy.signal import fftconvolve

    for seed in range(5):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(16000 + 313 * seed)
        h = augment.room_response(rng, SR)
        want = renormalised(fftconvolve(x, h)[:len(x)], x)
        assert np.array_equal(augment.convolve(x, h), want), f"seed {seed}"


@pytest.mark.parametrize("fft_dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_reverberate_convolves_with_the_drawn_room(fft_dtype, tol):
    x = np.random.default_rng(2).standard_normal(N)
    rng = np.random.default_rng(5)
    twin = copy_of(rng)
    got = augment.reverberate(x, rng, SR, fft_dtype)
    want = renormalised(np.convolve(x, augment.room_response(twin, SR))[:N], x)
    assert np.abs(got - want).max() < tol * np.abs(want).max()
    assert rng.random() == twin.random()  # the same numbers were drawn


# ---------------------------------------------------------------- band-pass

def test_band_pass_sos_in_closed_form_is_scipy_butter():
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(0)
    x = rng.standard_normal(N)
    corners = [(BAND_LOW_HZ[i], BAND_HIGH_HZ[j]) for i in (0, 1) for j in (0, 1)]
    for low, high in corners + [(rng.uniform(*BAND_LOW_HZ), rng.uniform(*BAND_HIGH_HZ))
                                for _ in range(20)]:
        want = sosfilt(butter(4, [low, high], btype="band", fs=SR, output="sos"), x)
        got = sosfilt(augment.band_pass_sos(low, high, SR, closed_form=True), x)
        err = np.abs(got - want).max()
        assert err < 1e-9 * np.abs(want).max(), f"{low:.1f}-{high:.1f} Hz: max diff {err:g}"


@pytest.mark.parametrize("closed_form, tol", [(False, 0.0), (True, 1e-9)])
def test_band_pass_filters_with_the_drawn_edges(closed_form, tol):
    from scipy.signal import butter, sosfilt

    x = np.random.default_rng(1).standard_normal(N)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        twin = copy_of(rng)
        low, high = twin.uniform(*BAND_LOW_HZ), twin.uniform(*BAND_HIGH_HZ)
        want = sosfilt(butter(4, [low, high], btype="band", fs=SR, output="sos"), x)
        got = augment.band_pass(x, rng, SR, closed_form=closed_form)
        err = np.abs(got - want).max()
        assert err <= tol * np.abs(want).max(), f"seed {seed}: max diff {err:g}"


# ---------------------------------------------------------------- noise

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


@pytest.mark.parametrize("use_bank", [False, True])
def test_noise_is_added_at_the_drawn_snr_and_colour(use_bank):
    bank = augment.noise_bank(0, SR, N) if use_bank else None
    for seed in range(6):
        x = speech_with_pauses(seed)
        rng = np.random.default_rng(seed)
        twin = copy_of(rng)
        snr, colour = twin.uniform(*SNR_DB), int(twin.integers(len(NOISE_COLOURS)))
        noise = augment.add_noise(x, rng, bank=bank) - x
        measured = 10 * np.log10(np.mean(x[x != 0] ** 2) / np.mean(noise ** 2))
        assert abs(measured - snr) < 1e-9, f"seed {seed}: {measured} dB, drawn {snr} dB"
        slope = spectral_slope(noise[None])
        assert abs(slope - NOISE_COLOURS[colour]) < 0.2, f"seed {seed}: slope {slope:.2f}"


def test_snr_scale_puts_a_noise_of_any_power_at_the_snr():
    noise = 3.0 * np.random.default_rng(0).standard_normal(N)
    power = 0.02
    scaled = noise * augment.snr_scale(power, 12.0, np.mean(noise ** 2))
    assert 10 * np.log10(power / np.mean(scaled ** 2)) == pytest.approx(12.0, abs=1e-9)


# ---------------------------------------------------------------- gain

def test_gain_is_drawn_in_db():
    x = speech_with_pauses(0)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        db = copy_of(rng).uniform(*GAIN_DB)
        y = augment.gain(x, rng)
        assert np.allclose(y, x * 10 ** (db / 20), rtol=1e-15, atol=0)
        assert GAIN_DB[0] <= db <= GAIN_DB[1]
