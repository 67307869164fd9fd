"""Waveform augmentation of training views (VICReg, SimCLR, ...), from ``data.augment``.

The distortions are :mod:`speechssl.augment`'s, shared with the embedded corpus: a
synthetic room reverberation, a random band-pass, coloured noise at an SNR, here each with
the probability and range an :class:`AugmentConfig` gives, then a gain.  Every draw comes
from the generator passed in, so a view is a function of that generator's seed (and of
the noise bank's seed, when one is given) alone.

Views take the fast variants of the shared functions, cheap enough for every view of
every batch: float32 FFTs for the reverberation, the closed-form band-pass design, and
coloured noise cut from a :func:`~speechssl.augment.noise_bank` made once per seed rather
than shaped by two FFTs per view.

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

from speechssl.augment import (
    add_noise,
    band_pass,
    convolve,
    gain,
    noise_bank,
    reverberate,
    snr_scale,
    speech_power,
)
from speechssl.data.audio import audio_header
from speechssl.data.table import read_table
from speechssl.errors import InputError
from speechssl.train.config import AugmentConfig, NoiseSource


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
    header = audio_header(path).require(
        sample_rate, advice=" (the training rate: resample the noise and RIR files)")
    return header.frames


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
            y += noise * snr_scale(power, snr, noise_power)
    return y


def convolve_rir(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` ``(N,)`` convolved with ``rir``, as Kaldi's ``wav-reverberate`` with its
    defaults ``--shift-output --normalize-output``: advanced by the delay of the response's
    peak (the direct path), so the view stays aligned, and scaled back to the energy of
    ``x``.  FFTs in float32, as the synthetic rooms of :func:`augment_view`."""
    return convolve(x, rir, shift=int(np.argmax(np.abs(rir))), fft_dtype=np.float32)


def reverberate_with_rir(x: np.ndarray, rng: np.random.Generator, rir_scp: str,
                         sample_rate: int) -> np.ndarray:
    """:func:`convolve_rir` with a response drawn uniformly from the list ``rir_scp``."""
    files = audio_list(rir_scp)
    path = files[int(rng.integers(len(files)))]
    audio_frames(path, sample_rate)  # checks the rate
    rir, _ = sf.read(path, dtype="float64", always_2d=True)
    return convolve_rir(x, rir[:, 0])


def augment_view(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
                 config: AugmentConfig, bank: np.ndarray | None = None) -> np.ndarray:
    """One augmented copy of ``x`` ``(N,)`` float32: reverberation, band-pass, noise and
    gain, each applied with its probability; the output keeps the length ``(N,)``.

    The four coin flips are always drawn, so whether one distortion applies does not shift
    the random numbers the next one sees from the same generator.  No clipping: the
    features are computed from floats, so a gain above 0 dB is harmless.  ``bank``: a
    :func:`~speechssl.augment.noise_bank` for ``N``-sample segments (default: one for
    seed 0), used unless ``config.noises`` lists recorded noises.
    """
    flips = rng.random(4)  # (4,): reverb, band-pass, noise, gain
    y = x.astype(np.float64)
    if flips[0] < config.reverb_prob:
        if config.rir_scp:
            y = reverberate_with_rir(y, rng, config.rir_scp, sample_rate)
        else:
            y = reverberate(y, rng, sample_rate, fft_dtype=np.float32)
    if flips[1] < config.bandpass_prob:
        y = band_pass(y, rng, sample_rate, closed_form=True)
    if flips[2] < config.noise_prob:
        if config.noises:
            source = config.noises[int(rng.integers(len(config.noises)))]
            y = add_recorded_noise(y, rng, source, sample_rate)
        else:
            bank = noise_bank(0, sample_rate, len(y)) if bank is None else bank
            y = add_noise(y, rng, config.snr_db, bank)
    if flips[3] < config.gain_prob:
        y = gain(y, rng, config.gain_db)
    return y.astype(np.float32)
