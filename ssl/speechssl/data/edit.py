"""Make new data dirs from old ones: fix (``fix_data_dir.sh``), subset and split.

All three reduce to one operation, :func:`_subset_tables`: keep a set of utterances and
every line of every table that belongs to them.  Subsets and splits write it to a new
dir (:func:`write_subset`); the fix replaces the dir's own files, all or nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from speechssl.data.datadir import TABLES, DataDir, spk2utt_of
from speechssl.data.table import PathLike, iter_table, write_table
from speechssl.errors import InputError, examples
from speechssl.fileio import atomic_write

log = logging.getLogger(__name__)

# Plain files copied unchanged into every subset (eval_opts: see steps/make_feats.sh).
COPIED_FILES = ("frame_shift", "eval_opts", "ssl_model")
# Alignments, several lines per utterance (or per recording, with segments): a subset
# keeps the lines of its utterances and recordings, in their order.
ALIGNMENT_FILES = ("words.ctm", "phones.ctm", "phone_ali")
# In split<N>[utt]/: a hash of what the parts were made from (see _source_hash).
SPLIT_HASH_FILE = ".source_hash"


def write_subset(src: DataDir, dest: PathLike, utts: Iterable[str],
                 ignore: Collection[str] = ()) -> Path:
    """Write to ``dest`` the data dir of ``src`` restricted to ``utts``; spk2utt rebuilt.
    Files named in ``ignore`` are left out."""
    dest = Path(dest)
    if dest.resolve() == src.path.resolve():
        raise InputError("cannot write a subset over its own data dir "
                         "(utils/fix_data_dir.sh filters in place)", path=dest)
    dest.mkdir(parents=True, exist_ok=True)
    keep = set(utts)
    utt2rec = src.utt2rec()
    names = [n for n in src.present_tables() if n != "spk2utt" and n not in ignore]
    tables = _subset_tables({n: src.table(n) for n in names}, src.utt2spk, utt2rec, keep)
    for name, table in tables.items():
        write_table(dest / name, table)
    for name in COPIED_FILES:
        if (src.path / name).is_file() and name not in ignore:
            shutil.copyfile(src.path / name, dest / name)
    for name in ALIGNMENT_FILES:
        if (src.path / name).is_file() and name not in ignore:
            _filter_alignment(src.path / name, dest / name, keep | {utt2rec[u] for u in keep})
    return dest


def _subset_tables(tables: dict[str, dict[str, str]], utt2spk: dict[str, str],
                   utt2rec: dict[str, str], keep: set[str]) -> dict[str, dict[str, object]]:
    """The lines of ``tables`` (spk2utt excluded) that belong to the utterances ``keep``,
    their speakers or recordings; plus spk2utt rebuilt from them."""
    ids = {"utt": keep,
           "spk": {utt2spk[u] for u in keep},
           "rec": {utt2rec[u] for u in keep}}
    subset: dict[str, dict[str, object]] = {
        name: {k: v for k, v in table.items() if k in ids[TABLES[name].keyed_by]}
        for name, table in tables.items()}
    subset["spk2utt"] = spk2utt_of({u: utt2spk[u] for u in keep})
    return subset


def _filter_alignment(src: Path, dest: Path, ids: set[str]) -> int:
    """Copy the lines of ``src`` whose first field is in ``ids``; returns how many were not."""
    dropped = 0
    with open(src, encoding="utf-8") as fin, atomic_write(dest) as fout:
        for line in fin:
            fields = line.split(maxsplit=1)
            if fields and fields[0] in ids:
                fout.write(line)
            else:
                dropped += 1
    return dropped


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
    recording is in wav.scp), drop orphans (also from the alignments), rebuild spk2utt.
    Originals go to ``.backup/``.

    All or nothing: the new files are written to a staging folder inside ``path`` and
    moved in by renames only when all of them are complete, so an error (a bad line, a
    full disk) leaves the data dir as it was.  Returns the number of lines removed per file.
    """
    path = Path(path)
    names = [n for n in TABLES if (path / n).is_file()]
    if "utt2spk" not in names:
        raise InputError("required file is missing", path=path / "utt2spk")
    tables = {n: _read_for_fixing(path / n, n) for n in names if n != "spk2utt"}
    keep = set(_utterances_everywhere(tables))
    segments = tables.get("segments")
    utt2rec = {u: segments[u].split()[0] if segments else u for u in keep}
    fixed = _subset_tables(tables, tables["utt2spk"], utt2rec, keep)
    alignments = [n for n in ALIGNMENT_FILES if (path / n).is_file()]
    stage = Path(tempfile.mkdtemp(prefix=".fix_data_dir.", dir=path))
    try:
        removed = {n: len(tables[n]) - len(fixed[n]) for n in tables}
        for name, table in fixed.items():
            write_table(stage / name, table)
        for name in alignments:
            removed[name] = _filter_alignment(path / name, stage / name,
                                              keep | set(utt2rec.values()))
        for name in names + alignments:  # the originals, staged too: a full disk shows here
            shutil.copyfile(path / name, stage / f"{name}.orig")
        _move_in(stage, path, list(fixed) + alignments)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for name, count in removed.items():
        if count:
            log.warning("%s: removed %d lines (originals in %s)", path / name, count,
                        path / ".backup")
    return removed


def _move_in(stage: Path, path: Path, names: Sequence[str]) -> None:
    """Renames only (nothing left that could fail for lack of space or a bad line): the
    staged originals into ``.backup/``, then the new files over the old ones."""
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for orig in sorted(stage.glob("*.orig")):
        os.replace(orig, backup / orig.name.removesuffix(".orig"))
    for name in names:
        os.replace(stage / name, path / name)


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


def split_data_dir(path: PathLike, n: int, per_utt: bool = False,
                   ignore: Collection[str] = ()) -> list[Path]:
    """Split into ``<path>/split<n>/{1..n}`` by speaker (``split<n>utt`` per utterance).

    Kaldi semantics: a speaker is never divided between parts, so CMVN and speaker
    adaptation see whole speakers.  A split is reused while its sources' contents and its
    parameters are unchanged (a hash in ``.source_hash``, written last).  Files named in
    ``ignore`` are not split (a step that is about to replace them does not need them).
    """
    d = DataDir(path)
    groups = [[u] for u in d.utts] if per_utt else list(d.spk2utt().values())
    if not 1 <= n <= len(groups):
        what = "utterances" if per_utt else "speakers"
        raise InputError(f"cannot split into {n} parts: need 1 to {len(groups)} "
                         f"(only {len(groups)} {what})", path=d.path)
    base = d.path / (f"split{n}utt" if per_utt else f"split{n}")
    parts = [base / str(i) for i in range(1, n + 1)]
    sources = _split_sources(d, ignore)
    digest = _source_hash(sources, n, per_utt, ignore)
    stamp = base / SPLIT_HASH_FILE
    if _split_is_fresh(stamp, digest, parts):
        return parts
    stamp.unlink(missing_ok=True)  # an interrupted re-split must not look fresh
    bounds = split_points([len(g) for g in groups], n)
    for i, part in enumerate(parts):
        utts = [u for g in groups[bounds[i]:bounds[i + 1]] for u in g]
        _remove_stale_files(part, {p.name for p in sources} | {"spk2utt"})
        write_subset(d, part, utts, ignore)
    with atomic_write(stamp) as f:  # written last: the parts are complete
        f.write(digest + "\n")
    return parts


def _split_sources(d: DataDir, ignore: Collection[str]) -> list[Path]:
    """The files of ``d`` that its split parts are made from."""
    names = d.present_tables() + [n for n in COPIED_FILES + ALIGNMENT_FILES
                                  if (d.path / n).is_file()]
    return [d.path / n for n in names if n not in ignore]


def _source_hash(sources: Sequence[Path], n: int, per_utt: bool,
                 ignore: Collection[str]) -> str:
    """sha1 of the split's parameters and of the sources' names and bytes.

    Content, not modification times: an edit can keep the mtime order (same second,
    ``cp -p``, ``touch -r``, a copied dir), and a stale part gives features of old audio.
    """
    h = hashlib.sha1(f"split {n} per_utt={per_utt} ignore={sorted(ignore)}\n".encode())
    for path in sources:
        h.update(f"{path.name} {path.stat().st_size}\n".encode())  # where one file ends
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _split_is_fresh(stamp: Path, digest: str, parts: Sequence[Path]) -> bool:
    try:
        recorded = stamp.read_text().strip()
    except FileNotFoundError:
        return False
    return recorded == digest and all((p / "utt2spk").is_file() for p in parts)


def _remove_stale_files(part: Path, keep: Collection[str]) -> None:
    """Remove the files of an earlier split that this one will not write (a table since
    deleted from the source, or now ignored), so a part never holds one of them.  Hidden
    files are left: one may be the temporary of a concurrent split of the same dir."""
    if part.is_dir():
        for f in part.iterdir():
            if f.is_file() and f.name not in keep and not f.name.startswith("."):
                f.unlink(missing_ok=True)


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
                             f"({examples(missing)})", path=d.path / "utt2spk")
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
