"""Split a data dir into N parts by speaker (utils/split_data.sh); prints the split dir."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from speechssl.cli import run
from speechssl.data.edit import split_data_dir


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="split_data", description=__doc__)
    p.add_argument("--per-utt", action="store_true",
                   help="split by utterance (into split<N>utt), speakers may be divided")
    p.add_argument("--ignore", action="append", default=[], metavar="FILE",
                   help="leave this file out of the parts (repeatable), e.g. the feats.scp "
                        "that the calling step is about to replace")
    p.add_argument("data_dir")
    p.add_argument("num_parts", type=int)
    args = p.parse_args(argv)
    parts = split_data_dir(args.data_dir, args.num_parts, per_utt=args.per_utt,
                           ignore=args.ignore)
    print(parts[0].parent)
    return 0


if __name__ == "__main__":
    run(main, "split_data")
