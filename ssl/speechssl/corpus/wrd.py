"""Word alignments in the ZeroSpeech 2015 ``.wrd`` format, as Kamper's AWE recipes use them.

One entry per line, ``<file> <start> <end> <label>``, times in seconds from the start of
``<file>.wav``::

    s0101a 32.217 32.554 okay              (Buckeye forced alignments, with SIL and SPN)
    nchlt_tso_001m_0007 0.77 1.27 ndlela   (ZeroSpeech 2015 Xitsonga, words only)

Times are kept as whole milliseconds (the files hold 2 or 3 decimals), so that "this word
starts where the previous one ends" is an exact comparison, as in Kamper's scripts.

Checks, each an error naming the file and line: four fields, finite times, end >= start,
no ``_`` in a label (it separates the fields of same-different keys), and no two entries of
one file overlapping.  A negative start (the Buckeye transcriptions have s1603b starting at
-1.0 s) is clipped to 0 and counted: the audio before 0 does not exist, the rest of the entry
does.  An entry that ends at or before 0 is an error.

>>> to_ms("32.217"), to_ms("0.77"), to_ms("-1.0")
(32217, 770, -1000)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from speechssl.data.table import PathLike
from speechssl.errors import InputError


@dataclass(frozen=True)
class WrdEntry:
    rec: str          # the file the times refer to (no extension)
    start_ms: int
    end_ms: int
    label: str
    line: int         # line of the alignment file, for error messages


@dataclass
class WrdAlignments:
    path: Path
    by_rec: dict[str, list[WrdEntry]]                       # entries sorted by start
    clipped: list[WrdEntry] = field(default_factory=list)   # negative starts set to 0


def to_ms(text: str) -> int:
    """Seconds as text -> whole milliseconds (rounded)."""
    return round(float(text) * 1000)


def _parse_line(fields: list[str], path: Path, lineno: int) -> tuple[WrdEntry, bool]:
    """One entry, and whether its start was clipped to 0."""
    if len(fields) != 4:
        raise InputError(f"expected 4 fields '<file> <start> <end> <label>', got "
                         f"{len(fields)}", path=path, line=lineno)
    rec, start, end, label = fields
    try:
        numbers = float(start), float(end)
    except ValueError:
        raise InputError(f"start and end must be seconds, got '{start} {end}'",
                         path=path, line=lineno, key=rec) from None
    if not all(math.isfinite(x) for x in numbers) or numbers[1] < numbers[0]:
        raise InputError(f"need finite times with start <= end, got '{start} {end}'",
                         path=path, line=lineno, key=rec)
    if "_" in label:
        raise InputError(f"label '{label}' contains '_', which separates the fields of "
                         "same-different keys", path=path, line=lineno, key=rec)
    start_ms, end_ms = to_ms(start), to_ms(end)
    if end_ms <= 0:
        raise InputError(f"entry ends at {end} s, at or before the start of the recording",
                         path=path, line=lineno, key=rec)
    return WrdEntry(rec, max(start_ms, 0), end_ms, label, lineno), start_ms < 0


def _check_overlaps(path: Path, entries: list[WrdEntry]) -> None:
    for before, after in zip(entries[:-1], entries[1:], strict=True):
        if after.start_ms < before.end_ms:
            raise InputError(f"starts at {after.start_ms / 1000:.3f} s, before the entry "
                             f"of line {before.line} ends ({before.end_ms / 1000:.3f} s)",
                             path=path, line=after.line, key=after.rec)


def read_wrd(path: PathLike) -> WrdAlignments:
    """All entries of a ``.wrd`` file by recording, each recording's sorted by time."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such alignment file", path=path)
    by_rec: dict[str, list[WrdEntry]] = {}
    clipped = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                fields = raw.decode("utf-8").split()
            except UnicodeDecodeError as e:
                raise InputError(f"not UTF-8 ({e.reason})", path=path, line=lineno) from None
            if not fields:
                continue
            entry, was_clipped = _parse_line(fields, path, lineno)
            by_rec.setdefault(entry.rec, []).append(entry)
            if was_clipped:
                clipped.append(entry)
    if not by_rec:
        raise InputError("alignment file has no entries", path=path)
    for entries in by_rec.values():
        entries.sort(key=lambda e: (e.start_ms, e.end_ms, e.line))
        _check_overlaps(path, entries)
    return WrdAlignments(path, by_rec, clipped)
