"""Inputs and labels of the probing classifiers (``steps/train_probe.sh``).

* ``phone``: one example per frame of ``feats.scp``; labels from ``<data>/phone_ali``
  (``<utt> <label> <label> ...``, one label per frame, e.g. the integers of CPC's
  ``converted_aligned_phones.txt``) or else from ``<data>/phones.ctm``.
* ``speaker``, ``language``: one example per utterance: the mean of its frames over time
  (the protocol of the CPC paper), or its vector in ``embedding.scp`` as is; labels from
  ``utt2spk`` or ``utt2lang``.

CTM times become frame labels at the frames' centres: Kaldi's frame ``t`` (``snip_edges``)
covers ``[t * shift, t * shift + 25 ms)``, so it gets the phone covering
``t * shift + 12.5 ms``.  A centre in a gap between CTM entries takes the nearer entry when
that is at most half a frame shift away (CTM times are rounded, to 1 ms in ours), and is
otherwise left unlabelled: such frames are skipped and counted.  The frames of a CTM are
those whose centre lies before the end of its last entry:

>>> from speechssl.data.ctm import CtmEntry
>>> ctm = [CtmEntry("u", "1", 0.0, 0.05, "a"), CtmEntry("u", "1", 0.05, 0.25, "b")]
>>> labels = ctm_frame_labels(ctm, 0.01)   # centres 0.0125, 0.0225, ... < 0.3: 29 frames
>>> len(labels), labels.count("a"), labels[3:5]
(29, 4, ['a', 'b'])

Label and feature frame counts may differ by up to :data:`MAX_TRIM_FRAMES` at the end: the
conventions disagree there (Kaldi's ``snip_edges=true`` gives ``1 + (N - 400) // 160``
frames of N samples, ``snip_edges=false`` ``round(N / 160)``, a 160x strided conv encoder
``N // 160``; alignments often count ``ceil(duration / shift)``).  Both are then cut to the
shorter; a larger difference means the labels belong to other audio and is an error.

Labels of utterances that have no features are skipped and counted (label files often
cover a whole corpus while features exist for a subset).  Utterances with features but no
labels are skipped and counted too, as Kaldi skips utterances whose alignment failed, up
to :data:`MAX_UNLABELLED_FRACTION` of them; more is an error.

Frame labels become integer ids as each line (or CTM utterance) is read, one int32 array
per utterance: as Python strings LibriSpeech's 28 M frame labels would take gigabytes.
:func:`phone_frames` checks a data dir's labelled frames in one pass over its features
without keeping them (the streamed phone probe reads them again a buffer at a time,
:meth:`FrameSet.buffers`); :func:`phone_set` keeps them, as one (N, D) matrix.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechssl.data.ctm import CtmEntry, read_ctm
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform, read_embedding
from speechssl.data.table import iter_table
from speechssl.errors import InputError, examples
from speechssl.eval.bootstrap import speaker_index

log = logging.getLogger(__name__)

TASKS = ("phone", "speaker", "language")
FRAME_LENGTH = 0.025          # Kaldi's --frame-length: frame t's centre is t*shift + 12.5 ms
DEFAULT_FRAME_SHIFT = 0.01    # when the data dir has no frame_shift file
MAX_TRIM_FRAMES = 2
MAX_UNLABELLED_FRACTION = 0.05


@dataclass
class ProbeSet:
    """Examples of one data dir: ``x`` (N, D) float32 and label ids into ``vocab``."""

    path: str
    x: np.ndarray
    label_ids: np.ndarray      # (N,) int64
    vocab: list[str]
    source: str                # where the vectors come from, for results.json
    utts: list[str]            # the utterances the examples come from
    example_utt: np.ndarray    # (N,) each example's utterance, an index into utts
    counts: dict[str, int] = field(default_factory=dict)   # what was skipped or trimmed

    @property
    def num_utts(self) -> int:
        return len(self.utts)

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    @property
    def num_examples(self) -> int:
        return len(self.label_ids)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.vocab, dtype=object)[self.label_ids]


class _Vocab:
    """Label strings to ids in order of first appearance."""

    def __init__(self):
        self.ids: dict[str, int] = {}

    def encode(self, labels: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.ids.setdefault(a, len(self.ids)) for a in labels),
                           dtype=np.int64, count=len(labels))

    def encode_frames(self, labels: Sequence[str | None]) -> np.ndarray:
        """Frame labels as int32 ids, -1 for an unlabelled frame (None)."""
        return np.fromiter((-1 if a is None else self.ids.setdefault(a, len(self.ids))
                            for a in labels), dtype=np.int32, count=len(labels))

    def words(self) -> list[str]:
        return list(self.ids)


# ---------------------------------------------------------------- frame labels

def read_phone_ali(path, vocab: _Vocab) -> dict[str, tuple[int, np.ndarray]]:
    """``<utt> <label>...`` lines as ``utt -> (line number, label ids)``; any order."""
    ali: dict[str, tuple[int, np.ndarray]] = {}
    for lineno, utt, rest in iter_table(path, min_fields=2):
        if utt in ali:
            raise InputError("duplicate key", path=path, line=lineno, key=utt)
        ali[utt] = (lineno, vocab.encode_frames(rest.split()))
    return ali


def ctm_frame_labels(entries: Sequence[CtmEntry], shift: float,
                     frame_length: float = FRAME_LENGTH) -> list[str | None]:
    """The label of each frame whose centre lies before the end of the last entry;
    None where the centre is in a gap wider than the rounding of CTM times."""
    entries = sorted(entries, key=lambda e: e.start)
    starts = np.array([e.start for e in entries])
    ends = np.array([e.end for e in entries])
    half = frame_length / 2
    # frames t with t * shift + half < last end (rounded so that 0.3 / 0.01 stays 30)
    num = max(0, math.ceil(round((ends.max() - half) / shift, 6)))
    centres = np.arange(num) * shift + half
    idx = np.searchsorted(starts, centres, side="right") - 1   # last entry starting before
    inside = (idx >= 0) & (centres < ends[np.maximum(idx, 0)])
    tokens = [e.token for e in entries]
    labels: list[str | None] = [tokens[i] for i in idx]
    for t in np.flatnonzero(~inside):
        labels[t] = _nearest(tokens, starts, ends, centres[t], idx[t], shift / 2)
    return labels


def _nearest(tokens: list[str], starts: np.ndarray, ends: np.ndarray, centre: float,
             before: int, tolerance: float) -> str | None:
    """The token of the entry nearest a centre that falls between entries ``before`` and
    ``before + 1``, when at most ``tolerance`` away."""
    gap_before = centre - ends[before] if before >= 0 else math.inf
    gap_after = starts[before + 1] - centre if before + 1 < len(tokens) else math.inf
    if min(gap_before, gap_after) > tolerance:
        return None
    return tokens[before] if gap_before <= gap_after else tokens[before + 1]


@dataclass
class FrameLabels:
    """A data dir's frame labels: ``utt -> (line or None, int32 ids into vocab)``, -1 for
    a frame in a gap of the CTM."""

    name: str                  # phone_ali or phones.ctm
    path: Path
    utts: dict[str, tuple[int | None, np.ndarray]]
    vocab: list[str]

    def decoded(self, utt: str) -> list[str | None]:
        return [None if i < 0 else self.vocab[i] for i in self.utts[utt][1]]


def frame_labels(data: DataDir) -> FrameLabels:
    """The frame labels of a data dir, from phone_ali, else phones.ctm."""
    vocab = _Vocab()
    if data.has("phone_ali"):
        path = data.path / "phone_ali"
        return FrameLabels("phone_ali", path, read_phone_ali(path, vocab), vocab.words())
    if data.has("phones.ctm"):
        path = data.path / "phones.ctm"
        shift = data.frame_shift() if data.has("frame_shift") else DEFAULT_FRAME_SHIFT
        ctm = read_ctm(path)
        out = {}
        for utt in list(ctm):
            entries = ctm.pop(utt)   # each utterance's entries dropped once converted
            if len({e.channel for e in entries}) > 1:
                raise InputError("an utterance with several channels; one is expected",
                                 path=path, key=utt)
            out[utt] = (None, vocab.encode_frames(ctm_frame_labels(entries, shift)))
        return FrameLabels("phones.ctm", path, out, vocab.words())
    raise InputError("no frame labels: need phone_ali (one label per frame) or phones.ctm",
                     path=data.path)


def fit_to_frames(labels: Sequence, num_frames: int, path, line: int | None,
                  utt: str) -> Sequence:
    """Labels cut to the feature frame count when they differ by at most
    MAX_TRIM_FRAMES at the end (conventions differ there); else an error."""
    if abs(len(labels) - num_frames) > MAX_TRIM_FRAMES:
        raise InputError(f"{len(labels)} frame labels for {num_frames} feature frames "
                         f"(up to {MAX_TRIM_FRAMES} are trimmed; check the frame shift and "
                         "that labels and features are of the same audio)",
                         path=path, line=line, key=utt)
    return labels[:num_frames]


# ---------------------------------------------------------------- matching

def match_utterances(labelled: Iterable[str], feat_utts: Sequence[str], label_path,
                     feat_path, max_unlabelled: float = MAX_UNLABELLED_FRACTION,
                     ) -> tuple[list[str], dict[str, int]]:
    """The utterances with both labels and features, in feature order, and the counts
    of those skipped; more than ``max_unlabelled`` of them unlabelled is an error."""
    labelled = set(labelled)
    have = set(feat_utts)
    if not have:
        raise InputError("no utterances", path=feat_path)
    no_feats = labelled - have
    no_labels = have - labelled
    if no_feats:
        log.warning("%s: skipping labels of %d utterances that have no features in %s (%s)",
                    label_path, len(no_feats), feat_path, examples(no_feats))
    if len(no_labels) > max_unlabelled * len(have) or len(no_labels) == len(have):
        raise InputError(f"{len(no_labels)} of {len(have)} utterances of {feat_path} have no "
                         f"labels here ({examples(no_labels)}); at most "
                         f"{max_unlabelled:.0%} may lack them", path=label_path)
    if no_labels:
        log.warning("%s: skipping %d of %d utterances of %s that have no labels (%s)",
                    label_path, len(no_labels), len(have), feat_path, examples(no_labels))
    counts = {"labels_without_features": len(no_feats),
              "features_without_labels": len(no_labels)}
    return [u for u in feat_utts if u in labelled], counts


# ---------------------------------------------------------------- examples

@dataclass
class FrameSet:
    """The labelled frames of a data dir without their features: each utterance's label
    ids (fitted to its frame count; -1: skipped) and the loader that reads its frames."""

    path: str
    loader: FeatureLoader
    utts: list[str]
    label_ids: list[np.ndarray]   # int32 per utterance, into vocab
    vocab: list[str]
    source: str
    dim: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def num_utts(self) -> int:
        return len(self.utts)

    @property
    def num_examples(self) -> int:
        return sum(int((ids >= 0).sum()) for ids in self.label_ids)

    def label_counts(self) -> np.ndarray:
        """Examples per label id."""
        counts = np.zeros(len(self.vocab), dtype=np.int64)
        for ids in self.label_ids:
            counts += np.bincount(ids[ids >= 0], minlength=len(self.vocab))
        return counts

    def frames(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The labelled frames (T, D) of utterance ``i`` and their label ids (T,)."""
        ids = self.label_ids[i]
        feats = self.loader[self.utts[i]]
        if len(feats) < len(ids):
            raise InputError(f"{len(feats)} frames, {len(ids)} when first read: the features "
                             "changed during the run", path=self.loader.data.path /
                             "feats.scp", key=self.utts[i])
        feats = feats[:len(ids)]
        keep = ids >= 0
        return (feats, ids) if keep.all() else (feats[keep], ids[keep])

    def buffers(self, order: Iterable[int], size: int,
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The labelled frames of the utterances ``order``, ``size`` at a time (the last
        buffer fewer; an utterance may straddle two): ``(frames (n, D) float32, label ids
        (n,), utterance indices (n,))``.  One buffer is filled again and again: what it
        yields is valid until the next."""
        size = max(1, min(size, self.num_examples))
        x = np.empty((size, self.dim), dtype=np.float32)
        y = np.empty(size, dtype=np.int32)
        utt = np.empty(size, dtype=np.int32)
        n = 0
        for i in order:
            feats, ids = self.frames(i)
            start = 0
            while start < len(ids):
                take = min(size - n, len(ids) - start)
                x[n:n + take] = feats[start:start + take]
                y[n:n + take] = ids[start:start + take]
                utt[n:n + take] = i
                n += take
                start += take
                if n == size:
                    yield x, y, utt
                    n = 0
        if n:
            yield x[:n], y[:n], utt[:n]


def phone_frames(data_dir, transform: FeatureTransform,
                 visit: Callable[[np.ndarray], None] | None = None) -> FrameSet:
    """The labelled frames of a data dir's feats.scp, checked in one pass over the features
    (labels against frame counts, NaN), which are not kept: ``visit`` sees each
    utterance's labelled frames (T, D) in turn."""
    data = DataDir(data_dir)
    if not data.has("feats.scp"):
        raise InputError("the phone probe needs frame-level features (feats.scp)", path=data.path)
    labels = frame_labels(data)
    loader = FeatureLoader(data, transform)
    utts, counts = match_utterances(labels.utts, loader.utterances(), labels.path,
                                    data.path / "feats.scp")
    fitted = []
    trimmed = unlabelled = dim = 0
    for utt in utts:
        feats = loader[utt]
        line, ids = labels.utts[utt]
        ids = fit_to_frames(ids, len(feats), labels.path, line, utt)
        trimmed += len(feats) - len(ids)
        keep = ids >= 0
        unlabelled += int((~keep).sum())
        if visit is not None:
            visit(feats[:len(ids)][keep])
        fitted.append(ids)
        dim = feats.shape[1]
    labels.utts.clear()   # those without features too
    if unlabelled:
        log.warning("%s: %d frames fall in gaps of the CTM and are skipped", labels.path,
                    unlabelled)
    counts.update(trimmed_frames=trimmed, unlabelled_frames=unlabelled)
    vocab, fitted = _used_labels(labels.vocab, fitted)
    return FrameSet(str(data.path), loader, utts, fitted, vocab,
                    f"feats.scp frames ({labels.name})", dim, counts)


def _used_labels(vocab: list[str], seqs: list[np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """The labels that the kept frames use, in order of first appearance, and ``seqs``'
    ids into them (the file's other labels, e.g. of utterances without features or of
    trimmed frames, are no class of the probe)."""
    seen = np.zeros(len(vocab), dtype=bool)
    order: list[int] = []
    for ids in seqs:
        used, first = np.unique(ids[ids >= 0], return_index=True)
        new = used[np.argsort(first, kind="stable")]
        new = new[~seen[new]]
        seen[new] = True
        order.extend(new.tolist())
    if order == list(range(len(vocab))):
        return vocab, seqs
    remap = np.full(len(vocab) + 1, -1, dtype=np.int32)   # remap[-1]: unlabelled stays -1
    remap[order] = np.arange(len(order), dtype=np.int32)
    return [vocab[i] for i in order], [remap[ids] for ids in seqs]


def phone_set(data_dir, transform: FeatureTransform) -> ProbeSet:
    """One example per labelled frame of a data dir's feats.scp, all in memory."""
    xs: list[np.ndarray] = []
    frames = phone_frames(data_dir, transform, xs.append)
    ys = [ids[ids >= 0] for ids in frames.label_ids]
    x = np.concatenate(xs).astype(np.float32, copy=False)   # match_utterances: not empty
    del xs
    return ProbeSet(frames.path, x, np.concatenate(ys).astype(np.int64), frames.vocab,
                    frames.source, frames.utts,
                    np.repeat(np.arange(frames.num_utts), [len(y) for y in ys]),
                    frames.counts)


def feature_size(data_dir, transform: FeatureTransform) -> tuple[int, int]:
    """(frames, dim) of a data dir's feats.scp as read with ``transform``, before loading
    it: frames from utt2num_frames or else the archives' matrix headers; dim from its
    first utterance."""
    loader = FeatureLoader(DataDir(data_dir), transform)
    utts = loader.utterances()
    if not utts:
        raise InputError("no utterances", path=loader.data.path / "feats.scp")
    frames = 0
    for utt in utts:
        n = loader.num_frames.get(utt)
        if n is None:
            n = header_rows(loader.feats[utt])
        if n is None:   # a pipe, a range, a format without a header we read: load it
            n = len(loader[utt])
        frames += n
    return frames, loader[utts[0]].shape[1]


def header_rows(rxfilename: str) -> int | None:
    """The rows of the Kaldi binary matrix at ``<ark>:<offset>`` from its header alone
    (float, double or compressed), or None where there is no such header to read."""
    ark, sep, offset = rxfilename.rpartition(":")
    if not sep or not offset.isdigit() or ark.strip().endswith("|"):
        return None
    try:
        with open(ark, "rb") as f:
            f.seek(int(offset))
            head = f.read(24)
    except OSError:
        return None
    token = head[2:6]
    if head[:2] != b"\0B":
        return None
    if token in (b"FM \4", b"DM \4"):
        return struct.unpack("<i", head[6:10])[0]
    if token[:3] == b"CM " or token in (b"CM2 ", b"CM3 "):   # min, range, rows, cols
        start = 5 if token[:3] == b"CM " else 6
        return struct.unpack("<i", head[start + 8:start + 12])[0]
    return None


def utterance_vectors(data: DataDir, transform: FeatureTransform,
                      ) -> tuple[list[str], np.ndarray, str]:
    """``embedding.scp`` as is, else feats.scp mean-pooled over frames (after CMVN and
    deltas when asked)."""
    if data.has("embedding.scp"):
        if transform != FeatureTransform():
            log.warning("%s: CMVN and deltas do not apply to embedding.scp; used as is",
                        data.path)
        table = data.table("embedding.scp")
        vecs = [read_embedding(v, data.path / "embedding.scp", u) for u, v in table.items()]
        source = "embedding.scp"
    elif data.has("feats.scp"):
        loader = FeatureLoader(data, transform)
        table = loader.feats
        vecs = [loader[u].mean(axis=0) for u in table]
        source = "feats.scp mean-pooled"
    else:
        raise InputError("no feats.scp or embedding.scp", path=data.path)
    if not vecs:
        raise InputError("no utterances", path=data.path / source.split()[0])
    dims = sorted({v.shape[0] for v in vecs})
    if len(dims) != 1:
        raise InputError(f"vectors of different dimensions {dims}",
                         path=data.path / source.split()[0])
    return list(table), np.stack(vecs).astype(np.float32), source


def utterance_set(data_dir, task: str, transform: FeatureTransform) -> ProbeSet:
    """One example per labelled utterance: speaker (utt2spk) or language (utt2lang)."""
    data = DataDir(data_dir)
    table = {"speaker": "utt2spk", "language": "utt2lang"}[task]
    if not data.has(table):
        raise InputError(f"no {table}: the {task} probe needs its labels", path=data.path)
    labels = data.table(table)
    utts, x, source = utterance_vectors(data, transform)
    keep, counts = match_utterances(labels, utts, data.path / table,
                                    data.path / source.split()[0])
    pos = {u: i for i, u in enumerate(utts)}
    vocab = _Vocab()
    ids = vocab.encode([labels[u] for u in keep])
    return ProbeSet(str(data.path), x[[pos[u] for u in keep]], ids, vocab.words(), source,
                    keep, np.arange(len(keep)), counts)


def check_held_out(train: ProbeSet, test: ProbeSet) -> None:
    """A probe is tested on held-out utterances: none may also be a training one."""
    shared = set(train.utts) & set(test.utts)
    if shared:
        raise InputError(f"{len(shared)} utterances occur in both training ({train.path}) "
                         f"and test ({examples(shared)}): test on held-out utterances",
                         path=test.path)


def check_speakers(task: str, train_dir, test_dir) -> None:
    """speaker: every test speaker occurs in training (held-out utterances);
    language: no test speaker occurs in training (held-out speakers)."""
    train = set(DataDir(train_dir).utt2spk.values())
    test = set(DataDir(test_dir).utt2spk.values())
    if task == "speaker" and test - train:
        raise InputError(f"{len(test - train)} test speakers do not occur in training "
                         f"({examples(test - train)}): the speaker probe classifies held-out "
                         "utterances of the training speakers",
                         path=DataDir(test_dir).path / "utt2spk")
    if task == "language" and test & train:
        raise InputError(f"{len(test & train)} speakers occur in both training and test "
                         f"({examples(test & train)}): the language probe needs held-out "
                         "speakers", path=DataDir(test_dir).path / "utt2spk")


def utterance_speakers(path, utts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """A data dir's speakers (utt2spk) and the index among them of each of ``utts``:
    the unit the accuracy's confidence interval resamples."""
    data_dir = DataDir(path)
    utt2spk = data_dir.utt2spk
    missing = [u for u in utts if u not in utt2spk]
    if missing:
        raise InputError(f"{len(missing)} utterances have no speaker ({examples(missing)})",
                         path=data_dir.path / "utt2spk")
    return speaker_index([utt2spk[u] for u in utts])


def example_speakers(data: ProbeSet) -> tuple[list[str], np.ndarray]:
    """The set's speakers and each example's index among them, that of its utterance."""
    names, utt_speaker = utterance_speakers(data.path, data.utts)
    return names, utt_speaker[data.example_utt]


def load_set(data_dir, task: str, transform: FeatureTransform) -> ProbeSet:
    if task == "phone":
        return phone_set(data_dir, transform)
    return utterance_set(data_dir, task, transform)
