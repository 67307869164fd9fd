"""Same-different evaluation against brute-force references written from REFERENCES.md
section 2: AP and breakeven by explicit loops, DTW by the textbook dynamic programme."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import sh
from recipe_fixtures import mini_recipe_fixture  # noqa: F401
from speechssl.data.feature_loader import FeatureLoader
from speechssl.dtw import condensed_dtw, listed_pairs_dtw, normalise_rows
from speechssl.errors import InputError
from speechssl.eval import bootstrap, samediff


def brute_ap_prb(dist, match) -> tuple[float, float]:
    """Sort, then precision@i loops; PRB with precision made monotone from the end."""
    order = sorted(range(len(dist)), key=lambda k: (dist[k], k))
    hits, precision, recall = 0, [], []
    total = sum(bool(m) for m in match)
    for i, k in enumerate(order, start=1):
        hits += bool(match[k])
        precision.append(hits / i)
        recall.append(hits / total)
    ap = sum(p for p, k in zip(precision, order, strict=True) if match[k]) / total
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    best = min(range(len(precision)), key=lambda i: (abs(recall[i] - precision[i]), i))
    return ap, (recall[best] + precision[best]) / 2


def textbook_dtw(x, y) -> float:
    """Full-matrix DTW on cosine costs, each cell's cost added once, over n + m."""
    n, m = len(x), len(y)
    cost = [[1 - float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) for b in y]
            for a in x]
    acc = [[np.inf] * (m + 1) for _ in range(n + 1)]
    acc[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i][j] = cost[i - 1][j - 1] + min(acc[i - 1][j - 1], acc[i - 1][j],
                                                 acc[i][j - 1])
    return acc[n][m] / (n + m)


@pytest.mark.parametrize("seed", range(6))
def test_ap_prb_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    num = int(rng.integers(5, 60))
    match = rng.random(num) < 0.3
    match[0] = True
    dist = rng.integers(0, 8, num).astype(float) if seed % 2 else rng.random(num)  # ties
    ap, prb = brute_ap_prb(dist, match)
    assert samediff.average_precision(dist, match) == pytest.approx(ap, abs=1e-12)
    assert samediff.precision_recall_breakeven(dist, match) == pytest.approx(prb, abs=1e-12)


def test_dtw_distances_match_textbook():
    rng = np.random.default_rng(1)
    segs = [rng.standard_normal((int(rng.integers(1, 12)), 5)) for _ in range(6)]
    got = samediff.pairwise_distances(segs, "dtw")
    i, j = np.triu_indices(len(segs), k=1)
    want = [textbook_dtw(segs[a], segs[b]) for a, b in zip(i, j, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_downsample_distances_are_cosine_of_flattened(monkeypatch):
    rng = np.random.default_rng(2)
    segs = [rng.standard_normal((int(rng.integers(1, 30)), 4)) for _ in range(11)]
    emb = np.stack([samediff.downsample(s).ravel() for s in segs])
    monkeypatch.setattr(samediff, "ROW_BLOCK", 3)   # pairs across several row blocks
    got = samediff.pairwise_distances(segs, "downsample")
    k = 0
    for a in range(11):
        for b in range(a + 1, 11):
            cos = emb[a] @ emb[b] / np.linalg.norm(emb[a]) / np.linalg.norm(emb[b])
            assert got[k] == pytest.approx(1 - cos, abs=1e-12), (a, b)
            k += 1


@pytest.mark.parametrize("method", samediff.METHODS)
def test_nj2_equals_nj1(method, monkeypatch):
    monkeypatch.setattr(samediff, "ROW_BLOCK", 7)   # chunks start and end inside blocks
    rng = np.random.default_rng(3)
    segs = [rng.standard_normal((int(rng.integers(2, 20)), 6)) for _ in range(40)]
    one = samediff.pairwise_distances(segs, method, nj=1)
    two = samediff.pairwise_distances(segs, method, nj=2)
    assert np.array_equal(one, two)


def test_condensed_pairs_cover_pdist_order():
    i, j = np.triu_indices(7, k=1)
    pairs = np.concatenate([samediff.condensed_pairs(7, lo, hi)
                            for lo, hi in [(0, 4), (4, 5), (5, 21)]])
    assert pairs.tolist() == np.stack([i, j], axis=1).tolist()


def _segment(key):
    return samediff.Segment(key, "u", 0, 1, 1)


def test_different_speaker_filtering():
    keys = ["cat_s1_a", "cat_s1_b", "cat_s2_c", "dog_s2_d"]
    segs = [_segment(k) for k in keys]
    # pdist order (0,1) (0,2) (0,3) (1,2) (1,3) (2,3); (0,1) and (2,3) share a speaker
    dist = np.array([0.1, 0.5, 0.6, 0.2, 0.3, 0.4])
    res = samediff.score(segs, dist)
    assert (res["num_pairs"], res["num_same_pairs"]) == (6, 3)
    assert (res["num_diff_speaker_pairs"], res["num_same_diff_speaker_pairs"]) == (4, 2)
    keep = np.array([False, True, True, True, True, False])
    match = np.array([True, True, False, True, False, False])
    ap, prb = brute_ap_prb(dist[keep], match[keep])
    assert res["ap_diff_speaker"] == pytest.approx(ap)
    assert res["prb_diff_speaker"] == pytest.approx(prb)
    assert res["ap"] == pytest.approx(brute_ap_prb(dist, match)[0])


def test_no_repeated_word_is_an_error():
    with pytest.raises(InputError, match="no word occurs twice"):
        samediff.score([_segment("cat_s1_a"), _segment("dog_s1_b")], np.array([0.3]))


def _word_tokens(rng, num_speakers, per_speaker, vocabulary):
    """Segments ``w<k>_s<n>_<i>`` and a symmetric distance matrix, same words nearer."""
    segs = [_segment(f"w{rng.integers(vocabulary)}_s{s}_{i}")
            for s in range(num_speakers) for i in range(per_speaker)]
    word = np.array([int(x.word[1:]) for x in segs])
    spk = np.array([int(x.speaker[1:]) for x in segs])
    n = len(segs)
    d = rng.random((n, n)) + 0.6 * (word[:, None] != word[None, :])
    d += 0.3 * rng.random(num_speakers)[spk][:, None]   # speakers that are harder than others
    return segs, (d + d.T) / 2


def _condensed(matrix):
    i, j = np.triu_indices(len(matrix), k=1)
    return matrix[i, j]


def brute_force_draw_ap(segs, matrix, drawn):
    """AP of one draw by copying the drawn speakers' tokens, each copy a speaker of its
    own: pairs within a copy and across speakers, none across two copies of one speaker,
    scored by the plain AP."""
    spk = bootstrap.speaker_index([s.speaker for s in segs])[1]
    tokens = bootstrap.resample_items(range(len(segs)), spk, drawn)
    copy = [k for k, s in enumerate(drawn) for _ in range(int(np.sum(spk == s)))]
    dist, match = [], []
    for u in range(len(tokens)):
        for v in range(u + 1, len(tokens)):
            a, b = tokens[u], tokens[v]
            if spk[a] != spk[b] or copy[u] == copy[v]:
                dist.append(matrix[a, b])
                match.append(segs[a].word == segs[b].word)
    return samediff.average_precision(np.array(dist), np.array(match)) if any(match) \
        else np.nan


def test_bootstrap_ap_equals_copying_the_drawn_speakers():
    rng = np.random.default_rng(4)
    segs, matrix = _word_tokens(rng, num_speakers=4, per_speaker=9, vocabulary=6)
    same_word, _, spk_i, spk_j = samediff.pair_labels(segs)
    drawn = bootstrap.speaker_indices(4, num_draws=30, seed=7)
    draws = bootstrap.speaker_draws(4, num_draws=30, seed=7)
    got = samediff.ap_draws(_condensed(matrix), same_word, spk_i, spk_j, draws)
    want = [brute_force_draw_ap(segs, matrix, d) for d in drawn]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # The reported interval is the percentile interval of these draws.
    res = samediff.score(segs, _condensed(matrix))
    all_draws = [brute_force_draw_ap(segs, matrix, d) for d in bootstrap.speaker_indices(4)]
    np.testing.assert_allclose(res["ap_ci"], bootstrap.percentile_interval(all_draws),
                               atol=1e-6)
    assert res["ap_ci"][0] <= res["ap"] <= res["ap_ci"][1]
    assert res["bootstrap"]["num_draws"] == bootstrap.NUM_DRAWS


def test_weighted_ap_counts_copies():
    rng = np.random.default_rng(0)
    dist, match = rng.random(40), rng.random(40) < 0.3
    weight = rng.integers(1, 4, 40).astype(float)
    copied = np.repeat(np.arange(40), weight.astype(int))   # copies side by side
    assert samediff.average_precision(dist, match, weight) == pytest.approx(
        samediff.average_precision(dist[copied], match[copied]), abs=1e-12)
    assert samediff.average_precision(dist, match, np.ones(40)) == pytest.approx(
        samediff.average_precision(dist, match), abs=1e-12)


def test_ap_interval_narrows_with_more_speakers():
    widths = []
    for num_speakers in (4, 24):
        segs, matrix = _word_tokens(np.random.default_rng(1), num_speakers, 10, 8)
        ci = samediff.score(segs, _condensed(matrix))["ap_ci"]
        widths.append(ci[1] - ci[0])
    assert widths[1] < 0.6 * widths[0]


def test_pair_sample_keeps_same_word_pairs_and_estimates_ap():
    rng = np.random.default_rng(3)
    segs, matrix = _word_tokens(rng, num_speakers=8, per_speaker=40, vocabulary=30)
    dist = _condensed(matrix)
    full = samediff.score(segs, dist)
    sample = samediff.sample_pairs(segs, 6000, seed=5)
    again = samediff.sample_pairs(segs, 6000, seed=5)
    assert np.array_equal(sample.index, again.index)
    assert len(sample.index) == len(np.unique(sample.index)) == 6000
    same_word = samediff.pair_labels(segs)[0]
    assert set(np.flatnonzero(same_word)) <= set(sample.index.tolist())
    negatives = sample.weight != 1
    assert sample.weight[negatives].sum() == pytest.approx((~same_word).sum())
    part = samediff.score(segs, dist[sample.index], sample)
    assert (part["num_pairs"], part["num_pairs_scored"]) == (len(dist), 6000)
    assert part["num_same_pairs"] == full["num_same_pairs"]
    assert part["random_ap"] == pytest.approx(full["random_ap"])
    width = full["ap_ci"][1] - full["ap_ci"][0]
    # A sample of an eighth of the pairs moves AP by well under its interval.
    assert abs(part["ap"] - full["ap"]) < 0.2 * width, (part["ap"], full["ap"], width)
    assert abs(part["ap_diff_speaker"] - full["ap_diff_speaker"]) < 0.2 * width
    assert samediff.sample_pairs(segs, len(dist), seed=5) is None   # all pairs fit


def test_pair_sample_smaller_than_the_same_word_pairs_is_an_error():
    segs = [_segment(f"cat_s1_{i}") for i in range(5)]
    with pytest.raises(InputError, match="10 same-word pairs alone reach max_pairs 8"):
        samediff.sample_pairs(segs, 8)


@pytest.mark.parametrize("method", samediff.METHODS)
def test_listed_pairs_equal_all_pairs(method):
    rng = np.random.default_rng(2)
    segs = [rng.standard_normal((int(rng.integers(3, 12)), 5)) for _ in range(30)]
    full = samediff.pairwise_distances(segs, method)
    index = np.sort(rng.choice(len(full), 100, replace=False))
    one = samediff.pairwise_distances(segs, method, index=index)
    two = samediff.pairwise_distances(segs, method, nj=2, index=index)
    np.testing.assert_allclose(one, full[index], rtol=1e-12, atol=1e-12)
    assert np.array_equal(one, two)


def test_listed_pairs_dtw_in_any_order():
    rng = np.random.default_rng(5)
    segs = [rng.standard_normal((int(rng.integers(2, 9)), 4)) for _ in range(8)]
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in segs])])
    unit = normalise_rows(np.concatenate(segs))
    pairs = samediff.condensed_pairs(8, 0, 28)[::-1].copy()   # not grouped in order
    np.testing.assert_allclose(listed_pairs_dtw(unit, offsets, pairs),
                               condensed_dtw(unit, offsets)[::-1], rtol=1e-12)


@pytest.fixture(name="test_mfcc")
def test_mfcc_fixture(mini_recipe):
    return mini_recipe / "data" / "test_mfcc"


def test_step_end_to_end(mini_recipe, test_mfcc):
    out = mini_recipe / "exp" / "eval" / "samediff" / "test_mfcc"
    sh(f"steps/score_samediff.sh --nj 2 --cmvn true --delta-order 2 {test_mfcc} "
       f"{test_mfcc}/samediff_words {out}", cwd=mini_recipe)
    res = json.loads((out / "results.json").read_text())
    lines = (test_mfcc / "samediff_words").read_text().splitlines()
    assert res["num_segments"] == len(lines)
    assert res["num_pairs"] == len(lines) * (len(lines) - 1) // 2
    assert res["method"] == "dtw" and res["feature_dim"] == 39
    assert res["random_ap"] == pytest.approx(res["num_same_pairs"] / res["num_pairs"])
    assert res["ap"] > 3 * res["random_ap"], res


def test_segment_past_utterance_end_names_line(test_mfcc, tmp_path):
    lines = (test_mfcc / "samediff_words").read_text().splitlines()
    key, utt, start, _ = lines[2].split()
    lines[2] = f"{key} {utt} {start} 999999"
    bad = tmp_path / "samediff_words"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"samediff_words:3: .*runs past the end"):
        samediff.evaluate(FeatureLoader(test_mfcc), bad)


@pytest.mark.parametrize("line, message", [
    ("cat_s1_u1_0-5 u1 5 3", "start < end"),
    ("cat_s1_u1_0-5 u1 0 x", "frame numbers"),
    ("cat_s1_u1_0-5 u1 0", "at least 4 fields"),
    ("cat_s1_u1_0-5 nosuchutt 0 5", "has no features"),
])
def test_bad_list_lines(test_mfcc, tmp_path, line, message):
    good = (test_mfcc / "samediff_words").read_text().splitlines()[:3]
    bad = tmp_path / "words"
    bad.write_text("\n".join([*good, line]) + "\n")
    with pytest.raises(InputError, match=rf"words:4: .*{message}"):
        samediff.evaluate(FeatureLoader(test_mfcc), bad)


def test_step_reports_bad_list(mini_recipe, test_mfcc, tmp_path):
    bad = tmp_path / "words"
    bad.write_text("cat_s1_u1_0-5 nosuchutt 0 5\ncat_s2_u2_0-5 nosuchutt 0 5\n")
    proc = sh(f"steps/score_samediff.sh {test_mfcc} {bad} {tmp_path / 'out'}",
              cwd=mini_recipe, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "out" / "log" / "score_samediff.log").read_text()
    assert "words:1:" in log and "has no features" in log
