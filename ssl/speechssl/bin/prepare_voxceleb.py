"""VoxCeleb as Kaldi data dirs (see :mod:`speechssl.corpus.voxceleb` for the layouts).

  voxceleb1 <voxceleb1-root> <data-dir>
      <data-dir>/voxceleb1_dev, voxceleb1_test (with trials: VoxCeleb1-O cleaned) and, with
      --extended-trials true and the lists present, voxceleb1 (all of it) with trials_e and
      trials_h (VoxCeleb1-E and -H cleaned, which use dev speakers).
  voxceleb2 <voxceleb2-root> <wav-dir> <data-dir>
      <data-dir>/voxceleb2_dev; the m4a files are decoded once with ffmpeg into
      <wav-dir>/<speaker>/<ytid>/<segment>.wav (16 kHz, about 270 GB for the dev set).

e.g.: python -m speechssl.bin.prepare_voxceleb voxceleb1 --nj 8 /corpora/voxceleb1 data
      python -m speechssl.bin.prepare_voxceleb voxceleb2 --nj 16 /corpora/voxceleb2 \\
          wav/voxceleb2 data
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import kaldi_bool, positive_int, run
from speechssl.corpus.voxceleb import prepare_voxceleb1, prepare_voxceleb2

log = logging.getLogger("prepare_voxceleb")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="prepare_voxceleb", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="corpus", required=True)
    v1 = sub.add_parser("voxceleb1", help="VoxCeleb1 dev and test, trial lists")
    v1.add_argument("--extended-trials", type=kaldi_bool, default=False,
                    help="also VoxCeleb1-E and -H when their lists are there (true|false)")
    v2 = sub.add_parser("voxceleb2", help="VoxCeleb2 dev, decoded to wav")
    for s in (v1, v2):
        s.add_argument("--nj", type=positive_int, default=1,
                       help="threads reading headers, decoding")
        s.add_argument("root", type=Path, help="the corpus as downloaded and unpacked")
    v2.add_argument("wav_dir", type=Path, help="where the decoded wavs go")
    for s in (v1, v2):
        s.add_argument("data_dir", type=Path)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.corpus == "voxceleb1":
        prepare_voxceleb1(args.root, args.data_dir, args.extended_trials, args.nj)
    else:
        prepare_voxceleb2(args.root, args.wav_dir, args.data_dir, args.nj)
    return 0


if __name__ == "__main__":
    run(main, "prepare_voxceleb")
