"""Print the lines of a table whose field F is (or with --exclude, is not) in an id list
(utils/filter_scp.pl).  Output keeps the input's order."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.errors import InputError


def _ids(path: str) -> set[str]:
    if not Path(path).is_file():
        raise InputError("no such file", path=path)
    with open(path, encoding="utf-8") as f:
        return {line.split()[0] for line in f if line.strip()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="filter_scp", description=__doc__)
    p.add_argument("--exclude", action="store_true", help="keep lines whose id is NOT listed")
    p.add_argument("-f", "--field", type=int, default=1, help="1-based field to match")
    p.add_argument("id_list")
    p.add_argument("input", nargs="?", default="-")
    args = p.parse_args(argv)
    ids = _ids(args.id_list)
    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    with source:
        for lineno, line in enumerate(source, start=1):
            fields = line.split()
            if len(fields) < args.field:
                raise InputError(f"line has no field {args.field}", path=args.input,
                                 line=lineno)
            if (fields[args.field - 1] in ids) != args.exclude:
                sys.stdout.write(line)
    return 0


if __name__ == "__main__":
    run(main, "filter_scp")
