"""CTM alignments (NIST / Kaldi): ``<rec> <channel> <start> <duration> <token> [<conf>]``.

Word and phone time alignments of the embedded corpus and of real corpora are stored as
CTM so that Kaldi's scoring tools and ours read the same file.  Times are in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from speechssl.data.table import PathLike
from speechssl.errors import InputError
from speechssl.fileio import atomic_write


@dataclass(frozen=True)
class CtmEntry:
    rec: str
    channel: str
    start: float
    duration: float
    token: str
    confidence: float | None = None

    @property
    def end(self) -> float:
        return self.start + self.duration


def _parse_ctm_line(fields: list[str], path: PathLike, lineno: int) -> CtmEntry:
    if len(fields) not in (5, 6):
        raise InputError(f"expected 5 or 6 fields, got {len(fields)}", path=path, line=lineno)
    try:
        numbers = [float(x) for x in fields[2:4]] + [float(x) for x in fields[5:]]
    except ValueError:
        raise InputError("start, duration and confidence must be numbers",
                         path=path, line=lineno, key=fields[0]) from None
    if not all(math.isfinite(x) for x in numbers) or numbers[0] < 0 or numbers[1] < 0:
        raise InputError("start and duration must be finite and non-negative",
                         path=path, line=lineno, key=fields[0])
    conf = numbers[2] if len(numbers) == 3 else None
    return CtmEntry(fields[0], fields[1], numbers[0], numbers[1], fields[4], conf)


def read_ctm(path: PathLike) -> dict[str, list[CtmEntry]]:
    """Read a CTM file into ``rec -> entries sorted by start time``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    by_rec: dict[str, list[CtmEntry]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields or fields[0].startswith(";;"):
                continue  # blank lines and NIST comments
            entry = _parse_ctm_line(fields, path, lineno)
            by_rec.setdefault(entry.rec, []).append(entry)
    for entries in by_rec.values():
        entries.sort(key=lambda e: (e.channel, e.start))
    return by_rec


def write_ctm(path: PathLike, entries: Iterable[CtmEntry]) -> None:
    """Write entries sorted by recording, channel and start time (atomically)."""
    ordered = sorted(entries, key=lambda e: (e.rec, e.channel, e.start))
    with atomic_write(path) as f:
        for e in ordered:
            conf = "" if e.confidence is None else f" {e.confidence:.3f}"
            f.write(f"{e.rec} {e.channel} {e.start:.3f} {e.duration:.3f} {e.token}{conf}\n")
