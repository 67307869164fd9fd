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

Inputs are transformed as :class:`speechssl.data.feature_loader.FeatureLoader` does (speaker
CMVN from cmvn.scp, deltas) for ``source: feats``; for ``source: wav`` the ``cmvn`` and
``norm_vars`` options normalise each input sequence by its own mean (and deviation) over
time -- each view in training, each whole utterance in :func:`utterance_inputs` -- since
there are no speaker stats for on-the-fly features.
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import torch

from speechssl.augment import noise_bank
from speechssl.data.audio import AudioReader
from speechssl.data.batch import FrameBatch, PairBatch, ViewBatch
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureLoader
from speechssl.data.pairs import load_pairs
from speechssl.dtw import normalise_rows, pair_alignments
from speechssl.errors import InputError
from speechssl.features import FbankConfig
from speechssl.train.config import ExperimentConfig
from speechssl.train.inputs import (
    INT16_SCALE,
    fbank_config,
    feature_frames,
    feature_transform,
    input_dim,
    torch_fbank,
    utterance_durations,
    utterance_inputs,
    wav_postprocess,
)
from speechssl.train.plans import (
    BATCH_STREAM,
    PLAN_STREAM,
    BatchSpec,
    batch_rng,
    bucket_batches,
    crop_rows,
    rank_slice,
    shuffled,
)
from speechssl.train.view_augment import augment_view

BATCH_KINDS = ("frames", "pairs", "views")
DUR_MARGIN = 0.01         # seconds: utt2dur is rounded, keep views clear of the end

__all__ = ["TrainingData", "bucket_batches", "fbank_config", "feature_frames", "input_dim",
           "rank_slice", "utterance_durations", "utterance_inputs"]


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
        self.loader = _FrameLoader(FeatureLoader(data, feature_transform(config)), keep,
                                   self.lengths, speaker_ids)
        self.config = d

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        rows = crop_rows(self.lengths, self.config.crop_frames, rng)  # (N, 3)
        batches = bucket_batches(rows[:, 2], self.config.batch_frames,
                                 self.config.max_batch_size)
        return shuffled([rows[b] for b in batches], rng)

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

    def __call__(self, spec: BatchSpec) -> FrameBatch:
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
        loader = FeatureLoader(data, feature_transform(config))
        feats, offsets = _token_features(pairs.tokens, loader)
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
        return shuffled([order[b] for b in batches], rng)

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

    def __call__(self, spec: BatchSpec) -> PairBatch:
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
        self.features = FeatureLoader(data, feature_transform(config))
        self.keys, self.frames, self.seed = keys, config.data.view_frames, config.train.seed

    def __call__(self, spec: BatchSpec) -> ViewBatch:
        rng = batch_rng(self.seed, spec.epoch, BATCH_STREAM, spec.index)
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
        self.fbank = torch_fbank(fbank)

    def _crops(self, u: int, rng: np.random.Generator, bank: np.ndarray) -> list[np.ndarray]:
        samples, _ = self.audio.read(self.keys[u])  # (N,)
        if samples.size < self.samples:
            raise InputError(f"audio has {samples.size} samples, fewer than one view "
                             f"({self.samples}); utt2dur is wrong (rerun make_fbank)",
                             path=self.audio.scp_path, key=self.keys[u])
        starts = rng.integers(0, samples.size - self.samples + 1, size=2)
        return [augment_view(samples[s:s + self.samples], rng, self.rate,
                             self.config.data.augment, bank) for s in starts]

    def __call__(self, spec: BatchSpec) -> ViewBatch:
        rng = batch_rng(self.seed, spec.epoch, BATCH_STREAM, spec.index)
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
        both = torch.from_numpy(wav_postprocess(feats, self.config))  # (2B, T, D)
        return _view_batch(both, [self.keys[u] for u in spec.rows])


# ----------------------------------------------------------------- the pipeline

class _PlanDataset(torch.utils.data.Dataset):
    """Map-style dataset over a slice of a plan: item i is the whole batch ``specs[i]``,
    so DataLoader workers compute batches, never decide what is in them."""

    def __init__(self, loader, specs: list[BatchSpec]):
        self.loader, self.specs = loader, specs

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, i: int):
        return self.loader(self.specs[i])


def _identity(batch):
    return batch


def _init_worker(nice: int, _worker_id: int) -> None:
    torch.set_num_threads(1)  # workers run side by side: one thread each
    if nice:
        os.nice(nice)  # data.worker_nice: see DataConfig


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
        self._plans: dict[int, list[BatchSpec]] = {}
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

    def _rank_plan(self, epoch: int) -> list[BatchSpec]:
        """This rank's batches of ``epoch`` (the two most recent epochs are cached)."""
        if epoch not in self._plans:
            rng = batch_rng(self.config.train.seed, epoch, PLAN_STREAM)
            specs = [BatchSpec(epoch, i, rows) for i, rows in enumerate(self._source.plan(rng))]
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
            num_workers=workers, collate_fn=_identity,
            worker_init_fn=functools.partial(_init_worker, self.config.data.worker_nice))
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
