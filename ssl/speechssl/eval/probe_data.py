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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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
    def labels(self) -> np.ndarray:
        return np.asarray(self.vocab, dtype=object)[self.label_ids]


class _Vocab:
    """Label strings to ids in order of first appearance."""

    def __init__(self):
        self.ids: dict[str, int] = {}

    def encode(self, labels: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.ids.setdefault(a, len(self.ids)) for a in labels),
                           dtype=np.int64, count=len(labels))

    def words(self) -> list[str]:
        return list(self.ids)


# ---------------------------------------------------------------- frame labels

def read_phone_ali(path) -> dict[str, tuple[int, list[str]]]:
    """``<utt> <label>...`` lines as ``utt -> (line number, labels)``; any order."""
    ali: dict[str, tuple[int, list[str]]] = {}
    for lineno, utt, rest in iter_table(path, min_fields=2):
        if utt in ali:
            raise InputError("duplicate key", path=path, line=lineno, key=utt)
        ali[utt] = (lineno, rest.split())
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


def frame_labels(data: DataDir) -> tuple[str, dict[str, tuple[int | None, list[str | None]]]]:
    """The frame labels of a data dir: ``(file name, utt -> (line or None, labels))``."""
    if data.has("phone_ali"):
        return "phone_ali", dict(read_phone_ali(data.path / "phone_ali"))
    if data.has("phones.ctm"):
        shift = data.frame_shift() if data.has("frame_shift") else DEFAULT_FRAME_SHIFT
        ctm = read_ctm(data.path / "phones.ctm")
        out = {}
        for utt, entries in ctm.items():
            if len({e.channel for e in entries}) > 1:
                raise InputError("an utterance with several channels; one is expected",
                                 path=data.path / "phones.ctm", key=utt)
            out[utt] = (None, ctm_frame_labels(entries, shift))
        return "phones.ctm", out
    raise InputError("no frame labels: need phone_ali (one label per frame) or phones.ctm",
                     path=data.path)


def fit_to_frames(labels: list, num_frames: int, path, line: int | None, utt: str) -> list:
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

def phone_set(data_dir, transform: FeatureTransform) -> ProbeSet:
    """One example per labelled frame of a data dir's feats.scp."""
    data = DataDir(data_dir)
    if not data.has("feats.scp"):
        raise InputError("the phone probe needs frame-level features (feats.scp)", path=data.path)
    name, labels = frame_labels(data)
    loader = FeatureLoader(data, transform)
    utts, counts = match_utterances(labels, loader.utterances(), data.path / name,
                                    data.path / "feats.scp")
    vocab, xs, ys = _Vocab(), [], []
    trimmed = unlabelled = 0
    for utt in utts:
        feats = loader[utt]
        line, seq = labels[utt]
        seq = fit_to_frames(seq, len(feats), data.path / name, line, utt)
        trimmed += len(feats) - len(seq)
        keep = np.array([a is not None for a in seq], dtype=bool)
        unlabelled += int((~keep).sum())
        xs.append(feats[:len(seq)][keep])
        ys.append(vocab.encode([a for a in seq if a is not None]))
    if unlabelled:
        log.warning("%s: %d frames fall in gaps of the CTM and are skipped", data.path / name,
                    unlabelled)
    counts.update(trimmed_frames=trimmed, unlabelled_frames=unlabelled)
    frames_per_utt = [len(y) for y in ys]
    return ProbeSet(str(data.path), np.concatenate(xs).astype(np.float32, copy=False),
                    np.concatenate(ys), vocab.words(), f"feats.scp frames ({name})",
                    utts, np.repeat(np.arange(len(utts)), frames_per_utt), counts)


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


def example_speakers(data: ProbeSet) -> tuple[list[str], np.ndarray]:
    """The set's speakers (utt2spk) and each example's index among them, that of its
    utterance: the unit the accuracy's confidence interval resamples."""
    data_dir = DataDir(data.path)
    utt2spk = data_dir.utt2spk
    missing = [u for u in data.utts if u not in utt2spk]
    if missing:
        raise InputError(f"{len(missing)} utterances have no speaker ({examples(missing)})",
                         path=data_dir.path / "utt2spk")
    names, utt_speaker = speaker_index([utt2spk[u] for u in data.utts])
    return names, utt_speaker[data.example_utt]


def load_set(data_dir, task: str, transform: FeatureTransform) -> ProbeSet:
    if task == "phone":
        return phone_set(data_dir, transform)
    return utterance_set(data_dir, task, transform)
