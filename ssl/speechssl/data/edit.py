"""Make new data dirs from old ones: fix (``fix_data_dir.sh``), subset and split.

All three reduce to one operation, :func:`write_subset`: keep a set of utterances and
every line of every table that belongs to them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from speechssl.data.datadir import TABLES, DataDir, _examples
from speechssl.data.table import PathLike, iter_table, write_table
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

log = logging.getLogger(__name__)

# Plain files copied unchanged into every subset.
COPIED_FILES = ("frame_shift",)
# Alignments, several lines per utterance (or per recording, with segments): a subset
# keeps the lines of its utterances and recordings, in their order.
ALIGNMENT_FILES = ("words.ctm", "phones.ctm", "phone_ali")


def write_subset(src: DataDir, dest: PathLike, utts: Iterable[str]) -> Path:
    """Write to ``dest`` the data dir of ``src`` restricted to ``utts``; spk2utt rebuilt."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    keep = set(utts)
    utt2rec = src.utt2rec()
    ids = {"utt": keep,
           "spk": {src.utt2spk[u] for u in keep},
           "rec": {utt2rec[u] for u in keep}}
    for name in src.present_tables():
        if name == "spk2utt":
            continue
        wanted = ids[TABLES[name].keyed_by]
        write_table(dest / name, {k: v for k, v in src.table(name).items() if k in wanted})
    spk2utt = {}
    for utt in sorted(keep):
        spk2utt.setdefault(src.utt2spk[utt], []).append(utt)
    write_table(dest / "spk2utt", spk2utt)
    for name in COPIED_FILES:
        if (src.path / name).is_file():
            shutil.copyfile(src.path / name, dest / name)
    for name in ALIGNMENT_FILES:
        if (src.path / name).is_file():
            _filter_alignment(src.path / name, dest / name, keep | ids["rec"])
    return dest


def _filter_alignment(src: Path, dest: Path, ids: set[str]) -> None:
    with open(src, encoding="utf-8") as fin, atomic_write(dest) as fout:
        for line in fin:
            fields = line.split(maxsplit=1)
            if fields and fields[0] in ids:
                fout.write(line)


def _read_for_fixing(path: Path, name: str) -> dict[str, str]:
    """Read a table without requiring order; exact duplicate lines are merged,
    a key repeated with a different value is an error (which one is right?)."""
    spec = TABLES[name]
    table: dict[str, str] = {}
    for lineno, key, value in iter_table(path, spec.min_fields, spec.max_fields):
        if key in table and table[key] != value:
            raise InputError("key repeated with a different value; fix by hand",
                             path=path, line=lineno, key=key)
        table[key] = value
    return table


def fix_data_dir(path: PathLike) -> dict[str, int]:
    """Sort every table, keep utterances present in all utterance tables (and whose
    recording is in wav.scp), drop orphans, rebuild spk2utt.  Originals go to ``.backup/``.

    Returns the number of lines removed per table.
    """
    path = Path(path)
    names = [n for n in TABLES if (path / n).is_file()]
    if "utt2spk" not in names:
        raise InputError("required file is missing", path=path / "utt2spk")
    tables = {n: _read_for_fixing(path / n, n) for n in names if n != "spk2utt"}
    keep = _utterances_everywhere(tables)
    _backup(path, names)
    before = {n: len(t) for n, t in tables.items()}
    for name in names:
        if name != "spk2utt":
            write_table(path / name, tables[name])
    if (path / "spk2utt").is_file():
        (path / "spk2utt").unlink()
    d = DataDir(path)
    subset_dir = write_subset(d, path, keep)
    removed = {n: before[n] - len(DataDir(subset_dir).table(n)) for n in before}
    for name, count in removed.items():
        if count:
            log.warning("%s: removed %d of %d lines", path / name, count, before[name])
    return removed


def _utterances_everywhere(tables: dict[str, dict[str, str]]) -> list[str]:
    keep = set(tables["utt2spk"])
    for name, table in tables.items():
        if TABLES[name].keyed_by == "utt":
            keep &= set(table)
    if "wav.scp" in tables:
        recs = set(tables["wav.scp"])
        segments = tables.get("segments")
        keep = {u for u in keep if (segments[u].split()[0] if segments else u) in recs}
    if not keep:
        raise InputError("no utterance is present in every table; nothing would be left")
    return sorted(keep)


def _backup(path: Path, names: Sequence[str]) -> None:
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(path / name, backup / name)


def split_points(weights: Sequence[int], n: int) -> list[int]:
    """Cut a sequence of weights into ``n`` contiguous non-empty parts of about equal
    total weight; returns the ``n + 1`` boundaries.

    >>> split_points([1, 1, 1, 1], 2)
    [0, 2, 4]
    """
    if not 1 <= n <= len(weights):
        raise InputError(f"cannot split {len(weights)} items into {n} non-empty parts")
    total, bounds, acc = sum(weights), [0], 0
    for i, w in enumerate(weights):
        acc += w
        parts_left = n - len(bounds)
        items_left = len(weights) - (i + 1)
        if parts_left > 0 and (acc >= total * len(bounds) / n or items_left == parts_left):
            bounds.append(i + 1)
    bounds.append(len(weights))
    return bounds


def split_data_dir(path: PathLike, n: int, per_utt: bool = False) -> list[Path]:
    """Split into ``<path>/split<n>/{1..n}`` by speaker (``split<n>utt`` per utterance).

    Kaldi semantics: a speaker is never divided between parts, so CMVN and speaker
    adaptation see whole speakers.  An up-to-date split is reused.
    """
    d = DataDir(path)
    base = d.path / (f"split{n}utt" if per_utt else f"split{n}")
    parts = [base / str(i) for i in range(1, n + 1)]
    if _split_is_fresh(d, parts):
        return parts
    groups = [[u] for u in d.utts] if per_utt else list(d.spk2utt().values())
    if n > len(groups):
        what = "utterances" if per_utt else "speakers"
        raise InputError(f"cannot split into {n} parts: only {len(groups)} {what}", path=d.path)
    bounds = split_points([len(g) for g in groups], n)
    for i, part in enumerate(parts):
        utts = [u for g in groups[bounds[i]:bounds[i + 1]] for u in g]
        write_subset(d, part, utts)
    return parts


def _split_is_fresh(d: DataDir, parts: list[Path]) -> bool:
    sources = [d.path / n for n in d.present_tables()]
    newest_source = max(p.stat().st_mtime for p in sources)
    try:
        return all(min((p / n.name).stat().st_mtime for n in sources if n.name != "spk2utt")
                   >= newest_source for p in parts)
    except FileNotFoundError:
        return False


def select_utterances(d: DataDir, utt_list: Sequence[str] | None = None,
                      spk_list: Sequence[str] | None = None, first: int | None = None,
                      last: int | None = None, num: int | None = None,
                      per_spk: int | None = None) -> list[str]:
    """Choose utterances as ``utils/subset_data_dir.sh`` does: by list, first/last N,
    N spread evenly over the whole set (Kaldi's default for a bare N), or up to N of each
    speaker spread evenly over its utterances (``--per-spk``)."""
    utts = d.utts
    if per_spk is not None:
        if per_spk < 1:
            raise InputError(f"need at least 1 utterance per speaker, got {per_spk}",
                             path=d.path)
        return sorted(u for spk_utts in d.spk2utt().values()
                      for u in spread_per_speaker(spk_utts, per_spk))
    if utt_list is not None:
        missing = set(utt_list) - set(utts)
        if missing:
            raise InputError(f"{len(missing)} listed utterances are not in the data dir "
                             f"({_examples(missing)})", path=d.path / "utt2spk")
        return sorted(set(utt_list))
    if spk_list is not None:
        wanted = set(spk_list)
        return [u for u in utts if d.utt2spk[u] in wanted]
    count = first if first is not None else last if last is not None else num
    if count is None or not 0 < count <= len(utts):
        raise InputError(f"need 0 < N <= {len(utts)} utterances, got {count}", path=d.path)
    if first is not None:
        return utts[:count]
    if last is not None:
        return utts[-count:]
    return [utts[(i * len(utts)) // count] for i in range(count)]


def spread_per_speaker(utts: Sequence[str], n: int) -> list[str]:
    """Kaldi's ``--per-spk`` choice: every k-th utterance from the first, with the largest
    k that still gives n, so a speaker with fewer than n keeps all.

    >>> spread_per_speaker(list("abcdefg"), 3), spread_per_speaker(list("ab"), 3)
    (['a', 'c', 'e'], ['a', 'b'])
    """
    skip = 1
    while n * (skip + 1) <= len(utts):
        skip += 1
    return list(utts[: n * skip : skip])


def copy_data_dir(src: PathLike, dest: PathLike) -> Path:
    """Copy a whole data dir: its tables (re-checked on the way) and its other plain files
    (alignments, trials, word lists), which belong to every utterance and so go unchanged.
    Sub-folders (splits, backups, features) are not copied."""
    d = DataDir(src)
    dest = write_subset(d, dest, d.utts)
    for f in sorted(d.path.iterdir()):
        if f.is_file() and f.name not in TABLES and not f.name.startswith("."):
            shutil.copyfile(f, dest / f.name)
    return dest
