"""The hybrid DNN (speechssl.asr.hybrid, bin/train_hybrid.py): splicing against a
brute-force loop, priors against counts, alignment/feature frame checks, and training on
a synthetic corpus whose frames are drawn around per-pdf means."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asr_tiny_models import (
    pdf_means,
    tiny_gmm,
    tiny_transition_model,
    write_corpus,
    write_model_dirs,
)
from speechssl.asr import hybrid
from speechssl.bin import train_hybrid
from speechssl.errors import InputError

pytest.importorskip("kaldi_hmm_gmm")


def splice_loop(feats: np.ndarray, left: int, right: int) -> np.ndarray:
    """Independent reference: splice-feats, one frame at a time, edges repeated."""
    out = []
    for t in range(len(feats)):
        row = [feats[min(max(t + k, 0), len(feats) - 1)] for k in range(-left, right + 1)]
        out.append(np.concatenate(row))
    return np.array(out)


@pytest.mark.parametrize("num_frames, left, right", [(1, 2, 2), (3, 5, 5), (10, 2, 1),
                                                     (7, 0, 0), (6, 0, 3)])
def test_splice_equals_loop(num_frames, left, right):
    feats = np.random.default_rng(0).normal(size=(num_frames, 4)).astype(np.float32)
    got, want = hybrid.splice(feats, left, right), splice_loop(feats, left, right)
    assert got.shape == want.shape == (num_frames, (left + 1 + right) * 4)
    np.testing.assert_array_equal(got, want)


def test_buffer_splices_within_each_utterance():
    """Frames of a buffer of utterances see only their own utterance's context."""
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(n, 3)).astype(np.float32) for n in (4, 1, 6)]
    pdfs = [np.arange(n) for n in (4, 1, 6)]
    buf = hybrid.FrameBuffer(feats, pdfs, 2, 3)
    x, y = buf.batch(torch.arange(len(buf)))
    want = np.concatenate([splice_loop(f, 2, 3) for f in feats])
    assert x.shape == (len(buf), 2 + 1 + 3, 3)
    np.testing.assert_array_equal(x.flatten(1).numpy(), want)
    np.testing.assert_array_equal(y.numpy(), np.concatenate(pdfs))


def test_streamed_batches_cover_every_frame_once():
    rng = np.random.default_rng(2)
    feats = {f"u{i}": rng.normal(size=(int(n), 2)).astype(np.float32)
             for i, n in enumerate(rng.integers(1, 30, 23))}
    pdfs = {u: np.arange(len(f)) + 100 * i for i, (u, f) in enumerate(feats.items())}
    config = hybrid.HybridConfig(buffer_utts=5, batch_size=7, left_context=0, right_context=0)
    seen = [y for _, y in hybrid.stream_batches(feats.__getitem__, pdfs, list(feats), config,
                                                np.random.default_rng(0))]
    got = np.sort(torch.cat(seen).numpy())
    np.testing.assert_array_equal(got, np.sort(np.concatenate(list(pdfs.values()))))
    assert 7 <= max(len(y) for y in seen) <= 8   # a last frame joins the batch before


def test_no_minibatch_of_one_frame():
    # 2 buffers of 15 frames (batch 7: 7 + 8) and one of 1 frame (kept: nothing to join).
    feats = {f"u{i}": np.zeros((n, 2), np.float32) for i, n in enumerate([15, 15, 1])}
    pdfs = {u: np.arange(len(f)) for u, f in feats.items()}
    config = hybrid.HybridConfig(buffer_utts=1, batch_size=7, left_context=0, right_context=0)
    sizes = [len(y) for _, y in hybrid.stream_batches(feats.__getitem__, pdfs, list(feats),
                                                       config, None)]
    assert sizes == [7, 8, 7, 8, 1]


def test_priors_from_counts():
    pdfs = {"a": np.array([0, 0, 1, 3]), "b": np.array([3, 3, 3, 0])}
    counts = hybrid.pdf_counts(pdfs, 5)
    np.testing.assert_array_equal(counts, [3, 1, 0, 4, 0])
    logp = hybrid.log_priors(counts)
    np.testing.assert_allclose(logp[[0, 1, 3]], np.log([3 / 8, 1 / 8, 4 / 8]), rtol=1e-6)
    # unseen pdfs: a log-likelihood (log-posterior minus log-prior) far below any other
    assert (logp[[2, 4]] >= 1e9).all()
    text = hybrid.format_counts(counts)
    assert text == "[ 3 1 0 4 0 ]\n"
    np.testing.assert_array_equal(hybrid.parse_counts(text, "x"), counts)


def test_alignment_fitted_within_two_frames_else_error():
    pdfs = np.array([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(hybrid.fit_alignment(pdfs, 3, "u", "ali"), [1, 2, 3])
    np.testing.assert_array_equal(hybrid.fit_alignment(pdfs, 7, "u", "ali"), [1, 2, 3, 4, 5, 5, 5])
    with pytest.raises(InputError, match=r"key 'u7'.*5 frames, the features 8"):
        hybrid.fit_alignment(pdfs, 8, "u7", "ali")


def test_log_likelihoods_are_log_posteriors_minus_priors():
    config = hybrid.HybridConfig(left_context=1, right_context=1, num_layers=1, hidden_dim=8)
    torch.manual_seed(0)
    model = hybrid.HybridMLP(3, 4, config, mean=np.ones(3), std=2 * np.ones(3))
    feats = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    log_prior = np.log(np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    got = hybrid.log_likelihoods(model, feats, log_prior, chunk=2)
    model.eval()
    spliced = torch.from_numpy(hybrid.splice((feats - 1) / 2, 1, 1))
    want = torch.log_softmax(model(spliced.unflatten(1, (3, 3))), 1).detach().numpy()
    want -= log_prior
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module", name="corpus")
def corpus_fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid")
    tm, _ = tiny_transition_model(3)
    means = pdf_means(tm.num_pdfs, 4)
    train, alis = write_corpus(root, tm, 30, 0, means, "train")
    ali, lang, graph = write_model_dirs(root, tm, tiny_gmm(tm, 4, means), alis, 3)
    return {"root": root, "train": train, "ali": ali, "lang": lang, "graph": graph,
            "tm": tm, "means": means, "alis": alis}


def train_args(corpus, exp, *extra):
    return ["--cmvn", "false", "--delta-order", "0", "--left-context", "1",
            "--right-context", "1", "--num-layers", "1", "--hidden-dim", "32",
            "--max-epochs", "6", "--buffer-utts", "8", "--batch-size", "32", "--lr", "0.01",
            *extra,
            str(corpus["train"]), str(corpus["ali"]), str(corpus["lang"]), str(exp)]


def test_training_learns_the_pdfs(corpus):
    exp = corpus["root"] / "exp"
    assert train_hybrid.main(train_args(corpus, exp)) == 0
    summary = json.loads((exp / "training.json").read_text())
    # pdf means 3 sd apart in 4 dims with unit noise: well separable
    assert summary["cv_frame_accuracy"] > 80, summary["epochs"]
    assert summary["frames_per_second"] > 0 and summary["peak_rss_mb"] > 0
    counts = hybrid.parse_counts((exp / "ali_train_pdf.counts").read_text(), "counts")
    tid2pdf = np.asarray(corpus["tm"].transition_id_to_pdf_array())
    want = np.bincount(np.concatenate([tid2pdf[a] for a in corpus["alis"].values()]),
                       minlength=corpus["tm"].num_pdfs)
    np.testing.assert_array_equal(counts, want)
    for name in ("final.mdl", "phones.txt", "final.pt"):
        assert (exp / name).is_file()
    model, ckpt = hybrid.load_checkpoint(exp / "final.pt")
    assert (ckpt["input_dim"], ckpt["num_pdfs"], ckpt["cmvn"]) == (4, 9, False)


def test_same_seed_same_model(corpus):
    a, b = corpus["root"] / "seed_a", corpus["root"] / "seed_b"
    for exp in (a, b):
        train_hybrid.main(train_args(corpus, exp, "--max-epochs", "1"))
    sa = torch.load(a / "final.pt", weights_only=False)["state_dict"]
    sb = torch.load(b / "final.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_frame_count_mismatch_is_an_error_naming_the_utterance(corpus, tmp_path):
    from speechssl.asr.model_io import write_alignments

    ali = tmp_path / "ali"
    ali.mkdir()
    for name in ("final.mdl", "phones.txt", "num_jobs"):
        (ali / name).write_bytes((corpus["ali"] / name).read_bytes())
    alis = dict(corpus["alis"])
    bad = sorted(alis)[3]
    alis[bad] = np.concatenate([alis[bad], alis[bad][-3:]])   # 3 frames too many
    write_alignments(ali / "ali.1.gz", alis)
    exp = tmp_path / "exp"
    with pytest.raises(InputError, match=f"key '{bad}'.*the features"):
        train_hybrid.main(train_args(corpus, exp)[:-3] + [str(ali), str(corpus["lang"]),
                                                          str(exp)])
    assert not exp.exists() or not any(exp.iterdir())


def test_alignments_of_another_lang_are_refused(corpus, tmp_path):
    lang = tmp_path / "lang"
    lang.mkdir()
    (lang / "phones.txt").write_text("<eps> 0\nq1 1\nq2 2\nq3 3\n")
    exp = tmp_path / "exp"
    with pytest.raises(InputError, match="another lang"):
        train_hybrid.main(train_args(corpus, exp)[:-2] + [str(lang), str(exp)])
    assert not (exp / "final.pt").exists()
