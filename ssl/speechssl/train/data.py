"""The training data pipeline: deterministic, resumable batches for one process of a run.

Each epoch starts from a *plan*: the list of every batch of the epoch (which utterances or
pairs, which crop offsets), computed from the training seed and the epoch alone, from
metadata only (utterance ids, frame counts, speakers).  Rank ``r`` of ``W`` takes batches
``r, r+W, ...`` of the plan, truncated so every rank gets the same number.  A batch is then
a pure function of its plan entry and of a generator seeded by ``(seed, epoch, batch
index)``, which draws everything random inside it (view crops, augmentation, dither).  So
the same batch comes out whatever the number of DataLoader workers, the rank layout or the
step a run resumes from, and nothing touches the global numpy or torch generators.

Batch kinds (:mod:`speechssl.data.batch`):

- ``frames``: random crops of at most ``crop_frames`` of utterances of at least
  ``min_frames``, bucketed by length so that ``batch_size * max_len <= batch_frames``.
- ``pairs``: same-word token pairs (:mod:`speechssl.data.pairs`), both directions, the
  second token DTW-aligned to the first: ``y[b, t]`` is the frame of y aligned to
  ``x[b, t]``.  Token features and alignments are computed once at start-up (one DTW
  per pair, in numba) and kept in memory: word tokens are a fraction of the frames, but
  the alignments grow with the number of pairs, quadratic in the tokens of a word, so
  cap frequent words with ``max_pairs_per_type`` on large corpora.  The default mini
  corpus (1.4 h of train, 80-dim fbank) holds 46k pairs in 117 MB, aligned in ~3 s;
  ``describe()`` reports both.
- ``views``: two independent crops of ``view_frames`` frames of one utterance; from the
  waveform (``source: wav``: augmented by ``data.augment``, then Kaldi fbank in torch) or
  from the stored features (``source: feats``: crops only).

Inputs are transformed as :class:`speechssl.data.features.FeatureLoader` does (speaker
CMVN from cmvn.scp, deltas) for ``source: feats``; for ``source: wav`` the ``cmvn`` and
``norm_vars`` options normalise each input sequence by its own mean (and deviation) over
time -- each view in training, each whole utterance in :func:`utterance_inputs` -- since
there are no speaker stats for on-the-fly features.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import soundfile as sf
import torch

from speechssl.data.ark import read_matrix
from speechssl.data.audio import AudioReader
from speechssl.data.batch import FrameBatch, PairBatch, ViewBatch
from speechssl.data.datadir import DataDir
from speechssl.data.features import FeatureLoader, FeatureTransform
from speechssl.data.pairs import load_pairs
from speechssl.dtw import normalise_rows, pair_alignments
from speechssl.errors import InputError
from speechssl.features import FbankConfig, add_deltas
from speechssl.train.augment import augment_view, noise_bank
from speechssl.train.config import ExperimentConfig

log = logging.getLogger(__name__)

BATCH_KINDS = ("frames", "pairs", "views")
BUCKET_SIZE = 100         # utterances sorted by length together before cutting batches
PLAN_STREAM, BATCH_STREAM = 0, 1
DUR_MARGIN = 0.01         # seconds: utt2dur is rounded, keep views clear of the end
INT16_SCALE = 32768.0     # AudioReader gives [-1, 1); Kaldi fbank expects int16 scale


def _rng(seed: int, epoch: int, stream: int, index: int = 0) -> np.random.Generator:
    """The generator of one (seed, epoch, stream, batch index): no global state."""
    return np.random.default_rng([seed % 2**32, epoch, stream, index])


@dataclass(frozen=True)
class _Spec:
    """One batch of a plan: its epoch, its index in the epoch's full (all-rank) plan, and
    its rows (utterance or pair indices, and crops for frames)."""

    epoch: int
    index: int
    rows: np.ndarray


# ----------------------------------------------------------------- metadata and inputs

def _transform(config: ExperimentConfig) -> FeatureTransform:
    d = config.data
    return FeatureTransform(cmvn=d.cmvn, norm_vars=d.norm_vars, delta_order=d.delta_order)


def _kaldi_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def fbank_config(config: ExperimentConfig) -> FbankConfig:
    """The on-the-fly fbank options (``data.fbank``, Kaldi option names)."""
    opts = {k: _kaldi_value(v) for k, v in config.data.fbank.items()}
    return FbankConfig.from_kaldi_options(opts, path="data.fbank")


def input_dim(config: ExperimentConfig, data_dir) -> int:
    """The model's input dimension: stored features (after deltas) or fbank bins."""
    if config.data.source == "wav":
        return fbank_config(config).dim * (config.data.delta_order + 1)
    data = DataDir(data_dir)
    features = FeatureLoader(data, _transform(config))
    if not features.feats:
        raise InputError("feats.scp is empty", path=data.path / "feats.scp")
    return features[next(iter(features.feats))].shape[1]


def _header_rows(rx: str) -> int | None:
    """Rows of a binary matrix from its header alone (``x.ark:offset``); None when the
    entry is something else (pipe, row range, text), to be loaded instead."""
    path, _, offset = rx.rpartition(":")
    if not path or not offset.isdigit() or path.rstrip().endswith("|"):
        return None
    with open(path, "rb") as f:
        f.seek(int(offset))
        head = f.read(18)
    if head[:5] in (b"\0BFM ", b"\0BDM ") and head[5:6] == b"\x04":
        return struct.unpack("<i", head[6:10])[0]
    if head[:5] == b"\0BCM ":   # token, then min, range (floats), rows, cols
        return struct.unpack("<i", head[13:17])[0]
    if head[:6] in (b"\0BCM2 ", b"\0BCM3 "):
        return struct.unpack("<i", head[14:18])[0]
    return None


def feature_frames(data: DataDir) -> dict[str, int]:
    """Frames of every utterance of utt2spk: utt2num_frames, or feats.scp headers.

    An utterance without features is an error naming feats.scp and the utterance.
    """
    feats = data.table("feats.scp")
    missing = [u for u in data.utts if u not in feats]
    if missing:
        raise InputError(f"{len(missing)} utterances of utt2spk have no features "
                         "(run utils/fix_data_dir.sh)", path=data.path / "feats.scp",
                         key=missing[0])
    if data.has("utt2num_frames"):
        table = data.table("utt2num_frames")
        if all(u in table for u in data.utts):
            return {u: int(table[u]) for u in data.utts}
    scp = data.path / "feats.scp"
    out = {}
    for utt in data.utts:
        try:
            rows = _header_rows(feats[utt])
        except OSError as e:
            raise InputError(f"cannot read '{feats[utt]}': {e}", path=scp, key=utt) from None
        out[utt] = rows if rows is not None else read_matrix(feats[utt], scp, utt).shape[0]
    return out


def utterance_durations(data: DataDir) -> dict[str, float]:
    """Seconds of audio of every utterance: utt2dur, else segments, else the audio."""
    if data.has("utt2dur"):
        table = data.table("utt2dur")
        if all(u in table for u in data.utts):
            return {u: float(table[u]) for u in data.utts}
    if data.has("segments"):
        segs = data.table("segments")
        return {u: float(segs[u].split()[2]) - float(segs[u].split()[1]) for u in data.utts}
    reader = AudioReader(data, sample_rate=None)
    return {utt: _audio_seconds(reader, utt) for utt in data.utts}


def _audio_seconds(reader: AudioReader, utt: str) -> float:
    """Duration from a file's header, or by reading the audio (pipes)."""
    entry = reader.wav_scp.get(utt, "")
    if not entry.endswith("|") and Path(entry).is_file():
        try:
            info = sf.info(entry)
            return info.frames / info.samplerate
        except (sf.LibsndfileError, RuntimeError):
            pass  # reading it gives the error message with the key
    samples, rate = reader.read(utt)
    return samples.size / rate


def _normalise(feats: torch.Tensor, means: bool, variances: bool) -> torch.Tensor:
    """Per-sequence normalisation over time of ``(..., T, D)``: means, and deviations."""
    if means or variances:
        feats = feats - feats.mean(dim=-2, keepdim=True)
    if variances:
        feats = feats / feats.std(dim=-2, keepdim=True, unbiased=False).clamp_min(1e-5)
    return feats


def _wav_postprocess(feats: torch.Tensor, config: ExperimentConfig) -> np.ndarray:
    """Normalisation and deltas of on-the-fly fbank ``(..., T, D)`` -> float32 numpy."""
    d = config.data
    x = _normalise(feats, d.cmvn, d.norm_vars).numpy()
    if d.delta_order > 0:
        flat = x.reshape(-1, *x.shape[-2:])
        x = np.stack([add_deltas(m, order=d.delta_order) for m in flat]).reshape(
            *x.shape[:-1], -1)
    return np.ascontiguousarray(x, dtype=np.float32)


def utterance_inputs(config: ExperimentConfig, data_dir) -> Iterator[tuple[str, np.ndarray]]:
    """Every utterance of ``data_dir`` in utt2spk order, whole, as the model's training
    inputs were computed (no crop, no augmentation, no dither): ``(utt, (T, D) float32)``.

    For ``source: feats`` T is the utterance's feats.scp frame count.
    """
    data = DataDir(data_dir)
    if config.data.source == "feats":
        features = FeatureLoader(data, _transform(config))
        for utt in data.utts:
            yield utt, features[utt]
        return
    fbank_cfg = fbank_config(config)
    reader = AudioReader(data, sample_rate=int(fbank_cfg.sample_frequency))
    fbank = _torch_fbank(fbank_cfg)
    for utt in data.utts:
        samples, _ = reader.read(utt)
        if fbank_cfg.num_frames(samples.size) == 0:
            raise InputError(f"{samples.size} samples are too short for one frame",
                             path=data.path / "wav.scp", key=utt)
        with torch.no_grad():
            feats = fbank(torch.from_numpy(samples) * INT16_SCALE, dither=0.0)  # (T, D)
        yield utt, _wav_postprocess(feats, config)


def _torch_fbank(config: FbankConfig):
    from speechssl.features.torch_fbank import TorchFbank

    return TorchFbank(config)


# ----------------------------------------------------------------- plans

def bucket_batches(lengths: np.ndarray, batch_frames: int, max_batch_size: int,
                   ) -> list[np.ndarray]:
    """Cut items (in the given order) into batches of similar lengths: within each run of
    ``BUCKET_SIZE`` items, longest first, then greedily while the padded size
    ``len(batch) * max(lengths) <= batch_frames`` and ``len(batch) <= max_batch_size``.

    >>> [b.tolist() for b in bucket_batches(np.array([3, 9, 4, 8]), 16, 8)]
    [[1], [3, 2], [0]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    starts = np.arange(0, n, BUCKET_SIZE)
    bucket = np.repeat(starts, np.diff(np.append(starts, n)))  # (N,) bucket of each item
    order = np.lexsort((-lengths, bucket))  # by bucket, then longest first (stable)
    cuts = _greedy_cuts(lengths[order], batch_frames, max_batch_size)
    return [b for b in np.split(order, cuts) if len(b)]


@numba.njit(cache=True)
def _greedy_cuts(lengths: np.ndarray, batch_frames: int, max_batch_size: int) -> np.ndarray:
    """Where to cut ``lengths`` so each piece has ``size * max <= batch_frames`` and
    ``size <= max_batch_size`` (a single longer item stays alone): ``(num_cuts,)``."""
    cuts = np.empty(len(lengths), dtype=np.int64)
    num_cuts, size, longest = 0, 0, 0
    for i in range(len(lengths)):
        new_longest = max(longest, lengths[i])
        if size > 0 and ((size + 1) * new_longest > batch_frames or size + 1 > max_batch_size):
            cuts[num_cuts] = i
            num_cuts += 1
            size, new_longest = 0, lengths[i]
        size += 1
        longest = new_longest
    return cuts[:num_cuts]


def _crop_rows(lengths: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffled ``(N, 3)`` rows ``[utt index, offset, crop length]``: a random window of
    ``crop`` frames of every utterance longer than that, the whole of the others."""
    order = rng.permutation(len(lengths))
    full = lengths[order]
    size = np.minimum(full, crop)
    offset = np.floor(rng.random(len(order)) * (full - size + 1)).astype(np.int64)
    return np.stack([order, offset, size], axis=1).astype(np.int64)


def _shuffled(batches: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    return [batches[i] for i in rng.permutation(len(batches))]


def rank_slice(items: list, rank: int, world_size: int) -> list:
    """Items ``rank, rank + W, ...``, truncated so every rank has ``len // W`` of them."""
    per_rank = len(items) // world_size
    return items[rank:per_rank * world_size:world_size]


# ----------------------------------------------------------------- frames

class _FrameSource:
    """Crops of utterances (APC, CPC, masked prediction)."""

    def __init__(self, config: ExperimentConfig, data: DataDir, speakers: list[str]):
        d = config.data
        if d.crop_frames > d.batch_frames:
            raise InputError(f"data.crop_frames ({d.crop_frames}) must not exceed "
                             f"data.batch_frames ({d.batch_frames})")
        frames = feature_frames(data)
        keep = [u for u in data.utts if frames[u] >= d.min_frames]
        self.skipped = Counter({f"shorter than {d.min_frames} frames":
                                len(data.utts) - len(keep)})
        self.lengths = np.asarray([frames[u] for u in keep], dtype=np.int64)
        spk_index = {s: i for i, s in enumerate(speakers)}
        speaker_ids = np.asarray([spk_index[data.utt2spk[u]] for u in keep], dtype=np.int64)
        self.loader = _FrameLoader(FeatureLoader(data, _transform(config)), keep,
                                   self.lengths, speaker_ids)
        self.config = d

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        rows = _crop_rows(self.lengths, self.config.crop_frames, rng)  # (N, 3)
        batches = bucket_batches(rows[:, 2], self.config.batch_frames,
                                 self.config.max_batch_size)
        return _shuffled([rows[b] for b in batches], rng)

    def describe(self) -> str:
        return f"{len(self.lengths)} utterances ({int(self.lengths.sum())} frames)"


class _FrameLoader:
    """Loads one frames batch: transformed features of each utterance, cropped."""

    def __init__(self, features: FeatureLoader, keys: list[str], lengths: np.ndarray,
                 speakers: np.ndarray):
        self.features, self.keys, self.lengths, self.speakers = (
            features, keys, lengths, speakers)

    def _utterance(self, u: int) -> np.ndarray:
        feats = self.features[self.keys[u]]  # (T, D)
        if feats.shape[0] != self.lengths[u]:
            raise InputError(f"features have {feats.shape[0]} frames, utt2num_frames "
                             f"says {self.lengths[u]} (rerun steps/make_fbank.sh)",
                             path=self.features.data.path / "feats.scp", key=self.keys[u])
        return feats

    def __call__(self, spec: _Spec) -> FrameBatch:
        rows = spec.rows  # (B, 3): utterance, offset, length
        crops = [self._utterance(u)[off:off + n] for u, off, n in rows]
        return FrameBatch(feats=_pad(crops), lengths=torch.from_numpy(rows[:, 2].copy()),
                          speakers=torch.from_numpy(self.speakers[rows[:, 0]]),
                          keys=[self.keys[u] for u in rows[:, 0]])


def _pad(mats: list[np.ndarray]) -> torch.Tensor:
    """Zero-padded ``(B, T_max, D)`` float32 tensor of ``(T_b, D)`` matrices."""
    out = np.zeros((len(mats), max(m.shape[0] for m in mats), mats[0].shape[1]), np.float32)
    for b, m in enumerate(mats):
        out[b, :m.shape[0]] = m
    return torch.from_numpy(out)


# ----------------------------------------------------------------- pairs

class _PairSource:
    """Same-word token pairs, each direction, the target token DTW-aligned to the input."""

    def __init__(self, config: ExperimentConfig, data: DataDir):
        d = config.data
        frames = feature_frames(data)
        pairs = load_pairs(data, frames, d.pairs, d.min_word_frames, d.min_word_chars,
                           d.max_pairs_per_type, config.train.seed)
        if len(pairs.pairs) == 0:
            raise InputError(f"no token pairs: {pairs.describe()}", path=data.path / d.pairs)
        self.pairs = pairs
        self.skipped = pairs.skipped
        start = time.perf_counter()
        feats, offsets = _token_features(pairs.tokens, FeatureLoader(data, _transform(config)))
        loaded = time.perf_counter()
        directed = pairs.directed()  # (2P, 2)
        align, align_offsets = pair_alignments(normalise_rows(feats, np.float32), offsets,
                                               pairs.pairs)
        self.seconds = (loaded - start, time.perf_counter() - loaded)
        self.x_lengths = np.diff(offsets)[directed[:, 0]]  # (2P,)
        self.loader = _PairLoader(feats, offsets, directed, align, align_offsets,
                                  [t.key for t in pairs.tokens])
        self.config = d

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(len(self.x_lengths))
        batches = bucket_batches(self.x_lengths[order], self.config.batch_frames,
                                 self.config.max_batch_size)
        return _shuffled([order[b] for b in batches], rng)

    def describe(self) -> str:
        mb = (self.loader.feats.nbytes + self.loader.align.nbytes) / 2**20
        tokens = self.pairs.tokens
        return (f"{len(self.pairs.pairs)} pairs ({len(self.x_lengths)} directed) of "
                f"{len(tokens)} tokens of {len({t.word for t in tokens})} words; token "
                f"features and alignments {mb:.1f} MB in memory (loaded in "
                f"{self.seconds[0]:.1f} s, aligned in {self.seconds[1]:.1f} s)")


def _token_features(tokens, features: FeatureLoader) -> tuple[np.ndarray, np.ndarray]:
    """All tokens' transformed frames in one ``(F, D)`` array, token k at rows
    ``offsets[k]:offsets[k+1]``; each utterance is read once."""
    by_utt: dict[str, list[int]] = {}
    for k, token in enumerate(tokens):
        by_utt.setdefault(token.utt, []).append(k)
    lengths = np.asarray([t.num_frames for t in tokens], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])  # (K + 1,)
    out = None
    for utt, ks in by_utt.items():
        mat = features[utt]  # (T, D)
        if out is None:
            out = np.empty((offsets[-1], mat.shape[1]), dtype=np.float32)
        for k in ks:
            if tokens[k].end > mat.shape[0]:
                raise InputError(f"token {tokens[k].key} ends after the features' "
                                 f"{mat.shape[0]} frames (stale utt2num_frames?)",
                                 path=features.data.path / "feats.scp", key=utt)
            out[offsets[k]:offsets[k + 1]] = mat[tokens[k].start:tokens[k].end]
    return out, offsets


class _PairLoader:
    """Gathers one pairs batch from the in-memory token features."""

    def __init__(self, feats, offsets, directed, align, align_offsets, keys):
        self.feats, self.offsets, self.directed = feats, offsets, directed
        self.align, self.align_offsets, self.keys = align, align_offsets, keys

    def _token(self, k: int) -> np.ndarray:
        return self.feats[self.offsets[k]:self.offsets[k + 1]]

    def __call__(self, spec: _Spec) -> PairBatch:
        xs, ys, keys = [], [], []
        for d in spec.rows:
            x, y = self.directed[d]
            xs.append(self._token(x))
            ys.append(self._token(y)[self.align[self.align_offsets[d]:self.align_offsets[d + 1]]])
            keys.append(f"{self.keys[x]}~{self.keys[y]}")
        lengths = torch.tensor([len(x) for x in xs], dtype=torch.long)
        return PairBatch(x=_pad(xs), y=_pad(ys), lengths=lengths, keys=keys)


# ----------------------------------------------------------------- views

class _ViewSource:
    """Two crops of ``view_frames`` of one utterance, from the waveform or the features."""

    def __init__(self, config: ExperimentConfig, data: DataDir):
        d = config.data
        if d.source == "wav":
            fbank = fbank_config(config)
            seconds = _view_samples(fbank, d.view_frames) / fbank.sample_frequency
            durations = utterance_durations(data)
            keep = [u for u in data.utts if durations[u] >= seconds + DUR_MARGIN]
            short = f"shorter than one view ({seconds:.3f} s + {DUR_MARGIN} s)"
            self.loader = _WavViewLoader(config, data, keep, fbank)
            if keep:
                self.loader.audio.read(keep[0])  # a wrong sample rate fails now, not later
        else:
            frames = feature_frames(data)
            keep = [u for u in data.utts if frames[u] >= d.view_frames]
            short = f"shorter than one view ({d.view_frames} frames)"
            self.loader = _FeatViewLoader(config, data, keep)
        self.skipped = Counter({short: len(data.utts) - len(keep)})
        self.num_utts, self.batch_size = len(keep), d.batch_size

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(self.num_utts)
        count = self.num_utts // self.batch_size
        return list(order[:count * self.batch_size].reshape(count, self.batch_size))

    def describe(self) -> str:
        return f"{self.num_utts} utterances, batches of {self.batch_size} (last dropped)"


def _view_samples(fbank: FbankConfig, frames: int) -> int:
    """The fewest samples that give ``frames`` Kaldi frames."""
    shift, size = fbank.window_shift, fbank.window_size
    samples = size + (frames - 1) * shift if fbank.snip_edges else frames * shift - shift // 2
    assert fbank.num_frames(samples) == frames
    return samples


class _FeatViewLoader:
    """Two random crops of the stored (transformed) features of each utterance."""

    def __init__(self, config: ExperimentConfig, data: DataDir, keys: list[str]):
        self.features = FeatureLoader(data, _transform(config))
        self.keys, self.frames, self.seed = keys, config.data.view_frames, config.train.seed

    def __call__(self, spec: _Spec) -> ViewBatch:
        rng = _rng(self.seed, spec.epoch, BATCH_STREAM, spec.index)
        views = []
        for u in spec.rows:
            feats = self.features[self.keys[u]]  # (T, D)
            starts = rng.integers(0, feats.shape[0] - self.frames + 1, size=2)
            views += [feats[s:s + self.frames] for s in starts]
        both = torch.from_numpy(np.stack(views))  # (2B, view_frames, D)
        return _view_batch(both, [self.keys[u] for u in spec.rows])


def _view_batch(both: torch.Tensor, keys: list[str]) -> ViewBatch:
    """Split interleaved views ``(2B, T, D)`` (a0, b0, a1, b1, ...) into a ViewBatch."""
    lengths = torch.full((len(keys),), both.shape[1], dtype=torch.long)
    return ViewBatch(view_a=both[0::2].contiguous(), view_b=both[1::2].contiguous(),
                     lengths=lengths, keys=keys)


class _WavViewLoader:
    """Two random crops of each utterance's audio, each augmented, then Kaldi fbank."""

    def __init__(self, config: ExperimentConfig, data: DataDir, keys: list[str],
                 fbank: FbankConfig):
        self.config, self.keys, self.seed = config, keys, config.train.seed
        self.rate = int(fbank.sample_frequency)
        self.audio = AudioReader(data, sample_rate=self.rate)
        self.samples = _view_samples(fbank, config.data.view_frames)
        self.fbank = _torch_fbank(fbank)

    def _crops(self, u: int, rng: np.random.Generator, bank: np.ndarray) -> list[np.ndarray]:
        samples, _ = self.audio.read(self.keys[u])  # (N,)
        if samples.size < self.samples:
            raise InputError(f"audio has {samples.size} samples, fewer than one view "
                             f"({self.samples}); utt2dur is wrong (rerun make_fbank)",
                             path=self.audio.scp_path, key=self.keys[u])
        starts = rng.integers(0, samples.size - self.samples + 1, size=2)
        return [augment_view(samples[s:s + self.samples], rng, self.rate,
                             self.config.data.augment, bank) for s in starts]

    def __call__(self, spec: _Spec) -> ViewBatch:
        rng = _rng(self.seed, spec.epoch, BATCH_STREAM, spec.index)
        bank = noise_bank(self.seed, self.rate, self.samples)  # made once per process
        waves = np.stack([c for u in spec.rows for c in self._crops(u, rng, bank)])  # (2B, N)
        dither = torch.Generator().manual_seed(int(rng.integers(2**62)))
        wave = torch.from_numpy(waves).mul_(INT16_SCALE)
        if self.fbank.config.dither > 0:
            # Kaldi's dither, drawn per sample of the waveform rather than per sample of
            # each frame: every frame still sees i.i.d. N(0, dither^2) noise, from 2.5x
            # fewer random numbers (frames overlap).
            noise = torch.randn(wave.shape, generator=dither, dtype=wave.dtype)
            wave.add_(noise, alpha=self.fbank.config.dither)
        with torch.no_grad():
            feats = self.fbank(wave, dither=0.0)
        both = torch.from_numpy(_wav_postprocess(feats, self.config))  # (2B, T, D)
        return _view_batch(both, [self.keys[u] for u in spec.rows])


# ----------------------------------------------------------------- the pipeline

class _PlanDataset(torch.utils.data.Dataset):
    """Map-style dataset over a slice of a plan: item i is the whole batch ``specs[i]``,
    so DataLoader workers compute batches, never decide what is in them."""

    def __init__(self, loader, specs: list[_Spec]):
        self.loader, self.specs = loader, specs

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, i: int):
        return self.loader(self.specs[i])


def _identity(batch):
    return batch


def _init_worker(_worker_id: int) -> None:
    torch.set_num_threads(1)  # workers run side by side: one thread each
    # Lowest CPU priority: with as many training threads as cores, a worker at equal
    # priority preempts one of them, and the other waits for it at every parallel op
    # (the step doubles on 2 cores); at nice 19 it runs when a core is free (waits on
    # data, serial parts), prefetching ahead.
    os.nice(19)


class TrainingData:
    """Deterministic, resumable batches for one process of a (possibly distributed) run.

    ``batch_kind``: "frames", "pairs" or "views" (the method's ``batch_kind``).  Rank
    ``rank`` of ``world_size`` gets every ``world_size``-th batch of each epoch's plan.
    """

    def __init__(self, config: ExperimentConfig, data_dir, batch_kind: str,
                 rank: int = 0, world_size: int = 1):
        if batch_kind not in BATCH_KINDS:
            raise InputError(f"unknown batch kind '{batch_kind}'; expected one of "
                             f"{', '.join(BATCH_KINDS)}")
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got {rank} and {world_size}")
        self.config, self.batch_kind = config, batch_kind
        self.rank, self.world_size = rank, world_size
        self.data = DataDir(data_dir)
        speakers = sorted(set(self.data.utt2spk.values()))
        self.num_speakers = len(speakers)
        self._source = self._make_source(speakers)
        self.input_dim = input_dim(config, self.data.path)
        self._plans: dict[int, list[_Spec]] = {}
        self._counts: dict[int, int] = {}
        if self.num_batches(0) == 0:
            raise InputError(f"no training batches for rank {rank} of {world_size}: "
                             + self.describe(), path=self.data.path)

    def _make_source(self, speakers: list[str]):
        source = self.config.data.source
        if self.batch_kind != "views" and source != "feats":
            raise InputError(f"batch kind '{self.batch_kind}' reads stored features: set "
                             f"data.source: feats (got '{source}'; on-the-fly features "
                             "are for views)")
        if self.batch_kind == "frames":
            return _FrameSource(self.config, self.data, speakers)
        if self.batch_kind == "pairs":
            return _PairSource(self.config, self.data)
        return _ViewSource(self.config, self.data)

    def _rank_plan(self, epoch: int) -> list[_Spec]:
        """This rank's batches of ``epoch`` (the two most recent epochs are cached)."""
        if epoch not in self._plans:
            rng = _rng(self.config.train.seed, epoch, PLAN_STREAM)
            specs = [_Spec(epoch, i, rows) for i, rows in enumerate(self._source.plan(rng))]
            self._plans = {e: p for e, p in self._plans.items() if e == epoch - 1}
            self._plans[epoch] = rank_slice(specs, self.rank, self.world_size)
        return self._plans[epoch]

    def num_batches(self, epoch: int) -> int:
        """Batches this rank gets in ``epoch``; the same on every rank.  (Counting all
        epochs, e.g. for a learning-rate schedule, makes each epoch's plan once.)"""
        if epoch not in self._counts:
            self._counts[epoch] = len(self._rank_plan(epoch))
        return self._counts[epoch]

    def batches(self, epoch: int, start: int = 0) -> Iterator[FrameBatch | PairBatch | ViewBatch]:
        """This rank's batches of ``epoch`` from index ``start`` on (to resume mid-epoch)."""
        specs = self._rank_plan(epoch)[start:]
        workers = self.config.data.num_workers
        if workers == 0 or not specs:
            return (self._source.loader(spec) for spec in specs)
        loader = torch.utils.data.DataLoader(
            _PlanDataset(self._source.loader, specs), batch_size=None, shuffle=False,
            num_workers=workers, collate_fn=_identity, worker_init_fn=_init_worker)
        return iter(loader)

    def describe(self) -> str:
        """One log line: what was kept, what was skipped and why, batches per epoch."""
        skipped = sum(self._source.skipped.values())
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self._source.skipped.items())
                            if n)
        batches = len(self._plans[0]) if 0 in self._plans else self.num_batches(0)
        return (f"{self.data.path} ({self.batch_kind}): {self._source.describe()}; "
                f"skipped {skipped}" + (f" ({reasons})" if reasons else "")
                + f"; {batches} batches/epoch for rank {self.rank} of {self.world_size}")
