"""Load the features of a data dir the way models consume them: ``feats.scp`` with the
speaker's CMVN from ``cmvn.scp`` applied (means, optionally variances) and deltas added,
like Kaldi's ``apply-cmvn --utt2spk ... | add-deltas`` pipelines; and the vectors of an
``embedding.scp`` (:func:`read_embedding`).  Both refuse NaN and infinite values, naming
the table and the utterance, before they reach a model or a metric."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from speechssl.data.ark import read_matrix
from speechssl.data.datadir import DataDir
from speechssl.data.table import PathLike
from speechssl.errors import InputError
from speechssl.features import add_deltas, apply_cmvn


@dataclass(frozen=True)
class FeatureTransform:
    """What to do to raw features; the defaults leave them as stored."""

    cmvn: bool = False        # subtract the speaker's mean (needs cmvn.scp)
    norm_vars: bool = False   # also divide by the speaker's standard deviation
    delta_order: int = 0      # 2 gives MFCC 13 -> 39


def read_embedding(rxfilename: str, scp: PathLike, utt: str) -> np.ndarray:
    """The (D,) vector of one ``embedding.scp`` entry; every evaluation that reads
    embeddings comes through here, so a NaN is reported where it is, not as a failure of
    whatever it would poison downstream (a score, an EER, a probe's loss)."""
    vector = read_matrix(rxfilename, scp, utt).ravel()
    where = first_non_finite(vector)
    if where is not None:
        raise InputError(f"embedding ({rxfilename}) contains NaN or infinite values "
                         f"({vector[where]} at dim {where[0]})", path=scp, key=utt)
    return vector


def first_non_finite(array: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first NaN or infinite value of ``array``, or None if all are finite.

    >>> first_non_finite(np.array([[0.0, 1.0], [np.nan, np.inf]]))
    (1, 0)
    """
    bad = ~np.isfinite(array)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(bad.argmax()), array.shape))


def read_features(rxfilename: str, scp: PathLike, utt: str,
                  num_frames: int | None = None) -> np.ndarray:
    """The (T, D) matrix of one ``feats.scp`` entry, checked: every value finite and, when
    ``num_frames`` (the utterance's utt2num_frames) is given, T equal to it.  Every reader
    of features comes through here (or :class:`FeatureLoader`), so a NaN is reported where
    it is and not as a NaN loss, NaN CMVN stats or a meaningless score; and an entry
    pointing at another utterance's matrix shows as a frame count that does not match."""
    feats = read_matrix(rxfilename, scp, utt)
    if feats.ndim != 2:
        raise InputError(f"expected a (frames, dim) matrix at {rxfilename}, got shape "
                         f"{feats.shape}", path=scp, key=utt)
    if num_frames is not None and feats.shape[0] != num_frames:
        raise InputError(f"{rxfilename} holds {feats.shape[0]} frames, utt2num_frames says "
                         f"{num_frames} (an offset of another utterance, or a stale "
                         "utt2num_frames?)", path=scp, key=utt)
    where = first_non_finite(feats)
    if where is not None:
        raise InputError(f"features contain NaN or infinite values ({feats[where]} at frame "
                         f"{where[0]}, dim {where[1]} of {rxfilename})", path=scp, key=utt)
    return feats


def utterance_frames(data: DataDir) -> dict[str, int]:
    """utt2num_frames as ints, empty if the data dir has none: the frame counts that
    :func:`read_features` checks what it reads against."""
    if not data.has("utt2num_frames"):
        return {}
    return {utt: int(n) for utt, n in data.table("utt2num_frames").items()}


class FeatureLoader:
    """Random and sequential access to transformed features, e.g.
    ``FeatureLoader("data/test_mfcc", FeatureTransform(cmvn=True, delta_order=2))[utt]``
    gives the (T, 39) matrix of an utterance."""

    def __init__(self, data_dir: DataDir | PathLike,
                 transform: FeatureTransform = FeatureTransform()):
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
        self.transform = transform
        self.feats = self.data.table("feats.scp")
        self.num_frames = utterance_frames(self.data)
        self._stats: dict[str, np.ndarray] = {}
        if transform.cmvn or transform.norm_vars:
            self._cmvn = self.data.table("cmvn.scp")

    def utterances(self) -> list[str]:
        return list(self.feats)

    def _speaker_stats(self, utt: str) -> np.ndarray:
        spk = self.data.utt2spk.get(utt)
        if spk is None or spk not in self._cmvn:
            raise InputError("no CMVN stats for this utterance's speaker "
                             f"('{spk}'); rerun steps/compute_cmvn_stats.sh",
                             path=self.data.path / "cmvn.scp", key=utt)
        if spk not in self._stats:
            stats = read_matrix(self._cmvn[spk], self.data.path / "cmvn.scp", spk)
            # NaN stats (written before compute_cmvn_stats refused NaN features) would
            # turn every utterance of the speaker into NaN, not only the bad one.
            if first_non_finite(stats) is not None:
                raise InputError("CMVN stats contain NaN or infinite values; rerun "
                                 "steps/compute_cmvn_stats.sh", path=self.data.path /
                                 "cmvn.scp", key=spk)
            self._stats[spk] = stats
        return self._stats[spk]

    def __getitem__(self, utt: str) -> np.ndarray:
        if utt not in self.feats:
            raise InputError("utterance has no features", path=self.data.path / "feats.scp",
                             key=utt)
        feats = read_features(self.feats[utt], self.data.path / "feats.scp", utt,
                              self.num_frames.get(utt))
        t = self.transform
        if t.cmvn or t.norm_vars:
            feats = apply_cmvn(feats, self._speaker_stats(utt), norm_vars=t.norm_vars)
        if t.delta_order > 0:
            feats = add_deltas(feats, order=t.delta_order)
        return feats.astype(np.float32, copy=False)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for utt in self.feats:
            yield utt, self[utt]

    def __len__(self) -> int:
        return len(self.feats)
