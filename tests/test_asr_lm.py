"""The n-gram estimator against hand-computed Kneser-Ney and Witten-Bell values and a
brute-force check that every history's distribution sums to 1 (backoff walk over the ARPA
file read back); ARPA parse errors; G.fst through utils/format_lm.sh."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from asr_fixtures import paths, write_dict
from conftest import ROOT, sh
from speechssl.asr.lang import Lang, prepare_lang
from speechssl.asr.lm import (
    count_ngrams,
    kn_counts,
    read_arpa,
    read_sentences,
    train_lm,
    write_arpa,
)
from speechssl.errors import InputError

# kaldilm last: importing kaldi_hmm_gmm or kaldifst after it hangs (speechssl.asr.lm).
pytest.importorskip("kaldi_hmm_gmm")
kaldifst = pytest.importorskip("kaldifst")
pytest.importorskip("kaldilm")

TEXT = "u1 a b c\nu2 a b\nu3 c b a zz\nu4 b b c\nu5 a c a b c\nu6 d a\n"
VOCAB = ["<unk>", "a", "b", "c", "d", "e"]


def _text(tmp_path, text: str, name: str = "text"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_kneser_ney_continuation_counts_by_hand(tmp_path):
    sentences = [w for _, w in read_sentences(_text(tmp_path, "a b\nc b\na d\n"),
                                              kaldi_text=False)]
    counts, _ = count_ngrams(sentences, 2, set(VOCAB), "<unk>")
    assert counts[1] == {("a",): 2, ("b",): 2, ("c",): 1, ("d",): 1, ("</s>",): 3}
    # a follows only <s>; b follows a and c; </s> follows b and d
    assert kn_counts(counts)[1] == {("a",): 1, ("b",): 2, ("c",): 1, ("d",): 1, ("</s>",): 2}


def test_kneser_ney_probabilities_by_hand(tmp_path):
    """Continuation counts a1 b2 c1 d1 </s>2 (total 7; counts of counts n1=3, n2=2, no n3:
    one discount D = 3/7); vocabulary a b c d <unk> </s> (6):
    p(b) = (2 - 3/7)/7 + gamma/6, gamma = 5 D / 7 = 15/49, so p(b) = 27/98, p(a) = 13/98.
    Bigrams: n1 = 5, n2 = 2, D = 5/9; p(b|a) = (1 - 5/9)/2 + (2 D / 2) p(b) = 331/882."""
    text = _text(tmp_path, "a b\nc b\na d\n")
    model = train_lm(text, ["a", "b", "c", "d", "<unk>"], order=2, kaldi_text=False)
    expected = {"a": Fraction(13, 98), "b": Fraction(27, 98), "<unk>": Fraction(5, 98)}
    for w, p in expected.items():
        assert model.prob(w, ()) == pytest.approx(float(p), rel=1e-12), w
    assert model.prob("b", ("a",)) == pytest.approx(331 / 882, rel=1e-12)
    # the raw unigram counts of a and b are equal; Kneser-Ney prefers b (more contexts)
    assert model.prob("b", ()) > model.prob("a", ())


def test_witten_bell_probabilities_by_hand(tmp_path):
    """Counts a2 b1 c1 </s>2 (total 6, 4 types), vocabulary a b c <unk> </s> (5):
    p(a) = (2 + 4/5)/10, p(<unk>) = (4/5)/10; p(b|a) = (1 + 2 p(b)) / (2 + 2)."""
    text = _text(tmp_path, "a b\na c\n")
    model = train_lm(text, ["a", "b", "c", "<unk>"], order=2, method="wb", kaldi_text=False)
    assert model.prob("a", ()) == pytest.approx(0.28)
    assert model.prob("<unk>", ()) == pytest.approx(0.08)
    assert model.prob("b", ("a",)) == pytest.approx((1 + 2 * 0.18) / 4)


@pytest.mark.parametrize("method", ["kn", "wb"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_history_sums_to_one_brute_force_from_the_arpa(tmp_path, method, order):
    model = train_lm(_text(tmp_path, TEXT), VOCAB, order=order, method=method)
    assert model.oov_counts == {"zz": 1}
    write_arpa(model, tmp_path / "lm.arpa.gz")
    back = read_arpa(tmp_path / "lm.arpa.gz")
    assert sorted(back.vocab) == sorted(VOCAB + ["</s>"])
    histories = [h for n in range(order) for h in itertools.product(["<s>", *VOCAB], repeat=n)]
    for h in histories:    # seen and unseen histories alike
        total = sum(back.prob(w, h) for w in back.vocab)
        assert total == pytest.approx(1.0, abs=2e-6), (h, total)
        assert back.prob("<s>", h) == 0.0


def test_arpa_round_trip(tmp_path):
    model = train_lm(_text(tmp_path, TEXT), VOCAB, order=3)
    write_arpa(model, tmp_path / "lm.arpa")
    back = read_arpa(tmp_path / "lm.arpa")
    for n in range(1, 4):
        assert back.probs[n].keys() == model.probs[n].keys()
        for g, p in model.probs[n].items():
            assert back.probs[n][g] == pytest.approx(p, rel=1e-6, abs=1e-30), g
    for n in (1, 2):
        for g, b in model.bows[n].items():
            assert back.bows[n][g] == pytest.approx(b, rel=1e-6), g
    assert back.prob("zz", ("a", "b")) == 0.0 and back.prob("<unk>", ("b", "a")) > 0.1


GOOD_ARPA = "\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-99\t<s>\t-0.3\n-0.3\ta\t-0.2\n" \
            "-0.3\t</s>\n\n\\2-grams:\n-0.1\t<s> a\n\n\\end\\\n"


@pytest.mark.parametrize("bad, line, message", [
    (("-0.3\ta\t-0.2", "-0.3\ta\tb\tc\t-0.2"), 7, "got 5 fields"),
    (("-0.3\t</s>", "x\t</s>"), 8, "not a number"),
    (("ngram 2=1", "ngram 2=2"), 13, "declares 2 2-grams"),
    (("ngram 2=1", "ngram two"), 3, "expected 'ngram N=COUNT'"),
    (("\\end\\\n", ""), None, "no \\\\end\\\\"),
    (("\\2-grams:", "\\3-grams:"), 10, "out of order"),
])
def test_malformed_arpa_names_its_line(tmp_path, bad, line, message):
    path = _text(tmp_path, GOOD_ARPA.replace(*bad), "bad.arpa")
    with pytest.raises(InputError, match=message) as err:
        read_arpa(path)
    assert err.value.line == line and err.value.path == str(path)


def test_text_with_sentence_boundaries_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"text:2: '</s>' in the text"):
        train_lm(_text(tmp_path, "u1 a\nu2 a </s>\n"), VOCAB)


@pytest.fixture(scope="module")
def lang(tmp_path_factory) -> Lang:
    base = tmp_path_factory.mktemp("lm_lang")
    return prepare_lang(write_dict(base / "dict"), "<unk>", base / "lang")


def test_steps_make_an_lm_and_g_fst(tmp_path, lang):
    text = _text(tmp_path, "u1 ab c\nu2 da c\nu3 ab zz\n")
    arpa = tmp_path / "lm" / "lm.arpa.gz"
    proc = sh(f"{ROOT}/utils/make_ngram_lm.sh --order 2 {text} {lang.path} {arpa}")
    assert "1 tokens of 1 words" in proc.stderr and "mapped to <unk>" in proc.stderr
    out = tmp_path / "lang_test"
    sh(f"{ROOT}/utils/format_lm.sh {lang.path} {arpa} {lang.path.parent}/dict/lexicon.txt {out}")
    g = kaldifst.StdVectorFst.read(str(out / "G.fst"))
    assert (out / "L_disambig.fst").is_file() and (out / "phones" / "disambig.int").is_file()
    # G accepts "ab c" (with #0 backoffs in between as needed), cost = -ln p(ab c)
    model = read_arpa(arpa)
    import math
    w = lang.words
    found = [p for p in paths(kaldifst.determinize(_words_then_g(g, w, ["ab", "c"])), 100)]
    assert found, "G rejects a training sentence"
    expected = -math.log(model.prob("ab", ["<s>"]) * model.prob("c", ["<s>", "ab"])
                         * model.prob("</s>", ["<s>", "ab", "c"]))
    assert min(c for *_, c in found) == pytest.approx(expected, rel=1e-4)


def _words_then_g(g, words, sentence):
    """Compose a linear word sequence, with #0 self-loops on each state, with G."""
    arcs, s = [], 0
    for word in sentence:
        arcs.append(f"{s} {s} {words['#0']} {words['#0']} 0")
        arcs.append(f"{s} {s + 1} {words[word]} {words[word]} 0")
        s += 1
    arcs.append(f"{s} {s} {words['#0']} {words['#0']} 0")
    a = kaldifst.compile("\n".join(arcs + [str(s)]) + "\n", acceptor=False)
    kaldifst.arcsort(a, sort_type="olabel")
    out = kaldifst.compose(a, g)
    return out


def test_bad_arpa_or_text_fails_the_steps_and_writes_nothing(tmp_path, lang):
    assert "e.g.:" in sh(f"{ROOT}/utils/make_ngram_lm.sh --help").stderr
    assert "e.g.:" in sh(f"{ROOT}/utils/format_lm.sh --help").stderr
    bad = _text(tmp_path, GOOD_ARPA.replace("-0.3\t</s>", "x\t</s>"), "bad.arpa")
    out = tmp_path / "lang_test"
    proc = sh(f"{ROOT}/utils/format_lm.sh {lang.path} {bad} {lang.path.parent}/dict {out}",
              check=False)
    assert proc.returncode != 0 and "bad.arpa:8: not a number" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".lang_test*"))
    text = _text(tmp_path, "u1 a <s>\n")
    proc = sh(f"{ROOT}/utils/make_ngram_lm.sh {text} {lang.path} {tmp_path}/lm.arpa.gz",
              check=False)
    assert proc.returncode != 0 and "text:1: '<s>' in the text" in proc.stderr
    assert not (tmp_path / "lm.arpa.gz").exists()


def test_format_lm_counts_the_n_grams_it_drops(tmp_path, lang):
    arpa = _text(tmp_path, GOOD_ARPA, "lm.arpa")   # 'a' is not a word of the tiny lang
    proc = sh(f"{ROOT}/utils/format_lm.sh {lang.path} {arpa} {lang.path.parent}/dict "
              f"{tmp_path}/lang_test")
    assert "1 words of" in proc.stderr and "drops the 2 n-grams" in proc.stderr


def test_empty_word_cycles_are_found():
    from speechssl.asr.lm import empty_word_cycles
    g = kaldifst.compile("0 1 5 5 0\n1 2 9 9 0\n2 1 9 9 0\n2\n", acceptor=False)
    assert empty_word_cycles(g, {9})        # 1 -> 2 -> 1 on #0 (id 9) only
    assert not empty_word_cycles(g, {5})


def test_vocabulary_from_a_lang_dir_a_words_txt_or_a_lexicon(lang):
    from speechssl.asr.lm import read_vocab
    words = ["<unk>", "ab", "abc", "ba", "bad", "c", "cc", "da", "dah"]
    assert read_vocab(lang.path) == words
    assert read_vocab(lang.path / "words.txt") == words
    assert sorted(read_vocab(lang.path.parent / "dict")) == sorted(words)
