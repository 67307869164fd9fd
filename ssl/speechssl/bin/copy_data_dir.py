"""Copy a data dir (utils/copy_data_dir.sh): tables checked and re-sorted, plain files
such as alignments and trials copied, sub-folders left behind."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from speechssl.cli import run
from speechssl.data.edit import copy_data_dir

log = logging.getLogger("copy_data_dir")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="copy_data_dir", description=__doc__)
    p.add_argument("src_dir")
    p.add_argument("dest_dir")
    args = p.parse_args(argv)
    copy_data_dir(args.src_dir, args.dest_dir)
    log.info("Copied data dir %s to %s", args.src_dir, args.dest_dir)
    return 0


if __name__ == "__main__":
    run(main, "copy_data_dir")
