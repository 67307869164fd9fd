"""prepare_lang (Kaldi's utils/prepare_lang.sh) on a tiny hand-made dict dir: the symbol
tables and phone sets by hand, L.fst against a brute-force parse of phone strings, the
disambiguation symbols by Kaldi's rules, and bad dict dirs."""

from __future__ import annotations

import itertools
import math

import pytest

from asr_fixtures import accept_phones, write_dict
from conftest import ROOT, sh
from speechssl.asr.lang import (
    Lang,
    LangOptions,
    LexiconEntry,
    add_lex_disambig,
    gen_topo,
    prepare_lang,
    read_dict_dir,
)
from speechssl.errors import InputError

kaldifst = pytest.importorskip("kaldifst")
khg = pytest.importorskip("kaldi_hmm_gmm")

PD_PRONS = {"<unk>": ["spn_S"], "ab": ["a_B", "b_E"], "abc": ["a_B", "b_I", "c_E"],
            "ba": ["b_B", "a_E"], "bad": ["b_B", "a_I", "d_E"], "c": ["c_S"],
            "cc": ["c_B", "c_E"], "da": ["d_B", "a_E"], "dah": ["d_B", "a_E"]}


@pytest.fixture(scope="module")
def lang(tmp_path_factory) -> Lang:
    base = tmp_path_factory.mktemp("lang")
    return prepare_lang(write_dict(base / "dict"), "<unk>", base / "lang",
                        tmp_dir=base / "tmp")


def _lines(path) -> list[str]:
    return path.read_text().splitlines()


def test_symbol_tables_follow_prepare_lang(lang):
    phones = [f"{p}{s}" for p in ("sil", "spn") for s in ("", "_B", "_E", "_I", "_S")]
    phones += [f"{p}{s}" for p in "abcd" for s in ("_B", "_E", "_I", "_S")]
    # da/dah are homophones: #1 #2; one more (#3) follows optional silence in L_disambig.
    assert list(lang.phones) == ["<eps>", *phones, "#0", "#1", "#2", "#3"]
    assert list(lang.phones.values()) == list(range(len(lang.phones)))
    assert list(lang.words) == ["<eps>", "<unk>", "ab", "abc", "ba", "bad", "c", "cc", "da",
                                "dah", "#0", "<s>", "</s>"]
    assert lang.oov_word == "<unk>" and lang.oov_id == 1
    assert lang.silence_phones == list(range(1, 11))
    assert lang.disambig_phones == [lang.phones[f"#{k}"] for k in range(4)]
    ph = lang.path / "phones"
    assert _lines(ph / "optional_silence.txt") == ["sil"]
    assert _lines(ph / "silence.csl") == [":".join(map(str, range(1, 11)))]
    assert _lines(ph / "sets.txt")[2] == "a_B a_E a_I a_S b_B b_E b_I b_S"  # shared root
    assert _lines(ph / "roots.txt")[0] == "shared split sil sil_B sil_E sil_I sil_S"
    assert _lines(ph / "wdisambig_phones.int") == [str(lang.phones["#0"])]
    assert _lines(ph / "wdisambig_words.int") == [str(lang.words["#0"])]
    bounds = dict(line.split() for line in _lines(ph / "word_boundary.txt"))
    assert (bounds["sil"], bounds["a_B"], bounds["c_I"], bounds["d_E"], bounds["spn_S"]) == (
        "nonword", "begin", "internal", "end", "singleton")


def test_position_dependent_pronunciations_by_hand(lang):
    tmp = lang.path.parent / "tmp"
    prons = {line.split("\t")[0]: line.split("\t")[2].split()
             for line in _lines(tmp / "lexiconp.txt")}
    assert prons == PD_PRONS


def test_l_accepts_each_pronunciation_with_kaldis_silence_costs(lang):
    lfst = lang.lexicon_fst()
    half = -math.log(0.5)
    for word, pron in PD_PRONS.items():
        found = accept_phones(lfst, [lang.phones[p] for p in pron])
        words = {lang.id2word[o[0]] for _, o, _ in found}
        homophones = {w for w, p in PD_PRONS.items() if p == pron}
        assert words == homophones, word
        # no silence before (1 - 0.5) nor after (1 - 0.5)
        assert all(cost == pytest.approx(2 * half) for *_, cost in found)
    sil = lang.phones["sil"]
    found = accept_phones(lfst, [sil, lang.phones["c_S"], sil, lang.phones["c_S"]])
    assert [[lang.id2word[o] for o in outs] for _, outs, _ in found] == [["c", "c"]]


def _is_word_string(seq: tuple[str, ...], prons: dict[str, list[str]]) -> bool:
    """Reference: is ``seq`` (optional silence) word (optional silence) word ...?"""
    if seq and seq[0] == "sil":
        seq = seq[1:]
    ends = {0}
    for i in range(len(seq) + 1):
        if i not in ends:
            continue
        for pron in prons.values():
            j = i + len(pron)
            if tuple(seq[i:j]) == tuple(pron):
                ends.add(j)
                if j < len(seq) and seq[j] == "sil":
                    ends.add(j + 1)
    return len(seq) in ends   # a lone silence (no words) is a path of L too


def test_l_accepts_nothing_but_pronunciations_brute_force(lang):
    lfst = lang.lexicon_fst()
    real = [p for p in lang.phones if p != "<eps>" and not p.startswith("#")]
    checked = 0
    for n in (1, 2):
        for seq in itertools.product(real, repeat=n):
            accepted = bool(accept_phones(lfst, [lang.phones[p] for p in seq]))
            assert accepted == _is_word_string(seq, PD_PRONS), seq
            checked += accepted
    assert checked >= 10  # the reference does accept some strings


def test_l_disambig_has_word_disambig_loops_and_homophone_symbols(lang):
    ldis = lang.lexicon_fst(disambig=True)
    p = lang.phones
    found = accept_phones(ldis, [p["a_B"], p["b_E"], p["#0"], p["c_S"]])
    assert [[lang.id2word[o] for o in outs] for _, outs, _ in found] == [["ab", "#0", "c"]]
    assert [lang.id2word[o] for o in accept_phones(ldis, [p["d_B"], p["a_E"], p["#2"]])[0][1]
            ] == ["dah"]
    assert not accept_phones(ldis, [p["d_B"], p["a_E"]])        # homophones need their #k
    assert accept_phones(ldis, [p["sil"], p["#3"], p["c_S"]])   # silence, then its #3


def test_add_lex_disambig_follows_kaldis_rules_without_positions(tmp_path):
    d = read_dict_dir(write_dict(tmp_path / "dict"), position_dependent=False)
    out, max_disambig = add_lex_disambig(d.lexicon)
    marks = {e.word: e.phones[-1] for e in out if e.phones[-1].startswith("#")}
    # prefixes (ab < abc, ba < bad, c < cc) get #1; homophones da, dah #1 and #2
    assert marks == {"ab": "#1", "ba": "#1", "c": "#1", "da": "#1", "dah": "#2"}
    assert max_disambig == 2
    lex = [LexiconEntry("x", 1.0, ("p",)), LexiconEntry("y", 1.0, ("p",)),
           LexiconEntry("z", 1.0, ("p",)), LexiconEntry("w", 1.0, ("p", "q"))]
    assert [e.phones for e in add_lex_disambig(lex)[0]] == [
        ("p", "#1"), ("p", "#2"), ("p", "#3"), ("p", "q")]


def test_position_independent_lang(tmp_path):
    lang = prepare_lang(write_dict(tmp_path / "dict"), "<unk>", tmp_path / "lang",
                        LangOptions(position_dependent_phones=False))
    assert list(lang.phones)[:7] == ["<eps>", "sil", "spn", "a", "b", "c", "d"]
    assert not (tmp_path / "lang" / "phones" / "word_boundary.txt").exists()
    p = lang.phones
    found = accept_phones(lang.lexicon_fst(), [p["a"], p["b"], p["c"]])
    assert {tuple(lang.id2word[o] for o in outs) for _, outs, _ in found} == {
        ("abc",), ("ab", "c")}


def test_topology_is_gen_topo_and_builds_a_transition_model(lang):
    assert lang.topo_text == gen_topo(lang.nonsilence_phones, lang.silence_phones)
    assert "<State> 1 <PdfClass> 1 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 " \
           "<Transition> 4 0.25 </State>" in lang.topo_text
    topo = lang.hmm_topology()
    assert list(topo.phones) == lang.silence_phones + lang.nonsilence_phones
    tm = khg.TransitionModel(lang.context_dependency(), topo)
    assert tm.num_pdfs == 5 * len(lang.silence_phones) + 3 * len(lang.nonsilence_phones)


def test_word_ids_map_unknown_words_to_the_oov_and_count_them(lang):
    lang.oov_counts.clear()
    assert lang.word_ids(["ab", "zz", "c", "zz"], "u1") == [2, 1, 6, 1]
    assert lang.oov_counts == {"zz": 2}
    assert "2 tokens of 1 words" in lang.oov_summary()
    with pytest.raises(InputError, match="reserved"):
        lang.word_ids(["#0"], "u1")


@pytest.mark.parametrize("change, message", [
    (dict(lexicon="ab a x\n"), r"lexicon.txt:1: key 'ab': phone 'x' is not in"),
    (dict(lexicon="<unk> spn\nab\n"), r"lexicon.txt:2: key 'ab': empty pronunciation"),
    (dict(nonsilence="a\nb a\n"), r"nonsilence_phones.txt:2: key 'a': phone listed twice"),
    (dict(optional="a\n"), r"optional_silence.txt:1: key 'a': .*not in silence_phones"),
    (dict(lexicon="ab a b\n"), r"OOV word '<unk>' is not in the lexicon"),
    (dict(nonsilence="a b_B\n"), r"key 'b_B': a phone may not end in _B"),
    (dict(lexicon="<unk> spn\n<s> a\n"), r"lexicon.txt:2: key '<s>': reserved word"),
])
def test_bad_dict_dirs_are_errors_naming_file_and_line(tmp_path, change, message):
    d = write_dict(tmp_path / "dict", **change)
    with pytest.raises(InputError, match=message):
        prepare_lang(d, "<unk>", tmp_path / "lang")
    assert not (tmp_path / "lang").exists()


def test_step_help_and_bad_input_leave_no_lang_dir(tmp_path):
    assert "e.g.:" in sh(f"{ROOT}/utils/prepare_lang.sh --help").stderr
    d = write_dict(tmp_path / "dict", lexicon="<unk> spn\nab a q\n")
    proc = sh(f"{ROOT}/utils/prepare_lang.sh {d} '<unk>' {tmp_path}/tmp {tmp_path}/lang",
              check=False)
    assert proc.returncode != 0
    assert "lexicon.txt:2: key 'ab': phone 'q'" in proc.stderr
    assert not (tmp_path / "lang").exists()
    write_dict(tmp_path / "dict")
    proc = sh(f"{ROOT}/utils/prepare_lang.sh --position-dependent-phones false {d} '<unk>' "
              f"{tmp_path}/tmp {tmp_path}/lang")
    assert "position-independent" in proc.stderr
    assert Lang.load(tmp_path / "lang").phones["a"] == 3
