"""Validate a Kaldi data dir (``utils/validate_data_dir.sh``): check only, change nothing.

The checks are table-driven from :data:`speechssl.data.datadir.TABLES`: every present table
must parse, be C-sorted with unique keys, and list exactly the ids of its key kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from speechssl.data.datadir import TABLES, DataDir
from speechssl.errors import InputError, examples

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requirements:
    """What must be present (Kaldi's --no-text, --no-wav, --no-feats)."""

    text: bool = True
    wav: bool = True
    feats: bool = False
    # Files not checked at all: those the calling step is about to replace (a stale
    # feats.scp must not stop make_fbank.sh from rewriting it).
    ignore: frozenset[str] = frozenset()


def _check_same_ids(d: DataDir, name: str, expected: set[str], what: str) -> None:
    have = set(d.table(name))
    if have != expected:
        extra, missing = have - expected, expected - have
        parts = []
        if missing:
            parts.append(f"{len(missing)} {what}s missing ({examples(missing)})")
        if extra:
            parts.append(f"{len(extra)} {what}s not in utt2spk ({examples(extra)})")
        raise InputError(f"ids differ from utt2spk: {'; '.join(parts)} "
                         "(utils/fix_data_dir.sh keeps the common ones)", path=d.path / name)


def _check_speaker_order(d: DataDir) -> None:
    """utt2spk sorted by utterance must also be sorted by speaker (speaker-prefixed ids)."""
    previous_spk, previous_utt = "", ""
    for lineno, (utt, spk) in enumerate(d.utt2spk.items(), start=1):
        if spk < previous_spk:
            raise InputError(f"not sorted by speaker too: speaker '{spk}' comes after "
                             f"'{previous_spk}' (of '{previous_utt}'); make the speaker id a "
                             "prefix of the utterance id", path=d.path / "utt2spk",
                             line=lineno, key=utt)
        previous_spk, previous_utt = spk, utt


def _check_spk2utt(d: DataDir) -> None:
    on_disk = {spk: v.split() for spk, v in d.table("spk2utt").items()}
    derived = d.spk2utt()
    for spk in sorted(set(on_disk) | set(derived)):
        if on_disk.get(spk) != derived.get(spk):
            raise InputError("spk2utt does not match utt2spk (rebuild it with "
                             "utils/utt2spk_to_spk2utt.sh or utils/fix_data_dir.sh)",
                             path=d.path / "spk2utt", key=spk)


def _check_recordings(d: DataDir) -> None:
    recs = set(d.table("wav.scp"))
    if not d.has("segments"):
        _check_same_ids(d, "wav.scp", set(d.utt2spk), "utterance")
        return
    _check_same_ids(d, "segments", set(d.utt2spk), "utterance")
    used = set(d.utt2rec().values())
    missing = used - recs
    if missing:
        raise InputError(f"{len(missing)} recordings of segments are not in wav.scp "
                         f"({examples(missing)})", path=d.path / "segments")
    if recs - used:
        log.warning("%s: %d recordings have no segment (%s)", d.path / "wav.scp",
                    len(recs - used), examples(recs - used))


def _require(d: DataDir, req: Requirements) -> None:
    needed = ["utt2spk", "spk2utt"] + ["text"] * req.text + ["wav.scp"] * req.wav
    needed += ["feats.scp"] * req.feats
    for name in needed:
        if not d.has(name):
            raise InputError("required file is missing", path=d.path / name)


def validate_data_dir(path, req: Requirements = Requirements()) -> DataDir:
    """Raise :class:`InputError` on the first problem; return the loaded data dir."""
    d = DataDir(path)
    _require(d, req)
    if not d.utt2spk:
        raise InputError("no utterances", path=d.path / "utt2spk")
    _check_speaker_order(d)
    present = [n for n in d.present_tables() if n not in req.ignore]
    for name in present:
        d.table(name)  # format, sorting, duplicates, value kinds
    _check_spk2utt(d)
    if d.has("wav.scp"):
        _check_recordings(d)
    speakers = set(d.utt2spk.values())
    for name in present:
        keyed_by = TABLES[name].keyed_by
        if name in ("utt2spk", "spk2utt", "wav.scp", "segments", "reco2dur",
                    "reco2file_and_channel"):
            continue
        expected = set(d.utt2spk) if keyed_by == "utt" else speakers
        _check_same_ids(d, name, expected, "utterance" if keyed_by == "utt" else "speaker")
    if d.has("frame_shift") and "frame_shift" not in req.ignore:
        d.frame_shift()
    return d
