"""Build a Kaldi lang dir from a dict dir (utils/prepare_lang.sh): phones.txt, words.txt,
L.fst, L_disambig.fst, topo, oov.{txt,int} and phones/, written in a staging dir and
renamed into place; see :mod:`speechssl.asr.lang`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from speechssl.asr.lang import LangOptions, prepare_lang
from speechssl.cli import kaldi_bool, positive_int, run

log = logging.getLogger("prepare_lang")


def build_parser() -> argparse.ArgumentParser:
    """Kaldi's utils/prepare_lang.sh options and defaults (the step passes each one)."""
    p = argparse.ArgumentParser(prog="prepare_lang", description=__doc__)
    p.add_argument("--position-dependent-phones", type=kaldi_bool, default=True,
                   help="word-position-dependent phones p_B p_E p_I p_S (default: true)")
    p.add_argument("--sil-prob", type=float, default=0.5,
                   help="optional silence probability between words; 0: none (default: 0.5)")
    p.add_argument("--num-sil-states", type=positive_int, default=5)
    p.add_argument("--num-nonsil-states", type=positive_int, default=3)
    p.add_argument("dict_dir")
    p.add_argument("oov_word", help="the word that replaces words not in the lexicon")
    p.add_argument("tmp_dir", help="where lexiconp.txt and phone_map.txt go")
    p.add_argument("lang_dir")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if not 0.0 <= args.sil_prob < 1.0:
        p.error("--sil-prob must be in [0, 1)")
    opts = LangOptions(args.position_dependent_phones, args.sil_prob, args.num_sil_states,
                       args.num_nonsil_states)
    lang = prepare_lang(args.dict_dir, args.oov_word, args.lang_dir, opts, args.tmp_dir)
    log.info("Wrote %s: %d phones (%s), %d disambiguation symbols, %d words",
             args.lang_dir, len(lang.silence_phones) + len(lang.nonsilence_phones),
             "word-position-dependent" if lang.position_dependent else "position-independent",
             len(lang.disambig_phones), len(lang.words) - 4)
    return 0


if __name__ == "__main__":
    run(main, "prepare_lang")
