"""Write a new data dir in one piece: the one way every importer does it (the synthetic
corpus, LibriSpeech, the CPC protocol, VoxCeleb, MUSAN and RIRs, Buckeye and Xitsonga).

``with staged_dir(dest) as tmp:`` builds the dir in a hidden sibling folder and puts it in
place of ``dest`` only when the block ends without an error, so an interrupted or failed
import leaves the old dir (or none), never half of a new one.  :func:`write_tables` writes
the tables and derives spk2utt from utt2spk.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from speechssl.data.audio import audio_header
from speechssl.data.datadir import TABLES, spk2utt_of
from speechssl.data.table import PathLike, write_table
from speechssl.fileio import parallel_map


@dataclass(frozen=True)
class Recording:
    """One file that is one utterance (VoxCeleb, MUSAN, RIRs)."""
    utt: str
    spk: str
    path: Path    # absolute


@contextlib.contextmanager
def staged_dir(dest: PathLike) -> Iterator[Path]:
    """Yield an empty ``.<name>.tmp`` next to ``dest``; on success it replaces ``dest``.

    The old dir is renamed aside before the new one takes its name, so at every moment
    ``dest`` is either complete or absent; leftovers of a killed run are removed first.
    """
    dest = Path(dest)
    tmp, old = dest.with_name(f".{dest.name}.tmp"), dest.with_name(f".{dest.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def write_tables(out: Path, tables: Mapping[str, Mapping]) -> None:
    """Write data-dir tables by name (``utt2spk`` required) and spk2utt from utt2spk."""
    unknown = sorted(set(tables) - set(TABLES))
    if unknown or "spk2utt" in tables or "utt2spk" not in tables:
        raise ValueError(f"need utt2spk and known tables other than spk2utt, got {unknown}")
    for name, table in tables.items():
        write_table(out / name, table)
    write_table(out / "spk2utt", spk2utt_of(tables["utt2spk"]))


def recording_tables(recs: Sequence[Recording], sample_rate: int, nj: int = 1,
                     ) -> dict[str, dict[str, str]]:
    """wav.scp, utt2spk and utt2dur (read from the headers on ``nj`` threads) of
    one-utterance files; each must be non-empty ``sample_rate`` audio."""
    seconds = parallel_map(lambda r: audio_header(r.path, r.utt).require(sample_rate).seconds,
                           recs, nj)
    return {"wav.scp": {r.utt: str(r.path) for r in recs},
            "utt2spk": {r.utt: r.spk for r in recs},
            "utt2dur": {r.utt: f"{s:.3f}" for r, s in zip(recs, seconds, strict=True)}}
