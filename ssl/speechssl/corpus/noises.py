"""MUSAN and RIRS_NOISES as Kaldi data dirs: the noise and impulse-response lists that
training augmentation draws from (``data.augment.noises`` and ``rir_scp``).

Layouts, as distributed::

    <musan>/{music,noise,speech}/<source>/<category>-<source>-NNNN.wav   16 kHz
    <rirs>/simulated_rirs/{small,medium}room/rir_list   lines "--rir-id <id> --room-id <room>
                                         RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav"

Outputs, as Kaldi's ``steps/data/make_musan.sh`` and x-vector recipes have them:
``musan_noise``, ``musan_music``, ``musan_speech`` (the babble talkers) and ``rirs``
(simulated small and medium rooms, Kaldi's choice; large rooms are left out), each with
wav.scp, utt2spk (every file its own speaker), spk2utt and utt2dur.
"""

from __future__ import annotations

import logging
from pathlib import Path

from speechssl.data.write import Recording, recording_tables, staged_dir, write_tables
from speechssl.errors import InputError

log = logging.getLogger(__name__)

MUSAN_CATEGORIES = ("music", "noise", "speech")
RIR_ROOMS = ("smallroom", "mediumroom")
SAMPLE_RATE = 16000
EXAMPLES = 5


def musan_files(root: Path, category: str) -> list[Recording]:
    """``<root>/<category>/<source>/*.wav`` with the file stem as utterance and speaker."""
    folder = Path(root) / category
    files = sorted(folder.glob("*/*.wav"))
    if not files:
        raise InputError(f"no {category} wavs: expected MUSAN's {category}/<source>/*.wav "
                         f"(e.g. {category}/<source>/{category}-<source>-0000.wav) in it",
                         path=root)
    recs = {}
    for f in files:
        if f.stem in recs:
            raise InputError(f"two files named {f.name} (also {recs[f.stem].path})", path=f)
        recs[f.stem] = Recording(f.stem, f.stem, f.resolve())
    return [recs[k] for k in sorted(recs)]


def _rir_line(line: str, path: Path, lineno: int) -> tuple[str | None, str]:
    """``--rir-id <id> --room-id <room> <wav>`` -> ``(id or None, wav)``."""
    fields = line.split()
    if len(fields) % 2 != 1 or any(not f.startswith("--") for f in fields[:-1:2]):
        raise InputError("expected '--rir-id <id> --room-id <room> <wav>'", path=path,
                         line=lineno)
    options = dict(zip(fields[:-1:2], fields[1:-1:2], strict=True))
    return options.get("--rir-id"), fields[-1]


def rir_files(root: Path, room: str) -> list[Recording]:
    """The impulse responses of ``<root>/simulated_rirs/<room>/rir_list``.  Its paths start
    with ``RIRS_NOISES/`` (relative to the folder above the corpus); they are resolved
    against ``root`` whatever its name."""
    root = Path(root)
    listing = root / "simulated_rirs" / room / "rir_list"
    if not listing.is_file():
        raise InputError(f"no {listing.relative_to(root)}: expected RIRS_NOISES/"
                         f"simulated_rirs/{room}/rir_list in it", path=root)
    recs, absent = {}, []
    for lineno, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        rir_id, wav = _rir_line(line, listing, lineno)
        parts = Path(wav).parts
        path = root.joinpath(*parts[1:]) if parts[0] == "RIRS_NOISES" else root / wav
        key = rir_id or f"{room}-{path.parent.name}-{path.stem}"
        if key in recs:
            raise InputError("duplicate RIR id", path=listing, line=lineno, key=key)
        if not path.is_file():
            absent.append(wav)
        recs[key] = Recording(key, key, path.resolve())
    if absent:
        raise InputError(f"{len(absent)} of {len(recs)} listed files are missing (e.g. "
                         f"{', '.join(absent[:EXAMPLES])})", path=listing)
    if not recs:
        raise InputError("no impulse responses listed", path=listing)
    return [recs[k] for k in sorted(recs)]


def prepare_musan(root: Path, data_dir: Path, nj: int = 1) -> list[Path]:
    """``<data_dir>/musan_{music,noise,speech}``."""
    if not Path(root).is_dir():
        raise InputError("MUSAN directory does not exist", path=root)
    return [write_data_dir(Path(data_dir) / f"musan_{c}", musan_files(root, c), nj)
            for c in MUSAN_CATEGORIES]


def prepare_rirs(root: Path, data_dir: Path, nj: int = 1) -> Path:
    """``<data_dir>/rirs``: the simulated small- and medium-room responses."""
    if not Path(root).is_dir():
        raise InputError("RIRS_NOISES directory does not exist", path=root)
    recs = [r for room in RIR_ROOMS for r in rir_files(root, room)]
    return write_data_dir(Path(data_dir) / "rirs", sorted(recs, key=lambda r: r.utt), nj)


def write_data_dir(dest: Path, recs: list[Recording], nj: int) -> Path:
    """wav.scp, utt2spk, spk2utt and utt2dur: every file its own speaker."""
    with staged_dir(dest) as tmp:
        write_tables(tmp, recording_tables(recs, SAMPLE_RATE, nj))
    log.info("%s: %d files", dest, len(recs))
    return dest
