"""Language recognition (speechssl.eval.lid, bin/score_lid.py): Cavg, min Cavg, EER and
accuracy against brute-force loops on hand-made scores, the back-ends' scores against
their formulas, the stratified bootstrap, and the entry point's refusals."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from speechssl.bin import score_lid
from speechssl.data.ark import ArkScpWriter
from speechssl.errors import InputError
from speechssl.eval import lid


def cavg_loop(scores, truth, threshold, p_target=0.5) -> float:
    """NIST's definition, one language pair and one utterance at a time."""
    langs = range(scores.shape[1])
    total = 0.0
    for target in langs:
        mine = [i for i in range(len(truth)) if truth[i] == target]
        p_miss = sum(scores[i, target] < threshold for i in mine) / len(mine)
        fa = 0.0
        for other in langs:
            if other != target:
                theirs = [i for i in range(len(truth)) if truth[i] == other]
                fa += sum(scores[i, target] >= threshold for i in theirs) / len(theirs)
        total += p_target * p_miss + (1 - p_target) / (len(langs) - 1) * fa
    return 100.0 * total / len(langs)


def min_cavg_loop(scores, truth) -> float:
    candidates = sorted(set(scores.ravel().tolist())) + [np.inf]
    return min(cavg_loop(scores, truth, t) for t in candidates)


def test_cavg_of_a_hand_made_example():
    # 2 languages, 2 utterances each; at threshold 0: language 0 misses one of its two
    # (P_miss 0.5) and accepts one of language 1's (P_fa 0.5); language 1 errs nowhere.
    scores = np.array([[1.0, -1.0], [-0.5, -2.0], [0.3, 2.0], [-1.0, 1.0]])
    truth = np.array([0, 0, 1, 1])
    curve = lid.CavgCurve(scores, truth)
    assert curve.at(0.0) == pytest.approx(100 * (0.5 * 0.5 + 0.5 * 0.5) / 2)
    assert lid.identification_accuracy(scores, truth) == 100.0
    # a threshold between 0.3 and 1.0 leaves language 0 one miss only: 0.5*0.5/2
    assert curve.minimum() == pytest.approx(12.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cavg_and_min_cavg_against_loops(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, 40)
    truth[:4] = np.arange(4)   # every language present
    scores = np.round(rng.normal(size=(40, 4)) + 2.0 * np.eye(4)[truth], 1)  # ties on purpose
    curve = lid.CavgCurve(scores, truth)
    for t in (-1.0, 0.0, 0.5, 1.3, 10.0):
        assert curve.at(t) == pytest.approx(cavg_loop(scores, truth, t), abs=1e-9)
    assert curve.minimum() == pytest.approx(min_cavg_loop(scores, truth), abs=1e-9)
    # integer weights: the same as copying each utterance that many times
    weights = rng.integers(0, 3, 40)
    weights[:4] = 1
    copies = np.repeat(np.arange(40), weights)
    assert curve.at(0.5, weights) == pytest.approx(
        cavg_loop(scores[copies], truth[copies], 0.5), abs=1e-9)
    assert curve.minimum(weights) == pytest.approx(
        min_cavg_loop(scores[copies], truth[copies]), abs=1e-9)


def test_eer_is_over_every_utterance_language_pair():
    from speechssl.eval.metrics import compute_eer

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 30)
    scores = rng.normal(size=(30, 3)) + np.eye(3)[truth]
    target = [scores[i, k] for i, k in itertools.product(range(30), range(3)) if truth[i] == k]
    other = [scores[i, k] for i, k in itertools.product(range(30), range(3)) if truth[i] != k]
    assert lid.language_eer(scores, truth) == compute_eer(target, other)[0]
    want = 100 * np.mean([np.argmax(row) == t for row, t in zip(scores, truth, strict=True)])
    assert lid.identification_accuracy(scores, truth) == pytest.approx(want)


def test_detection_llrs_against_the_formula():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(6, 4))
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    got = lid.detection_llrs(logp)
    post = np.exp(logp)
    for i, k in itertools.product(range(6), range(4)):
        rest = [post[i, j] for j in range(4) if j != k]
        assert got[i, k] == pytest.approx(np.log(post[i, k]) - np.log(np.mean(rest)))


def test_cosine_scores_against_a_loop():
    rng = np.random.default_rng(5)
    train, labels = rng.normal(size=(12, 5)), np.repeat([0, 1, 2], 4)
    test = rng.normal(size=(3, 5))
    mean = train.mean(axis=0)

    def unit(v):
        return v / np.linalg.norm(v)
    centres = [unit(np.mean([unit(train[i] - mean) for i in range(12) if labels[i] == k],
                            axis=0)) for k in range(3)]
    want = [[unit(t - mean) @ c for c in centres] for t in test]
    np.testing.assert_allclose(lid.cosine_scores(train, labels, test, 3), want, atol=1e-12)


def test_stratified_draws_keep_each_languages_speakers():
    speaker_lang = np.array(["a", "a", "b", "b", "b", "c"])
    utt_speaker = np.array([0, 0, 1, 2, 3, 4, 4, 5])
    draws = lid.stratified_draws(utt_speaker, speaker_lang, num_draws=50, seed=1)
    counts = np.zeros((50, 6))
    for s in range(6):
        counts[:, s] = draws[:, np.flatnonzero(utt_speaker == s)[0]]
    assert (counts[:, :2].sum(1) == 2).all() and (counts[:, 2:5].sum(1) == 3).all()
    assert (counts[:, 5] == 1).all() and counts[:, :2].std() > 0


def write_dir(path, vectors, utts, langs, speakers):
    path.mkdir(parents=True)
    with ArkScpWriter(path / "emb.ark", path / "embedding.scp") as w:
        for utt, v in zip(utts, vectors, strict=True):
            w.write(utt, v.astype(np.float32))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in zip(utts, speakers,
                                                                       strict=True)))
    (path / "utt2lang").write_text("".join(f"{u} {x}\n" for u, x in zip(utts, langs,
                                                                        strict=True)))
    return path


def corpus(root, tag, speakers_per_lang, rng, langs=("en", "fr", "xh")):
    centres = {x: 3 * np.eye(6)[i] for i, x in enumerate(["en", "fr", "xh", "zu"])}
    utts, vecs, ls, spks = [], [], [], []
    for lang in langs:
        for s in range(speakers_per_lang):
            spk = f"{tag}{lang}{s}"
            for u in range(5):
                utts.append(f"{spk}-{u}")
                vecs.append(centres[lang] + rng.normal(size=6))
                ls.append(lang)
                spks.append(spk)
    return write_dir(root / tag, np.array(vecs), utts, ls, spks)


@pytest.mark.parametrize("backend", lid.BACKENDS)
def test_score_lid_end_to_end(tmp_path, backend):
    rng = np.random.default_rng(6)
    train, test = corpus(tmp_path, "tr", 3, rng), corpus(tmp_path, "te", 2, rng)
    out = tmp_path / backend
    assert score_lid.main(["--backend", backend, str(train), str(test), str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == f"lid_{backend}" and res["languages"] == ["en", "fr", "xh"]
    assert res["accuracy"] > 90 and res["min_cavg"] < 10 and res["eer"] < 10, res
    for key in ("accuracy", "cavg", "min_cavg"):
        low, high = res[f"{key}_ci"]
        assert low <= res[key] + 1e-6 and res[key] - 1e-6 <= high, key
    assert res["bootstrap"]["num_speakers"] == 6
    lines = (out / "scores").read_text().splitlines()
    assert len(lines) == 30 * 3 and lines[0].split()[:2] == ["teen0-0", "en"]


def test_score_lid_refusals(tmp_path):
    rng = np.random.default_rng(7)
    train = corpus(tmp_path, "tr", 2, rng, langs=("en", "fr"))
    unseen = corpus(tmp_path, "te", 1, rng, langs=("en", "zu"))
    with pytest.raises(InputError, match=r"test languages zu have no training utterances"):
        score_lid.main([str(train), str(unseen), str(tmp_path / "o1")])
    with pytest.raises(InputError, match="4 speakers occur in both training and test"):
        score_lid.main([str(train), str(train), str(tmp_path / "o2")])
    (unseen / "utt2lang").unlink()
    with pytest.raises(InputError, match="no utt2lang"):
        score_lid.main([str(train), str(unseen), str(tmp_path / "o3")])
    assert not (tmp_path / "o1" / "results.json").exists()
