"""Waveform augmentation of training views (VICReg, SimCLR, ...), from ``data.augment``.

The distortions are the embedded corpus's (:mod:`speechssl.corpus.augment`): a synthetic
room reverberation, a random band-pass, coloured noise at an SNR, here each with the
probability and range an :class:`AugmentConfig` gives, then a gain.  Every draw comes from
the generator passed in, so a view is a function of that generator's seed (and of the
noise bank's seed, when one is given) alone.

Two of them are made cheap enough to run per view of every batch, with the same
statistics as the corpus's: the band-pass filter is designed in closed form
(:func:`band_pass_sos`, scipy's ``butter`` to rounding, ~30x faster), and the coloured
noise is read at a random offset, sign and direction from a :func:`noise_bank` made once
per seed, rather than shaped by two FFTs per view (:func:`add_bank_noise`).

With recorded noises and impulse responses listed in the config (MUSAN, RIRS_NOISES; see
``AugmentConfig.noises`` and ``rir_scp``), a view instead gets a crop of noise files read
at a random offset (:func:`add_recorded_noise`: only the crop is read, so a long music
file costs no more than a short one) and a convolution with a listed impulse response
(:func:`reverberate_with_rir`, as Kaldi's ``wav-reverberate``).

>>> from speechssl.train.config import AugmentConfig
>>> x = np.sin(np.arange(1600) / 5.0).astype(np.float32)
>>> off = AugmentConfig(noise_prob=0, reverb_prob=0, bandpass_prob=0, gain_prob=0)
>>> bool(np.array_equal(augment_view(x, np.random.default_rng(0), 16000, off), x))
True
"""

from __future__ import annotations

import functools

import numpy as np
import soundfile as sf

from speechssl.corpus.augment import BAND_HIGH_HZ, BAND_LOW_HZ, NOISE_COLOURS, RT60
from speechssl.data.table import read_table
from speechssl.errors import InputError
from speechssl.train.config import AugmentConfig, NoiseSource

NOISE_BANK_SECONDS = 60.0  # per colour; read at random offsets, signs and directions


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


def add_bank_noise(x: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float],
                   bank: np.ndarray) -> np.ndarray:
    """``corpus.augment.add_noise`` with the noise cut from ``bank`` (:func:`noise_bank`):
    a random SNR in ``snr_db`` relative to the power of the speech (non-silent samples),
    a random colour."""
    snr = rng.uniform(*snr_db)
    colour = int(rng.integers(len(NOISE_COLOURS)))
    power = speech_power(x)
    return x + bank_noise(len(x), colour, bank, rng) * np.sqrt(power / 10 ** (snr / 10))


def reverberate(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """``corpus.augment.reverberate`` (the same draws, the same room response), with the
    convolution's FFTs in float32 (~1.5x faster; the output differs by ~1e-6 relative)."""
    import scipy.fft

    rt60 = rng.uniform(*RT60)
    t = np.arange(int(rt60 * sr)) / sr
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * rng.uniform(0.1, 0.4)
    rir[0] = 1.0
    n = scipy.fft.next_fast_len(len(x) + len(rir) - 1, real=True)
    spectrum = scipy.fft.rfft(x.astype(np.float32), n) * scipy.fft.rfft(rir.astype(np.float32), n)
    y = scipy.fft.irfft(spectrum, n)[: len(x)].astype(np.float64)
    return y * np.sqrt(np.sum(x ** 2) / max(np.sum(y ** 2), 1e-12))


@functools.lru_cache(maxsize=16)
def audio_list(wav_scp: str) -> tuple[str, ...]:
    """The files of a noise or RIR list (``<id> <wav file>``); cached per process.  Pipes
    are refused: a crop is read at an offset, which a pipe cannot seek to."""
    files = tuple(read_table(wav_scp).values())
    if not files:
        raise InputError("the list is empty", path=wav_scp)
    for lineno, path in enumerate(files, start=1):
        if path.endswith("|"):
            raise InputError("noise and RIR lists need plain wav files, not pipes",
                             path=wav_scp, line=lineno)
    return files


@functools.cache
def audio_frames(path: str, sample_rate: int) -> int:
    """Samples in an audio file from its header; another rate than training's is an error."""
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise InputError(f"cannot read augmentation audio: {e}", path=path) from None
    if info.samplerate != sample_rate:
        raise InputError(f"sample rate is {info.samplerate} Hz, training uses {sample_rate} "
                         "Hz (resample the noise and RIR files)", path=path)
    if info.frames == 0:
        raise InputError("augmentation audio is empty", path=path)
    return info.frames


def read_crop(path: str, n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """``n`` samples ``(n,)`` float64 of the first channel of ``path`` from a random offset;
    a shorter file is repeated from a random offset to fill ``n``."""
    frames = audio_frames(path, sample_rate)
    if frames >= n:
        offset = int(rng.integers(frames - n + 1))
        x, _ = sf.read(path, start=offset, frames=n, dtype="float64", always_2d=True)
        return x[:, 0]
    offset = int(rng.integers(frames))
    x, _ = sf.read(path, dtype="float64", always_2d=True)
    return x[(offset + np.arange(n)) % frames, 0]


def speech_power(x: np.ndarray) -> float:
    """Mean power of the non-silent samples (the SNR reference of every noise here)."""
    active = x[np.abs(x) > 1e-3]
    return float(np.mean(active ** 2)) if active.size else 1e-6


def add_recorded_noise(x: np.ndarray, rng: np.random.Generator, source: NoiseSource,
                       sample_rate: int) -> np.ndarray:
    """``x`` plus ``count`` distinct files of ``source`` (babble: several talkers), each
    cut at a random offset and scaled to its own SNR drawn from ``source.snr_db``."""
    files = audio_list(source.wav_scp)
    count = min(int(rng.integers(source.count[0], source.count[1] + 1)), len(files))
    power = speech_power(x)
    y = x.copy()
    for i in rng.choice(len(files), size=count, replace=False):
        noise = read_crop(files[i], len(x), rng, sample_rate)
        snr = rng.uniform(*source.snr_db)
        noise_power = np.mean(noise ** 2)
        if noise_power > 1e-12:  # a crop of digital silence adds nothing
            y += noise * np.sqrt(power / (noise_power * 10 ** (snr / 10)))
    return y


def convolve_rir(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` ``(N,)`` convolved with ``rir``, as Kaldi's ``wav-reverberate`` with its
    defaults ``--shift-output --normalize-output``: advanced by the delay of the response's
    peak (the direct path), so the view stays aligned, and scaled back to the energy of
    ``x``.  FFTs in float32, as :func:`reverberate`."""
    import scipy.fft

    peak = int(np.argmax(np.abs(rir)))
    n = scipy.fft.next_fast_len(len(x) + len(rir) - 1, real=True)
    spectrum = scipy.fft.rfft(x.astype(np.float32), n) * scipy.fft.rfft(rir.astype(np.float32), n)
    y = scipy.fft.irfft(spectrum, n)[peak:peak + len(x)].astype(np.float64)
    return y * np.sqrt(np.sum(x ** 2) / max(np.sum(y ** 2), 1e-12))


def reverberate_with_rir(x: np.ndarray, rng: np.random.Generator, rir_scp: str,
                         sample_rate: int) -> np.ndarray:
    """:func:`convolve_rir` with a response drawn uniformly from the list ``rir_scp``."""
    files = audio_list(rir_scp)
    path = files[int(rng.integers(len(files)))]
    audio_frames(path, sample_rate)  # checks the rate
    rir, _ = sf.read(path, dtype="float64", always_2d=True)
    return convolve_rir(x, rir[:, 0])


def band_pass_sos(low: float, high: float, sr: float) -> np.ndarray:
    """``scipy.signal.butter(4, [low, high], btype="band", fs=sr, output="sos")`` in closed
    form: ``(4, 6)`` second-order sections (the same filter; sections may be ordered and
    scaled differently).

    The analog prototype's poles, prewarped band edges, low-pass to band-pass, bilinear
    transform: 8 poles in 4 conjugate pairs, zeros 4 at z = 1 and 4 at z = -1, so every
    section is ``(1 - z^-2) / (1 - 2 Re(p) z^-1 + |p|^2 z^-2)``.
    """
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


def band_pass(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """``corpus.augment.band_pass`` (the same draws, the same filter), designed fast."""
    from scipy.signal import sosfilt

    return sosfilt(band_pass_sos(rng.uniform(*BAND_LOW_HZ), rng.uniform(*BAND_HIGH_HZ), sr), x)


def augment_view(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
                 config: AugmentConfig, bank: np.ndarray | None = None) -> np.ndarray:
    """One augmented copy of ``x`` ``(N,)`` float32: reverberation, band-pass, noise and
    gain, each applied with its probability; the output keeps the length ``(N,)``.

    The four coin flips are always drawn, so whether one distortion applies does not shift
    the random numbers the next one sees from the same generator.  No clipping: the
    features are computed from floats, so a gain above 0 dB is harmless.  ``bank``: a
    :func:`noise_bank` for ``N``-sample segments (default: one for seed 0), used unless
    ``config.noises`` lists recorded noises.
    """
    flips = rng.random(4)  # (4,): reverb, band-pass, noise, gain
    y = x.astype(np.float64)
    if flips[0] < config.reverb_prob:
        if config.rir_scp:
            y = reverberate_with_rir(y, rng, config.rir_scp, sample_rate)
        else:
            y = reverberate(y, rng, sample_rate)
    if flips[1] < config.bandpass_prob:
        y = band_pass(y, rng, sample_rate)
    if flips[2] < config.noise_prob:
        if config.noises:
            source = config.noises[int(rng.integers(len(config.noises)))]
            y = add_recorded_noise(y, rng, source, sample_rate)
        else:
            bank = noise_bank(0, sample_rate, len(y)) if bank is None else bank
            y = add_bank_noise(y, rng, config.snr_db, bank)
    if flips[3] < config.gain_prob:
        y = y * 10 ** (rng.uniform(*config.gain_db) / 20)
    return y.astype(np.float32)
