"""Turn utt2spk into spk2utt (utils/utt2spk_to_spk2utt.pl): reads a file or stdin."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from speechssl.cli import run
from speechssl.errors import InputError


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="utt2spk_to_spk2utt", description=__doc__)
    p.add_argument("utt2spk", nargs="?", default="-")
    args = p.parse_args(argv)
    source = sys.stdin if args.utt2spk == "-" else open(args.utt2spk, encoding="utf-8")
    spk2utt: dict[str, list[str]] = {}
    with source:
        for lineno, line in enumerate(source, start=1):
            fields = line.split()
            if len(fields) != 2:
                raise InputError(f"expected '<utt> <spk>', got {len(fields)} fields",
                                 path=args.utt2spk, line=lineno)
            spk2utt.setdefault(fields[1], []).append(fields[0])
    for spk, utts in spk2utt.items():  # first-seen order, like Kaldi's script
        sys.stdout.write(f"{spk} {' '.join(utts)}\n")
    return 0


if __name__ == "__main__":
    run(main, "utt2spk_to_spk2utt")
