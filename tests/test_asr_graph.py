"""HCLG (Kaldi's utils/mkgraph.sh) on a tiny lang, LM and monophone model: its labels, its
acceptance of the transition-id sequences of equal alignments of training graphs (the
words come out), and a graph asked of a model of another lang dir."""

from __future__ import annotations

import pytest

from asr_fixtures import arcs, write_dict, write_model_dir
from conftest import ROOT, sh
from speechssl.asr.graph import build_hclg, hclg_and_disambig_tids, mkgraph
from speechssl.asr.lang import Lang, prepare_lang
from speechssl.errors import InputError

khg = pytest.importorskip("kaldi_hmm_gmm")
kaldifst = pytest.importorskip("kaldifst")

TEXT = "u1 ab c\nu2 da c cc\nu3 bad ba\nu4 abc dah\n"
SENTENCES = [["ab", "c"], ["bad", "ba", "cc"], ["abc", "abc", "c"], ["dah"]]
HOMOPHONE = {"dah": "da"}   # the graph may output either


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(lang with G, model dir, graph dir) built through the steps."""
    base = tmp_path_factory.mktemp("graph")
    prepare_lang(write_dict(base / "dict"), "<unk>", base / "lang")
    (base / "text").write_text(TEXT)
    sh(f"{ROOT}/utils/make_ngram_lm.sh --order 2 {base}/text {base}/lang {base}/lm.arpa.gz")
    sh(f"{ROOT}/utils/format_lm.sh {base}/lang {base}/lm.arpa.gz {base}/dict {base}/lang_test")
    lang = Lang.load(base / "lang_test")
    model = write_model_dir(lang, base / "mono")
    sh(f"{ROOT}/utils/mkgraph.sh {base}/lang_test {model} {model}/graph")
    return lang, model, model / "graph"


def test_graph_dir_has_kaldis_files(setup):
    lang, model, graph = setup
    for name in ("HCLG.fst", "words.txt", "phones.txt", "num_pdfs", "disambig_tid.int",
                 "phones/word_boundary.int", "phones/silence.csl", "phones/disambig.int"):
        assert (graph / name).is_file(), name
    assert (graph / "words.txt").read_text() == (lang.path / "words.txt").read_text()
    tm = khg.TransitionModel(lang.context_dependency(), lang.hmm_topology())
    assert (graph / "num_pdfs").read_text() == f"{tm.num_pdfs}\n"


def test_hclg_maps_transition_ids_to_words(setup):
    lang, _, graph = setup
    tm = khg.TransitionModel(lang.context_dependency(), lang.hmm_topology())
    hclg = kaldifst.StdVectorFst.read(str(graph / "HCLG.fst"))
    labels = arcs(hclg)
    assert labels
    assert {i for _, _, i, _, _ in labels} <= set(range(tm.num_transition_ids + 1))
    not_words = {lang.words[w] for w in ("#0", "<s>", "</s>")}
    assert {o for *_, o, _ in labels} <= set(lang.id2word) - not_words
    best = kaldifst.shortest_path(hclg)   # nothing at all: L and G allow no words
    ok, tids, words, _ = kaldifst.get_linear_symbol_sequence(best)
    assert ok and all(0 < t <= tm.num_transition_ids for t in tids)
    assert set(words) <= set(lang.id2word) - not_words


def _equal_alignment(lang, tm, tree, words, frames, seed):
    """Transition ids of an equal alignment of the training graph of ``words``
    (compile-train-graphs, then align-equal-compiled)."""
    compiler = khg.TrainingGraphCompiler(trans_model=tm, ctx_dep=tree,
                                         lex_fst=lang.lexicon_fst(),
                                         disambig_syms=lang.disambig_phones,
                                         opts=khg.TrainingGraphCompilerOptions())
    train_graph = compiler.compile_graph_from_text(lang.word_ids(words))
    ok, aligned = kaldifst.equal_align(ifst=train_graph, length=frames, rand_seed=seed)
    assert ok
    ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(aligned)
    assert ok and len(tids) == frames
    return list(tids)


@pytest.mark.parametrize("seed", [1, 2])
def test_hclg_accepts_equal_alignments_and_outputs_their_words(setup, seed):
    lang, _, graph = setup
    tree = lang.context_dependency()
    tm = khg.TransitionModel(tree, lang.hmm_topology())
    hclg = kaldifst.StdVectorFst.read(str(graph / "HCLG.fst"))
    for words in SENTENCES:
        tids = _equal_alignment(lang, tm, tree, words, 40, seed)
        path = kaldifst.shortest_path(kaldifst.compose(kaldifst.make_linear_acceptor(tids),
                                                       hclg))
        ok, _, out, _ = kaldifst.get_linear_symbol_sequence(path)
        out = [lang.id2word[w] for w in out]
        assert ok and [HOMOPHONE.get(w, w) for w in out] == [
            HOMOPHONE.get(w, w) for w in words], (words, out)
    # a sequence of transition ids no word sequence gives: no path
    tids = _equal_alignment(lang, tm, tree, ["ab"], 12, seed)
    bad = kaldifst.compose(kaldifst.make_linear_acceptor(tids[:-1] + tids[:1]), hclg)
    assert bad.num_states == 0


def test_build_hclg_from_a_transition_model_in_memory(setup):
    lang, _, _ = setup
    tree = lang.context_dependency()
    tm = khg.TransitionModel(tree, lang.hmm_topology())
    hclg, disambig_tids = hclg_and_disambig_tids(lang, tm, tree)
    assert hclg.num_states > 0 and disambig_tids
    assert not {i for _, _, i, _, _ in arcs(hclg)} & set(disambig_tids)
    assert arcs(build_hclg(lang, tm, tree)) == arcs(hclg)


def test_a_model_of_another_lang_dir_is_an_error(setup, tmp_path):
    lang, model, _ = setup
    prepare_lang(write_dict(tmp_path / "dict", nonsilence="a b\nc\nd\ne\n"), "<unk>",
                 tmp_path / "lang2")
    other = write_model_dir(Lang.load(tmp_path / "lang2"), tmp_path / "mono2")
    with pytest.raises(InputError, match="another lang dir"):
        mkgraph(lang.path, other, tmp_path / "graph")
    (other / "phones.txt").unlink()   # without phones.txt: the model's own phones
    with pytest.raises(InputError, match="trained with another lang dir"):
        mkgraph(lang.path, other, tmp_path / "graph")
    proc = sh(f"{ROOT}/utils/mkgraph.sh {lang.path} {other} {tmp_path}/graph", check=False)
    assert proc.returncode != 0 and "another lang dir" in proc.stderr
    assert not (tmp_path / "graph").exists() and not list(tmp_path.glob(".graph*"))


def test_mkgraph_help_and_missing_g(setup, tmp_path):
    lang, model, _ = setup
    assert "e.g.:" in sh(f"{ROOT}/utils/mkgraph.sh --help").stderr
    proc = sh(f"{ROOT}/utils/mkgraph.sh {lang.path.parent}/lang {model} {tmp_path}/g",
              check=False)
    assert proc.returncode != 0 and "G.fst" in proc.stderr and not (tmp_path / "g").exists()
