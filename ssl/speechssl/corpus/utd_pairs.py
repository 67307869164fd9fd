"""Unsupervised term discovery (UTD) pairs, as Kamper's recipes use them, turned into the
pair lists CAPC and the CAE train on (:mod:`speechssl.data.pairs`).

Input: one discovered pair per line, in 10 ms frames of the recordings (the format of
ZRTools output as Kamper distributes it, e.g. ``zs_tsonga.fdlps.0.925.pairs.v0``)::

    PT1 nchlt_tso_127f_0126 nch 326 378 nchlt_tso_131f_0405 nch 108 164
    <cluster> <file> <channel> <start> <end> <file> <channel> <start> <end>

Each term is moved into the utterance (speech region) it overlaps most and clipped to it,
as Kamper's ``strip_nonvad_from_pairs.py`` does; a term in no utterance, a pair whose terms
overlap in one file, and a pair that clips to one token are left out and counted.  Output
lines are ``<utt> <start> <end> <utt> <start> <end>`` in frames of the utterances.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from speechssl.data.table import PathLike
from speechssl.errors import InputError

Term = tuple[str, int, int]   # utterance, start frame, end frame (excluded)
Span = tuple[str, int, int]   # utterance, its first and end frame in the recording


def _parse(fields: list[str], path: Path, lineno: int) -> tuple[str, int, int, str, int, int]:
    if len(fields) != 9:
        raise InputError("expected 9 fields '<cluster> <file> <channel> <start> <end> <file> "
                         f"<channel> <start> <end>', got {len(fields)}", path=path, line=lineno)
    try:
        s1, e1, s2, e2 = (int(fields[i]) for i in (3, 4, 7, 8))
    except ValueError:
        raise InputError("start and end must be frame numbers", path=path, line=lineno,
                         key=fields[0]) from None
    if not (0 <= s1 < e1 and 0 <= s2 < e2):
        raise InputError("need 0 <= start < end for both terms", path=path, line=lineno,
                         key=fields[0])
    return fields[1], s1, e1, fields[5], s2, e2


def locate(spans: list[Span], start: int, end: int) -> Term | None:
    """The term's frames within the utterance it overlaps most, or None.

    >>> locate([("u1", 100, 150), ("u2", 160, 300)], 140, 200)
    ('u2', 0, 40)
    """
    best, best_overlap = None, 0
    for utt, first, last in spans:
        overlap = min(end, last) - max(start, first)
        if overlap > best_overlap:
            best, best_overlap = (utt, max(start, first) - first, min(end, last) - first), overlap
    return best


def utd_pair_list(path: PathLike, spans_by_rec: dict[str, list[Span]],
                  ) -> tuple[list[tuple[Term, Term]], Counter]:
    """The pairs of ``path`` whose terms both lie in recordings of ``spans_by_rec`` (the
    utterances of a set), in utterance frames, and the count of those of them left out,
    by reason."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such UTD pair file", path=path)
    pairs, dropped = [], Counter()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.split():
                continue
            rec1, s1, e1, rec2, s2, e2 = _parse(line.split(), path, lineno)
            if rec1 not in spans_by_rec or rec2 not in spans_by_rec:
                continue  # a pair of another set (or across sets)
            if rec1 == rec2 and s1 < e2 and s2 < e1:
                dropped["pairs of overlapping terms"] += 1
            else:
                x, y = locate(spans_by_rec[rec1], s1, e1), locate(spans_by_rec[rec2], s2, e2)
                if x is None or y is None:
                    dropped["pairs with a term in no utterance"] += 1
                elif x == y:
                    dropped["pairs whose terms clip to one token"] += 1
                else:
                    pairs.append((x, y))
    return pairs, dropped
