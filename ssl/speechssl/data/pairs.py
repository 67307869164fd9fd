"""Pairs of tokens of the same word, for correspondence training (CAPC, the CAE).

Pairs come from a word alignment (``words.ctm``: every pair of tokens of one word type,
as van Staden & Kamper do with ground-truth alignments) or from a pair list, e.g. the
output of unsupervised term discovery.  A pair list has one pair per line::

    <utt> <start-frame> <end-frame> <utt> <start-frame> <end-frame>

with frames at the data dir's frame shift, the end frame excluded (``start:end`` in
Python).  CTM times become frames by rounding half up, so a word from 0.125 s to 0.6 s at
10 ms is frames 13..59 (``start=13, end=60``).  Pairs are stored once; training uses each
in both directions (:meth:`PairSet.directed`).

>>> time_to_frame(0.125, 0.01), time_to_frame(0.6, 0.01)
(13, 60)
>>> is_word("<sil>"), is_word("[noise]"), is_word("sil"), is_word("window")
(False, False, False, True)
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechssl.data.ctm import CtmEntry, read_ctm
from speechssl.data.datadir import DataDir
from speechssl.data.table import PathLike
from speechssl.errors import InputError

# Non-speech tokens of common alignments besides the <...> and [...] forms
# (<sil>, <unk>, <eps>, [noise], [laughter]); they never form pairs.
NON_WORDS = frozenset({"sil", "SIL", "sp", "SP", "spn", "SPN", "nsn", "NSN"})
# A CTM word may end a little after the last feature frame (rounding): clip up to this.
END_TOLERANCE_FRAMES = 3


def is_word(token: str) -> bool:
    """False for silence, noise and other non-word symbols of an alignment."""
    bracketed = (token[:1], token[-1:]) in (("<", ">"), ("[", "]"))
    return not bracketed and token not in NON_WORDS


def time_to_frame(seconds: float, frame_shift: float) -> int:
    """The frame index nearest to ``seconds``, halves rounded up.  The division is
    rounded to 1e-6 first, so 0.125 / 0.01 = 12.4999... still gives 13."""
    return math.floor(round(seconds / frame_shift, 6) + 0.5)


@dataclass(frozen=True)
class Token:
    """A stretch of frames ``start:end`` of an utterance, e.g. one spoken word."""

    utt: str
    start: int        # first frame
    end: int          # one past the last frame
    word: str = ""    # the word type; "" for tokens from a pair list

    @property
    def num_frames(self) -> int:
        return self.end - self.start

    @property
    def key(self) -> str:
        """``word_utt_start-end`` (Kamper's segment keys), ``utt_start-end`` without a word."""
        span = f"{self.utt}_{self.start:06d}-{self.end:06d}"
        return f"{self.word}_{span}" if self.word else span


@dataclass
class PairSet:
    """Tokens and the pairs between them (token indices, each unordered pair once)."""

    tokens: list[Token]
    pairs: np.ndarray                                     # (P, 2) int64
    skipped: Counter = field(default_factory=Counter)     # reason -> count

    def directed(self) -> np.ndarray:
        """Every pair in both directions, ``(x, y)`` then ``(y, x)``: ``(2P, 2)``."""
        return np.concatenate([self.pairs, self.pairs[:, ::-1]]).astype(np.int64)

    def describe(self) -> str:
        types = len({t.word for t in self.tokens})
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return (f"{len(self.pairs)} pairs of {len(self.tokens)} tokens, {types} word types"
                + (f"; skipped: {skipped}" if skipped else ""))


def load_pairs(data: DataDir, utt_frames: dict[str, int], source: str = "words.ctm",
               min_frames: int = 50, min_chars: int = 5, max_pairs_per_type: int = 0,
               seed: int = 0) -> PairSet:
    """The pairs of a data dir whose utterances have ``utt_frames`` feature frames.

    ``source``: a file in the data dir or a path; a ``.ctm`` file gives all same-word
    pairs of its tokens of at least ``min_frames`` frames and ``min_chars`` characters
    (at most ``max_pairs_per_type`` per word, chosen with ``seed``; 0: all); any other
    file is read as a pair list (no length filters: the list is taken as given).
    """
    path = data.path / source if (data.path / source).is_file() else Path(source)
    if path.suffix != ".ctm":
        tokens, pairs = read_pair_list(path, utt_frames)
        return PairSet(tokens, pairs)
    tokens, skipped = ctm_tokens(path, data, utt_frames, min_frames, min_chars)
    tokens, alone = _drop_unpaired(tokens)
    if alone:
        skipped["tokens that are the only one of their word"] += alone
    pairs = same_word_pairs(tokens, max_pairs_per_type, seed)
    return PairSet(tokens, pairs, skipped)


def ctm_tokens(ctm: PathLike, data: DataDir, utt_frames: dict[str, int], min_frames: int,
               min_chars: int) -> tuple[list[Token], Counter]:
    """Word tokens of a CTM as frame spans, with the count of entries left out by reason."""
    shift = data.frame_shift()
    segments = _segments_by_rec(data)
    tokens, skipped = [], Counter()
    for entries in read_ctm(ctm).values():
        for entry in entries:
            token, why = _entry_token(entry, shift, utt_frames, segments)
            if why is None and token.num_frames < min_frames:
                why = f"tokens shorter than {min_frames} frames"
            if why is None and len(token.word) < min_chars:
                why = f"tokens of fewer than {min_chars} characters"
            if why is None:
                tokens.append(token)
            else:
                skipped[why] += 1
    return tokens, skipped


def _entry_token(entry: CtmEntry, shift: float, utt_frames: dict[str, int],
                 segments: dict[str, list[tuple[float, float, str]]],
                 ) -> tuple[Token | None, str | None]:
    """The token of one CTM entry, or None and why it is left out."""
    if not is_word(entry.token):
        return None, "non-word entries (silence, noise)"
    utt, offset = _utterance_of(entry, utt_frames, segments)
    if utt is None:
        return None, "entries of utterances not in the data dir"
    start = time_to_frame(entry.start - offset, shift)
    end = time_to_frame(entry.end - offset, shift)
    if end > utt_frames[utt] + END_TOLERANCE_FRAMES or start >= utt_frames[utt]:
        return None, "entries past the end of the features"
    return Token(utt, start, min(end, utt_frames[utt]), entry.token), None


def _segments_by_rec(data: DataDir) -> dict[str, list[tuple[float, float, str]]]:
    """``rec -> [(start, end, utt)]`` from ``segments`` (empty without one)."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    if data.has("segments"):
        for utt, value in data.table("segments").items():
            rec, start, end = value.split()
            out.setdefault(rec, []).append((float(start), float(end), utt))
    return out


def _utterance_of(entry: CtmEntry, utt_frames: dict[str, int],
                  segments: dict[str, list[tuple[float, float, str]]],
                  ) -> tuple[str | None, float]:
    """The utterance a CTM entry lies in and that utterance's start time in the entry's
    timeline: CTMs are keyed by utterance, or by recording when there are segments."""
    if entry.rec in utt_frames:
        return entry.rec, 0.0
    for start, end, utt in segments.get(entry.rec, ()):
        if start <= entry.start and entry.end <= end and utt in utt_frames:
            return utt, start
    return None, 0.0


def _drop_unpaired(tokens: list[Token]) -> tuple[list[Token], int]:
    """Tokens whose word has at least one other token, and how many were dropped."""
    counts = Counter(t.word for t in tokens)
    kept = [t for t in tokens if counts[t.word] > 1]
    return kept, len(tokens) - len(kept)


def same_word_pairs(tokens: list[Token], max_pairs_per_type: int = 0, seed: int = 0,
                    ) -> np.ndarray:
    """All ``N(N-1)/2`` pairs of tokens of each word type: ``(P, 2)`` token indices.

    With ``max_pairs_per_type > 0`` a word with more pairs keeps that many, chosen by a
    generator seeded with ``seed`` and the word (so one word's choice does not depend on
    the rest of the vocabulary).
    """
    by_word: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        by_word.setdefault(token.word, []).append(i)
    chunks = [np.zeros((0, 2), dtype=np.int64)]
    for word in sorted(by_word):
        index = np.asarray(by_word[word], dtype=np.int64)
        a, b = np.triu_indices(len(index), k=1)
        if 0 < max_pairs_per_type < len(a):
            rng = np.random.default_rng([seed % 2**32, zlib.crc32(word.encode())])
            keep = np.sort(rng.choice(len(a), max_pairs_per_type, replace=False))
            a, b = a[keep], b[keep]
        chunks.append(np.stack([index[a], index[b]], axis=1))
    return np.concatenate(chunks)


def read_pair_list(path: PathLike, utt_frames: dict[str, int],
                   ) -> tuple[list[Token], np.ndarray]:
    """Tokens and ``(P, 2)`` pairs of a pair list; errors name the file, line and key."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such pair list (data.pairs: 'words.ctm' or a pair list file)",
                         path=path)
    index: dict[Token, int] = {}
    pairs = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            x, y = _parse_pair_line(fields, utt_frames, path, lineno)
            pairs.append([index.setdefault(t, len(index)) for t in (x, y)])
    if not pairs:
        raise InputError("pair list has no pairs", path=path)
    return list(index), np.asarray(pairs, dtype=np.int64)


def _parse_pair_line(fields: list[str], utt_frames: dict[str, int], path: Path,
                     lineno: int) -> tuple[Token, Token]:
    """The two tokens of one pair list line, checked against the utterances' frames."""
    if len(fields) != 6:
        raise InputError(f"expected 6 fields '<utt> <start> <end> <utt> <start> <end>', "
                         f"got {len(fields)}", path=path, line=lineno)
    tokens = []
    for utt, start, end in (fields[:3], fields[3:]):
        if utt not in utt_frames:
            raise InputError("utterance is not in the data dir (or has no features)",
                             path=path, line=lineno, key=utt)
        try:
            s, e = int(start), int(end)
        except ValueError:
            raise InputError(f"start and end must be frame numbers, got '{start} {end}'",
                             path=path, line=lineno, key=utt) from None
        if not 0 <= s < e <= utt_frames[utt]:
            raise InputError(f"need 0 <= start < end <= {utt_frames[utt]} (the "
                             f"utterance's frames), got {s} {e}",
                             path=path, line=lineno, key=utt)
        tokens.append(Token(utt, s, e))
    if tokens[0] == tokens[1]:
        raise InputError("a token is paired with itself", path=path, line=lineno,
                         key=tokens[0].utt)
    return tokens[0], tokens[1]
