"""EER and minDCF against brute-force implementations of Kaldi's definitions (written
here from REFERENCES section 2, independently of speechssl.eval.metrics) and a
hand-computed example, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechssl.eval.metrics import compute_eer, compute_min_dcf, det_curve


def kaldi_eer_loop(target, nontarget):
    """compute-eer.cc, line by line."""
    tgt, non = sorted(target), sorted(nontarget)
    t, n = len(tgt), len(non)
    p = 0
    while p + 1 < t:
        pos = max(n - 1 - int(n * p * 1.0 / t), 0)
        if non[pos] < tgt[p]:
            break
        p += 1
    return 100.0 * p / t, tgt[p]


def min_dcf_brute(target, nontarget, p_target):
    """For every score as threshold: FNR = targets <= thr, FPR = nontargets > thr.
    Distinct thresholds only, so exact whatever the order of ties."""
    best = math.inf
    for thr in sorted(set(target) | set(nontarget)):
        fnr = sum(s <= thr for s in target) / len(target)
        fpr = sum(s > thr for s in nontarget) / len(nontarget)
        best = min(best, fnr * p_target + fpr * (1 - p_target))
    return best / min(p_target, 1 - p_target)


def kaldi_min_dcf_script(target, nontarget, p_target):
    """sid/compute_min_dcf.py: ComputeErrorRates + ComputeMinDcf with Python's stable
    sorted(), scores given as the targets followed by the nontargets."""
    scores = list(target) + list(nontarget)
    labels = [1] * len(target) + [0] * len(nontarget)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    fnrs, fprs, acc_fn, acc_fp = [], [], 0, 0
    for i in order:
        acc_fn += labels[i]
        acc_fp += 1 - labels[i]
        fnrs.append(acc_fn / float(len(target)))
        fprs.append(1 - acc_fp / float(len(nontarget)))
    best, best_thr = float("inf"), scores[order[0]]
    for k, i in enumerate(order):
        c_det = fnrs[k] * p_target + fprs[k] * (1 - p_target)
        if c_det < best:
            best, best_thr = c_det, scores[i]
    return best / min(p_target, 1 - p_target), best_thr


def test_eer_hand_computed_example():
    # Sorted targets 0.3 0.7 0.8 0.9, nontargets 0.1 0.2 0.4 0.5: p=0 looks at
    # nontarget[3]=0.5 >= 0.3, p=1 at nontarget[2]=0.4 < 0.7: EER = 1/4.
    assert compute_eer([0.9, 0.8, 0.3, 0.7], [0.1, 0.2, 0.5, 0.4]) == (25.0, 0.7)
    # Perfect separation stops at p=0; total overlap runs to p=T-1.
    assert compute_eer([2.0, 3.0], [0.0, 1.0]) == (0.0, 2.0)
    assert compute_eer([0.0, 1.0], [2.0, 3.0]) == (50.0, 1.0)
    # Ties: equal scores are not "below", so the search goes on.
    assert compute_eer([1.0, 1.0, 1.0], [1.0, 1.0]) == (pytest.approx(200 / 3), 1.0)


@pytest.mark.parametrize("seed", range(40))
def test_eer_equals_kaldi_loop_on_random_sets(seed):
    rng = np.random.default_rng(seed)
    t, n = rng.integers(1, 40), rng.integers(1, 200)
    # Rounded scores give many ties between and within classes.
    target = np.round(rng.normal(1.0, 1.0, t), 1)
    nontarget = np.round(rng.normal(0.0, 1.0, n), 1)
    got = compute_eer(target, nontarget)
    want = kaldi_eer_loop(list(target), list(nontarget))
    assert got == pytest.approx(want), (seed, got, want)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("p_target", [0.5, 0.01, 0.001])
def test_min_dcf_equals_brute_force_over_thresholds(seed, p_target):
    rng = np.random.default_rng(seed)
    target = list(np.round(rng.normal(1.5, 1.0, rng.integers(1, 50)), 1))
    nontarget = list(np.round(rng.normal(0.0, 1.0, rng.integers(1, 300)), 1))
    got, thr = compute_min_dcf(target, nontarget, p_target)
    want = min_dcf_brute(target, nontarget, p_target)
    if len(set(target) & set(nontarget)) == 0:
        assert got == pytest.approx(want, abs=1e-12), (seed, got, want)
    else:
        # With a tie across classes Kaldi also evaluates splits inside the tie (its
        # stable sort puts targets first), which can only lower the cost.
        assert got <= want + 1e-12, (seed, got, want)
    assert thr in set(target) | set(nontarget)
    assert (got, thr) == kaldi_min_dcf_script(target, nontarget, p_target)


def test_min_dcf_hand_computed_example():
    # Ascending: .1n .2n .3t .4n .5n .7t .8t .9t; at 0.5 FNR = 1/4, FPR = 0,
    # C = 0.5 * 1/4, normalised by 0.5.
    assert compute_min_dcf([0.9, 0.8, 0.3, 0.7], [0.1, 0.2, 0.5, 0.4], 0.5) == (0.25, 0.5)
    # Kaldi never evaluates "accept everything": with separated scores minDCF is 0.
    assert compute_min_dcf([5.0, 6.0], [1.0, 2.0], 0.01) == (0.0, 2.0)


def test_det_curve_runs_from_accept_all_to_reject_all():
    fpr, fnr = det_curve([0.9, 0.8, 0.3, 0.7], [0.1, 0.2, 0.5, 0.4])
    assert (fpr[0], fnr[0]) == (1.0, 0.0) and (fpr[-1], fnr[-1]) == (0.0, 1.0)
    assert np.all(np.diff(fpr) <= 0) and np.all(np.diff(fnr) >= 0)
    assert fpr.shape == fnr.shape == (9,)


def test_bad_scores_are_errors():
    with pytest.raises(ValueError, match="no target"):
        compute_eer([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        compute_min_dcf([1.0], [np.nan], 0.01)
