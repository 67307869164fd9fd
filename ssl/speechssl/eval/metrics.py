"""Speaker-verification metrics exactly as Kaldi computes them.

:func:`compute_eer` is Kaldi's ``compute-eer`` (``ivectorbin/compute-eer.cc``) and
:func:`compute_min_dcf` is Kaldi's ``sid/compute_min_dcf.py``; both take the scores of
target and nontarget trials separately.  :func:`det_curve` gives the miss and false-alarm
rates of a DET plot.
"""

from __future__ import annotations

import numpy as np


def _scores(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"no {what} scores")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} scores contain NaN or infinite values")
    return x


def compute_eer(target_scores, nontarget_scores) -> tuple[float, float]:
    """Equal error rate in percent and its threshold, as Kaldi's ``compute-eer``.

    This is Kaldi's definition, not an interpolated EER: with T sorted target and N
    sorted nontarget scores, step p = 0, 1, ..., T-2, look at the nontarget score at
    index max(N-1-floor(N*p/T), 0) and stop at the first p where it is below target[p]
    (p = T-1 if none is).  EER = 100*p/T, threshold = target[p].  Other toolkits
    interpolate the ROC and give slightly different numbers.

    >>> compute_eer([0.9, 0.8, 0.3, 0.7], [0.1, 0.2, 0.5, 0.4])
    (25.0, 0.7)
    """
    tgt = np.sort(_scores(target_scores, "target"))
    non = np.sort(_scores(nontarget_scores, "nontarget"))
    t, n = tgt.size, non.size
    p = np.arange(t - 1)
    # Kaldi: nontarget_n = nontarget_size * target_position * 1.0 / target_size, truncated.
    idx = np.maximum(n - 1 - (n * p * 1.0 / t).astype(np.int64), 0)
    below = np.flatnonzero(non[idx] < tgt[p])
    pos = int(below[0]) if below.size else t - 1
    return 100.0 * pos / t, float(tgt[pos])


def error_rates(target_scores, nontarget_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kaldi's ``ComputeErrorRates``: thresholds at every score in ascending order (a
    stable sort of the targets followed by the nontargets), FNR = fraction of targets at or
    below, FPR = 1 - fraction of nontargets at or below.  Returns (fnr, fpr, thresholds)."""
    tgt = _scores(target_scores, "target")
    non = _scores(nontarget_scores, "nontarget")
    scores = np.concatenate([tgt, non])
    labels = np.concatenate([np.ones(tgt.size), np.zeros(non.size)])
    order = np.argsort(scores, kind="stable")
    labels = labels[order]
    fnr = np.cumsum(labels) / float(tgt.size)
    fpr = 1 - np.cumsum(1 - labels) / float(non.size)
    return fnr, fpr, scores[order]


def compute_min_dcf(target_scores, nontarget_scores, p_target: float,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> tuple[float, float]:
    """Minimum normalised detection cost and its threshold, as Kaldi's
    ``sid/compute_min_dcf.py``: C = c_miss*FNR*p + c_fa*FPR*(1-p) at each threshold of
    :func:`error_rates` (the first minimum wins), divided by min(c_miss*p, c_fa*(1-p)).

    >>> compute_min_dcf([0.9, 0.8, 0.3, 0.7], [0.1, 0.2, 0.5, 0.4], 0.5)
    (0.25, 0.5)
    """
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    fnr, fpr, thresholds = error_rates(target_scores, nontarget_scores)
    c_det = c_miss * fnr * p_target + c_fa * fpr * (1 - p_target)
    best = int(np.argmin(c_det))
    c_def = min(c_miss * p_target, c_fa * (1 - p_target))
    return float(c_det[best] / c_def), float(thresholds[best])


def det_curve(target_scores, nontarget_scores) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, fnr) of accepting scores above each threshold, for thresholds from below the
    lowest score (fpr 1, fnr 0) up through every distinct score (fpr 0 at the highest)."""
    tgt = np.sort(_scores(target_scores, "target"))
    non = np.sort(_scores(nontarget_scores, "nontarget"))
    thresholds = np.unique(np.concatenate([tgt, non]))
    fnr = np.searchsorted(tgt, thresholds, side="right") / tgt.size
    fpr = 1 - np.searchsorted(non, thresholds, side="right") / non.size
    return np.concatenate([[1.0], fpr]), np.concatenate([[0.0], fnr])
