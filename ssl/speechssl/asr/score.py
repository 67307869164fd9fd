"""Word (and phone) error rates as Kaldi's ``compute-wer`` and ``align-text`` report them.

The edit distance is kaldialign's (unit costs, as Kaldi's ``LevenshteinEditDistance``);
the totals are written in ``compute-wer``'s three lines::

    %WER 12.34 [ 56 / 454, 7 ins, 8 del, 41 sub ]
    %SER 50.00 [ 5 / 10 ]
    Scored 10 sentences, 0 not present in hyp.

``[PARTIAL]`` follows the %WER line when hypotheses were missing, as in Kaldi.  Missing
hypotheses are handled by ``mode``, ``compute-wer --mode``: ``present`` (the mode of
Kaldi's ``steps/score_kaldi.sh`` and ``local/score.sh``, our default) leaves them out of the
counts, ``all`` scores them as empty (all deletions), ``strict`` refuses them.  Our decoder
writes every utterance (an empty line where decoding failed), so with its output the modes
agree; the number missing is in every report either way.

>>> counts, _ = score_texts({"u1": "a b c".split(), "u2": ["a"]}, {"u1": "a x c d".split()})
>>> print(format_counts(counts).splitlines()[0])
%WER 66.67 [ 2 / 3, 1 ins, 0 del, 1 sub ] [PARTIAL]

Per-utterance details are in the layout of Kaldi's ``wer_per_utt_details.pl``: for each
utterance ``ref``, ``hyp`` and ``op`` lines with the aligned tokens padded to a common
width (``***`` where one side has none) and ``#csid`` with the counts of correct,
substituted, inserted and deleted tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import kaldialign
import numpy as np

from speechssl.data.table import PathLike, iter_table
from speechssl.errors import InputError, examples

EPS = "***"        # align-text's --special-symbol
MODES = ("present", "all", "strict")


@dataclass
class ErrorCounts:
    """Totals of one scoring, as ``compute-wer`` counts them."""

    ins: int = 0
    dels: int = 0
    sub: int = 0
    ref_tokens: int = 0
    sentences: int = 0
    sentence_errors: int = 0
    missing: int = 0       # references without a hypothesis
    missing_utts: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.sub

    @property
    def error_rate(self) -> float:
        """Percent errors per reference token; 0 with no reference tokens and no errors."""
        if self.ref_tokens == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_tokens

    @property
    def sentence_error_rate(self) -> float:
        return 100.0 * self.sentence_errors / self.sentences if self.sentences else 0.0

    def as_dict(self, prefix: str = "wer") -> dict:
        return {prefix: round(self.error_rate, 2), f"{prefix}_errors": self.errors,
                f"{prefix}_ref_tokens": self.ref_tokens, f"{prefix}_ins": self.ins,
                f"{prefix}_del": self.dels, f"{prefix}_sub": self.sub}


def edit_counts(ref: Sequence, hyp: Sequence) -> tuple[int, int, int]:
    """``(ins, del, sub)`` of a minimum-cost alignment of ``hyp`` to ``ref``."""
    d = kaldialign.edit_distance(list(ref), list(hyp))
    return d["ins"], d["del"], d["sub"]


def score_texts(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]],
                mode: str = "present") -> tuple[ErrorCounts, dict[str, tuple[int, ...]]]:
    """Totals over the references (in their order) and, per scored utterance,
    ``(correct, sub, ins, del)``; hypotheses of utterances without a reference are an
    error (they would otherwise go unscored without a word)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    extra = set(hyps) - set(refs)
    if extra:
        raise InputError(f"{len(extra)} hypotheses have no reference ({examples(extra)}): "
                         "is this the decode of another data dir?")
    counts, per_utt = ErrorCounts(), {}
    for utt, ref in refs.items():
        if utt not in hyps:
            counts.missing += 1
            counts.missing_utts.append(utt)
            if mode == "strict":
                raise InputError("no hypothesis for this utterance (mode strict)", key=utt)
            if mode == "present":
                continue
        hyp = hyps.get(utt, ())
        ins, dels, sub = edit_counts(ref, hyp)
        counts.ins, counts.dels, counts.sub = counts.ins + ins, counts.dels + dels, \
            counts.sub + sub
        counts.ref_tokens += len(ref)
        counts.sentences += 1
        counts.sentence_errors += list(ref) != list(hyp)
        per_utt[utt] = (len(ref) - sub - dels, sub, ins, dels)
    return counts, per_utt


def utterance_errors(per_utt: Mapping[str, Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Errors (sub + ins + del) and reference tokens (correct + sub + del) of each utterance
    of :func:`score_texts`' ``(correct, sub, ins, del)``, in its order."""
    csid = np.array(list(per_utt.values()), dtype=np.int64).reshape(-1, 4)
    correct, sub, ins, dels = csid.T
    return sub + ins + dels, correct + sub + dels


def format_counts(counts: ErrorCounts, name: str = "WER") -> str:
    """``compute-wer``'s output, with ``%PER`` etc. for other token kinds."""
    partial = " [PARTIAL]" if counts.missing else ""
    return (f"%{name} {counts.error_rate:.2f} [ {counts.errors} / {counts.ref_tokens}, "
            f"{counts.ins} ins, {counts.dels} del, {counts.sub} sub ]{partial}\n"
            f"%SER {counts.sentence_error_rate:.2f} [ {counts.sentence_errors} / "
            f"{counts.sentences} ]\n"
            f"Scored {counts.sentences} sentences, {counts.missing} not present in hyp.\n")


def alignment_ops(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """align-text's pairs as Kaldi's op letters: C(orrect), S(ub), I(ns), D(el)."""
    ops = []
    for r, h in pairs:
        ops.append("I" if r == EPS else "D" if h == EPS else "C" if r == h else "S")
    return ops


def utterance_details(utt: str, ref: Sequence[str], hyp: Sequence[str]) -> list[str]:
    """The four lines ``wer_per_utt_details.pl`` writes for one utterance."""
    pairs = kaldialign.align(list(ref), list(hyp), EPS)
    ops = alignment_ops(pairs)
    widths = [max(len(r), len(h), len(o)) for (r, h), o in zip(pairs, ops, strict=True)]

    def row(tokens: Sequence[str]) -> str:
        return "  ".join(t.ljust(w) for t, w in zip(tokens, widths, strict=True)).rstrip()

    csid = [ops.count(c) for c in "CSID"]
    return [f"{utt} ref  {row([r for r, _ in pairs])}", f"{utt} hyp  {row([h for _, h in pairs])}",
            f"{utt} op   {row(ops)}", f"{utt} #csid {' '.join(map(str, csid))}"]


def per_utt_details(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]],
                    ) -> list[str]:
    """Details of every utterance with a hypothesis, in reference order."""
    lines = []
    for utt, ref in refs.items():
        if utt in hyps:
            lines.extend(utterance_details(utt, ref, hyps[utt]))
    return lines


def read_transcripts(path: PathLike) -> dict[str, list[str]]:
    """``<utt> <token>...`` lines (a data dir's ``text``, a hypothesis file); an utterance
    with no tokens is an empty transcript; duplicates are an error."""
    out: dict[str, list[str]] = {}
    for lineno, utt, rest in iter_table(path, min_fields=1):
        if utt in out:
            raise InputError("duplicate key", path=path, line=lineno, key=utt)
        out[utt] = rest.split()
    return out


def read_int_transcripts(path: PathLike, id2word: Mapping[int, str]) -> dict[str, list[str]]:
    """``<utt> <word-id>...`` lines (``scoring/<lmwt>.tra``) as words of ``words.txt``."""
    out: dict[str, list[str]] = {}
    for lineno, utt, rest in iter_table(path, min_fields=1):
        words = []
        for field_ in rest.split():
            try:
                words.append(id2word[int(field_)])
            except (ValueError, KeyError):
                raise InputError(f"'{field_}' is not a word id of words.txt", path=path,
                                 line=lineno, key=utt) from None
        out[utt] = words
    return out
