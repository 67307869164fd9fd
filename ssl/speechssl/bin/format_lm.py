"""Copy a lang dir and add G.fst made from an ARPA LM (Kaldi's utils/format_lm.sh):
kaldilm's arpa2fst with #0 on the backoff arcs and the lang's words.txt; n-grams with
words not in words.txt are dropped and counted (utils/find_arpa_oovs.pl); a G with a cycle
of empty words (#0, or words the lexicon gives no phones) is an error, as in Kaldi.  The
output lang dir appears complete or not at all."""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from speechssl.asr.lang import Lang
from speechssl.asr.lm import arpa_to_g, empty_word_cycles, scan_arpa, stochasticity
from speechssl.cli import run
from speechssl.data.write import staged_dir
from speechssl.errors import InputError

log = logging.getLogger("format_lm")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="format_lm", description=__doc__)
    p.add_argument("lang_dir")
    p.add_argument("arpa", help="ARPA LM, gzipped or not")
    p.add_argument("lexicon", help="the dict dir's lexicon.txt (or the dict dir)")
    p.add_argument("out_dir")
    return p


def empty_words(lexicon: str, lang: Lang) -> set[int]:
    """Ids of #0 and of the words with an empty pronunciation in the lexicon."""
    path = Path(lexicon)
    if path.is_dir():
        path = next((path / n for n in ("lexiconp.txt", "lexicon.txt")
                     if (path / n).is_file()), path / "lexicon.txt")
    if not path.is_file():
        raise InputError("no such lexicon", path=path)
    ids = {lang.words["#0"]}
    prob_field = 1 if path.name.startswith("lexiconp") else 0
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 1 + prob_field and fields[0] in lang.words:
            ids.add(lang.words[fields[0]])
    return ids


def copy_lang(src: Path, dest: Path) -> None:
    for item in src.iterdir():
        if item.name in ("G.fst", ".lock"):
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name)
        else:
            shutil.copy2(item, dest / item.name)


def main(argv: Sequence[str] | None = None) -> int:
    import kaldifst
    args = build_parser().parse_args(argv)
    lang = Lang.load(args.lang_dir)
    counts, oov = scan_arpa(args.arpa, lang.words)
    if oov:
        log.warning("%d words of %s are not in %s/words.txt; arpa2fst drops the %d n-grams "
                    "with them (e.g. %s)", len(oov), args.arpa, args.lang_dir,
                    sum(oov.values()), ", ".join(sorted(oov)[:5]))
    empty = empty_words(args.lexicon, lang)
    with staged_dir(args.out_dir) as out:
        copy_lang(Path(args.lang_dir), out)
        arpa_to_g(args.arpa, out / "words.txt", out / "G.fst")
        g = kaldifst.StdVectorFst.read(str(out / "G.fst"))
        if empty_word_cycles(g, empty):
            raise InputError("the language model has cycles of empty words (#0 or words "
                             "without phones): CLG would not determinize", path=args.arpa)
    lo, hi = stochasticity(g)
    log.info("G.fst: %d states, %d arcs; stochasticity (fstisstochastic): %.4g %.4g",
             g.num_states, sum(g.num_arcs(s) for s in range(g.num_states)), lo, hi)
    log.info("Wrote %s: %s with G.fst from %s (%s)", args.out_dir, args.lang_dir, args.arpa,
             " ".join(f"{n}-grams={c}" for n, c in enumerate(counts) if n))
    return 0


if __name__ == "__main__":
    run(main, "format_lm")
