"""Noise and impulse-response lists for training augmentation, as Kaldi data dirs (see
:mod:`speechssl.corpus.noises`): from --musan, <data-dir>/musan_noise, musan_music and
musan_speech (babble); from --rirs, <data-dir>/rirs (simulated small and medium rooms).

e.g.: python -m speechssl.bin.prepare_noise_lists --musan /corpora/musan \\
          --rirs /corpora/RIRS_NOISES data
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.corpus.noises import prepare_musan, prepare_rirs
from speechssl.errors import InputError


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="prepare_noise_lists", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--musan", type=Path, help="MUSAN root (music/ noise/ speech/)")
    p.add_argument("--rirs", type=Path, help="RIRS_NOISES root (simulated_rirs/)")
    p.add_argument("--nj", type=int, default=1, help="threads reading headers")
    p.add_argument("data_dir", type=Path)
    args = p.parse_args(argv)
    if args.musan is None and args.rirs is None:
        raise InputError("nothing to do: give --musan, --rirs or both")
    if args.musan is not None:
        prepare_musan(args.musan, args.data_dir, args.nj)
    if args.rirs is not None:
        prepare_rirs(args.rirs, args.data_dir, args.nj)
    return 0


if __name__ == "__main__":
    run(main, "prepare_noise_lists")
