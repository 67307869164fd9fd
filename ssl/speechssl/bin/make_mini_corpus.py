"""Synthesise the embedded multi-speaker, multi-language corpus with exact alignments.

Writes 16 kHz 16-bit mono wavs under <wav-dir>/<spk>/<utt>.wav and the Kaldi data dirs
<data-dir>/{train,dev,test} (disjoint speakers) with words.ctm, phones.ctm, test trials and
dev/test same-different word lists, plus <data-dir>/local/dict (lexicon, phones).

e.g.: python -m speechssl.bin.make_mini_corpus --preset tiny --nj 2 --seed 1 \\
          wav/mini data/mini
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.corpus.synth.generate import generate_corpus
from speechssl.corpus.synth.presets import PRESETS, get_preset

log = logging.getLogger("make_mini_corpus")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split(",") if x)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make_mini_corpus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="tiny: 8 speakers x 5 utterances; default: 49 speakers x 90, the 21 "
                        "dev and test speakers x 40 (default: tiny)")
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", action="store_true",
                   help="reverberation, band-pass, noise and gain (same texts and alignments "
                        "as the clean corpus of the same seed)")
    p.add_argument("--num-speakers", type=int)
    p.add_argument("--utts-per-speaker", type=int)
    p.add_argument("--utts-per-eval-speaker", type=int,
                   help="of the dev and test speakers (default: the preset's)")
    p.add_argument("--languages", type=_csv, help="comma-separated, e.g. en,de,es,fr,nl,sw,tn")
    p.add_argument("--variants", type=_csv, help="eSpeak voice variants, e.g. m1,m3,f2")
    p.add_argument("--min-words", type=int, help="words per sentence, at least")
    p.add_argument("--max-words", type=int, help="words per sentence, at most")
    p.add_argument("--min-word-dur", type=float, help="same-different words: seconds (0.5)")
    p.add_argument("--min-word-chars", type=int, help="same-different words: characters (5)")
    p.add_argument("wav_dir", type=Path)
    p.add_argument("data_dir", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = get_preset(
        args.preset, num_speakers=args.num_speakers, utts_per_speaker=args.utts_per_speaker,
        utts_per_eval_speaker=args.utts_per_eval_speaker,
        languages=args.languages, variants=args.variants, min_words=args.min_words,
        max_words=args.max_words, min_word_dur=args.min_word_dur,
        min_word_chars=args.min_word_chars, augment=args.augment or None)
    start = time.time()
    summary = generate_corpus(config, args.seed, args.nj, args.wav_dir, args.data_dir)
    for key, value in summary.items():
        log.info("%s %s", key, value)
    log.info("wrote %d utterances (%.0f s of audio) in %.1f s; %d sentences rejected "
             "(see %s)", summary["utterances"],
             sum(v for k, v in summary.items() if k.endswith("_seconds")),
             time.time() - start, summary["rejected_sentences"],
             args.data_dir / "rejected_sentences")
    return 0


if __name__ == "__main__":
    run(main, "make_mini_corpus")
