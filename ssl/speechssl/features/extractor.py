"""Whole-utterance fbank/MFCC extraction, as Kaldi's, with reproducible dither.

Matches Kaldi's ``compute-fbank-feats`` / ``compute-mfcc-feats``.  The features are computed
by :class:`speechssl.features.kaldi_compute.KaldiFeatures` (NumPy, all frames at once, about
3x faster than driving kaldi-native-fbank from Python, frame by frame); ``backend="knf"``
runs kaldi-native-fbank instead (it agrees with Kaldi to ~1e-4 with dither 0), the
reference the tests compare with.  One deliberate difference from Kaldi, the dither:

Kaldi adds ``dither * N(0, 1)`` to every sample of every *frame*, from a random generator
that is not seeded per utterance, so its features change from run to run.  We add
``dither * N(0, 1)`` once to every sample of the *waveform*, then run kaldi-native-fbank
with dither 0.  Each frame sees noise of the same distribution as in Kaldi (overlapping
frames share it, as they share the signal), and the same utterance gives the same features
in any job split, process or order.

Drawing fresh Gaussian noise costs about as much as a fifth of the fbank itself, so the
noise is read from one table of N(0, 1) samples per seed (about 65 s long), starting at an
offset given by the crc32 of the utterance id (the seed as its initial value) and wrapping
around.  Dither only has to break
exact zeros and ties; noise repeated between utterances does that as well as fresh noise.
"""

from __future__ import annotations

import functools
import zlib

import kaldi_native_fbank as knf
import numpy as np

from speechssl.errors import InputError
from speechssl.features.kaldi_compute import KaldiFeatures
from speechssl.features.options import FbankConfig, MfccConfig

BACKENDS = ("numpy", "knf")


def dither_rng(seed: int, utt_id: str) -> np.random.Generator:
    """The dither noise generator of one utterance: stable across processes and platforms.

    Uses crc32 of the UTF-8 utterance id, not ``hash()``, which Python salts per process.
    """
    return np.random.default_rng([seed, zlib.crc32(utt_id.encode("utf-8"))])


DITHER_TABLE_SIZE = 1 << 20  # samples of N(0, 1): 4 MiB, 65 s at 16 kHz


@functools.lru_cache(maxsize=4)
def _noise_table(seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 0x0D17]).standard_normal(
        DITHER_TABLE_SIZE, dtype=np.float32)


def dither_noise(seed: int, utt_id: str, num_samples: int) -> np.ndarray:
    """``num_samples`` of N(0, 1) noise for one utterance (float32), the same in every run."""
    table = _noise_table(seed)
    start = zlib.crc32(utt_id.encode("utf-8"), seed & 0xFFFFFFFF) % DITHER_TABLE_SIZE
    if start + num_samples <= DITHER_TABLE_SIZE:
        return table[start:start + num_samples]
    reps = -(-(start + num_samples) // DITHER_TABLE_SIZE)  # wrap around as often as needed
    return np.concatenate([table[start:]] + [table] * (reps - 1))[:num_samples]


class FeatureExtractor:
    """Computes one utterance's features, as one job of ``make_fbank.sh`` does.

    ``backend`` is "numpy" (:class:`KaldiFeatures`, the default: it implements every
    option the configs accept) or "knf" (kaldi-native-fbank, the reference).

    >>> ex = FeatureExtractor(FbankConfig(num_mel_bins=40, dither=0.0))
    >>> ex.compute(np.zeros(16000), "utt1").shape, ex.kind, ex.frame_shift
    ((98, 40), 'fbank', 0.01)
    """

    def __init__(self, config: FbankConfig | MfccConfig, seed: int = 0, backend: str = "numpy"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown feature backend {backend!r}; expected one of "
                             + ", ".join(BACKENDS))
        self.config = config
        self.seed = seed
        self.backend = backend
        if backend == "numpy":
            self._run = KaldiFeatures(config)
        else:
            self._knf_opts = config.to_knf()
            self._online = knf.OnlineFbank if config.kind == "fbank" else knf.OnlineMfcc
            self._run = self._run_knf

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def frame_shift(self) -> float:
        """Seconds between frames."""
        return self.config.frame_shift

    @property
    def kind(self) -> str:
        return self.config.kind

    def compute(
        self, samples: np.ndarray, utt_id: str, sample_rate: float | None = None
    ) -> np.ndarray:
        """Features ``(T, D)`` float32 of ``samples`` (1-D, int16 scale as Kaldi reads wavs).

        Raises InputError naming ``utt_id`` for a wrong sample rate, non-finite samples, or
        audio too short for one frame.
        """
        wave = self._check(samples, utt_id, sample_rate)
        if self.config.dither > 0:
            wave = self._dither(wave, utt_id)
        return self._run(wave)

    def _check(self, samples: np.ndarray, utt_id: str, sample_rate: float | None) -> np.ndarray:
        """Validate the input; return it as a contiguous float32 vector."""
        if sample_rate is not None and sample_rate != self.config.sample_frequency:
            raise InputError(f"sample rate {sample_rate} Hz, but the {self.kind} config "
                             f"expects {self.config.sample_frequency:g} Hz", key=utt_id)
        wave = np.ascontiguousarray(samples, dtype=np.float32)
        if wave.ndim != 1:
            raise InputError(f"expected 1-D audio (one channel), got shape {wave.shape}",
                             key=utt_id)
        if self.config.num_frames(wave.size) == 0:
            raise InputError(f"audio of {wave.size} samples is too short for one frame "
                             f"({self.config.window_size} samples)", key=utt_id)
        if not np.isfinite(wave).all():
            raise InputError("audio contains NaN or infinite samples", key=utt_id)
        return wave

    def _dither(self, wave: np.ndarray, utt_id: str) -> np.ndarray:
        """``wave + dither * N(0, 1)``, the noise from the utterance's place in the table."""
        noise = dither_noise(self.seed, utt_id, wave.size)
        return wave + np.float32(self.config.dither) * noise

    def _run_knf(self, wave: np.ndarray) -> np.ndarray:
        """Run kaldi-native-fbank over the whole utterance; returns ``(T, D)`` float32.

        A memoryview is the cheapest thing to hand knf's ``accept_waveform`` (it converts
        any sequence element by element; a numpy array is ~40% slower).  knf computes all
        frames inside ``accept_waveform``/``input_finished``; ``get_frame`` only copies.
        """
        online = self._online(self._knf_opts)
        online.accept_waveform(self.config.sample_frequency, memoryview(wave))
        online.input_finished()
        n = online.num_frames_ready
        out = np.empty((n, self.dim), dtype=np.float32)  # (T, D)
        for i in range(n):
            out[i] = online.get_frame(i)
        return out
