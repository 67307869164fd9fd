"""Kaldi data dirs for the acoustic word embedding recipes of Kamper (2019) and van Staden &
Kamper (2021): Buckeye English and ZeroSpeech 2015 Xitsonga, from wav files and ``.wrd``
word alignments (:mod:`speechssl.corpus.wrd`).

Utterances are Kamper's speech ("VAD") regions: the maximal runs of words of one file in
which every word starts exactly where the previous one ended.  Non-word entries (SIL, SPN;
:func:`speechssl.data.pairs.is_word`) are dropped and end a run, so every gap and every
silence or unintelligible stretch starts a new utterance.  An utterance's segment runs from
its first word's start to its last word's end plus a collar (25 ms, one analysis window,
clipped at the end of the file), so that Kaldi's 25 ms / 10 ms frames cover every word to its
end: frame i spans [10 i, 10 i + 25) ms, and a word ending at t ms ends at frame round(t/10).

Ids follow Kamper's keys: ``<spk>_<session>_<ssssss>-<eeeeee>``, the speech's first and end
frame (10 ms) in the recording: ``s01_01a_003222-003255`` for Buckeye ``s0101a``,
``001m_nchlt-tso-0007_000077-000319`` for Xitsonga ``nchlt_tso_001m_0007``.  Speaker ids have
a fixed width, so utt2spk sorts the same by utterance and by speaker.

Written per set, to ``<data-dir>/<set>/``::

    wav.scp         <rec> <absolute wav path>        (recordings with utterances)
    segments        <utt> <rec> <start> <end>        seconds; the end includes the collar
    utt2spk spk2utt text
    words.ctm       <utt> 1 <start> <dur> <word>     seconds from the utterance's start
    samediff_words  <word>_<spk>_<utt>_<ssssss>-<eeeeee> <utt> <start> <end>
                    words of >= 50 frames and >= 5 characters; 10 ms frames of the
                    utterance, end excluded (read by speechssl.eval.samediff)

>>> frame_index(1234), frame_index(1235)
(123, 124)
>>> kaldi_num_frames(525, 16000)  # 0.5 s of speech plus the 25 ms collar: 50 frames
50
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from speechssl.corpus.utd_pairs import utd_pair_list
from speechssl.corpus.wrd import WrdAlignments, WrdEntry, read_wrd
from speechssl.data.audio import audio_header
from speechssl.data.ctm import CtmEntry, write_ctm
from speechssl.data.pairs import is_word, time_to_frame
from speechssl.data.table import PathLike, write_table
from speechssl.data.write import staged_dir, write_tables
from speechssl.errors import InputError
from speechssl.features import FbankConfig
from speechssl.fileio import atomic_write

log = logging.getLogger(__name__)

FRAME_SHIFT_MS = 10
FRAME_LENGTH_MS = 25
COLLAR_MS = FRAME_LENGTH_MS
PAST_END_TOLERANCE_MS = 500   # alignments may end this far after the audio (as AudioReader)
EXAMPLES = 5

# van Staden & Kamper (2021), after Kamper et al. (2016): devpart1 trains, devpart2
# validates, zs (the ZeroSpeech 2015 English speakers) tests.
BUCKEYE_SETS = {
    "devpart1": ("s02", "s04", "s05", "s08", "s12", "s16", "s03", "s06", "s10", "s11",
                 "s13", "s38"),
    "devpart2": ("s18", "s17", "s37", "s39", "s19", "s22", "s40", "s34"),
    "zs": ("s20", "s25", "s27", "s01", "s26", "s31", "s29", "s23", "s24", "s32", "s33",
           "s30"),
}


@dataclass(frozen=True)
class Layout:
    """How a corpus stores its audio and names its files."""

    name: str
    pattern: str                  # a recording name; groups 'spk' and 'session'
    session_prefix: str           # put before the session in utterance ids
    speaker_dirs: bool            # <root>/<spk>/<rec>.wav rather than <root>/<rec>.wav
    example: str                  # a wav path under the root, for messages
    sets: dict[str, tuple[str, ...] | None]   # set -> speakers (None: all of them)

    def speaker_and_session(self, rec: str) -> tuple[str, str] | None:
        m = re.fullmatch(self.pattern, rec)
        return None if m is None else (m["spk"], self.session_prefix + m["session"])

    def wav_path(self, root: Path, rec: str) -> Path:
        spk = self.speaker_and_session(rec)[0]
        return root / spk / f"{rec}.wav" if self.speaker_dirs else root / f"{rec}.wav"

    def wav_glob(self) -> str:
        return "*/*.wav" if self.speaker_dirs else "*.wav"


LAYOUTS = {
    "buckeye": Layout("buckeye", r"(?P<spk>s\d\d)(?P<session>\d\d[a-z])", "", True,
                      "s01/s0101a.wav", dict(BUCKEYE_SETS)),
    # Xitsonga is one set: training is unsupervised on all of it and evaluation uses all
    # of it, as in Kamper's recipe and van Staden & Kamper (2021).
    "xitsonga": Layout("xitsonga", r"nchlt_tso_(?P<spk>\d{3}[a-z])_(?P<session>\d+)",
                       "nchlt-tso-", False, "nchlt_tso_001m_0007.wav", {"xitsonga": None}),
}


@dataclass(frozen=True)
class Audio:
    path: Path
    rate: int
    num_samples: int

    @property
    def duration_ms(self) -> int:
        return self.num_samples * 1000 // self.rate


@dataclass(frozen=True)
class Utterance:
    utt: str
    rec: str
    spk: str
    words: tuple[WrdEntry, ...]
    seg_end_ms: int               # the last word's end plus the collar, within the file
    num_frames: int               # Kaldi 25/10 ms frames of the segment

    @property
    def start_ms(self) -> int:
        return self.words[0].start_ms


@dataclass
class SetSummary:
    recordings: int = 0
    speakers: int = 0
    utterances: int = 0
    words: int = 0
    speech_seconds: float = 0.0
    samediff_words: int = 0
    utd_pairs: int = 0


@dataclass
class CorpusSummary:
    sets: dict[str, SetSummary] = field(default_factory=dict)
    dropped: Counter = field(default_factory=Counter)   # what was left out, by reason


def frame_index(ms: int) -> int:
    """The 10 ms frame boundary nearest to a time in ms, halves up (time_to_frame's rule)."""
    return time_to_frame(ms / 1000, FRAME_SHIFT_MS / 1000)


def kaldi_num_frames(duration_ms: int, rate: int) -> int:
    """Frames Kaldi computes (its default 25 ms windows every 10 ms, snip-edges) for a
    segment, less a sample for the rounding of segment times to samples."""
    return FbankConfig(sample_frequency=rate).num_frames(duration_ms * rate // 1000 - 1)


def speech_regions(entries: list[WrdEntry]) -> list[list[WrdEntry]]:
    """Maximal runs of words without a gap; non-word entries are dropped and end a run.

    >>> e = [WrdEntry("r", *x, 0) for x in [(0, 5, "a"), (5, 9, "b"), (9, 12, "SIL"),
    ...      (12, 20, "c"), (21, 30, "d")]]
    >>> [[w.label for w in run] for run in speech_regions(e)]
    [['a', 'b'], ['c'], ['d']]
    """
    runs: list[list[WrdEntry]] = []
    current: list[WrdEntry] = []
    for entry in entries:
        if not is_word(entry.label) or (current and entry.start_ms != current[-1].end_ms):
            if current:
                runs.append(current)
            current = []
        if is_word(entry.label):
            current.append(entry)
    if current:
        runs.append(current)
    return runs


def make_utterance(layout: Layout, words: list[WrdEntry], audio: Audio,
                   alignments: Path) -> Utterance:
    """The utterance of one speech region of a recording."""
    rec, end_ms = words[0].rec, words[-1].end_ms
    if end_ms > audio.duration_ms + PAST_END_TOLERANCE_MS:
        raise InputError(f"word ends at {end_ms / 1000:.3f} s, after the end of "
                         f"{audio.path} ({audio.duration_ms / 1000:.3f} s)",
                         path=alignments, line=words[-1].line, key=rec)
    spk, session = layout.speaker_and_session(rec)
    utt = (f"{spk}_{session}_{frame_index(words[0].start_ms):06d}-"
           f"{frame_index(end_ms):06d}")
    seg_end = min(end_ms + COLLAR_MS, audio.duration_ms)
    frames = kaldi_num_frames(seg_end - words[0].start_ms, audio.rate)
    return Utterance(utt, rec, spk, tuple(words), seg_end, frames)


def recording_utterances(layout: Layout, entries: list[WrdEntry], audio: Audio,
                         alignments: Path, dropped: Counter) -> list[Utterance]:
    """The utterances of one recording; regions too short for one frame are counted."""
    dropped["non-word entries (SIL, SPN, ...)"] += sum(not is_word(e.label) for e in entries)
    utts = []
    for words in speech_regions(entries):
        utt = make_utterance(layout, words, audio, alignments)
        if utt.num_frames > 0:
            utts.append(utt)
        else:
            dropped["speech regions too short for one frame"] += 1
    ids = Counter(u.utt for u in utts)
    for u in utts:
        if ids[u.utt] > 1:
            raise InputError(f"two speech regions get the id '{u.utt}' (regions under "
                             "10 ms apart)", path=alignments, line=u.words[0].line, key=u.rec)
    return utts


def samediff_words(utts: list[Utterance], min_frames: int = 50, min_chars: int = 5,
                   ) -> dict[str, tuple[str, int, int]]:
    """Evaluation words, ``key -> (utt, start, end)`` in 10 ms frames of the utterance (end
    excluded, and within its features): at least ``min_frames`` frames as cut and
    ``min_chars`` characters (Kamper's same-different selection)."""
    out = {}
    for u in utts:
        for w in u.words:
            start = frame_index(w.start_ms - u.start_ms)
            end = min(frame_index(w.end_ms - u.start_ms), u.num_frames)
            if end - start >= min_frames and len(w.label) >= min_chars:
                out[f"{w.label}_{u.spk}_{u.utt}_{start:06d}-{end:06d}"] = (u.utt, start, end)
    return out


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def write_set(dest: Path, utts: list[Utterance], audio: dict[str, Audio], min_frames: int,
              min_chars: int) -> SetSummary:
    """The Kaldi tables, words.ctm and samediff_words of one set, into the new ``dest``."""
    recs = sorted({u.rec for u in utts})
    write_tables(dest, {
        "wav.scp": {r: str(audio[r].path.resolve()) for r in recs},
        "segments": {u.utt: [u.rec, _seconds(u.start_ms), _seconds(u.seg_end_ms)]
                     for u in utts},
        "utt2spk": {u.utt: u.spk for u in utts},
        "text": {u.utt: [w.label for w in u.words] for u in utts}})
    write_ctm(dest / "words.ctm", [
        CtmEntry(u.utt, "1", (w.start_ms - u.start_ms) / 1000, (w.end_ms - w.start_ms) / 1000,
                 w.label) for u in utts for w in u.words])
    words = samediff_words(utts, min_frames, min_chars)
    write_table(dest / "samediff_words", {k: list(v) for k, v in words.items()})
    return SetSummary(len(recs), len({u.spk for u in utts}), len(utts),
                      sum(len(u.words) for u in utts),
                      sum(u.words[-1].end_ms - u.start_ms for u in utts) / 1000, len(words))


def recordings_by_set(layout: Layout, alignments: WrdAlignments, dropped: Counter,
                      ) -> dict[str, list[str]]:
    """The recordings of each set; names that do not fit the layout are errors."""
    set_of = {spk: name for name, spks in layout.sets.items() for spk in spks or ()}
    everyone = [name for name, spks in layout.sets.items() if spks is None]
    out: dict[str, list[str]] = {name: [] for name in layout.sets}
    for rec, entries in sorted(alignments.by_rec.items()):
        parsed = layout.speaker_and_session(rec)
        if parsed is None:
            raise InputError(f"'{rec}' is not a {layout.name} file name (like "
                             f"{Path(layout.example).stem})", path=alignments.path,
                             line=entries[0].line, key=rec)
        name = set_of.get(parsed[0], everyone[0] if everyone else None)
        if name is None:
            dropped["recordings of speakers in no set"] += 1
        else:
            out[name].append(rec)
    return out


def _listing(root: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    return " ".join(names[:EXAMPLES]) + (" ..." if len(names) > EXAMPLES else "") or "nothing"


def find_audio(layout: Layout, root: Path, recs: list[str], alignments: Path,
               ) -> dict[str, Audio]:
    """Every recording's wav under ``root``, checked to exist and to be readable."""
    if not root.is_dir():
        raise InputError(f"no such directory (the {layout.name} audio: "
                         f"<root>/{layout.example})", path=root)
    paths = {rec: layout.wav_path(root, rec) for rec in recs}
    missing = [rec for rec, p in paths.items() if not p.is_file()]
    if missing and len(missing) == len(recs):
        raise InputError(f"not the {layout.name} layout: expected wav files like "
                         f"{root / layout.example}, found none of the {len(recs)} files of "
                         f"{alignments}; the folder holds: {_listing(root)}", path=root)
    if missing:
        shown = " ".join(str(paths[r]) for r in missing[:EXAMPLES])
        raise InputError(f"{len(missing)} of {len(recs)} recordings of {alignments} have no "
                         f"wav file, e.g. {shown}", path=root)
    headers = {rec: audio_header(path, key=rec) for rec, path in paths.items()}
    return {rec: Audio(paths[rec], h.sample_rate, h.frames) for rec, h in headers.items()}


def write_utd_pairs(dest: Path, utts: list[Utterance], utd_pairs: PathLike,
                    dropped: Counter) -> int:
    """``<dest>/utd_pairs``: the set's UTD pairs as a pair list; returns how many."""
    spans: dict[str, list[tuple[str, int, int]]] = {}
    for u in utts:
        first = frame_index(u.start_ms)
        end = min(frame_index(u.words[-1].end_ms), first + u.num_frames)
        spans.setdefault(u.rec, []).append((u.utt, first, end))
    pairs, left_out = utd_pair_list(utd_pairs, spans)
    dropped.update(left_out)
    if pairs:
        with atomic_write(dest / "utd_pairs") as f:
            f.writelines(" ".join(map(str, (*x, *y))) + "\n" for x, y in pairs)
    return len(pairs)


def prepare_corpus(corpus: str, root: PathLike, alignments: PathLike, data_dir: PathLike,
                   min_frames: int = 50, min_chars: int = 5,
                   utd_pairs: PathLike | None = None) -> CorpusSummary:
    """Write ``<data_dir>/<set>`` for every set of the corpus's layout (and each set's UTD
    pairs, given a pair file)."""
    layout = LAYOUTS[corpus]
    root, data_dir = Path(root), Path(data_dir)
    wrd = read_wrd(alignments)
    if wrd.clipped:
        first = wrd.clipped[0]
        log.warning("%s: %d entries start before 0 s and were clipped to 0 (e.g. line %d, "
                    "%s)", wrd.path, len(wrd.clipped), first.line, first.rec)
    summary = CorpusSummary()
    by_set = recordings_by_set(layout, wrd, summary.dropped)
    audio = find_audio(layout, root, [r for recs in by_set.values() for r in recs], wrd.path)
    on_disk = {p.stem for p in root.glob(layout.wav_glob())}
    summary.dropped["wav files without alignments"] += len(on_disk - set(wrd.by_rec))
    for name, recs in by_set.items():
        if not recs:
            present = sorted({layout.speaker_and_session(r)[0] for r in wrd.by_rec})
            raise InputError(f"no recordings of set '{name}' (speakers "
                             f"{' '.join(layout.sets[name] or ('all',))}): the alignments "
                             f"cover speakers {' '.join(present[:12])}"
                             f"{' ...' if len(present) > 12 else ''} only", path=wrd.path)
        utts = [u for rec in recs for u in recording_utterances(
            layout, wrd.by_rec[rec], audio[rec], wrd.path, summary.dropped)]
        with staged_dir(data_dir / name) as tmp:
            summary.sets[name] = write_set(tmp, utts, audio, min_frames, min_chars)
            if utd_pairs is not None:
                summary.sets[name].utd_pairs = write_utd_pairs(tmp, utts, utd_pairs,
                                                               summary.dropped)
    return summary
