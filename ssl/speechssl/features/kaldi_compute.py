"""Kaldi's fbank and MFCC in NumPy, computed on all frames of an utterance at once.

Follows ``compute-fbank-feats`` / ``compute-mfcc-feats`` step by step
(``feat/feature-window.cc``, ``feat/feature-fbank.cc``, ``feat/feature-mfcc.cc``,
``feat/mel-computations.cc``): frames (``snip_edges`` true, or false with the signal
reflected at both ends), DC removal, raw log energy, pre-emphasis (the first sample is
pre-emphasised with itself), window, zero padding to the FFT size, power (or magnitude)
spectrum, HTK-mel triangular banks, log floored at float32 epsilon, energy floor and
position (``htk_compat``); for MFCC the orthonormal DCT-II rows, the lifter, and C0
replaced by the energy.

Kaldi computes in float32; we compute in float64 (see :class:`KaldiFeatures` for why) and
agree with kaldi-native-fbank to ~1e-5 in loud bins.  Dither is not applied here:
:class:`speechssl.features.FeatureExtractor` adds its own to the waveform first.  VTLN
warping is not implemented (the configs only accept ``--vtln-warp=1``, no warping).

>>> from speechssl.features.options import FbankConfig
>>> feats = KaldiFeatures(FbankConfig(num_mel_bins=40))(np.zeros(16000, dtype=np.float32))
>>> feats.shape, feats.dtype, float(feats[0, 0]) == float(np.log(np.float32(FLOAT32_EPS)))
((98, 40), dtype('float32'), True)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from speechssl.features.options import FLOAT32_EPS, FbankConfig, MfccConfig

# Frames computed together.  A (128, 512) float64 block and its temporaries stay in the
# CPU's L2 cache; one pass over a whole utterance of 600 frames is ~3x slower.
FRAMES_PER_BLOCK = 128


def mel_scale(freq: np.ndarray) -> np.ndarray:
    """HTK/Kaldi mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


def kaldi_mel_banks(config: FbankConfig | MfccConfig) -> np.ndarray:
    """Kaldi's triangular mel weights ``(K + 1, M)`` for the ``K + 1`` power-spectrum bins.

    Triangles are linear in mel, between ``num_mel_bins + 2`` edges equally spaced in mel
    from ``low-freq`` to ``high-freq``.  As in Kaldi, the Nyquist bin ``K`` gets no weight.
    """
    fft_size = config.padded_window_size
    num_bins = config.num_mel_bins
    edges = np.linspace(mel_scale(config.low_freq), mel_scale(config.mel_high_freq),
                        num_bins + 2)  # (M + 2,)
    mel = mel_scale(np.arange(fft_size // 2) * config.sample_frequency / fft_size)  # (K,)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1)
    rising = (mel - left) / (center - left)
    falling = (right - mel) / (right - center)
    weights = np.where(mel <= center, rising, falling)
    weights = np.where((mel > left) & (mel < right), weights, 0.0)  # (M, K)
    banks = np.zeros((fft_size // 2 + 1, num_bins))
    banks[:-1] = weights.T
    return banks


def feature_window(config: FbankConfig | MfccConfig) -> np.ndarray:
    """Kaldi's ``FeatureWindowFunction``: the ``(L,)`` window of ``window-type``."""
    n = config.window_size
    a = 2.0 * math.pi / (n - 1)
    i = np.arange(n, dtype=np.float64)
    kind = config.window_type
    if kind == "hanning":
        return 0.5 - 0.5 * np.cos(a * i)
    if kind == "sine":
        return np.sin(0.5 * a * i)
    if kind == "hamming":
        return 0.54 - 0.46 * np.cos(a * i)
    if kind == "povey":
        return (0.5 - 0.5 * np.cos(a * i)) ** 0.85
    if kind == "blackman":
        c = config.blackman_coeff
        return c - 0.5 * np.cos(a * i) + (0.5 - c) * np.cos(2 * a * i)
    return np.ones(n)  # rectangular


def dct_matrix(num_ceps: int, num_bins: int) -> np.ndarray:
    """The first ``num_ceps`` rows of Kaldi's ``ComputeDctMatrix``: orthonormal DCT-II.

    >>> d = dct_matrix(4, 4)
    >>> bool(np.allclose(d @ d.T, np.eye(4)))
    True
    """
    k = np.arange(num_ceps)[:, None]
    n = np.arange(num_bins)[None, :]
    dct = math.sqrt(2.0 / num_bins) * np.cos(math.pi / num_bins * (n + 0.5) * k)
    dct[0] = math.sqrt(1.0 / num_bins)
    return dct  # (C, M)


def lifter_coeffs(num_ceps: int, lifter: float) -> np.ndarray:
    """Kaldi's ``ComputeLifterCoeffs``: ``1 + Q/2 sin(pi i / Q)``; all ones for ``Q = 0``."""
    if lifter == 0.0:
        return np.ones(num_ceps)
    return 1.0 + 0.5 * lifter * np.sin(math.pi * np.arange(num_ceps) / lifter)


def reflect(idx: np.ndarray, num_samples: int) -> np.ndarray:
    """Indices reflected into ``[0, num_samples)`` as Kaldi's ``ExtractWindow`` does.

    -1 -> 0, -2 -> 1 and N -> N-1; repeated until in range, for signals shorter than
    the reflection.

    >>> reflect(np.array([-3, -1, 5, 6]), 5).tolist()
    [2, 0, 4, 3]
    """
    while True:
        low, high = idx < 0, idx >= num_samples
        if not (low.any() or high.any()):
            return idx
        idx = np.where(low, -idx - 1, np.where(high, 2 * num_samples - 1 - idx, idx))


def frame_source(wave: np.ndarray, config: FbankConfig | MfccConfig) -> tuple[np.ndarray, int]:
    """The samples Kaldi's frames are cut from, and how many: frame ``t`` is
    ``source[t * shift:t * shift + L]``.

    With ``snip_edges`` the frames are the ones that fit; without, frame ``t`` is centred
    on ``t * shift + shift / 2`` and the signal is reflected past both ends.
    """
    n = wave.shape[0]
    size, shift = config.window_size, config.window_shift
    num_frames = config.num_frames(n)
    if num_frames == 0:
        return wave[:0], 0
    start = 0 if config.snip_edges else shift // 2 - size // 2  # FirstSampleOfFrame(0)
    stop = start + shift * (num_frames - 1) + size
    if start >= 0 and stop <= n:
        return wave[start:stop], num_frames
    left = reflect(np.arange(start, min(0, stop)), n)  # only without snip_edges
    right = reflect(np.arange(max(n, start), stop), n)
    padded = np.concatenate([wave[left], wave[max(start, 0):min(stop, n)], wave[right]])
    return padded, num_frames


def frame_view(source: np.ndarray, config: FbankConfig | MfccConfig,
               num_frames: int) -> np.ndarray:
    """The ``(T, L)`` frames of ``source`` (from :func:`frame_source`): a read-only view."""
    size = config.window_size
    if num_frames == 0:
        return np.empty((0, size), dtype=source.dtype)
    frames = np.lib.stride_tricks.sliding_window_view(source, size)[::config.window_shift]
    return frames[:num_frames]


def frame_signal(wave: np.ndarray, config: FbankConfig | MfccConfig) -> np.ndarray:
    """Kaldi's frames of ``wave`` ``(N,)``: a read-only ``(T, L)`` view."""
    source, num_frames = frame_source(wave, config)
    return frame_view(source, config, num_frames)


class KaldiFeatures:
    """Kaldi fbank or MFCC of one waveform: ``(N,)`` in int16 scale -> ``(T, D)`` float32.

    Works on blocks of :data:`FRAMES_PER_BLOCK` frames, in scratch buffers of its own: use
    one instance per thread.  Framing, pre-emphasis, window and FFT run in ``dtype``:
    float64 (the default) is the exact arithmetic Kaldi's float32 approximates (it agrees
    with a long-double computation to ~1e-6), and agrees with kaldi-native-fbank to ~1e-5
    in loud bins and ~1e-2 in bins 100 dB below their frame's peak, where knf's own float32
    rounding dominates.  float32 is only ~1.2x faster and, like knf, off from float64 by up
    to ~1e-2 there (~4e-2 under a large DC offset).  The power spectrum, mel weights and
    log are float32: sums of positive terms lose nothing that matters, and the float32
    product is twice as fast.
    """

    def __init__(self, config: FbankConfig | MfccConfig, dtype=np.float64):
        self.config = config
        self.dtype = np.dtype(dtype)
        self.window = feature_window(config).astype(self.dtype)  # (L,)
        banks = kaldi_mel_banks(config)  # (K + 1, M)
        used = np.flatnonzero(banks.any(axis=1))
        self.bins = slice(used[0], used[-1] + 1)  # FFT bins under some triangle
        self.banks = banks[self.bins].astype(np.float32)  # (K', M)
        self.log_energy_floor = (math.log(config.energy_floor) if config.energy_floor > 0
                                 else -math.inf)
        self.dct = None  # (M, C) for MFCC, the lifter folded in: one product
        if config.kind == "mfcc":
            lifter = lifter_coeffs(config.num_ceps, config.cepstral_lifter)
            self.dct = (lifter[:, None] * dct_matrix(config.num_ceps, config.num_mel_bins)).T
        # Scratch space for one block, reused by every call (so, one instance per thread):
        # fresh arrays of this size cost a page fault per 4 KiB, ~15% of the time.
        blocks = FRAMES_PER_BLOCK
        span = (blocks - 1) * config.window_shift + config.window_size
        self._samples = np.empty(span, dtype=self.dtype)
        self._emphasised = np.empty(span, dtype=self.dtype)
        self._centred = np.empty((blocks, config.window_size), dtype=self.dtype)
        self._padded = np.zeros((blocks, config.padded_window_size), dtype=self.dtype)
        self._spectrum = np.empty((blocks, config.padded_window_size // 2 + 1),
                                  dtype=np.result_type(self.dtype, np.complex64))
        self._power32 = np.empty((blocks, self.banks.shape[0]), dtype=np.float32)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        cfg = self.config
        source, num_frames = frame_source(np.asarray(wave), cfg)
        out = np.empty((num_frames, cfg.dim), dtype=np.float32)  # (T, D)
        with _one_blas_thread():
            for first in range(0, num_frames, FRAMES_PER_BLOCK):
                count = min(FRAMES_PER_BLOCK, num_frames - first)
                start = first * cfg.window_shift
                samples = source[start:start + (count - 1) * cfg.window_shift + cfg.window_size]
                self._compute_block(samples, count, out[first:first + count])
        return out

    def _compute_block(self, samples: np.ndarray, count: int, out: np.ndarray) -> None:
        """Features of the ``count`` frames of ``samples`` into ``out`` ``(B, D)``."""
        cfg = self.config
        frames, emphasised = self._frames(samples, count)  # (B, L) each
        padded = self._padded[:count]  # (B, P), zero from column L on
        energy = self._process_window(frames, emphasised, padded)  # (B,) or None
        mel = self._mel_energies(padded)  # (B, M) float32
        if self.dct is not None:  # MFCC: log and DCT in float64, the lifter scales errors
            feats = np.log(np.maximum(mel, FLOAT32_EPS, dtype=np.float64)) @ self.dct
        elif cfg.use_log_fbank:
            feats = np.log(np.maximum(mel, FLOAT32_EPS, out=mel), out=mel)
        else:
            feats = mel
        if energy is not None:
            energy = np.maximum(energy, self.log_energy_floor)
        elif cfg.kind == "mfcc" and cfg.htk_compat:  # C0 goes last, without its DCT scale
            energy = feats[:, 0] * math.sqrt(2.0)
        else:
            out[:] = feats
            return
        self._place_energy(feats, energy, out)

    def _frames(self, samples: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The frames of ``samples`` and their pre-emphasised samples, both ``(B, L)``, in
        the scratch buffers (fresh arrays per utterance cost a page fault per 4 KiB).

        Pre-emphasis ``x[i] - c x[i-1]`` is computed once per sample, not per frame: right
        for every sample of a frame but its first (``x[0] - c x[0]``)."""
        size = samples.shape[0]
        block = self._samples[:size]
        block[:] = samples
        emphasised = self._emphasised[:size]
        np.multiply(block[:-1], -self.config.preemphasis_coefficient, out=emphasised[1:])
        emphasised[1:] += block[1:]
        emphasised[0] = 0.0  # never used
        return (frame_view(block, self.config, count),
                frame_view(emphasised, self.config, count))

    def _process_window(self, frames: np.ndarray, emphasised: np.ndarray,
                        padded: np.ndarray) -> np.ndarray | None:
        """Kaldi's ``ProcessWindow`` into ``padded[:, :L]``; returns the log energy if used.

        Removing the mean ``m`` and then pre-emphasising gives ``x[i] - c x[i-1] - (1-c) m``
        and ``(1-c) (x[0] - m)``: the signal's pre-emphasis, less a constant.
        """
        cfg = self.config
        coeff = cfg.preemphasis_coefficient
        mean = frames.mean(axis=1, keepdims=True) if cfg.remove_dc_offset else None  # (B, 1)
        energy = None
        if cfg.use_energy and cfg.raw_energy:
            centred = frames if mean is None else np.subtract(
                frames, mean, out=self._centred[:len(frames)])
            energy = _log_energy(centred)
        body = padded[:, :frames.shape[1]]
        if coeff == 0.0:
            np.subtract(frames, 0.0 if mean is None else mean, out=body)
        elif mean is None:
            body[:, 1:] = emphasised[:, 1:]
            np.multiply(frames[:, 0], 1.0 - coeff, out=body[:, 0])
        else:
            np.subtract(emphasised[:, 1:], (1.0 - coeff) * mean, out=body[:, 1:])
            np.multiply(frames[:, 0] - mean[:, 0], 1.0 - coeff, out=body[:, 0])
        body *= self.window
        if cfg.use_energy and not cfg.raw_energy:
            energy = _log_energy(body)
        return energy

    def _mel_energies(self, padded: np.ndarray) -> np.ndarray:
        """Mel energies ``(B, M)`` float32 of the power (or, without ``use_power``,
        magnitude) spectrum of the windowed frames ``(B, P)``."""
        count = len(padded)
        spectrum = _rfft(padded, self._spectrum[:count])  # (B, K + 1)
        squares = spectrum.view(self.dtype)  # (B, 2K + 2): re, im, re, im, ...
        np.square(squares, out=squares)
        first, last = 2 * self.bins.start, 2 * self.bins.stop
        power32 = self._power32[:count]  # (B, K') = re^2 + im^2, rounded to float32
        np.add(squares[:, first:last:2], squares[:, first + 1:last:2], out=power32,
               casting="same_kind")
        if not getattr(self.config, "use_power", True):  # MFCC always uses the power
            np.sqrt(power32, out=power32)
        return power32 @ self.banks

    def _place_energy(self, feats: np.ndarray, energy: np.ndarray, out: np.ndarray) -> None:
        """Put the log energy (or HTK's C0) in its place, as Kaldi's FbankComputer and
        MfccComputer do."""
        cfg = self.config
        if cfg.kind == "fbank":  # first, or last with htk_compat
            mel_cols = slice(0, -1) if cfg.htk_compat else slice(1, None)
            out[:, mel_cols] = feats
            out[:, -1 if cfg.htk_compat else 0] = energy
        elif cfg.htk_compat:  # MFCC: C1..C(n-1), then the energy in place of C0
            out[:, :-1] = feats[:, 1:]
            out[:, -1] = energy
        else:
            out[:] = feats
            out[:, 0] = energy


_RFFT_HAS_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def _rfft(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The real FFT of each row, into ``out`` where numpy can (2.0 and later).

    numpy's FFT, not scipy's: as fast here, and scipy.fft takes 0.3-0.8 s to import."""
    if _RFFT_HAS_OUT:
        return np.fft.rfft(frames, axis=1, out=out)
    return np.fft.rfft(frames, axis=1)


def _log_energy(x: np.ndarray) -> np.ndarray:
    """``log(max(sum x^2, float eps))`` per frame: ``(B, L) -> (B,)``."""
    return np.log(np.maximum(np.einsum("ij,ij->i", x, x), FLOAT32_EPS))


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # on first use: ~15 ms to set up

    return ThreadpoolController()


def _one_blas_thread():
    """Keep BLAS on the calling thread: OpenBLAS splits the (128, 255) x (255, 80) mel
    product over all cores, 8x slower in wall time when feature jobs already use them."""
    return _blas_controller().limit(limits=1, user_api="blas")
