"""Writes the corpus's Kaldi data directories and their alignments, trials and word lists.

Per set (``train``, ``dev``, ``test``): ``wav.scp utt2spk spk2utt text utt2lang spk2gender
utt2dur words.ctm phones.ctm``; ``trials`` for test; ``samediff_words`` for dev and test.
CTM times are whole milliseconds (every file is a whole number of milliseconds long), so
``phones.ctm`` tiles each file exactly from 0 to its duration, with ``sil`` in the pauses,
and ``words.ctm`` does the same with ``<sil>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from speechssl.corpus.synth.align import SILENCE_PHONE, SILENCE_WORD, Segment
from speechssl.corpus.synth.render import SAMPLE_RATE, SAMPLES_PER_MS, Utterance
from speechssl.corpus.synth.speakers import Speaker
from speechssl.data.ctm import CtmEntry, write_ctm
from speechssl.data.pairs import time_to_frame
from speechssl.data.table import write_table
from speechssl.data.trials import Trial
from speechssl.data.write import write_tables
from speechssl.fileio import atomic_write

UNKNOWN_WORD = "<unk>"   # the lang dir's OOV word (egs/mini/run.sh)
UNKNOWN_PHONE = "spn"

CTM_CHANNEL = "1"


def write_data_dir(out: Path, utts: list[Utterance], speakers: list[Speaker]) -> None:
    """The Kaldi tables of one set (C-sorted; utterance ids start with the speaker id)."""
    write_tables(out, {
        "wav.scp": {u.utt_id: u.path for u in utts},
        "utt2spk": {u.utt_id: u.spk_id for u in utts},
        "text": {u.utt_id: " ".join(u.words) for u in utts},
        "utt2lang": {u.utt_id: u.lang for u in utts},
        "utt2dur": {u.utt_id: f"{u.num_samples / SAMPLE_RATE:.3f}" for u in utts},
        "spk2gender": {s.spk_id: s.gender for s in speakers}})


def _ms(samples: int) -> int:
    return round(samples / SAMPLES_PER_MS)


def frame_index(samples: int) -> int:
    """10 ms frame of a boundary: the frame nearest its CTM time (whole ms), halves up."""
    return time_to_frame(_ms(samples) / 1000, 0.01)


def ctm_entries(rec: str, segments: Iterable[Segment]) -> list[CtmEntry]:
    """Segments in samples -> CTM entries in milliseconds; empty ones after rounding go."""
    out = []
    for s in segments:
        start, end = _ms(s.start), _ms(s.end)
        if end > start:
            out.append(CtmEntry(rec, CTM_CHANNEL, start / 1000, (end - start) / 1000, s.label))
    return out


def word_tiling(u: Utterance) -> list[Segment]:
    """The words of ``u`` with ``<sil>`` in every gap, from 0 to the end of the file."""
    out, pos = [], 0
    for w in u.word_segments:
        if w.start > pos:
            out.append(Segment(pos, w.start, SILENCE_WORD))
        out.append(w)
        pos = w.end
    if u.num_samples > pos:
        out.append(Segment(pos, u.num_samples, SILENCE_WORD))
    return out


def write_ctms(out: Path, utts: list[Utterance]) -> None:
    write_ctm(out / "words.ctm", [e for u in utts for e in ctm_entries(u.utt_id, word_tiling(u))])
    write_ctm(out / "phones.ctm",
              [e for u in utts for e in ctm_entries(u.utt_id, u.phone_segments)])


def samediff_segments(utts: list[Utterance], min_word_dur: float,
                      min_word_chars: int) -> dict[str, tuple[str, int, int]]:
    """Evaluation word tokens: ``word_spk_utt_start-end`` -> (utt, start, end) in 10 ms
    frames (end exclusive), for words of at least ``min_word_dur`` s and
    ``min_word_chars`` characters (Kamper's same-different convention)."""
    min_frames = round(min_word_dur * 100)
    out = {}
    for u in utts:
        for w in u.word_segments:
            start, end = frame_index(w.start), frame_index(w.end)
            if end - start >= min_frames and len(w.label) >= min_word_chars:
                key = f"{w.label}_{u.spk_id}_{u.utt_id}_{start:06d}-{end:06d}"
                out[key] = (u.utt_id, start, end)
    return out


def write_samediff(out: Path, utts: list[Utterance], min_word_dur: float,
                   min_word_chars: int) -> int:
    """``samediff_words``: ``<key> <utt> <start-frame> <end-frame>``; returns the count."""
    segs = samediff_segments(utts, min_word_dur, min_word_chars)
    write_table(out / "samediff_words", {k: list(v) for k, v in segs.items()})
    return len(segs)


def make_trials(utts: list[Utterance], seed: int, num_target: int,
                num_nontarget: int) -> list[Trial]:
    """Per enrollment utterance: targets from the same speaker and nontargets, half of them
    from other speakers of the same language.  Each unordered pair appears once."""
    rng = np.random.default_rng([seed, 3])
    by_spk: dict[str, list[Utterance]] = {}
    for u in sorted(utts, key=lambda u: u.utt_id):
        by_spk.setdefault(u.spk_id, []).append(u)
    pairs: dict[tuple[str, str], bool] = {}
    for u in sorted(utts, key=lambda u: u.utt_id):
        same = [v for v in by_spk[u.spk_id] if v.utt_id != u.utt_id]
        same_lang = [v for s, vs in by_spk.items() if s != u.spk_id and vs[0].lang == u.lang
                     for v in vs]
        other = [v for s, vs in by_spk.items() if s != u.spk_id and vs[0].lang != u.lang
                 for v in vs]
        n_lang = min(len(same_lang), num_nontarget - num_nontarget // 2 if other else
                     num_nontarget)
        for pool, n, target in ((same, num_target, True), (same_lang, n_lang, False),
                                (other, num_nontarget - n_lang, False)):
            for i in rng.permutation(len(pool))[:n]:
                pairs.setdefault(tuple(sorted((u.utt_id, pool[i].utt_id))), target)
    return [Trial(a, b, t) for (a, b), t in sorted(pairs.items())]


def write_lexicon(dict_dir: Path, lexicon: dict[str, set[tuple[str, ...]]]) -> list[str]:
    """Kaldi ``local/dict``: lexicon.txt (one line per pronunciation), the phone lists and
    ``phones.txt`` (``<eps> 0``, ``sil 1``, then the phones in C order, then ``spn``).
    As in Kaldi's recipes, ``<unk>`` (spoken noise, ``spn``, a silence phone) is the word
    transcripts' unknown words map to; the corpus itself never uses it.  Returns phones."""
    lines = sorted((w, p) for w, prons in lexicon.items() for p in prons)
    lines[:0] = [(SILENCE_WORD, (SILENCE_PHONE,)), (UNKNOWN_WORD, (UNKNOWN_PHONE,))]
    write_table(dict_dir / "lexicon.txt", [(w, list(p)) for w, p in lines], sort=False)
    phones = sorted({ph for _, p in lines for ph in p} - {SILENCE_PHONE, UNKNOWN_PHONE})
    write_table(dict_dir / "nonsilence_phones.txt", [(p, "") for p in phones])
    write_table(dict_dir / "silence_phones.txt", [(p, "") for p in (SILENCE_PHONE,
                                                                     UNKNOWN_PHONE)])
    write_table(dict_dir / "optional_silence.txt", [(SILENCE_PHONE, "")])
    symbols = ["<eps>", SILENCE_PHONE] + phones + [UNKNOWN_PHONE]
    write_table(dict_dir / "phones.txt", [(p, str(i)) for i, p in enumerate(symbols)],
                sort=False)
    return phones


def write_text(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)
