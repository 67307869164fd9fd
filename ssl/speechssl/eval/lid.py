"""Closed-set language recognition from utterance vectors (SSL-for-SLR's second task).

Each test utterance gets a score for every training language:

* ``cosine``: the training mean subtracted, vectors length-normalised, the cosine to each
  language's centre (the normalised mean of its training vectors);
* ``linear``: the language probe's softmax classifier (:mod:`speechssl.eval.probe`)
  trained on the training vectors; its posteriors become detection log-likelihood ratios
  under flat priors, ``log p(L|x) - log(mean over K != L of p(K|x))``, so 0 is the Bayes
  threshold of a detector at P_target 0.5.

Metrics (percent, as EER):

* ``accuracy``: the top-scoring language is the utterance's (identification);
* ``eer``: every test utterance against every language is a trial, target where the
  language is its own (Kaldi's compute-eer on the pooled scores);
* ``cavg`` (NIST LRE 2009/2015, C_miss = C_fa = 1, P_target = 0.5) at a threshold t, with
  P_miss(L) the fraction of language L's utterances scoring below t for L and
  P_fa(L, K) the fraction of language K's utterances scoring t or more for L::

      Cavg = 1/N sum_L [P_target P_miss(L) + (1 - P_target)/(N - 1) sum_{K != L} P_fa(L, K)]

  ``cavg`` is at t = 0 (meaningful for ``linear``'s ratios only); ``min_cavg`` at the
  best single threshold, for any scores.

Intervals resample speakers within each language (a stratified speaker bootstrap): a
closed-set metric is defined only while every language keeps utterances, which a plain
draw of 2 speakers per language from 14 loses about half the time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from speechssl.eval.bootstrap import NUM_DRAWS, SEED, interval_of_draws
from speechssl.eval.metrics import compute_eer
from speechssl.eval.probe import TASK_DEFAULTS, train_probe
from speechssl.eval.sv import length_norm

BACKENDS = ("cosine", "linear")
P_TARGET = 0.5


def cosine_scores(train: np.ndarray, train_lang: np.ndarray, test: np.ndarray,
                  num_langs: int) -> np.ndarray:
    """(N_test, num_langs) cosines to the language centres."""
    mean = train.mean(axis=0)
    train_n, test_n = length_norm(train - mean), length_norm(test - mean)
    centres = np.stack([train_n[train_lang == k].mean(axis=0) for k in range(num_langs)])
    return test_n @ length_norm(centres).T


def linear_scores(train: np.ndarray, train_lang: np.ndarray, test: np.ndarray,
                  num_langs: int, seed: int = 0) -> np.ndarray:
    """(N_test, num_langs) detection log-likelihood ratios of the language probe."""
    config = dataclasses.replace(TASK_DEFAULTS["language"], seed=seed)
    probe, _ = train_probe(train.astype(np.float32), train_lang, num_langs, config)
    with torch.no_grad():
        logp = torch.log_softmax(probe(torch.from_numpy(test.astype(np.float32))), dim=1)
    return detection_llrs(logp.double().numpy())


def detection_llrs(log_posteriors: np.ndarray) -> np.ndarray:
    """Closed-set log posteriors (flat priors) -> one-vs-rest log-likelihood ratios."""
    num_langs = log_posteriors.shape[1]
    out = np.empty_like(log_posteriors)
    for k in range(num_langs):
        others = np.delete(log_posteriors, k, axis=1)
        peak = others.max(axis=1, keepdims=True)
        log_mean = (peak[:, 0] + np.log(np.exp(others - peak).sum(axis=1))
                    - np.log(num_langs - 1))
        out[:, k] = log_posteriors[:, k] - log_mean
    return out


def identification_accuracy(scores: np.ndarray, truth: np.ndarray) -> float:
    return 100.0 * float(np.mean(scores.argmax(axis=1) == truth))


def language_eer(scores: np.ndarray, truth: np.ndarray) -> float:
    target = np.zeros(scores.shape, dtype=bool)
    target[np.arange(len(truth)), truth] = True
    return compute_eer(scores[target], scores[~target])[0]


class CavgCurve:
    """Cavg (x100) of a score matrix at any threshold, for any per-utterance weights.

    The counts below each candidate threshold are positions in sorted score columns,
    found once; a set of weights then costs cumulative sums and gathers only."""

    def __init__(self, scores: np.ndarray, truth: np.ndarray):
        self.num_langs = scores.shape[1]
        if self.num_langs < 2:
            raise ValueError("Cavg needs at least two languages")
        self.truth = truth
        # thresholds where Cavg can change: every score, and above them all
        self.thresholds = np.append(np.unique(scores), np.inf)
        self.groups = []   # (detector L, utterances of K): their order and positions
        for lang in range(self.num_langs):
            for spoken in range(self.num_langs):
                members = np.flatnonzero(truth == spoken)
                column = scores[members, lang]
                order = np.argsort(column, kind="stable")
                below = np.searchsorted(column[order], self.thresholds, side="left")
                self.groups.append((lang, spoken, members[order], below))

    def curve(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Cavg x100 at every candidate threshold; None-weights: each utterance once."""
        w = np.ones(len(self.truth)) if weights is None else np.asarray(weights, float)
        total = np.bincount(self.truth, weights=w, minlength=self.num_langs)
        out = np.zeros(len(self.thresholds))
        fa_weight = (1 - P_TARGET) / (self.num_langs - 1)
        for lang, spoken, members, below in self.groups:
            mass_below = np.concatenate([[0.0], np.cumsum(w[members])])[below]
            if lang == spoken:
                out += P_TARGET * mass_below / total[spoken]
            else:
                out += fa_weight * (1.0 - mass_below / total[spoken])
        return 100.0 * out / self.num_langs

    def at(self, threshold: float, weights: np.ndarray | None = None) -> float:
        """Cavg x100 deciding 'language L' for scores >= threshold."""
        i = int(np.searchsorted(self.thresholds, threshold, side="left"))
        return float(self.curve(weights)[i])

    def minimum(self, weights: np.ndarray | None = None) -> float:
        return float(self.curve(weights).min())


def stratified_draws(utt_speaker: np.ndarray, speaker_lang: np.ndarray,
                     num_draws: int = NUM_DRAWS, seed: int = SEED) -> np.ndarray:
    """(num_draws, num_utts) weights: per draw, each language's speakers drawn with
    replacement from that language's speakers, an utterance weighted by its speaker's
    multiplicity."""
    rng = np.random.default_rng(seed)
    num_speakers = len(speaker_lang)
    counts = np.zeros((num_draws, num_speakers))
    for lang in np.unique(speaker_lang):
        members = np.flatnonzero(speaker_lang == lang)
        picks = members[rng.integers(len(members), size=(num_draws, len(members)))]
        np.add.at(counts, (np.arange(num_draws)[:, None], picks), 1)
    return counts[:, utt_speaker]


def intervals(scores: np.ndarray, truth: np.ndarray, utt_speaker: np.ndarray,
              speaker_lang: np.ndarray, curve: CavgCurve) -> dict[str, dict]:
    """The stratified bootstrap's intervals of accuracy, Cavg and min Cavg."""
    correct = (scores.argmax(axis=1) == truth).astype(float)
    values: dict[str, list[float]] = {"accuracy": [], "cavg": [], "min_cavg": []}
    for w in stratified_draws(utt_speaker, speaker_lang):
        values["accuracy"].append(100.0 * float(w @ correct) / float(w.sum()))
        points = curve.curve(w)
        values["cavg"].append(points[np.searchsorted(curve.thresholds, 0.0, side="left")])
        values["min_cavg"].append(points.min())
    out = {}
    for key, draws in values.items():
        interval = interval_of_draws(np.array(draws), len(speaker_lang))
        interval["bootstrap"]["unit"] = "speaker, within its language"
        out[key] = interval
    return out


def speaker_languages(speakers: Sequence[str], langs: Sequence[str],
                      ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted speakers, each utterance's index among them, and each speaker's language
    (the most frequent of its utterances': a stratum of the bootstrap)."""
    names, utt_speaker = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
    langs = np.asarray(langs, dtype=str)
    speaker_lang = []
    for s in range(len(names)):
        values, counts = np.unique(langs[utt_speaker == s], return_counts=True)
        speaker_lang.append(values[counts.argmax()])
    return names.tolist(), utt_speaker.astype(np.int64), np.array(speaker_lang)
