"""Decoding through HCLG (speechssl.asr.decode, bin/decode.py, bin/score_wer.py, the
steps): the DecodableCtc mapping, exact decoding of ideal scores through a hand-built
word-loop graph, GMM and hybrid DNN decoding of a synthetic corpus scored against its
transcripts and a random-output baseline, and the refusals of mismatched inputs."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from asr_tiny_models import (
    frames_for_words,
    pdf_means,
    tiny_gmm,
    tiny_transition_model,
    word_loop_hclg,
    write_corpus,
    write_model_dirs,
)
from conftest import ROOT
from recipe_fixtures import mini_recipe_fixture  # noqa: F401
from speechssl.asr import decode as dec
from speechssl.asr import model_io, score
from speechssl.bin import decode as decode_bin
from speechssl.bin import score_wer, train_hybrid
from speechssl.errors import InputError

khg = pytest.importorskip("kaldi_hmm_gmm")


def test_decodable_ctc_reads_column_tid_minus_one():
    mat = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    d = khg.DecodableCtc(mat)
    got = [[d.log_likelihood(t, tid) for tid in range(1, 7)] for t in range(4)]
    np.testing.assert_array_equal(np.array(got, np.float32), mat)


def test_pdf_to_tid_matrix_against_loop():
    tm, _ = tiny_transition_model(3)
    ll = np.random.default_rng(1).normal(size=(5, tm.num_pdfs)).astype(np.float32)
    got = dec.pdf_to_tid_matrix(ll, tm.transition_id_to_pdf_array())
    for tid in range(1, tm.num_transition_ids + 1):
        np.testing.assert_array_equal(got[:, tid - 1], ll[:, tm.transition_id_to_pdf(tid)])


def test_ideal_scores_decode_to_the_words_and_phones(tmp_path):
    tm, _ = tiny_transition_model(3)
    word_loop_hclg(tm, 3).write(str(tmp_path / "HCLG.fst"))
    decoder = dec.make_decoder(tmp_path / "HCLG.fst", dec.DecoderOptions())
    words = [2, 1, 3, 3, 1]
    pdfs = frames_for_words(tm, words)
    ll = np.full((len(pdfs), tm.num_pdfs), -10.0, np.float32)
    ll[np.arange(len(pdfs)), pdfs] = 0.0
    path = dec.decode_loglikes(decoder, tm.transition_id_to_pdf_array(), ll, 0.1)
    assert path.succeeded and path.words == words
    assert [tm.transition_id_to_pdf(t) for t in path.alignment] == pdfs.tolist()
    assert model_io.phones_of_alignment(tm, path.alignment) == words
    # the best path's cost: the acoustic scores of its frames (0 here) plus the graph's
    assert path.log_like == pytest.approx(0.0, abs=1e-4)


def test_no_final_state_reached_gives_the_partial_path(tmp_path):
    """No token at a final state at the end (here the graph has none): the best partial
    path, flagged, as decode-faster --allow-partial; the next utterance decodes afresh."""
    import kaldifst

    tm, _ = tiny_transition_model(3)
    graph = word_loop_hclg(tm, 3)
    graph.set_final(0, kaldifst.TropicalWeight.zero)
    graph.write(str(tmp_path / "HCLG.fst"))
    decoder = dec.make_decoder(tmp_path / "HCLG.fst", dec.DecoderOptions())
    pdfs = frames_for_words(tm, [2, 3])
    ll = np.full((len(pdfs), tm.num_pdfs), -10.0, np.float32)
    ll[np.arange(len(pdfs)), pdfs] = 0.0
    path = dec.decode_loglikes(decoder, tm.transition_id_to_pdf_array(), ll, 0.1)
    assert not path.succeeded and path.words == [2, 3]
    assert [tm.transition_id_to_pdf(t) for t in path.alignment] == pdfs.tolist()
    word_loop_hclg(tm, 3).write(str(tmp_path / "HCLG.fst"))
    decoder = dec.make_decoder(tmp_path / "HCLG.fst", dec.DecoderOptions())
    for words in ([1], [3, 1]):   # one decoder object, one utterance after another
        pdfs = frames_for_words(tm, words)
        ll = np.full((len(pdfs), tm.num_pdfs), -10.0, np.float32)
        ll[np.arange(len(pdfs)), pdfs] = 0.0
        path = dec.decode_loglikes(decoder, tm.transition_id_to_pdf_array(), ll, 0.1)
        assert path.succeeded and path.words == words


@pytest.mark.parametrize("beam", [13.0, 4.0, 2.0])
def test_best_path_is_lattice_faster_s(tmp_path, beam):
    """FasterDecoder, used for speed, finds the best path kaldi-hmm-gmm's lattice-faster
    decoder finds (same words, alignment and score) on noisy scores, at wide and narrow
    beams.  (Where max-active binds hard, at 3-5 of this graph's 10 states, the two
    prune differently and their paths can differ.)"""
    max_active = 7000
    tm, _ = tiny_transition_model(3)
    word_loop_hclg(tm, 3).write(str(tmp_path / "HCLG.fst"))
    options = dec.DecoderOptions(beam=beam, max_active=max_active, min_active=1)
    decoder = dec.make_decoder(tmp_path / "HCLG.fst", options)
    config = khg.LatticeFasterDecoderConfig(beam=beam, max_active=max_active, min_active=1,
                                            lattice_beam=6.0)
    lattice_faster = khg.LatticeFasterDecoder(decoder.graph, config)
    rng = np.random.default_rng(0)
    tid2pdf = tm.transition_id_to_pdf_array()
    for i in range(20):
        pdfs = frames_for_words(tm, list(rng.integers(1, 4, size=6)), 2)
        ll = rng.normal(-3.0, 2.0, size=(len(pdfs), tm.num_pdfs)).astype(np.float32)
        ll[np.arange(len(pdfs)), pdfs] += 2.0
        ours = dec.decode_loglikes(decoder, tid2pdf, ll, 0.5)
        ok, ali, words, like = khg.decode_utterance_lattice_faster(
            decoder=lattice_faster, decodable=khg.DecodableCtc(dec.pdf_to_tid_matrix(
                ll * 0.5, tid2pdf)), trans_model=tm, utt=f"u{i}", allow_partial=True)
        assert ok and ours.words == list(words) and ours.alignment == list(ali)
        assert ours.log_like == pytest.approx(like, rel=1e-5, abs=1e-3)


@pytest.fixture(scope="module", name="setup")
def setup_fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode")
    tm, _ = tiny_transition_model(3)
    means = pdf_means(tm.num_pdfs, 4)
    train, alis = write_corpus(root, tm, 30, 0, means, "train")
    test, _ = write_corpus(root, tm, 12, 1, means, "test")
    ali, lang, graph = write_model_dirs(root, tm, tiny_gmm(tm, 4, means), alis, 3)
    exp = root / "exp"
    train_hybrid.main(["--cmvn", "false", "--delta-order", "0", "--left-context", "1",
                       "--right-context", "1", "--num-layers", "1", "--hidden-dim", "32",
                       "--max-epochs", "6", "--lr", "0.01", "--batch-size", "32",
                       str(train), str(ali), str(lang), str(exp)])
    return {"root": root, "tm": tm, "train": train, "test": test, "ali": ali,
            "lang": lang, "graph": graph, "exp": exp}


def decode_and_score(s, out, *opts):
    assert decode_bin.main([*opts, "--lmwt-range", "1:3", str(s["graph"]), str(s["test"]),
                            str(out)]) == 0
    assert score_wer.main([str(s["test"]), str(s["lang"]), str(out)]) == 0
    return json.loads((out / "results.json").read_text())


def random_baseline_wer(test) -> float:
    """WER of random sequences of the test set's own words, of the reference lengths (a
    system that ignores the audio): the bar a working decoder must clear."""
    refs = score.read_transcripts(test / "text")
    vocab = sorted({w for r in refs.values() for w in r})
    rng = np.random.default_rng(0)
    hyps = {u: [vocab[i] for i in rng.integers(0, len(vocab), len(r))]
            for u, r in refs.items()}
    return score.score_texts(refs, hyps)[0].error_rate


def test_gmm_decoding(setup):
    out = setup["root"] / "decode_gmm"
    results = decode_and_score(setup, out, "--model", str(setup["ali"] / "final.mdl"),
                               "--cmvn", "false", "--delta-order", "0")
    assert results["task"] == "asr_gmm" and results["num_utts"] == 12
    assert results["wer"] < 10, results
    assert results["wer_ci"][0] <= results["wer"] <= results["wer_ci"][1], results
    assert results["bootstrap"]["num_speakers"] == 3
    assert sorted(results["wer_by_lmwt"]) == ["1", "2", "3"]
    assert (out / "best_wer").read_text().startswith("%WER")
    assert (out / "scoring" / "wer_details" / "per_utt").is_file()
    assert results["decode"]["rtf"] > 0


def test_hybrid_decoding_beats_random_output(setup, tmp_path):
    from speechssl.data.ark import iter_scp

    out = setup["root"] / "decode_dnn"
    ark = tmp_path / "loglikes.ark"
    exp = setup["exp"]
    results = decode_and_score(setup, out, "--model", str(exp / "final.mdl"), "--nnet",
                               str(exp / "final.pt"), "--class-frame-counts",
                               str(exp / "ali_train_pdf.counts"), "--write-loglikes", str(ark))
    baseline = random_baseline_wer(setup["test"])
    assert results["wer"] < min(100.0, baseline), (results, baseline)
    assert results["wer"] < 20, results
    # the log-likelihoods written for Kaldi decode to the same words
    tm = setup["tm"]
    decoder = dec.make_decoder(setup["graph"] / "HCLG.fst", dec.DecoderOptions())
    tra = score.read_transcripts(out / "scoring" / f"{results['lmwt']}.tra")
    mats = dict(iter_scp(ark.with_suffix(".scp")))
    assert sorted(mats) == sorted(tra)
    for utt, ll in mats.items():
        assert ll.shape[1] == tm.num_pdfs
        path = dec.decode_loglikes(decoder, tm.transition_id_to_pdf_array(), ll,
                                   1.0 / results["lmwt"])
        assert [str(w) for w in path.words] == tra[utt]


def test_graph_of_another_model_is_refused(setup, tmp_path):
    graph = tmp_path / "graph"
    graph.mkdir()
    for name in ("HCLG.fst", "words.txt", "phones.txt"):
        (graph / name).write_bytes((setup["graph"] / name).read_bytes())
    (graph / "num_pdfs").write_text("12\n")
    out = tmp_path / "decode"
    with pytest.raises(InputError, match="12 pdfs"):
        decode_bin.main(["--model", str(setup["ali"] / "final.mdl"), "--cmvn", "false",
                         "--delta-order", "0", str(graph), str(setup["test"]), str(out)])
    (graph / "num_pdfs").write_text("9\n")
    (graph / "phones.txt").write_text("<eps> 0\nq1 1\nq2 2\nq3 3\n")
    with pytest.raises(InputError, match="another lang"):
        decode_bin.main(["--model", str(setup["ali"] / "final.mdl"), "--cmvn", "false",
                         "--delta-order", "0", str(graph), str(setup["test"]), str(out)])
    assert not (out / "scoring").exists()


def sh(cmd: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, capture_output=True, text=True)


def test_steps_train_decode_score(setup, tmp_path):
    """The shell steps end to end on the synthetic corpus, with two decode jobs."""
    s = {k: str(v) for k, v in setup.items() if k != "tm"}
    exp = tmp_path / "hybrid"
    r = sh(f"{ROOT}/steps/train_hybrid.sh --cmvn false --delta-order 0 --hidden-dim 32 "
           f"--num-layers 1 --max-epochs 3 --lr 0.01 {s['train']} {s['ali']} {s['lang']} {exp}",
           tmp_path)
    assert r.returncode == 0, r.stderr
    out = exp / "decode_test"
    r = sh(f"{ROOT}/steps/decode_hybrid.sh --nj 2 --lmwt 2 --loglikes true {s['graph']} "
           f"{s['test']} {exp} {out}", tmp_path)
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["lmwt"] == 2 and results["num_utts"] == 12 and results["wer"] < 50
    assert len((out / "loglikes.scp").read_text().splitlines()) == 12
    assert not (out / "jobs").exists()


@pytest.mark.skipif(not (ROOT / "steps" / "train_mono.sh").is_file()
                    or not (ROOT / "utils" / "mkgraph.sh").is_file(),
                    reason="needs steps/train_mono.sh, steps/align_si.sh, utils/mkgraph.sh")
def test_mini_recipe_asr_steps_chain(mini_recipe, tmp_path):
    """egs/mini's tiny corpus: lang, LM, monophone GMM on MFCC, alignments, a DNN on fbank
    trained on train, decoded on test, every step on the recipe's own files.  (The tiny
    corpus has one or two speakers per language: up to half the utterances may fail to
    align, as run.sh allows for that preset.  Its 13 aligned training utterances train no
    usable recogniser, WER 88-100% from run to run, so accuracy is checked on the
    synthetic corpus above; here the DNN must beat the pdf prior on its training frames.)"""
    recipe = tmp_path / "mini"   # a copy: the session's recipe dir is shared
    shutil.copytree(mini_recipe, recipe, symlinks=True)
    steps = (
        "utils/prepare_lang.sh data/local/dict '<unk>' data/local/lang_tmp data/lang",
        "utils/make_ngram_lm.sh --order 2 data/train/text data/lang data/local/lm/lm.arpa",
        "utils/format_lm.sh data/lang data/local/lm/lm.arpa data/local/dict/lexicon.txt "
        "data/lang_test",
        "steps/train_mono.sh --nj 2 --max-fail-fraction 0.5 data/train_mfcc data/lang exp/mono",
        "steps/align_si.sh --nj 2 --max-fail-fraction 0.5 data/train_mfcc data/lang exp/mono "
        "exp/mono_ali",
        "utils/mkgraph.sh data/lang_test exp/mono exp/mono/graph",
        "steps/train_hybrid.sh --max-epochs 3 --max-unaligned-fraction 0.5 data/train_fbank "
        "exp/mono_ali data/lang exp/fbank/hybrid",
        "steps/decode_hybrid.sh --nj 2 --lmwt-range 8:10 exp/mono/graph data/test_fbank "
        "exp/fbank/hybrid exp/fbank/hybrid/decode_test",
    )
    for cmd in steps:
        r = sh(cmd, recipe)
        assert r.returncode == 0, (cmd, r.stderr[-3000:])
    exp = recipe / "exp" / "fbank" / "hybrid"
    results = json.loads((exp / "decode_test" / "results.json").read_text())
    test_words = score.read_transcripts(recipe / "data" / "test" / "text")
    assert results["num_utts"] == len(test_words) and results["decode"]["failed"] == 0
    assert results["wer_ref_tokens"] == sum(map(len, test_words.values()))
    assert sorted(results["wer_by_lmwt"]) == ["10", "8", "9"]
    counts = np.array((exp / "ali_train_pdf.counts").read_text().split()[1:-1], dtype=float)
    training = json.loads((exp / "training.json").read_text())
    assert training["epochs"][-1]["train_acc"] > 100 * counts.max() / counts.sum() + 10
