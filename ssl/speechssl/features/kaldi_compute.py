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

# Frames computed together.  Each block costs ~40 numpy calls (~40 us) whatever its size,
# while its buffers should stay in cache: 256 frames (a 1 MiB float64 block) is ~5%
# faster than 128, and 1024 ~20% slower.
FRAMES_PER_BLOCK = 256

# The fixed cost of one more matmul call, counted in multiply-adds per frame of a block:
# it sets how finely the banded mel product is cut (see mel_band_groups).  Timed: 500 to
# 3000 do about as well, 6000 (one to three products) is ~5% slower.
MATMUL_CALL_COST = 1000


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


def mel_band_groups(banks: np.ndarray, call_cost: int) -> list[tuple[slice, slice]]:
    """Split the mel bands (columns of ``banks`` ``(K, M)``) into runs of adjacent bands, each
    with the range of FFT bins under it: ``[(bands, bins), ...]``.

    Each FFT bin lies under at most two triangles, so the dense ``(K, M)`` product is mostly
    multiplications by zero; products group by group skip most of them.  The groups minimise
    the multiply-adds per frame plus ``call_cost`` per product (its fixed cost in the same
    units), by dynamic programming over where groups end.

    >>> banks = np.kron(np.eye(4), np.ones((3, 1)))  # 4 bands of 3 bins each
    >>> [(b.start, b.stop, k.start, k.stop) for b, k in mel_band_groups(banks, 10)]
    [(0, 2, 0, 6), (2, 4, 6, 12)]
    """
    num_bins, num_bands = banks.shape
    under = banks != 0
    # Each band's bins [first, stop); an empty band (a narrow low triangle between two FFT
    # bins) gets (num_bins, 0), neutral for the min and max below.
    first = np.where(under.any(axis=0), under.argmax(axis=0), num_bins).tolist()
    stop = np.where(under.any(axis=0), num_bins - under[::-1].argmax(axis=0), 0).tolist()
    best = [0] + [math.inf] * num_bands  # best[j]: the least cost of bands [0, j)
    cut = [0] * (num_bands + 1)  # where the last group of bands [0, j) starts
    for j in range(1, num_bands + 1):
        lo, hi = num_bins, 0
        for i in range(j - 1, -1, -1):  # last group: bands [i, j)
            lo, hi = min(lo, first[i]), max(hi, stop[i])
            cost = best[i] + call_cost + max(hi - lo, 0) * (j - i)
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups = []
    j = num_bands
    while j > 0:
        i = cut[j]
        lo, hi = min(first[i:j]), max(stop[i:j])
        groups.append((slice(i, j), slice(lo, max(lo, hi))))
        j = i
    return groups[::-1]


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
    size, shift = config.window_size, config.window_shift
    if num_frames == 0:
        return np.empty((0, size), dtype=source.dtype)
    if source.ndim != 1 or source.shape[0] < (num_frames - 1) * shift + size:
        raise ValueError(f"{source.shape} samples are too few for {num_frames} frames")
    # as_strided, not sliding_window_view: the same view without ~10 us of argument
    # checks, paid twice per block of frames.
    step = source.strides[0]
    return np.lib.stride_tricks.as_strided(source, (num_frames, size), (shift * step, step),
                                           writeable=False)


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
    rounding dominates.  float32 is ~2x slower (numpy 2's float32 FFT is ~4x slower than
    its float64 one) and, like knf, off from float64 by up to ~1e-2 there (~4e-2 under a
    large DC offset).  The power spectrum, mel weights and log are float32: sums of
    positive terms lose nothing that matters, and float32 halves the bytes.  The mel
    product is banded (each FFT bin is under at most two triangles): it runs as a few
    products of blocks of bins by blocks of bands (:func:`mel_band_groups`); for 80 bands,
    6 products with 1/3 of the dense product's multiply-adds, re^2 and im^2 included.
    """

    def __init__(self, config: FbankConfig | MfccConfig, dtype=np.float64):
        self.config = config
        self.dtype = np.dtype(dtype)
        self.window = feature_window(config).astype(self.dtype)  # (L,)
        # The window padded with zeros to the FFT size: one product writes whole rows.
        self._padded_window = np.zeros(config.padded_window_size, dtype=self.dtype)  # (P,)
        self._padded_window[:config.window_size] = self.window
        banks = kaldi_mel_banks(config)  # (K + 1, M)
        used = np.flatnonzero(banks.any(axis=1))
        self.bins = slice(used[0], used[-1] + 1)  # FFT bins under some triangle
        self.banks = banks[self.bins].astype(np.float32)  # (K', M)
        # The power's mel product takes the squares re^2, im^2 interleaved as they lie,
        # each weight twice: that saves a pass adding them.  The magnitude (use_power
        # false; MFCC always uses the power) needs the sum, for its square root.
        self._use_power = getattr(config, "use_power", True)
        weights = np.repeat(self.banks, 2, axis=0) if self._use_power else self.banks
        # The banded product, as products of (B, bins) by (bins, bands) blocks.
        self._mel_groups = [(bands, bins, np.ascontiguousarray(weights[bins, bands]))
                            for bands, bins in mel_band_groups(weights, MATMUL_CALL_COST)]
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
        pad = config.padded_window_size - config.window_size
        self._samples = np.empty(span, dtype=self.dtype)
        self._emphasised = np.zeros(span + pad, dtype=self.dtype)
        # Views made once: as_strided costs ~3 us a call.  Rows of _wide run on past the
        # frame's end to the FFT size, over the next frame's samples (the window's zeros
        # clear them).
        self._frame_rows = frame_view(self._samples, config, blocks)  # (B, L)
        self._wide = np.lib.stride_tricks.as_strided(
            self._emphasised, (blocks, config.padded_window_size),
            (config.window_shift * self._emphasised.strides[0], self._emphasised.strides[0]),
            writeable=False)  # (B, P)
        self._padded = np.empty((blocks, config.padded_window_size), dtype=self.dtype)
        self._spectrum = np.empty((blocks, config.padded_window_size // 2 + 1),
                                  dtype=np.result_type(self.dtype, np.complex64))
        self._spectrum32 = np.empty((blocks, self.banks.shape[0]), dtype=np.complex64)
        self._magnitude = np.empty((blocks, self.banks.shape[0]), dtype=np.float32)
        self._mel = np.empty((blocks, config.num_mel_bins), dtype=np.float32)

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
        frames, emphasised = self._frames(samples, count)  # (B, L), (B, P)
        padded = self._padded[:count]  # (B, P)
        energy = self._process_window(frames, emphasised, padded)  # (B,) or None
        if self.dct is None and energy is None:  # fbank alone: no copy, straight into out
            mel = self._mel_energies(padded, out)
            if cfg.use_log_fbank:
                np.log(np.maximum(mel, FLOAT32_EPS, out=mel), out=mel)
            return
        mel = self._mel_energies(padded, self._mel[:count])  # (B, M) float32
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
        """The frames of ``samples`` ``(B, L)`` and their pre-emphasised samples ``(B, P)``
        (on past the frame to the FFT size), views of the scratch buffers (fresh arrays
        per utterance cost a page fault per 4 KiB).

        Pre-emphasis ``x[i] - c x[i-1]`` is computed once per sample, not per frame: right
        for every sample of a frame but its first (``x[0] - c x[0]``)."""
        size = samples.shape[0]
        block = self._samples[:size]
        block[:] = samples
        emphasised = self._emphasised
        np.multiply(block[:-1], -self.config.preemphasis_coefficient, out=emphasised[1:size])
        emphasised[1:size] += block[1:]
        emphasised[0] = 0.0  # never used
        # Past the block: read by the last frames' padding, zeroed by the window.  Zero, so
        # that no value of an earlier call (a NaN) reaches this one.
        emphasised[size:] = 0.0
        return self._frame_rows[:count], self._wide[:count]

    def _process_window(self, frames: np.ndarray, emphasised: np.ndarray,
                        padded: np.ndarray) -> np.ndarray | None:
        """Kaldi's ``ProcessWindow`` into the zero-padded rows ``padded`` ``(B, P)``;
        returns the log energy if used.

        Removing the mean ``m`` and then pre-emphasising gives ``x[i] - c x[i-1] - (1-c) m``
        and ``(1-c) (x[0] - m)``: the signal's pre-emphasis, less a constant.  The rows
        are written whole, not just their first ``L`` columns: numpy is ~1.5x faster on
        contiguous rows, and the padded window's zeros pad them.
        """
        cfg = self.config
        coeff = cfg.preemphasis_coefficient
        mean = None  # (B,)
        if cfg.remove_dc_offset:  # einsum: half the time of mean() on these strided rows
            mean = np.einsum("ij->i", frames) * (1.0 / frames.shape[1])
        energy = None
        if cfg.use_energy and cfg.raw_energy:
            energy = self._raw_log_energy(frames, mean)
        # Copy the rows, then subtract: a copy from the overlapping rows and arithmetic on
        # contiguous ones is faster than arithmetic reading the overlapping rows.
        np.copyto(padded, emphasised)
        if mean is not None:
            padded -= (1.0 - coeff) * mean[:, None]
        if self.window[0] != 0.0:  # else the window zeroes it (povey, hanning, sine)
            first = frames[:, 0] if mean is None else frames[:, 0] - mean
            np.multiply(first, 1.0 - coeff, out=padded[:, 0])
        padded *= self._padded_window
        if cfg.use_energy and not cfg.raw_energy:
            energy = _log_energy(padded)  # the padding adds zeros
        return energy

    def _raw_log_energy(self, frames: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
        """``log(sum (x - m)^2)`` per frame ``(B,)``, floored at float epsilon.

        As ``sum x^2 - L m^2``, without writing the centred frames (a pass as slow as the
        window's).  Both terms round by at most ``L eps sum x^2``: negligible unless the DC
        offset dwarfs the signal.  Frames where it could exceed 1e-9 of the energy (in
        float64 with 400 samples, an energy under 3e-4 of ``sum x^2``) are centred and
        summed."""
        if mean is None:
            return _log_energy(frames)
        size = frames.shape[1]
        energy = np.einsum("ij,ij->i", frames, frames)  # sum x^2
        limit = energy * (3 * size * np.finfo(frames.dtype).eps * 1e9)
        energy -= size * mean * mean
        inexact = np.flatnonzero(energy < limit)
        if inexact.size:
            centred = frames[inexact] - mean[inexact, None]
            energy[inexact] = np.einsum("ij,ij->i", centred, centred)
        return np.log(np.maximum(energy, FLOAT32_EPS))

    def _mel_energies(self, padded: np.ndarray, mel: np.ndarray) -> np.ndarray:
        """Mel energies float32 of the power (or, without ``use_power``, magnitude)
        spectrum of the windowed frames ``(B, P)``, into ``mel`` ``(B, M)``."""
        count = len(padded)
        squares = self._squares(_rfft(padded, self._spectrum[:count]))  # (B, 2K')
        spectrum = squares
        if not self._use_power:
            spectrum = self._magnitude[:count]  # (B, K')
            np.add(squares[:, 0::2], squares[:, 1::2], out=spectrum)
            np.sqrt(spectrum, out=spectrum)
        for bands, bins, weights in self._mel_groups:
            np.matmul(spectrum[:, bins], weights, out=mel[:, bands])
        return mel

    def _squares(self, spectrum: np.ndarray) -> np.ndarray:
        """``re^2, im^2, ...`` float32 ``(B, 2K')`` of the bins of ``spectrum``
        ``(B, K + 1)`` under some triangle.

        re and im are rounded to float32 first (a relative error of at most 1.5e-7 in
        the power; rounding the float64 power gave 6e-8): the passes that follow touch
        half the bytes, and the whole is 3x faster than squaring in float64."""
        pairs = self._spectrum32[:len(spectrum)]  # (B, K') complex64
        np.copyto(pairs, spectrum[:, self.bins], casting="same_kind")
        squares = pairs.view(np.float32)
        np.square(squares, out=squares)
        return squares

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
    """Keep BLAS on the calling thread: OpenBLAS splits large enough products over all
    cores (a dense (128, 255) x (255, 80) mel product ran 8x slower in wall time when
    feature jobs already used them); the banded products are smaller, but near the line."""
    return _blas_controller().limit(limits=1, user_api="blas")
