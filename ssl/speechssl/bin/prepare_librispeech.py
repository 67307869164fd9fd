"""Kaldi data dirs for the LibriSpeech subsets present (see speechssl.corpus.librispeech).

Writes <data-dir>/<subset with _ for ->/{wav.scp,text,utt2spk,spk2utt,spk2gender,utt2dur};
the speaker is the reader, wav.scp points at the .flac files.  Prints the data dirs written,
one a line, on stdout.

e.g.: python -m speechssl.bin.prepare_librispeech /data/LibriSpeech data
      python -m speechssl.bin.prepare_librispeech --subsets train-clean-100,dev-clean \\
          /data/LibriSpeech data
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.corpus.librispeech import SUBSETS, data_dir_name, prepare


def _subsets(text: str) -> list[str]:
    return [s for s in re.split(r"[\s,]+", text) if s]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="prepare_librispeech", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subsets", type=_subsets, default=[],
                   help=f"comma- or blank-separated, from {', '.join(SUBSETS)} "
                        "(default: every subset present)")
    p.add_argument("librispeech_dir", type=Path, help="the LibriSpeech/ folder")
    p.add_argument("data_dir", type=Path)
    args = p.parse_args(argv)
    summary = prepare(args.librispeech_dir, args.data_dir, args.subsets)
    for subset in summary:
        print(args.data_dir / data_dir_name(subset))
    return 0


if __name__ == "__main__":
    run(main, "prepare_librispeech")
