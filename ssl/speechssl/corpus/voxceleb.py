"""VoxCeleb 1 and 2 as Kaldi data dirs, and the official trial lists as Kaldi trials.

Layouts, as distributed (``<ytid>``: an 11-character YouTube id, which may hold ``-`` and
``_``; ``NNNNN``: the segment)::

    <voxceleb1>/wav/idNNNNN/<ytid>/NNNNN.wav      16 kHz; dev and test speakers together,
                                                  split by vox1_meta.csv or by speaker id
    <voxceleb1>/{dev,test}/wav/idNNNNN/...        the same, unpacked per set (Kaldi v2, WeSpeaker)
    <voxceleb1>/vox1_meta.csv                     tab-separated with a header; column "Set"
    <voxceleb1>/veri_test2.txt                    O (cleaned): "1 id10270/x6uYqmx31kE/00001.wav
                                                  id10270/8jEAjG6SegY/00008.wav" (1 same speaker)
    <voxceleb1>/list_test_all2.txt, list_test_hard2.txt   E and H (cleaned), optional
    <voxceleb2>/dev/aac/id0NNNN/<ytid>/NNNNN.m4a  AAC, decoded once to wav (:func:`convert_to_wav`)

Utterance ids are Kaldi's ``<speaker>-<ytid>-<segment>`` (``id10001-1zcIwhmdeo4-00001``),
so speaker-sorted and utterance-sorted orders agree.  The speaker comes from the directory,
never from splitting an id on ``-``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from speechssl.data.trials import Trial, write_trials
from speechssl.data.write import Recording, recording_tables, staged_dir, write_tables
from speechssl.errors import InputError, SpeechSSLError, examples
from speechssl.fileio import parallel_map

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
VOX1_TEST_SPEAKERS = (10270, 10309)  # id10270..id10309: the 40 test speakers, inclusive
SPEAKER_RE = re.compile(r"id\d{5}")
VIDEO_RE = re.compile(r"[A-Za-z0-9_-]+")
SEGMENT_RE = re.compile(r"\d{5}")
O_LISTS = ("veri_test2.txt", "veri_test.txt")  # cleaned first; the original as a fallback
EXTENDED_LISTS = {"e": "list_test_all2.txt", "h": "list_test_hard2.txt"}


def utt_file(utt: str) -> str:
    """The name trial lists use, ``id10270/x6uYq-x31kE/00001.wav`` for the utterance
    ``id10270-x6uYq-x31kE-00001``: speaker and segment have fixed widths (7 and 5)."""
    return f"{utt[:7]}/{utt[8:-6]}/{utt[-5:]}.wav"


def _entries(path: Path) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def scan_tree(root: Path, ext: str) -> list[Recording]:
    """Every ``<root>/idNNNNN/<ytid>/NNNNN.<ext>``, sorted by utterance id.  Other files are
    skipped and counted; a folder or ``.<ext>`` file named otherwise is an error."""
    layout = f"idNNNNN/<YouTube id>/NNNNN.{ext}"
    recs, skipped = [], []
    absolute = Path(root).resolve()  # once: resolving a million paths one by one is slow
    for spk in _entries(root):
        if not spk.is_dir():
            skipped.append(spk.path)
            continue
        if not SPEAKER_RE.fullmatch(spk.name):
            raise InputError(f"unexpected folder: expected speaker folders {layout}", path=spk.path)
        for video in _entries(Path(spk.path)):
            if not video.is_dir():
                skipped.append(video.path)
                continue
            if not VIDEO_RE.fullmatch(video.name):
                raise InputError(f"unexpected folder name: expected {layout}", path=video.path)
            for seg in _entries(Path(video.path)):
                stem, _, suffix = seg.name.partition(".")
                if suffix != ext or not seg.is_file():
                    skipped.append(seg.path)
                elif not SEGMENT_RE.fullmatch(stem):
                    raise InputError(f"unexpected file name: expected {layout}", path=seg.path)
                else:
                    recs.append(Recording(f"{spk.name}-{video.name}-{stem}", spk.name,
                                          absolute / spk.name / video.name / seg.name))
    if skipped:
        log.warning("%s: skipped %d entries that are not %s (e.g. %s)", root, len(skipped),
                    layout, examples(skipped))
    if not recs:
        raise InputError(f"no audio found: expected {layout} below it", path=root)
    return recs


# ----------------------------------------------------------------- VoxCeleb1 split

def read_vox1_meta(path: Path) -> dict[str, tuple[str, str]]:
    """``vox1_meta.csv`` (tab-separated, a header naming a ``Set`` column, speaker ids
    first) as ``speaker -> (set, gender)``; set is ``dev`` or ``test``, gender ``m``,
    ``f`` or ``""`` when the file has no Gender column."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [h.strip().lower() for h in lines[0].split("\t")] if lines else []
    if "set" not in header:
        raise InputError(f"expected a tab-separated header with a 'Set' column, got "
                         f"{lines[0] if lines else 'an empty file'!r}", path=path, line=1)
    col_set = header.index("set")
    col_gender = header.index("gender") if "gender" in header else None
    needed = max(col_set, col_gender or 0) + 1
    meta = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) < needed:
            raise InputError(f"expected at least {needed} tab-separated fields, got "
                             f"{len(fields)}", path=path, line=lineno)
        spk, which = fields[0], fields[col_set].lower()
        if which not in ("dev", "test"):
            raise InputError(f"Set must be dev or test, got '{fields[col_set]}'",
                             path=path, line=lineno, key=spk)
        gender = fields[col_gender].lower() if col_gender is not None else ""
        meta[spk] = (which, gender if gender in ("m", "f") else "")
    return meta


def is_vox1_test_speaker(spk: str) -> bool:
    """``id10270`` to ``id10309`` (the speaker range of VoxCeleb1's test set)."""
    return VOX1_TEST_SPEAKERS[0] <= int(spk[2:]) <= VOX1_TEST_SPEAKERS[1]


@dataclass
class Vox1Split:
    dev: list[Recording]
    test: list[Recording]
    genders: dict[str, str]   # speaker -> m|f where vox1_meta.csv says
    how: str                  # for the log: where the split came from


def split_voxceleb1(root: Path) -> Vox1Split:
    """The recordings of a VoxCeleb1 root in either layout, split into dev and test."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("VoxCeleb1 directory does not exist", path=root)
    meta_path = root / "vox1_meta.csv"
    meta = read_vox1_meta(meta_path) if meta_path.is_file() else {}
    genders = {spk: g for spk, (_, g) in meta.items() if g}
    if (root / "wav").is_dir():
        recs = scan_tree(root / "wav", "wav")
        if meta:
            unknown = sorted({r.spk for r in recs} - set(meta))
            if unknown:
                raise InputError(f"{len(unknown)} speakers under wav/ are not in vox1_meta.csv "
                                 f"(e.g. {examples(unknown)})", path=meta_path)
            test = [r for r in recs if meta[r.spk][0] == "test"]
            how = f"by the Set column of {meta_path}"
        else:
            test = [r for r in recs if is_vox1_test_speaker(r.spk)]
            how = (f"by speaker id (no {meta_path}): test = id{VOX1_TEST_SPEAKERS[0]} to "
                   f"id{VOX1_TEST_SPEAKERS[1]}")
        test_utts = {r.utt for r in test}
        return Vox1Split([r for r in recs if r.utt not in test_utts], test, genders, how)
    if (root / "dev" / "wav").is_dir() and (root / "test" / "wav").is_dir():
        return Vox1Split(scan_tree(root / "dev" / "wav", "wav"),
                         scan_tree(root / "test" / "wav", "wav"), genders,
                         f"by folder ({root}/dev/wav, {root}/test/wav)")
    raise InputError("not a VoxCeleb1 layout: expected wav/idNNNNN/<YouTube id>/NNNNN.wav "
                     "(or dev/wav/... and test/wav/...) and veri_test2.txt in it", path=root)


# ----------------------------------------------------------------- trials

def trial_file_to_utt(name: str, path: Path, lineno: int) -> str:
    """``id10270/x6uYqmx31kE/00001.wav`` -> ``id10270-x6uYqmx31kE-00001``."""
    parts = name.split("/")
    if (len(parts) != 3 or not SPEAKER_RE.fullmatch(parts[0])
            or not VIDEO_RE.fullmatch(parts[1]) or not re.fullmatch(r"\d{5}\.wav", parts[2])):
        raise InputError(f"expected files named idNNNNN/<YouTube id>/NNNNN.wav, got '{name}'",
                         path=path, line=lineno)
    return f"{parts[0]}-{parts[1]}-{parts[2][:-4]}"


def read_voxceleb_trials(path: Path) -> list[Trial]:
    """A VoxCeleb trial list (``<1|0> <enroll file> <test file>``) as Kaldi trials."""
    trials = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise InputError("expected '<1|0> <enroll wav> <test wav>' (1: same speaker)",
                                 path=path, line=lineno)
            enroll, test = (trial_file_to_utt(x, path, lineno) for x in fields[1:])
            trials.append(Trial(enroll, test, fields[0] == "1"))
    if not trials:
        raise InputError("no trials", path=path)
    return trials


def check_trials_present(trials: list[Trial], recs: Sequence[Recording], path: Path,
                         what: str) -> None:
    """Every file a trial names must be among ``recs``; else say how many are not."""
    known = {r.utt for r in recs}
    absent = {u for t in trials for u in (t.enroll, t.test) if u not in known}
    if absent:
        lines = sum(1 for t in trials if t.enroll in absent or t.test in absent)
        names = [utt_file(u) for u in absent]
        raise InputError(f"{lines} of {len(trials)} trials name {len(absent)} files that are "
                         f"not among the {len(recs)} utterances of {what} (e.g. "
                         f"{examples(names)}); is the download complete?", path=path)


def o_trials_path(root: Path) -> Path:
    for name in O_LISTS:
        if (root / name).is_file():
            if name != O_LISTS[0]:
                log.warning("no %s: using %s, the original VoxCeleb1-O list (published "
                            "numbers are on the cleaned one)", root / O_LISTS[0], root / name)
            return root / name
    raise InputError(f"no VoxCeleb1-O trial list: expected {O_LISTS[0]} (download it from "
                     "the VoxCeleb1 page next to the audio)", path=root)


# ----------------------------------------------------------------- data dirs

def write_data_dir(dest: Path, recs: Sequence[Recording], nj: int = 1,
                   genders: dict[str, str] | None = None,
                   trials: dict[str, list[Trial]] | None = None) -> Path:
    """A Kaldi data dir: wav.scp, utt2spk, spk2utt, utt2dur (from the headers),
    spk2gender (where known) and ``trials`` files by name (``trials``, ``trials_e``...)."""
    with staged_dir(dest) as tmp:
        tables = recording_tables(recs, SAMPLE_RATE, nj)
        speakers = {r.spk for r in recs}
        if genders and speakers <= set(genders):
            tables["spk2gender"] = {s: genders[s] for s in speakers}
        write_tables(tmp, tables)
        for name, trial_list in (trials or {}).items():
            write_trials(tmp / name, trial_list)
    hours = sum(float(d) for d in tables["utt2dur"].values()) / 3600
    log.info("%s: %d utterances of %d speakers, %.2f hours%s", dest, len(recs), len(speakers),
             hours, "".join(f", {len(t)} {n}" for n, t in (trials or {}).items()))
    return dest


def prepare_voxceleb1(root: Path, data_dir: Path, extended_trials: bool, nj: int = 1) -> None:
    """``<data_dir>/voxceleb1_dev``, ``voxceleb1_test`` with ``trials`` (O), and with
    ``extended_trials`` and the lists present, ``voxceleb1`` (all of it) with ``trials_e``,
    ``trials_h`` (E and H use dev speakers: train on VoxCeleb2 only then)."""
    root, data_dir = Path(root), Path(data_dir)
    split = split_voxceleb1(root)
    log.info("VoxCeleb1 split %s: %d dev, %d test utterances", split.how, len(split.dev),
             len(split.test))
    o_path = o_trials_path(root)
    o_trials = read_voxceleb_trials(o_path)
    check_trials_present(o_trials, split.test, o_path, "VoxCeleb1 test")
    extended = {}
    for name, file in EXTENDED_LISTS.items():
        if (root / file).is_file() and not extended_trials:
            log.warning("%s is there but not used: VoxCeleb1-%s draws on dev speakers, which "
                        "training sees unless it is on VoxCeleb2 only", root / file,
                        name.upper())
        elif (root / file).is_file():
            extended[f"trials_{name}"] = read_voxceleb_trials(root / file)
            check_trials_present(extended[f"trials_{name}"], split.dev + split.test,
                                 root / file, "VoxCeleb1")
    write_data_dir(data_dir / "voxceleb1_dev", split.dev, nj, split.genders)
    write_data_dir(data_dir / "voxceleb1_test", split.test, nj, split.genders,
                   {"trials": o_trials})
    if extended:
        everything = sorted(split.dev + split.test, key=lambda r: r.utt)
        write_data_dir(data_dir / "voxceleb1", everything, nj, split.genders, extended)


# ----------------------------------------------------------------- VoxCeleb2

def ffmpeg_command(src: Path, dest: Path) -> list[str]:
    """Decode to 16 kHz mono 16-bit wav: the same as Kaldi's wav.scp pipe
    ``ffmpeg -nostdin -loglevel error -i <m4a> -ac 1 -ar 16000 -f wav - |``."""
    return ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-ac", "1",
            "-ar", str(SAMPLE_RATE), "-acodec", "pcm_s16le", "-f", "wav", str(dest)]


def _decode(job: tuple[Path, Path]) -> str | None:
    """One m4a to wav, under a temporary name until complete; an error message or None."""
    src, dest = job
    if dest.is_file():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    proc = subprocess.run(ffmpeg_command(src, tmp), capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        return f"{src}: {(proc.stderr.strip().splitlines() or ['ffmpeg failed'])[-1]}"
    tmp.replace(dest)
    return None


def convert_to_wav(recs: Sequence[Recording], wav_dir: Path, nj: int = 1) -> list[Recording]:
    """Decode every m4a once into ``<wav_dir>/<speaker>/<ytid>/<segment>.wav``; files
    already there are kept, so an interrupted conversion resumes."""
    if shutil.which("ffmpeg") is None:
        raise SpeechSSLError("ffmpeg not found: VoxCeleb2's m4a audio is decoded with it "
                             "(install it, e.g. apt-get install ffmpeg or conda install ffmpeg)")
    wav_dir = Path(wav_dir).resolve()
    out = [Recording(r.utt, r.spk, wav_dir / utt_file(r.utt)) for r in recs]
    todo = [(r.path, o.path) for r, o in zip(recs, out, strict=True) if not o.path.is_file()]
    log.info("decoding %d of %d m4a files to %s (%d already there) with %d jobs", len(todo),
             len(recs), wav_dir, len(recs) - len(todo), nj)
    errors = [e for e in parallel_map(_decode, todo, nj) if e is not None]
    if errors:
        raise InputError(f"{len(errors)} of {len(todo)} m4a files could not be decoded "
                         f"(e.g. {errors[0]}); re-run to retry them")
    return out


def prepare_voxceleb2(root: Path, wav_dir: Path, data_dir: Path, nj: int = 1) -> None:
    """``<data_dir>/voxceleb2_dev`` from ``<root>/dev/aac``, decoded to wav under ``wav_dir``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("VoxCeleb2 directory does not exist", path=root)
    aac = root / "dev" / "aac"
    if not aac.is_dir():
        raise InputError("not a VoxCeleb2 layout: expected dev/aac/id0NNNN/<YouTube id>/"
                         "NNNNN.m4a in it", path=root)
    recs = convert_to_wav(scan_tree(aac, "m4a"), wav_dir, nj)
    write_data_dir(Path(data_dir) / "voxceleb2_dev", recs, nj)
