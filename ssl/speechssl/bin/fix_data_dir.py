"""Sort a data dir and keep only utterances present everywhere (utils/fix_data_dir.sh)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from speechssl.cli import run
from speechssl.data.edit import fix_data_dir

log = logging.getLogger("fix_data_dir")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fix_data_dir", description=__doc__)
    p.add_argument("data_dir")
    args = p.parse_args(argv)
    removed = fix_data_dir(args.data_dir)
    log.info("Fixed %s: %d lines removed in all (originals in %s/.backup)",
             args.data_dir, sum(removed.values()), args.data_dir)
    return 0


if __name__ == "__main__":
    run(main, "fix_data_dir")
