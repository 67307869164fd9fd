"""Check a Kaldi data dir (utils/validate_data_dir.sh); exit 1 naming the first problem."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from speechssl.cli import run
from speechssl.data.validate import Requirements, validate_data_dir

log = logging.getLogger("validate_data_dir")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="validate_data_dir", description=__doc__)
    p.add_argument("--no-text", action="store_true", help="text is not required")
    p.add_argument("--no-wav", action="store_true", help="wav.scp is not required")
    p.add_argument("--no-feats", action="store_true",
                   help="accepted for Kaldi compatibility: feats.scp is checked when present")
    p.add_argument("--need-feats", action="store_true", help="feats.scp is required")
    p.add_argument("--ignore", action="append", default=[], metavar="FILE",
                   help="do not check this file (repeatable): one the calling step replaces")
    p.add_argument("data_dir")
    args = p.parse_args(argv)
    d = validate_data_dir(args.data_dir, Requirements(text=not args.no_text,
                                                      wav=not args.no_wav,
                                                      feats=args.need_feats,
                                                      ignore=frozenset(args.ignore)))
    log.info("Successfully validated data-directory %s (%d utterances, %d speakers)",
             args.data_dir, len(d.utt2spk), len(set(d.utt2spk.values())))
    return 0


if __name__ == "__main__":
    run(main, "validate_data_dir")
