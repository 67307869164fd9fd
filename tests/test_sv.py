"""Speaker verification: PLDA on synthetic speakers, cosine scoring against explicit
per-trial cosines, and steps/score_sv.sh end to end on the tiny mini recipe."""

from __future__ import annotations

import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from conftest import sh
from recipe_fixtures import mini_recipe_fixture  # noqa: F401
from speechssl.data.ark import ArkScpWriter
from speechssl.data.trials import Trial, read_trials
from speechssl.eval.sv import (
    BackendConfig,
    Embeddings,
    TwoCovPLDA,
    make_backend,
    pool_mean_std,
    score_trials,
)


def random_cov(rng, dim, scale):
    a = rng.normal(size=(dim, dim))
    return scale * (a @ a.T / dim + 0.5 * np.eye(dim))


def synthetic_speakers(seed=0, dim=6, speakers=300, per_speaker=20, b_scale=4.0,
                       sample_seed=None):
    """Speakers of a two-covariance model whose parameters depend on ``seed`` only, so a
    different ``sample_seed`` draws new speakers from the same model."""
    rng = np.random.default_rng(seed)
    between, within = random_cov(rng, dim, b_scale), random_cov(rng, dim, 0.25)
    mean = rng.normal(size=dim)
    if sample_seed is not None:
        rng = np.random.default_rng(sample_seed)
    y = rng.multivariate_normal(np.zeros(dim), between, speakers)
    labels = np.repeat(np.arange(speakers), per_speaker)
    x = mean + y[labels] + rng.multivariate_normal(np.zeros(dim), within, len(labels))
    return x, labels, between, within, mean


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_plda_recovers_the_generating_covariances():
    x, labels, between, within, mean = synthetic_speakers()
    plda = TwoCovPLDA().fit(x, labels)
    assert rel_err(plda.within, within) < 0.05, rel_err(plda.within, within)
    assert rel_err(plda.between, between) < 0.15, rel_err(plda.between, between)
    assert np.abs(plda.mean - mean).max() < 0.5
    a = plda.transform
    np.testing.assert_allclose(a @ plda.within @ a.T, np.eye(6), atol=1e-8)
    np.testing.assert_allclose(a @ plda.between @ a.T, np.diag(plda.psi), atol=1e-8)


def test_plda_llr_is_the_gaussian_likelihood_ratio_and_ranks_same_speaker_higher():
    from scipy.stats import multivariate_normal

    x, labels, *_ = synthetic_speakers(seed=1)
    plda = TwoCovPLDA().fit(x, labels)
    b, w = plda.between, plda.within
    rng = np.random.default_rng(2)
    i, j = rng.integers(0, len(x), 2)
    x1, x2 = x[i] - plda.mean, x[j] - plda.mean
    same = np.block([[b + w, b], [b, b + w]])
    diff = np.block([[b + w, np.zeros_like(b)], [np.zeros_like(b), b + w]])
    z = np.concatenate([x1, x2])
    want = multivariate_normal(cov=same).logpdf(z) - multivariate_normal(cov=diff).logpdf(z)
    u, v = plda.project(x[[i]]), plda.project(x[[j]])
    assert plda.llr_pairs(u, v)[0] == pytest.approx(want, rel=1e-8, abs=1e-8)
    # On held-out speakers from the same model, every same-speaker pair outranks nearly
    # all different-speaker pairs.
    xt, lt, *_ = synthetic_speakers(seed=1, speakers=20, per_speaker=5, sample_seed=99)
    p = plda.project(xt)
    llr = plda.llr_matrix(p, p)
    same_mask = lt[:, None] == lt[None, :]
    off_diag = ~np.eye(len(lt), dtype=bool)
    same_scores, diff_scores = llr[same_mask & off_diag], llr[~same_mask]
    auc = np.mean(same_scores[:, None] > diff_scores[None, :])
    assert auc > 0.99, auc
    np.testing.assert_allclose(llr, llr.T, atol=1e-9)


def test_cosine_scores_equal_explicit_per_trial_cosines():
    rng = np.random.default_rng(3)
    utts = [f"u{i:02d}" for i in range(12)]
    emb = Embeddings(utts, rng.normal(size=(12, 5)) + 2.0, "test")
    trials = [Trial(utts[i], utts[j], i % 3 == j % 3)
              for i, j in rng.integers(0, 12, size=(50, 2))]
    for mean_norm in (True, False):
        backend = make_backend(BackendConfig("cosine", mean_norm=mean_norm), emb)
        got = score_trials(backend, emb, trials)
        mean = emb.vectors.mean(axis=0) if mean_norm else 0.0
        for k, t in enumerate(trials):
            a = emb.vectors[utts.index(t.enroll)] - mean
            b = emb.vectors[utts.index(t.test)] - mean
            want = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            assert got[k] == pytest.approx(want, abs=1e-12), (k, got[k], want)


def test_row_wise_scoring_equals_the_matrix_path(monkeypatch):
    x, labels, *_ = synthetic_speakers(seed=4, speakers=30, per_speaker=4)
    utts = [f"u{i:03d}" for i in range(len(x))]
    emb = Embeddings(utts, x, "test")
    backend = make_backend(BackendConfig("plda", lda_dim=4), emb, emb, labels)
    trials = [Trial(utts[i], utts[j], False) for i in range(0, 120, 7) for j in range(3, 120, 5)]
    full = score_trials(backend, emb, trials)
    monkeypatch.setattr("speechssl.eval.sv.MAX_MATRIX", 10)
    np.testing.assert_allclose(score_trials(backend, emb, trials), full, atol=1e-10)


def test_pooling_is_mean_and_std_over_frames():
    f = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    np.testing.assert_allclose(pool_mean_std(f), [2.0, 4.0, 1.0, 2.0])


def results_of(out: Path) -> dict:
    res = json.loads((out / "results.json").read_text())
    assert {"eer", "min_dcf_0.01", "min_dcf_0.001", "num_trials", "num_target", "backend",
            "features", "eer_ci", "min_dcf_0.01_ci", "min_dcf_0.001_ci", "bootstrap"} <= set(res)
    assert (out / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return res


def test_step_on_pooled_mfcc_of_the_mini_recipe(mini_recipe, tmp_path):
    data, trials = mini_recipe / "data" / "test_mfcc", mini_recipe / "data" / "test" / "trials"
    sh(f"steps/score_sv.sh {data} {trials} {tmp_path}/cos", cwd=mini_recipe)
    res = results_of(tmp_path / "cos")
    lines = (tmp_path / "cos" / "scores").read_text().splitlines()
    trial_list = read_trials(trials)
    assert res["num_trials"] == len(lines) == len(trial_list)
    assert res["num_target"] == sum(t.target for t in trial_list)
    assert [ln.split()[:2] for ln in lines] == [[t.enroll, t.test] for t in trial_list]
    assert res["eer"] < 35, res
    sh(f"steps/score_sv.sh --backend plda --train-dir data/train_mfcc --lda-dim 20 "
       f"{data} {trials} {tmp_path}/plda", cwd=mini_recipe)
    assert results_of(tmp_path / "plda")["backend"] == "plda"


def test_step_reads_embedding_scp(mini_recipe, tmp_path):
    src = mini_recipe / "data" / "test_mfcc"
    emb_dir = tmp_path / "test_emb"
    emb_dir.mkdir()
    (emb_dir / "utt2spk").write_text((src / "utt2spk").read_text())
    with ArkScpWriter(emb_dir / "emb.ark", emb_dir / "embedding.scp") as w:
        for utt, feats in sorted(kaldiio.load_scp(str(src / "feats.scp")).items()):
            w.write(utt, pool_mean_std(feats).astype(np.float32))
    trials = mini_recipe / "data" / "test" / "trials"
    sh(f"steps/score_sv.sh {emb_dir} {trials} {tmp_path}/a", cwd=mini_recipe)
    sh(f"steps/score_sv.sh {src} {trials} {tmp_path}/b", cwd=mini_recipe)
    a = np.loadtxt(tmp_path / "a" / "scores", usecols=2)
    b = np.loadtxt(tmp_path / "b" / "scores", usecols=2)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_trials_with_unknown_utterances_are_an_error(mini_recipe, tmp_path):
    trials = tmp_path / "trials"
    good = (mini_recipe / "data" / "test" / "trials").read_text().splitlines()[:3]
    trials.write_text("\n".join(good + ["nobody-1 nobody-2 target", "x y nontarget"]) + "\n")
    proc = sh(f"steps/score_sv.sh data/test_mfcc {trials} {tmp_path}/out",
              cwd=mini_recipe, check=False)
    assert proc.returncode != 0
    assert "4 ids in the trials are not among the utterances" in proc.stderr, proc.stderr
    assert "nobody-1" in proc.stderr


def test_plda_without_training_data_is_an_error(mini_recipe, tmp_path):
    proc = sh(f"steps/score_sv.sh --backend plda data/test_mfcc data/test/trials {tmp_path}",
              cwd=mini_recipe, check=False)
    assert proc.returncode != 0 and "needs --train-dir" in proc.stderr
