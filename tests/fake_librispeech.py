"""A fake LibriSpeech laid out exactly as the real distribution, made from the tiny espeak
corpus (tests/corpus_fixtures.py), with fake CPC protocol files whose labels come from the
corpus's own phone alignments.

``build(tiny_corpus, dest)`` writes::

    dest/LibriSpeech/SPEAKERS.TXT                  ';' header, 'ID | SEX | SUBSET | MINUTES | NAME'
    dest/LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>-NNNN.flac  (16-bit FLAC)
    dest/LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>.trans.txt (upper case)
    dest/cpc_labels/converted_aligned_phones.txt   <utt> <class> ...  one per 10 ms frame
    dest/cpc_labels/{train,test}_split.txt         ids in no order, no trailing newline

and returns a :class:`FakeLibriSpeech` holding the truth the tests compare against.  The
session fixture ``fake_librispeech`` builds it once from the ``tiny_corpus`` fixture: import
both (``fake_librispeech_fixture``, ``tiny_corpus_fixture``) into a test module.  The
six readers of train-clean-100 each have two chapters; three utterances of each reader are
in the train split and two in the test split, so both cover the same readers.  Reader ids
sort differently as strings and as numbers (103 < 1034 < 19), and reader 60's name holds
'|' as in the real SPEAKERS.TXT.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import soundfile as sf

from speechssl.data.ctm import read_ctm
from speechssl.data.table import read_table

# (subset, reader, name, chapters); a tiny-corpus speaker each, in sorted order.
READERS = (
    ("train-clean-100", "103", "Ellen", ("1240", "98")),
    ("train-clean-100", "1034", "Kerry", ("121119", "7")),
    ("train-clean-100", "19", "Kara", ("198", "227")),
    ("train-clean-100", "26", "Denny", ("495", "496")),
    ("train-clean-100", "60", "|CBW|Simon", ("121082", "89")),
    ("train-clean-100", "198", "Heather", ("123", "129742")),
    ("dev-clean", "84", "Christie", ("121123", "121550")),
    ("dev-clean", "1272", "John", ("128104", "135031")),
)
UTTS_IN_FIRST_CHAPTER = 3
NUM_CLASSES = 41   # class 0 silence, 1-39 the most frequent phones, 40 all the others


@dataclass
class FakeUtt:
    utt: str
    subset: str
    reader: str
    flac: Path
    text: str          # as written in trans.txt (upper case)
    gender: str        # f or m
    samples: int
    source: str        # the tiny-corpus utterance it was made from


@dataclass
class FakeLibriSpeech:
    root: Path                     # .../LibriSpeech
    cpc_labels: Path
    utts: dict[str, FakeUtt]
    labels: dict[str, list[int]]   # train-clean-100 utterances
    train_split: list[str]
    test_split: list[str]
    readers: dict[str, str] = field(default_factory=dict)  # reader -> subset

    def subset(self, name: str) -> dict[str, FakeUtt]:
        return {k: u for k, u in sorted(self.utts.items()) if u.subset == name}


def _tiny_speakers(tiny: Path) -> list[tuple[str, list[str], str]]:
    """(speaker, its utterances, gender) of every set of the tiny corpus, sorted."""
    speakers = []
    for x in ("train", "dev", "test"):
        spk2utt = read_table(tiny / "data" / x / "spk2utt")
        genders = read_table(tiny / "data" / x / "spk2gender")
        speakers += [(spk, utts.split(), genders[spk]) for spk, utts in spk2utt.items()]
    return sorted(speakers)


def _tiny_tables(tiny: Path, name: str) -> dict[str, str]:
    table = {}
    for x in ("train", "dev", "test"):
        table.update(read_table(tiny / "data" / x / name))
    return table


def _write_speakers_txt(path: Path, utts: dict[str, FakeUtt]) -> None:
    minutes = Counter()
    for u in utts.values():
        minutes[u.reader] += u.samples / 16000 / 60
    lines = ["; Readers of the fake LibriSpeech", ";",
             ";ID    |SEX| SUBSET           |MINUTES| NAME"]
    for subset, reader, name, _ in READERS:
        gender = next(u.gender for u in utts.values() if u.reader == reader)
        lines.append(f"{reader:<6}| {gender.upper()} | {subset:<16} | {minutes[reader]:5.2f} | "
                     f"{name}")
    lines.append("911   | M | train-other-500  | 25.10 | Not In This Copy")
    path.write_text("\n".join(lines) + "\n")


def _frame_classes(tiny: Path, samples: dict[str, int]) -> dict[str, list[int]]:
    """Kaldi frames (1 + (N - 400) // 160) labelled with the phone at each frame's centre,
    as classes: silence 0, then phones by frequency, the rarest merged into class 40."""
    ctm = {}
    for x in ("train", "dev", "test"):
        ctm.update(read_ctm(tiny / "data" / x / "phones.ctm"))
    phones = {}
    for utt, n in samples.items():
        frames = (n - 400) // 160 + 1
        centres = [(t * 160 + 200) / 16000 for t in range(frames)]
        entries = ctm[utt]
        phones[utt] = [next((e.token for e in entries if e.start <= c < e.end),
                            entries[-1].token) for c in centres]
    counts = Counter(p for seq in phones.values() for p in seq if p != "sil")
    ranked = [p for p, _ in counts.most_common()]
    classes = {"sil": 0} | {p: min(i + 1, NUM_CLASSES - 1) for i, p in enumerate(ranked)}
    return {utt: [classes[p] for p in seq] for utt, seq in phones.items()}


def build(tiny: Path, dest: Path) -> FakeLibriSpeech:
    """Write the fake corpus and CPC files under ``dest`` from the tiny corpus at ``tiny``."""
    root = dest / "LibriSpeech"
    wav_scp, texts = _tiny_tables(tiny, "wav.scp"), _tiny_tables(tiny, "text")
    speakers = _tiny_speakers(tiny)
    utts: dict[str, FakeUtt] = {}
    pairs = zip(READERS, speakers, strict=True)  # one tiny-corpus speaker per reader
    for (subset, reader, _, chapters), (_, sources, gender) in pairs:
        lines: dict[str, list[str]] = {c: [] for c in chapters}
        for i, source in enumerate(sources):
            chapter = chapters[0] if i < UTTS_IN_FIRST_CHAPTER else chapters[1]
            index = i if i < UTTS_IN_FIRST_CHAPTER else i - UTTS_IN_FIRST_CHAPTER
            utt = f"{reader}-{chapter}-{index:04d}"
            folder = root / subset / reader / chapter
            folder.mkdir(parents=True, exist_ok=True)
            audio, rate = sf.read(wav_scp[source], dtype="int16")
            flac = folder / f"{utt}.flac"
            sf.write(flac, audio, rate, format="FLAC", subtype="PCM_16")
            text = texts[source].upper()
            lines[chapter].append(f"{utt} {text}")
            utts[utt] = FakeUtt(utt, subset, reader, flac.resolve(), text, gender,
                                len(audio), source)
        for chapter, chapter_lines in lines.items():
            (root / subset / reader / chapter / f"{reader}-{chapter}.trans.txt").write_text(
                "\n".join(chapter_lines) + "\n")
    _write_speakers_txt(root / "SPEAKERS.TXT", utts)
    return _with_cpc_labels(tiny, dest, root, utts)


def _with_cpc_labels(tiny: Path, dest: Path, root: Path, utts: dict[str, FakeUtt],
                     ) -> FakeLibriSpeech:
    train100 = {k: u for k, u in utts.items() if u.subset == "train-clean-100"}
    by_source = _frame_classes(tiny, {u.source: u.samples for u in train100.values()})
    labels = {k: by_source[u.source] for k, u in train100.items()}
    train_split, test_split = [], []
    for reader in sorted({u.reader for u in train100.values()}):
        own = sorted(k for k, u in train100.items() if u.reader == reader)
        train_split += own[0::2]
        test_split += own[1::2]
    # The real lists are in no particular order and end without a newline.
    train_split, test_split = train_split[::-1], test_split[::-1]
    cpc = dest / "cpc_labels"
    cpc.mkdir(parents=True)
    (cpc / "converted_aligned_phones.txt").write_text("\n".join(
        f"{utt} {' '.join(map(str, seq))}" for utt, seq in reversed(labels.items())))
    (cpc / "train_split.txt").write_text("\n".join(train_split))
    (cpc / "test_split.txt").write_text("\n".join(test_split))
    return FakeLibriSpeech(root, cpc, utts, labels, train_split, test_split,
                           {r: s for s, r, _, _ in READERS})


@pytest.fixture(scope="session", name="fake_librispeech")
def fake_librispeech_fixture(tiny_corpus, tmp_path_factory) -> FakeLibriSpeech:
    """The fake corpus built once per session; copy it before changing anything."""
    return build(tiny_corpus, tmp_path_factory.mktemp("fake_librispeech"))
