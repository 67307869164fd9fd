"""Estimate an n-gram LM from transcripts and write it as an ARPA file
(utils/make_ngram_lm.sh): interpolated modified Kneser-Ney (default) or Witten-Bell over
a lang dir's vocabulary, words not in it mapped to the OOV word and counted; see
:mod:`speechssl.asr.lm`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from speechssl.asr.lm import METHODS, read_vocab, train_lm, write_arpa
from speechssl.cli import kaldi_bool, positive_int, run

log = logging.getLogger("make_ngram_lm")


def build_parser() -> argparse.ArgumentParser:
    """utils/make_ngram_lm.sh's options and defaults (the step passes each one)."""
    p = argparse.ArgumentParser(prog="make_ngram_lm", description=__doc__)
    p.add_argument("--order", type=positive_int, default=3)
    p.add_argument("--method", choices=METHODS, default="kn",
                   help="kn: interpolated modified Kneser-Ney; wb: Witten-Bell (default: kn)")
    p.add_argument("--kaldi-text", type=kaldi_bool, default=True,
                   help="true: a Kaldi text file (utterance id first); false: plain "
                        "sentences (default: true)")
    p.add_argument("--oov", default="",
                   help="the word for words not in the vocabulary (default: the lang "
                        "dir's oov.txt, else <unk>)")
    p.add_argument("text")
    p.add_argument("vocab", help="a lang dir or its words.txt (or a dict dir or lexicon)")
    p.add_argument("arpa", help="output ARPA file (gzipped if it ends in .gz)")
    return p


def oov_word(vocab: str, given: str) -> str:
    """--oov, else the lang dir's oov.txt, else <unk>."""
    if given:
        return given
    oov_txt = Path(vocab) / "oov.txt"
    return oov_txt.read_text().split()[0] if oov_txt.is_file() else "<unk>"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    vocab = read_vocab(args.vocab)
    oov = oov_word(args.vocab, args.oov)
    model = train_lm(args.text, vocab, args.order, args.method, oov, args.kaldi_text)
    if model.oov_counts:
        top = ", ".join(f"{w} ({n})" for w, n in model.oov_counts.most_common(5))
        log.warning("%d tokens of %d words of %s are not in the vocabulary; mapped to %s: %s",
                    sum(model.oov_counts.values()), len(model.oov_counts), args.text, oov, top)
    write_arpa(model, args.arpa)
    sizes = " ".join(f"{n}-grams={len(model.probs[n])}" for n in range(1, model.order + 1))
    log.info("Wrote %s (%s, order %d): %s", args.arpa, args.method, args.order, sizes)
    return 0


if __name__ == "__main__":
    run(main, "make_ngram_lm")
