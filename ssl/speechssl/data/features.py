"""Load the features of a data dir the way models consume them: ``feats.scp`` with the
speaker's CMVN from ``cmvn.scp`` applied (means, optionally variances) and deltas added,
like Kaldi's ``apply-cmvn --utt2spk ... | add-deltas`` pipelines."""

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


class FeatureLoader:
    """Random and sequential access to transformed features, e.g.
    ``FeatureLoader("data/test_mfcc", FeatureTransform(cmvn=True, delta_order=2))[utt]``
    gives the (T, 39) matrix of an utterance."""

    def __init__(self, data_dir: DataDir | PathLike,
                 transform: FeatureTransform = FeatureTransform()):
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
        self.transform = transform
        self.feats = self.data.table("feats.scp")
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
            self._stats[spk] = read_matrix(self._cmvn[spk], self.data.path / "cmvn.scp", spk)
        return self._stats[spk]

    def __getitem__(self, utt: str) -> np.ndarray:
        if utt not in self.feats:
            raise InputError("utterance has no features", path=self.data.path / "feats.scp",
                             key=utt)
        feats = read_matrix(self.feats[utt], self.data.path / "feats.scp", utt)
        if not np.all(np.isfinite(feats)):
            raise InputError("features contain NaN or infinite values",
                             path=self.data.path / "feats.scp", key=utt)
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
