"""Speaker-verification trials in Kaldi's format: ``<enroll> <test> target|nontarget``."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from speechssl.data.table import PathLike
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

_LABELS = {"target": True, "nontarget": False}


@dataclass(frozen=True)
class Trial:
    enroll: str
    test: str
    target: bool


def read_trials(path: PathLike) -> list[Trial]:
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    trials = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if len(fields) != 3:
                raise InputError(f"expected '<enroll> <test> target|nontarget', "
                                 f"got {len(fields)} fields", path=path, line=lineno)
            if fields[2] not in _LABELS:
                raise InputError(f"label must be target or nontarget, got '{fields[2]}'",
                                 path=path, line=lineno, key=fields[0])
            trials.append(Trial(fields[0], fields[1], _LABELS[fields[2]]))
    if not trials:
        raise InputError("no trials", path=path)
    return trials


def write_trials(path: PathLike, trials: Iterable[Trial]) -> None:
    with atomic_write(path) as f:
        for t in trials:
            f.write(f"{t.enroll} {t.test} {'target' if t.target else 'nontarget'}\n")


def check_trials_cover(trials: list[Trial], known: Collection[str], path: PathLike,
                       what: str = "utterances") -> None:
    """Every enrollment and test id must be in ``known``; else list how many and a few."""
    missing = sorted({x for t in trials for x in (t.enroll, t.test)} - set(known))
    if missing:
        examples = ", ".join(missing[:5])
        raise InputError(f"{len(missing)} ids in the trials are not among the {what} "
                         f"(e.g. {examples})", path=path)
