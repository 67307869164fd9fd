"""Kaldi data dirs for the acoustic word embedding recipes (Kamper; van Staden & Kamper):
utterances cut at the gaps of a .wrd word alignment, with words.ctm and same-different word
lists (see speechssl.corpus.awe_corpus).

  buckeye:  <wav-root>/sNN/sNNMMx.wav, alignments like Kamper's buckeye_english.wrd;
            writes <data-dir>/{devpart1,devpart2,zs}
  xitsonga: <wav-root>/nchlt_tso_NNNg_NNNN.wav, alignments like ZeroSpeech's xitsonga.wrd;
            writes <data-dir>/xitsonga

e.g.: python -m speechssl.bin.prepare_awe_corpus --corpus buckeye \\
          /data/buckeye /data/buckeye_english.wrd data
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from speechssl.cli import run
from speechssl.corpus.awe_corpus import LAYOUTS, prepare_corpus

log = logging.getLogger("prepare_awe_corpus")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="prepare_awe_corpus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, choices=sorted(LAYOUTS))
    p.add_argument("--min-word-frames", type=int, default=50,
                   help="same-different words: at least this many 10 ms frames (50)")
    p.add_argument("--min-word-chars", type=int, default=5,
                   help="same-different words: at least this many characters (5)")
    p.add_argument("--utd-pairs", help="discovered pairs '<cluster> <file> <chan> <start> "
                   "<end> <file> <chan> <start> <end>' (10 ms frames of the files): each set "
                   "gets its own as <set>/utd_pairs, a pair list in utterance frames")
    p.add_argument("wav_root")
    p.add_argument("alignments")
    p.add_argument("data_dir")
    args = p.parse_args(argv)
    if args.min_word_frames < 1 or args.min_word_chars < 1:
        p.error("--min-word-frames and --min-word-chars must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    summary = prepare_corpus(args.corpus, args.wav_root, args.alignments, args.data_dir,
                             args.min_word_frames, args.min_word_chars, args.utd_pairs)
    for name, s in summary.sets.items():
        log.info("%s/%s: %d speakers, %d recordings, %d utterances, %d words, %.2f h of "
                 "speech, %d same-different words%s", args.data_dir, name, s.speakers,
                 s.recordings, s.utterances, s.words, s.speech_seconds / 3600,
                 s.samediff_words, f", {s.utd_pairs} UTD pairs" if args.utd_pairs else "")
    for why, count in sorted(summary.dropped.items()):
        if count:
            log.info("left out: %d %s", count, why)
    return 0


if __name__ == "__main__":
    run(main, "prepare_awe_corpus")
