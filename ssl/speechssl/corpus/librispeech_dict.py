"""The Kaldi dict dir of LibriSpeech's published lexicon, as Kaldi's
``egs/librispeech/s5/local/prepare_dict.sh --stage 3`` makes it.

``librispeech-lexicon.txt`` (openslr.org/11, the same distribution as the 3-gram ARPA LMs)
has one pronunciation a line: the upper-case word, then its ARPAbet phones with the vowels'
stress digit (``ABANDON  AH0 B AE1 N D AH0 N``); a word may have several lines.  Written::

    lexicon.txt             the published lines, plus !SIL SIL, <SPOKEN_NOISE> SPN and
                            <UNK> SPN (the OOV word of prepare_lang), sorted in C order
    silence_phones.txt      SIL and SPN, one a line
    optional_silence.txt    SIL
    nonsilence_phones.txt   one line per base phone with its stress variants, the bare base
                            phone included as Kaldi does (AA AA0 AA1 AA2; B): prepare_lang
                            keeps each line as one shared-root set
    extra_questions.txt     the silence phones, then one line per stress marker (for the
                            tree building of a triphone system)

A line that is not ``WORD PHONE...`` or a phone that is not letters then an optional stress
digit (Kaldi's ``^([^\\d]+)(\\d*)$``) is an error naming the file and line.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

from speechssl.data.write import staged_dir
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

log = logging.getLogger(__name__)

SILENCE_PHONES = ("SIL", "SPN")
OPTIONAL_SILENCE = "SIL"
# Kaldi's prepare_dict.sh adds these words: silence, spoken noise, and the OOV word.
EXTRA_ENTRIES = (("!SIL", ("SIL",)), ("<SPOKEN_NOISE>", ("SPN",)), ("<UNK>", ("SPN",)))
PHONE = re.compile(r"([^\d]+)(\d*)")


def _split_phone(phone: str, path: Path, lineno: int, word: str) -> tuple[str, str]:
    """(base phone, stress digits) of one phone; SIL and SPN are the silence phones'."""
    m = PHONE.fullmatch(phone)
    if not m or not phone.isascii() or not phone.isalnum():
        raise InputError(f"phone '{phone}' is not letters then an optional stress digit "
                         "(ARPAbet, e.g. AH0)", path=path, line=lineno, key=word)
    if m[1] in SILENCE_PHONES:
        raise InputError(f"phone '{phone}': {m[1]} is reserved for the silence phones "
                         f"({' '.join(SILENCE_PHONES)})", path=path, line=lineno, key=word)
    return m[1], m[2]


def read_published_lexicon(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(word, phones) of each line of librispeech-lexicon.txt, checked, in file order;
    an exact repetition of a line is dropped and counted (Kaldi's ``sort | uniq``)."""
    if not path.is_file():
        raise InputError("no such file: expected librispeech-lexicon.txt of openslr.org/11 "
                         "(run.sh --download true fetches it)", path=path)
    reserved = {w for w, _ in EXTRA_ENTRIES}
    entries, seen, repeated = [], set(), 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if len(fields) < 2:
                raise InputError("expected 'WORD PHONE [PHONE ...]'" if fields else
                                 "empty line", path=path, line=lineno,
                                 key=fields[0] if fields else None)
            word, phones = fields[0], tuple(fields[1:])
            if word in reserved:
                raise InputError("the recipe adds this word itself (!SIL SIL, "
                                 "<SPOKEN_NOISE> SPN, <UNK> SPN)", path=path, line=lineno,
                                 key=word)
            for p in phones:
                _split_phone(p, path, lineno, word)
            if (word, phones) in seen:
                repeated += 1
                continue
            seen.add((word, phones))
            entries.append((word, phones))
    if not entries:
        raise InputError("empty lexicon", path=path)
    if repeated:
        log.info("%s: %d repeated lines dropped", path, repeated)
    return entries


def nonsilence_phone_sets(entries: list[tuple[str, tuple[str, ...]]]) -> list[list[str]]:
    """One list per base phone: the base phone itself and every stress variant used,
    in C order (``['AA', 'AA0', 'AA1', 'AA2']``), the lists in the base phones' order."""
    variants: dict[str, set[str]] = defaultdict(set)
    for _, phones in entries:
        for p in phones:
            base = PHONE.fullmatch(p)[1]
            variants[base].update((base, p))
    return [sorted(variants[base]) for base in sorted(variants)]


def stress_questions(sets: list[list[str]]) -> list[list[str]]:
    """extra_questions.txt: the silence phones, then the phones of each stress marker
    (none, 0, 1, 2: Kaldi's questions about stress)."""
    by_stress: dict[str, list[str]] = defaultdict(list)
    for line in sets:
        for p in line:
            by_stress[PHONE.fullmatch(p)[2]].append(p)
    return [list(SILENCE_PHONES)] + [by_stress[s] for s in sorted(by_stress)]


def _lines(rows) -> str:
    return "".join(" ".join(row) + "\n" for row in rows)


def prepare_dict(lexicon: Path, dict_dir: Path) -> dict[str, int]:
    """Write ``dict_dir`` (see the module doc) from the published lexicon, all at once;
    returns counts for the log."""
    entries = read_published_lexicon(Path(lexicon))
    sets = nonsilence_phone_sets(entries)
    lines = sorted(f"{w} {' '.join(p)}" for w, p in [*entries, *EXTRA_ENTRIES])
    with staged_dir(dict_dir) as tmp:
        for name, text in (
                ("lexicon.txt", "".join(x + "\n" for x in lines)),
                ("silence_phones.txt", _lines([p] for p in SILENCE_PHONES)),
                ("optional_silence.txt", OPTIONAL_SILENCE + "\n"),
                ("nonsilence_phones.txt", _lines(sets)),
                ("extra_questions.txt", _lines(stress_questions(sets)))):
            with atomic_write(tmp / name) as f:
                f.write(text)
    return {"words": len({w for w, _ in entries}), "pronunciations": len(entries),
            "base_phones": len(sets), "phones": sum(len(s) for s in sets)}
