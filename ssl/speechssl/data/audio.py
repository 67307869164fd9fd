"""Read the audio of a data dir: ``wav.scp`` (files or ``cmd |`` pipes) and ``segments``.

Samples come back as float32 in [-1, 1).  A sample rate other than the expected one is an
error unless resampling was asked for, because silently resampled audio gives features
that no longer match a model trained on the original rate.  A WAV whose data is shorter
than its header says (a copy or download cut short) is read as far as it goes, with a
warning like Kaldi's ``WaveData::Read``.
"""

from __future__ import annotations

import io
import logging
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from speechssl.data.datadir import DataDir
from speechssl.errors import InputError

log = logging.getLogger(__name__)
# Data chunk sizes that mean "read to the end" (streamed output), as in Kaldi's WaveInfo.
STREAMED_SIZES = (0, 0xFFFFFFFF, 0x7FFFF000)  # 0x7FFFF000: what SoX writes to a pipe


@dataclass(frozen=True)
class Segment:
    rec: str
    start: float
    end: float | None  # None: to the end of the recording


def _read_pipe(command: str, rec: str, scp: Path) -> tuple[np.ndarray, int]:
    proc = subprocess.run(["bash", "-c", command], capture_output=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise InputError(f"command '{command}' failed with exit code {proc.returncode}: "
                         f"{stderr[0]}", path=scp, key=rec)
    return _decode(io.BytesIO(proc.stdout), rec, scp, command)


def wav_header_frames(f) -> int | None:
    """The frames a WAV's header promises (data chunk bytes / block align), read from the
    binary file ``f`` as Kaldi's ``WaveInfo::Read`` does; None for other formats and for
    streamed WAVs, whose header gives no length.  libsndfile clips the count to the data
    present, so it cannot tell that a file was cut short."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        return None
    block_align = 0
    while len(chunk := f.read(8)) == 8:
        name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if name == b"data":
            return None if size in STREAMED_SIZES or not block_align else size // block_align
        body = f.read(size + size % 2)  # chunks are padded to an even size
        if name == b"fmt " and len(body) >= 14:
            block_align = struct.unpack("<H", body[12:14])[0]
    return None


def _warn_if_truncated(source, frames_read: int, rec: str, scp: Path, what: str) -> None:
    if isinstance(source, io.BytesIO):
        source.seek(0)
        expected = wav_header_frames(source)
    else:
        with open(source, "rb") as f:
            expected = wav_header_frames(f)
    if expected is not None and frames_read < expected:
        log.warning("WaveData: %s: key '%s': '%s' is truncated: its header says %d samples, "
                    "the file holds %d; using what is there", scp, rec, what, expected,
                    frames_read)


def _decode(source, rec: str, scp: Path, what: str) -> tuple[np.ndarray, int]:
    try:
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise InputError(f"cannot read audio '{what}': {e}", path=scp, key=rec) from None
    _warn_if_truncated(source, samples.shape[0], rec, scp, what)
    if samples.shape[1] != 1:
        raise InputError(f"'{what}' has {samples.shape[1]} channels; only mono is "
                         "supported (select a channel with a 'sox ... remix 1 |' pipe)",
                         path=scp, key=rec)
    return samples[:, 0], rate


class AudioReader:
    """Random and sequential access to the utterances of a data dir.

    ``sample_rate``: the rate features expect; ``resample``: convert other rates instead of
    failing.  The last recording read is cached, so segments of one recording in a row
    (the usual sorted order) read the file once.
    """

    def __init__(self, data_dir: DataDir | str | Path, sample_rate: int | None = 16000,
                 resample: bool = False):
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
        self.wav_scp = self.data.table("wav.scp")
        self.scp_path = self.data.path / "wav.scp"
        self.sample_rate = sample_rate
        self.resample = resample
        self.segments = self._segments()
        self._cached: tuple[str, np.ndarray, int] | None = None

    def _segments(self) -> dict[str, Segment]:
        if not self.data.has("segments"):
            return {rec: Segment(rec, 0.0, None) for rec in self.wav_scp}
        segs = {}
        for utt, value in self.data.table("segments").items():
            rec, start, end = value.split()
            segs[utt] = Segment(rec, float(start), float(end))
        return segs

    def utterances(self) -> list[str]:
        return list(self.segments)

    def _recording(self, rec: str) -> tuple[np.ndarray, int]:
        if self._cached is not None and self._cached[0] == rec:
            return self._cached[1], self._cached[2]
        if rec not in self.wav_scp:
            raise InputError("recording is not in wav.scp", path=self.scp_path, key=rec)
        entry = self.wav_scp[rec]
        if entry.endswith("|"):
            samples, rate = _read_pipe(entry[:-1].strip(), rec, self.scp_path)
        else:
            if not Path(entry).is_file():
                raise InputError(f"audio file '{entry}' does not exist",
                                 path=self.scp_path, key=rec)
            samples, rate = _decode(entry, rec, self.scp_path, entry)
        self._cached = (rec, samples, rate)
        return samples, rate

    def read(self, utt: str) -> tuple[np.ndarray, int]:
        """Samples (float32, [-1, 1)) and sample rate of one utterance."""
        if utt not in self.segments:
            raise InputError("utterance has no audio entry", path=self.scp_path, key=utt)
        seg = self.segments[utt]
        samples, rate = self._recording(seg.rec)
        samples = self._cut(samples, rate, seg, utt)
        if samples.size == 0:
            raise InputError("audio is empty", path=self.scp_path, key=utt)
        return self._check_rate(samples, rate, utt)

    def _cut(self, samples: np.ndarray, rate: int, seg: Segment, utt: str) -> np.ndarray:
        if seg.end is None:
            return samples
        # Kaldi's extract-segments: truncate times to samples; an end up to 0.5 s past
        # the recording is clipped (rounding in segment lists), more is an error.
        first, last = int(seg.start * rate), int(seg.end * rate)
        if last > samples.size + int(0.5 * rate) or first >= samples.size:
            raise InputError(f"segment {seg.start}-{seg.end} s is beyond the end of "
                             f"recording '{seg.rec}' ({samples.size / rate:.3f} s)",
                             path=self.data.path / "segments", key=utt)
        return samples[first:min(last, samples.size)]

    def _check_rate(self, samples: np.ndarray, rate: int, utt: str) -> tuple[np.ndarray, int]:
        if self.sample_rate is None or rate == self.sample_rate:
            return samples, rate
        if not self.resample:
            raise InputError(f"sample rate is {rate} Hz, expected {self.sample_rate} Hz "
                             "(resample the audio, e.g. with a 'sox ... -r 16000 - |' pipe, "
                             "or ask for resampling)", path=self.scp_path, key=utt)
        from scipy.signal import resample_poly  # slow to import; only needed here

        ratio = Fraction(self.sample_rate, rate)
        out = resample_poly(samples, ratio.numerator, ratio.denominator)
        return out.astype(np.float32), self.sample_rate

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, int]]:
        for utt in self.segments:
            samples, rate = self.read(utt)
            yield utt, samples, rate


@dataclass(frozen=True)
class AudioHeader:
    """What an audio file's header says (any format soundfile reads: wav, flac, ...)."""
    path: Path
    sample_rate: int
    frames: int
    channels: int
    key: str | None = None   # the utterance or recording, for messages

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def require(self, sample_rate: int, mono: bool = False, advice: str = "") -> AudioHeader:
        """Non-empty audio at ``sample_rate`` (and one channel with ``mono``), else an
        error naming the file, what it holds and ``advice``."""
        if (self.sample_rate != sample_rate or self.frames == 0
                or (mono and self.channels != 1)):
            raise InputError(f"expected non-empty {sample_rate} Hz{' mono' if mono else ''} "
                             f"audio, got {self.frames} samples at {self.sample_rate} Hz with "
                             f"{self.channels} channel(s){advice}", path=self.path, key=self.key)
        return self


def audio_header(path: str | Path, key: str | None = None) -> AudioHeader:
    """Read only the header of an audio file; an unreadable one is an error naming it."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise InputError(f"cannot read the audio header: {e}", path=path, key=key) from None
    return AudioHeader(Path(path), info.samplerate, info.frames, info.channels, key)
