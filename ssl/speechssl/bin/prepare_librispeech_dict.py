"""The Kaldi dict dir of LibriSpeech's published lexicon (librispeech-lexicon.txt of
openslr.org/11), as Kaldi's egs/librispeech/s5/local/prepare_dict.sh --stage 3 writes it:
lexicon.txt with !SIL SIL, <SPOKEN_NOISE> SPN and <UNK> SPN added, silence_phones.txt
(SIL SPN), optional_silence.txt (SIL), nonsilence_phones.txt (a base phone and its stress
variants on one line) and extra_questions.txt; see speechssl.corpus.librispeech_dict.

e.g.: python -m speechssl.bin.prepare_librispeech_dict corpus/lm/librispeech-lexicon.txt \\
          data/local/dict
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.corpus.librispeech_dict import prepare_dict

log = logging.getLogger("prepare_librispeech_dict")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prepare_librispeech_dict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lexicon", type=Path, help="librispeech-lexicon.txt")
    p.add_argument("dict_dir", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts = prepare_dict(args.lexicon, args.dict_dir)
    log.info("Wrote %s: %d words, %d pronunciations, %d phones of %d base phones",
             args.dict_dir, counts["words"], counts["pronunciations"], counts["phones"],
             counts["base_phones"])
    return 0


if __name__ == "__main__":
    run(main, "prepare_librispeech_dict")
