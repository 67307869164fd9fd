"""Copy part of a data dir (utils/subset_data_dir.sh): by utterance or speaker list,
the first or last N utterances, N utterances spread evenly over the set, or N per speaker."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.data.datadir import DataDir
from speechssl.data.edit import select_utterances, write_subset
from speechssl.data.table import read_table

log = logging.getLogger("subset_data_dir")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="subset_data_dir", description=__doc__)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--utt-list", help="file whose first field is an utterance id")
    how.add_argument("--spk-list", help="file whose first field is a speaker id")
    how.add_argument("--first", type=int, metavar="N")
    how.add_argument("--last", type=int, metavar="N")
    how.add_argument("--num", type=int, metavar="N", help="N utterances spread evenly")
    how.add_argument("--per-spk", type=int, metavar="N",
                     help="up to N utterances of each speaker, spread evenly")
    p.add_argument("src_dir")
    p.add_argument("dest_dir")
    return p.parse_args(argv)


def _first_fields(path: str) -> list[str]:
    return list(read_table(Path(path), min_fields=1, check_sorted=False))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    src = DataDir(args.src_dir)
    utts = select_utterances(
        src,
        utt_list=_first_fields(args.utt_list) if args.utt_list else None,
        spk_list=_first_fields(args.spk_list) if args.spk_list else None,
        first=args.first, last=args.last, num=args.num, per_spk=args.per_spk)
    write_subset(src, args.dest_dir, utts)
    log.info("Wrote %d of %d utterances of %s to %s", len(utts), len(src.utts),
             args.src_dir, args.dest_dir)
    return 0


if __name__ == "__main__":
    run(main, "subset_data_dir")
