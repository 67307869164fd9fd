"""Kaldi text tables: one ``key value...`` line per entry, C-sorted, unique keys.

These are the files of a Kaldi data directory (``utt2spk``, ``wav.scp``, ``text``, ...).
Sorting is by code point, which for UTF-8 text is the byte order ``LC_ALL=C sort`` uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from speechssl.errors import InputError
from speechssl.fileio import atomic_write

PathLike = str | os.PathLike


def iter_table(path: PathLike, min_fields: int = 2, max_fields: int | None = None,
               ) -> Iterator[tuple[int, str, str]]:
    """Yield ``(line_number, key, rest_of_line)``; a line with too few or too many fields,
    a blank line or a line that is not UTF-8 is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError as e:
                raise InputError(f"not UTF-8 ({e.reason})", path=path, line=lineno) from None
            fields = line.split()
            if not fields:
                raise InputError("empty line", path=path, line=lineno)
            if len(fields) < min_fields:
                raise InputError(f"expected at least {min_fields} fields, got {len(fields)}",
                                 path=path, line=lineno, key=fields[0])
            if max_fields is not None and len(fields) > max_fields:
                raise InputError(f"expected at most {max_fields} fields, got {len(fields)}",
                                 path=path, line=lineno, key=fields[0])
            key = fields[0]
            yield lineno, key, line[len(line) - len(line.lstrip()) + len(key):].strip()


def read_table(path: PathLike, min_fields: int = 2, max_fields: int | None = None,
               check_sorted: bool = True) -> dict[str, str]:
    """Read a table into an ordered dict ``key -> rest of line``.

    Duplicate keys are always an error; keys out of C order are an error unless
    ``check_sorted`` is False (Kaldi's tools assume sorted tables for random access).
    """
    table: dict[str, str] = {}
    previous = None
    for lineno, key, value in iter_table(path, min_fields, max_fields):
        if key in table:
            raise InputError("duplicate key", path=path, line=lineno, key=key)
        if check_sorted and previous is not None and key < previous:
            raise InputError(f"not sorted: comes after '{previous}' "
                             "(sort with LC_ALL=C, or run utils/fix_data_dir.sh)",
                             path=path, line=lineno, key=key)
        table[key] = value
        previous = key
    return table


def read_list_table(path: PathLike, check_sorted: bool = True) -> dict[str, list[str]]:
    """A table whose values are whitespace-separated lists (``spk2utt``, ``text`` tokens)."""
    return {k: v.split() for k, v in read_table(path, check_sorted=check_sorted).items()}


def format_value(value: str | Iterable[object]) -> str:
    if isinstance(value, str):
        return value
    return " ".join(str(v) for v in value)


def write_table(path: PathLike, table: Mapping[str, object] | Iterable[tuple[str, object]],
                sort: bool = True) -> None:
    """Write ``key value`` lines atomically, C-sorted unless ``sort`` is False.

    Values may be strings or sequences (joined by single spaces).  A key containing
    whitespace cannot be read back, so it is refused.
    """
    items = list(table.items()) if isinstance(table, Mapping) else list(table)
    if sort:
        items.sort(key=lambda kv: kv[0])
    with atomic_write(path) as f:
        for key, value in items:
            if not key or any(c.isspace() for c in key):
                raise InputError("key is empty or contains whitespace", path=path, key=key)
            text = format_value(value)
            f.write(f"{key} {text}\n" if text else f"{key}\n")
