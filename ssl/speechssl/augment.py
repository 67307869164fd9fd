"""Waveform distortions shared by the embedded corpus and the training views.

The synthetic corpus (:mod:`speechssl.corpus.synth.distort`) and the views of VICReg-style
training (:mod:`speechssl.train.view_augment`) distort speech alike, with the ranges defined
here: a synthetic room reverberation, a random band-pass, coloured noise at an SNR and a
gain.  Each function draws from the generator passed in, in a fixed order, so the same
generator state gives the same room, band, noise and gain whichever caller asks.  What
to apply, how often and in which order is the caller's.

Where training needs speed per view, the faster way is a parameter, not a copy:

- ``fft_dtype``: the reverberation's FFTs in float64 (``scipy.signal.fftconvolve`` to the
  bit) or float32 (~1.5x faster; ~1e-6 relative difference);
- ``closed_form``: the band-pass designed by ``scipy.signal.butter`` or in closed form
  (~30x faster; the same filter to rounding);
- ``bank``: coloured noise shaped by two FFTs per call, or cut from a :func:`noise_bank`
  made once per seed (the same spectrum and power, other samples).

>>> x = np.sin(np.arange(16000) / 5.0)
>>> y = add_noise(x, np.random.default_rng(0), snr_db=(10.0, 10.0))
>>> round(float(10 * np.log10(speech_power(x) / np.mean((y - x) ** 2))), 6)
10.0
"""

from __future__ import annotations

import functools

import numpy as np

# scipy.signal takes about a second to import: it is imported where it is used, so that
# programs that only might augment (feature extraction, model extraction) start fast.

RT60 = (0.15, 0.7)           # seconds
SNR_DB = (5.0, 25.0)
BAND_LOW_HZ = (60.0, 300.0)
BAND_HIGH_HZ = (3000.0, 7000.0)
GAIN_DB = (-6.0, 3.0)
NOISE_COLOURS = (0.0, 1.0, 2.0)  # spectral slope: white, pink, brown
NOISE_BANK_SECONDS = 60.0  # per colour; read at random offsets, signs and directions


# ---------------------------------------------------------------- reverberation

def room_response(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A synthetic room impulse response ``(L,)``: exponentially decaying noise, 60 dB
    down after an RT60 drawn from ``RT60``, with the direct path 1 at lag 0 (causal, so a
    convolved signal keeps its alignment)."""
    rt60 = rng.uniform(*RT60)
    t = np.arange(int(rt60 * sr)) / sr
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * rng.uniform(0.1, 0.4)
    rir[0] = 1.0
    return rir


def convolve(x: np.ndarray, rir: np.ndarray, shift: int = 0,
             fft_dtype: type = np.float64) -> np.ndarray:
    """Samples ``shift .. shift + N`` of ``x`` ``(N,)`` convolved with ``rir``, scaled back
    to the energy of ``x``: ``(N,)`` float64, the FFTs in ``fft_dtype``."""
    import scipy.fft

    # scipy.signal.fftconvolve's steps (the same FFT length and calls), so that float64
    # keeps the corpus's bytes.
    n = scipy.fft.next_fast_len(len(x) + len(rir) - 1, real=True)
    spectrum = scipy.fft.rfft(x.astype(fft_dtype), n) * scipy.fft.rfft(rir.astype(fft_dtype), n)
    y = scipy.fft.irfft(spectrum, n)[shift:shift + len(x)].astype(np.float64)
    return y * np.sqrt(np.sum(x ** 2) / max(np.sum(y ** 2), 1e-12))


def reverberate(x: np.ndarray, rng: np.random.Generator, sr: int,
                fft_dtype: type = np.float64) -> np.ndarray:
    """``x`` in a synthetic room (:func:`room_response`), at its own energy."""
    return convolve(x, room_response(rng, sr), fft_dtype=fft_dtype)


# ---------------------------------------------------------------- band-pass

def band_pass_sos(low: float, high: float, sr: float, closed_form: bool = False) -> np.ndarray:
    """A 4th-order Butterworth band-pass ``low`` .. ``high`` Hz as ``(4, 6)`` second-order
    sections: ``scipy.signal.butter``'s, or with ``closed_form`` the same filter without
    scipy's general design (sections ordered and scaled differently)."""
    if closed_form:
        return _butter_band_sos(low, high, sr)
    from scipy.signal import butter

    return butter(4, [low, high], btype="band", fs=sr, output="sos")


def _butter_band_sos(low: float, high: float, sr: float) -> np.ndarray:
    """The analog prototype's poles, prewarped band edges, low-pass to band-pass, bilinear
    transform: 8 poles in 4 conjugate pairs, zeros 4 at z = 1 and 4 at z = -1, so every
    section is ``(1 - z^-2) / (1 - 2 Re(p) z^-1 + |p|^2 z^-2)``."""
    order, fs2 = 4, 4.0  # scipy designs at fs = 2 (frequencies normalised to Nyquist)
    w1, w2 = (fs2 * np.tan(np.pi * np.array([low, high]) / sr))  # prewarped, rad/s
    bw, w0sq = w2 - w1, w1 * w2
    proto = np.exp(1j * np.pi * (2 * np.arange(order) + order + 1) / (2 * order))
    lp = proto * bw / 2
    root = np.sqrt(lp ** 2 - w0sq)
    poles = np.concatenate([lp + root, lp - root])  # (8,) analog band-pass poles
    zpoles = (fs2 + poles) / (fs2 - poles)
    # Gain: bw**order from the transform, (fs2 - 0)**4 / prod(fs2 - p) from the bilinear.
    gain = np.real(bw ** order * fs2 ** order / np.prod(fs2 - poles))
    upper = zpoles[zpoles.imag > 0]
    upper = upper[np.argsort(np.abs(upper))]
    sos = np.zeros((order, 6))
    sos[:, 0], sos[:, 2] = 1.0, -1.0
    sos[:, 3], sos[:, 4], sos[:, 5] = 1.0, -2 * upper.real, np.abs(upper) ** 2
    sos[0, :3] *= gain
    return sos


def band_pass(x: np.ndarray, rng: np.random.Generator, sr: int,
              closed_form: bool = False) -> np.ndarray:
    """``x`` through a band-pass (:func:`band_pass_sos`) with edges drawn from
    ``BAND_LOW_HZ`` and ``BAND_HIGH_HZ``."""
    from scipy.signal import sosfilt

    low, high = rng.uniform(*BAND_LOW_HZ), rng.uniform(*BAND_HIGH_HZ)
    return sosfilt(band_pass_sos(low, high, sr, closed_form), x)


# ---------------------------------------------------------------- noise and gain

def coloured_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise with power spectrum ~ 1/f**slope."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (slope / 2), n)
    return noise / max(np.sqrt(np.mean(noise ** 2)), 1e-12)


@functools.lru_cache(maxsize=4)
def noise_bank(seed: int, sample_rate: int, segment: int) -> np.ndarray:
    """Coloured noise to cut segments of ``segment`` samples from: ``(C, L + segment)``
    float64, one row per colour of ``NOISE_COLOURS``, ``L`` = ``NOISE_BANK_SECONDS``.

    Row ``c`` is one long noise with the spectrum of ``coloured_noise(segment, slope)``:
    power ~ ``1/f**slope`` above the segment's lowest frequency ``sample_rate/segment``,
    flat below it (as that function weights its DC bin like its first), so a segment has
    the spectrum of a noise made for it.  The rows are periodic (an inverse FFT), and carry
    their first ``segment`` samples again at the end, so every offset in ``[0, L)`` starts
    a seamless segment.  Cached per process (each DataLoader worker makes its own, ~0.1 s).
    """
    length = int(NOISE_BANK_SECONDS * sample_rate)
    rng = np.random.default_rng([seed % 2**32, 0x6E6F697365])  # "noise"
    spectrum = np.fft.rfft(rng.standard_normal((len(NOISE_COLOURS), length)))  # (C, K)
    # Bin k of the bank is frequency k * segment / length in units of the segment's bins.
    f = np.maximum(np.arange(spectrum.shape[1]) * (segment / length), 1.0)
    slopes = np.asarray(NOISE_COLOURS)[:, None]
    noise = np.fft.irfft(spectrum / f ** (slopes / 2), length)  # (C, L)
    noise /= np.sqrt(np.mean(noise ** 2, axis=1, keepdims=True))
    return np.concatenate([noise, noise[:, :segment]], axis=1)


def bank_noise(n: int, colour: int, bank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise ``(n,)`` of colour index ``colour``: a segment of ``bank`` at a
    random offset, random sign and random direction (reversal keeps the spectrum)."""
    length = bank.shape[1] - n
    if length <= 0:
        raise ValueError(f"noise bank segments are {bank.shape[1]} samples, need {n} + more")
    offset, sign, reverse = int(rng.integers(length)), rng.integers(2), rng.integers(2)
    noise = bank[colour, offset:offset + n]
    if reverse:
        noise = noise[::-1]
    scale = (1.0 if sign else -1.0) / max(np.sqrt(np.dot(noise, noise) / n), 1e-12)
    return noise * scale


def speech_power(x: np.ndarray) -> float:
    """Mean power of the non-silent samples (the SNR reference of every noise here)."""
    active = x[np.abs(x) > 1e-3]
    return float(np.mean(active ** 2)) if active.size else 1e-6


def snr_scale(power: float, snr_db: float, noise_power: float = 1.0) -> float:
    """The factor that puts a noise of mean power ``noise_power`` ``snr_db`` dB below
    speech of power ``power``."""
    return np.sqrt(power / (noise_power * 10 ** (snr_db / 10)))


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = SNR_DB,
              bank: np.ndarray | None = None) -> np.ndarray:
    """``x`` plus noise of a random colour at a random SNR in ``snr_db`` relative to
    :func:`speech_power`: :func:`coloured_noise`, or a segment of ``bank``
    (:func:`noise_bank` for ``len(x)``-sample segments)."""
    snr = rng.uniform(*snr_db)
    colour = int(rng.integers(len(NOISE_COLOURS)))
    if bank is None:
        noise = coloured_noise(len(x), NOISE_COLOURS[colour], rng)
    else:
        noise = bank_noise(len(x), colour, bank, rng)
    return x + noise * snr_scale(speech_power(x), snr)


def gain(x: np.ndarray, rng: np.random.Generator,
         gain_db: tuple[float, float] = GAIN_DB) -> np.ndarray:
    """``x`` scaled by a gain drawn uniformly in dB from ``gain_db``."""
    return x * 10 ** (rng.uniform(*gain_db) / 20)
