"""Kaldi data directories: the contract between every step of a recipe.

A data dir is a folder of C-sorted ``key value`` tables.  Which table is keyed by what,
and how many fields its lines have, is declared once in :data:`TABLES`; validation,
fixing, splitting and subsetting are all driven by that declaration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from speechssl.data.table import PathLike, read_table
from speechssl.errors import InputError


@dataclass(frozen=True)
class TableSpec:
    keyed_by: str            # "utt", "spk" or "rec"
    min_fields: int = 2
    max_fields: int | None = None
    value_kind: str = "str"  # "str", "float", "int", "positive_float"


TABLES: dict[str, TableSpec] = {
    "utt2spk": TableSpec("utt", 2, 2),
    "spk2utt": TableSpec("spk", 2),
    "wav.scp": TableSpec("rec", 2),
    "segments": TableSpec("utt", 4, 4),
    "reco2file_and_channel": TableSpec("rec", 3, 3),
    "text": TableSpec("utt", 1),
    "feats.scp": TableSpec("utt", 2, 2),
    "embedding.scp": TableSpec("utt", 2, 2),   # one vector per utterance (extract_ssl.sh)
    "vad.scp": TableSpec("utt", 2, 2),
    "utt2num_frames": TableSpec("utt", 2, 2, "int"),
    "utt2dur": TableSpec("utt", 2, 2, "positive_float"),
    "utt2lang": TableSpec("utt", 2, 2),
    "utt2uniq": TableSpec("utt", 2, 2),
    "utt2gender": TableSpec("utt", 2, 2),
    "spk2gender": TableSpec("spk", 2, 2),
    "cmvn.scp": TableSpec("spk", 2, 2),
    "reco2dur": TableSpec("rec", 2, 2, "positive_float"),
}



def _check_value(name: str, spec: TableSpec, path: Path, table: dict[str, str]) -> None:
    if spec.value_kind == "str":
        return
    for lineno, (key, value) in enumerate(table.items(), start=1):
        try:
            number = int(value) if spec.value_kind == "int" else float(value)
        except ValueError:
            raise InputError(f"{name} value must be a number, got '{value}'",
                             path=path, line=lineno, key=key) from None
        if not math.isfinite(number) or number < 0 or (
                spec.value_kind == "positive_float" and number <= 0):
            raise InputError(f"{name} value out of range: '{value}'",
                             path=path, line=lineno, key=key)


def _check_segments(path: Path, segments: dict[str, str]) -> None:
    for lineno, (utt, value) in enumerate(segments.items(), start=1):
        rec, start, end = value.split()
        try:
            t0, t1 = float(start), float(end)
        except ValueError:
            raise InputError(f"start and end must be numbers, got '{start} {end}' "
                             "(format: <utt> <rec> <start> <end>)",
                             path=path, line=lineno, key=utt) from None
        if not (math.isfinite(t0) and math.isfinite(t1)) or t0 < 0 or t1 <= t0:
            raise InputError(f"need 0 <= start < end, got '{start} {end}'",
                             path=path, line=lineno, key=utt)


def spk2utt_of(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """spk2utt from utt2spk, speakers and their utterances in C order (every data dir's
    spk2utt is made by this, never written by hand).

    >>> spk2utt_of({"b-2": "b", "a-1": "a", "b-1": "b"})
    {'a': ['a-1'], 'b': ['b-1', 'b-2']}
    """
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return dict(sorted(spk2utt.items()))


class DataDir:
    """A loaded Kaldi data dir.  Tables are read on first use and cached, e.g.
    ``DataDir("data/train").utt2spk["spk1-utt1"] == "spk1"``."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError("data directory does not exist", path=self.path)
        self._cache: dict[str, dict[str, str]] = {}

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def table(self, name: str) -> dict[str, str]:
        """The table ``name`` as ``key -> value``, checked for format, sorting and duplicates."""
        if name not in self._cache:
            spec = TABLES.get(name, TableSpec("utt"))
            path = self.path / name
            table = read_table(path, spec.min_fields, spec.max_fields)
            _check_value(name, spec, path, table)
            if name == "segments":
                _check_segments(path, table)
            self._cache[name] = table
        return self._cache[name]

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.table("utt2spk")

    @property
    def utts(self) -> list[str]:
        return list(self.utt2spk)

    def spk2utt(self) -> dict[str, list[str]]:
        """Built from utt2spk (the authority); spk2utt on disk is checked against it."""
        return spk2utt_of(self.utt2spk)

    def utt2rec(self) -> dict[str, str]:
        if self.has("segments"):
            return {utt: v.split()[0] for utt, v in self.table("segments").items()}
        return {utt: utt for utt in self.utt2spk}

    def frame_shift(self) -> float:
        path = self.path / "frame_shift"
        try:
            return float(path.read_text().strip())
        except FileNotFoundError:
            raise InputError("no such file (run steps/make_fbank.sh first)", path=path) from None
        except ValueError:
            raise InputError("expected one number (seconds)", path=path, line=1) from None

    def present_tables(self) -> list[str]:
        return [name for name in TABLES if self.has(name)]

    def ids_of(self, keyed_by: str) -> set[str]:
        if keyed_by == "utt":
            return set(self.utt2spk)
        if keyed_by == "spk":
            return set(self.utt2spk.values())
        return set(self.utt2rec().values())
