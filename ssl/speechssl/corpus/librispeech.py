"""LibriSpeech (openslr.org/12) as Kaldi data dirs, one per subset present.

Read, as the tarballs unpack (each holds ``LibriSpeech/`` and its own ``SPEAKERS.TXT``)::

    LibriSpeech/SPEAKERS.TXT      ';' comments, then  ID | SEX | SUBSET | MINUTES | NAME
    LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>.trans.txt
    LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>-NNNN.flac

Written for each subset, e.g. ``train-clean-100`` to ``<data>/train_clean_100/``:
``wav.scp`` (absolute .flac paths: soundfile decodes FLAC itself, so neither a flac binary
nor a pipe is needed), ``text`` (the transcripts as distributed, upper case), ``utt2spk``,
``spk2utt``, ``spk2gender`` (f/m) and ``utt2dur`` (exact, from the FLAC headers).

The speaker is the reader (``103``), which the 251-speaker classification protocol
classifies.  Kaldi's own LibriSpeech recipe uses reader-chapter (``103-1240``) for
per-speaker CMVN and adaptation; for speaker classification that would make each chapter a
class of its own.  Utterance ids start with the reader and ``-``, which sorts before any
digit, so utterances in C order are grouped by speaker in C order, as Kaldi requires.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from speechssl.data.audio import audio_header
from speechssl.data.write import staged_dir, write_tables
from speechssl.errors import InputError, examples

log = logging.getLogger(__name__)

SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
           "test-clean", "test-other", "train-clean-5", "dev-clean-2")  # last two: mini
SAMPLE_RATE = 16000
LAYOUT = "<subset>/<reader>/<chapter>/<reader>-<chapter>.trans.txt"


@dataclass(frozen=True)
class Utterance:
    utt: str       # <reader>-<chapter>-NNNN
    reader: str
    flac: Path     # absolute
    text: str


def data_dir_name(subset: str) -> str:
    """Kaldi's name for a subset's data dir: ``train-clean-100`` -> ``train_clean_100``."""
    return subset.replace("-", "_")


def find_subsets(root: Path) -> list[str]:
    """The subsets under ``root`` (the LibriSpeech/ folder), in :data:`SUBSETS` order."""
    if not root.is_dir():
        raise InputError("no such directory: expected the LibriSpeech/ folder that the "
                         "openslr.org/12 tarballs unpack to (SPEAKERS.TXT, train-clean-100/, "
                         "...)", path=root)
    present = [s for s in SUBSETS if (root / s).is_dir()]
    if not present:
        hint = ""
        if (root / "LibriSpeech").is_dir():
            hint = f"; did you mean {root / 'LibriSpeech'}?"
        raise InputError(f"no LibriSpeech subset here: expected one or more of "
                         f"{', '.join(SUBSETS)} laid out as {LAYOUT}{hint}", path=root)
    return present


def read_speakers(path: Path) -> dict[str, str]:
    """Reader id -> gender (``f`` or ``m``) from SPEAKERS.TXT.

    Split on the first four ``|`` only: names may contain one (reader 60 is ``|CBW|Simon``).
    """
    if not path.is_file():
        raise InputError("no such file: every LibriSpeech tarball puts SPEAKERS.TXT next to "
                         "its subset folder", path=path)
    genders: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            fields = [x.strip() for x in line.split("|", 4)]
            if len(fields) != 5 or not fields[0]:
                raise InputError("expected 'ID | SEX | SUBSET | MINUTES | NAME'",
                                 path=path, line=lineno)
            reader, sex = fields[0], fields[1].upper()
            if sex not in ("F", "M"):
                raise InputError(f"SEX must be F or M, got '{fields[1]}'",
                                 path=path, line=lineno, key=reader)
            if reader in genders:
                raise InputError("reader listed twice", path=path, line=lineno, key=reader)
            genders[reader] = sex.lower()
    return genders


def read_transcripts(path: Path, prefix: str) -> dict[str, str]:
    """``<utt> WORDS...`` lines of one chapter; every id must be ``<prefix>-<digits>``."""
    pattern = re.compile(re.escape(prefix) + r"-\d+")
    texts: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                raise InputError("empty line", path=path, line=lineno)
            utt = fields[0]
            if not pattern.fullmatch(utt):
                raise InputError(f"utterance id '{utt}' is not {prefix}-NNNN",
                                 path=path, line=lineno)
            if utt in texts:
                raise InputError("utterance listed twice", path=path, line=lineno, key=utt)
            texts[utt] = " ".join(fields[1:])
    return texts


def chapter_utterances(chapter_dir: Path, reader: str, chapter: str) -> list[Utterance]:
    """The utterances of one chapter folder; a line without a .flac, or a .flac without a
    line, is an error."""
    prefix = f"{reader}-{chapter}"
    trans = chapter_dir / f"{prefix}.trans.txt"
    flacs = {p.stem: p for p in chapter_dir.glob("*.flac")}
    if not trans.is_file():
        raise InputError(f"chapter folder has {len(flacs)} .flac files but no {trans.name}",
                         path=chapter_dir)
    texts = read_transcripts(trans, prefix)
    for lineno, utt in enumerate(texts, start=1):
        if utt not in flacs:
            raise InputError(f"no audio file {utt}.flac for this transcript line",
                             path=trans, line=lineno, key=utt)
    unlisted = set(flacs) - set(texts)
    if unlisted:
        raise InputError(f"{len(unlisted)} .flac files have no line in {trans.name} "
                         f"({examples(unlisted)})", path=chapter_dir)
    return [Utterance(utt, reader, flacs[utt].resolve(), text) for utt, text in texts.items()]


def scan_subset(root: Path, subset: str) -> list[Utterance]:
    """Every utterance of ``root/subset``, sorted by id."""
    subset_dir = root / subset
    utts: list[Utterance] = []
    for reader_dir in sorted(p for p in subset_dir.iterdir() if p.is_dir()):
        for chapter_dir in sorted(p for p in reader_dir.iterdir() if p.is_dir()):
            utts += chapter_utterances(chapter_dir, reader_dir.name, chapter_dir.name)
    if not utts:
        raise InputError(f"no {LAYOUT.split('/', 1)[1]} under this subset folder "
                         f"(expected LibriSpeech/{LAYOUT})", path=subset_dir)
    return sorted(utts, key=lambda u: u.utt)


def duration(flac: Path) -> float:
    """Seconds, from the FLAC header; the audio must be 16 kHz mono."""
    return audio_header(flac).require(SAMPLE_RATE, mono=True).seconds


def format_seconds(seconds: float) -> str:
    """Exact for 16 kHz sample counts (1/16000 s = 0.0000625 s), without trailing zeros."""
    return f"{seconds:.7f}".rstrip("0").rstrip(".")


def write_data_dir(utts: list[Utterance], genders: dict[str, str], speakers_txt: Path,
                   dest: Path) -> dict[str, float]:
    """Write the Kaldi data dir of one subset; returns counts and hours."""
    missing = {u.reader for u in utts} - set(genders)
    if missing:
        raise InputError(f"{len(missing)} readers have no line ({examples(missing)})",
                         path=speakers_txt)
    durations = {u.utt: duration(u.flac) for u in utts}
    readers = sorted({u.reader for u in utts})
    with staged_dir(dest) as tmp:
        write_tables(tmp, {"wav.scp": {u.utt: str(u.flac) for u in utts},
                           "text": {u.utt: u.text for u in utts},
                           "utt2spk": {u.utt: u.reader for u in utts},
                           "spk2gender": {spk: genders[spk] for spk in readers},
                           "utt2dur": {k: format_seconds(v) for k, v in durations.items()}})
    return {"utterances": len(utts), "speakers": len(readers),
            "hours": sum(durations.values()) / 3600}


def prepare(root: Path, data: Path, subsets: list[str] | None = None) -> dict[str, dict]:
    """Data dirs ``data/<subset with _>`` for ``subsets`` (default: every one present)."""
    present = find_subsets(root)
    if subsets:
        absent = [s for s in subsets if s not in present]
        if absent:
            raise InputError(f"subset(s) {' '.join(absent)} not found (present: "
                             f"{' '.join(present)})", path=root)
    speakers_txt = root / "SPEAKERS.TXT"
    genders = read_speakers(speakers_txt)
    summary = {}
    for subset in subsets or present:
        utts = scan_subset(root, subset)
        dest = data / data_dir_name(subset)
        summary[subset] = write_data_dir(utts, genders, speakers_txt, dest)
        log.info("%s: %d utterances of %d readers, %.2f h -> %s", subset,
                 summary[subset]["utterances"], summary[subset]["speakers"],
                 summary[subset]["hours"], dest)
    return summary
