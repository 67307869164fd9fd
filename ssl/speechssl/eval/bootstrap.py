"""Confidence intervals by resampling speakers (the speaker-level bootstrap).

Utterances of one speaker are not independent samples: a test set of 14 speakers is
closer to 14 samples than to 1,000 utterances.  Every evaluation therefore gets its 95%
interval from the same procedure: draw the test speakers with replacement
(:func:`speaker_draws`, ``NUM_DRAWS`` draws from a fixed seed), give every trial, word
pair, frame or utterance the multiplicity of its speaker(s) in the draw, recompute the
metric, and take the 2.5th and 97.5th percentiles of the draws' values (the percentile
bootstrap).  A multiplicity is what the draw would give by copying each drawn speaker's
items: :func:`resample_items` does exactly that, the reference the weighted metrics are
tested against.

What "its speaker" is, per task: the enrollment speaker of an SV trial (target and
nontarget trials of a drawn model are kept); both speakers of a same-different pair (the
weight is the product of the two multiplicities: copies of two tokens pair with each
other, a token never with its own copy); the speaker of a probe's test utterance or frame,
or of an ASR utterance.

>>> draws = speaker_draws(3, num_draws=2, seed=0)
>>> draws.sum(axis=1).tolist()  # each draw has as many speakers as the test set
[3, 3]
>>> low, high = percentile_interval(np.arange(101.0))   # 2.500000000000002: round
>>> round(low, 6), round(high, 6)
(2.5, 97.5)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from speechssl.errors import InputError

NUM_DRAWS = 1000
SEED = 0
LEVEL = 0.95


def speaker_indices(num_speakers: int, num_draws: int = NUM_DRAWS, seed: int = SEED,
                    ) -> np.ndarray:
    """``(num_draws, num_speakers)`` speaker indices drawn with replacement."""
    if num_speakers < 1:
        raise InputError("a bootstrap over speakers needs at least one speaker")
    rng = np.random.default_rng(seed)
    return rng.integers(num_speakers, size=(num_draws, num_speakers))


def speaker_draws(num_speakers: int, num_draws: int = NUM_DRAWS, seed: int = SEED,
                  ) -> np.ndarray:
    """``(num_draws, num_speakers)`` multiplicities: how often each speaker was drawn."""
    idx = speaker_indices(num_speakers, num_draws, seed)
    counts = np.zeros_like(idx)
    np.add.at(counts, (np.arange(num_draws)[:, None], idx), 1)
    return counts


def resample_items(items: Sequence, speaker_of: Sequence[int], drawn: Sequence[int]) -> list:
    """The items of each drawn speaker, in draw order, a speaker's items repeated as often
    as it was drawn: the brute-force form of a draw."""
    by_speaker: dict[int, list] = {}
    for item, s in zip(items, speaker_of, strict=True):
        by_speaker.setdefault(int(s), []).append(item)
    return [item for s in drawn for item in by_speaker.get(int(s), [])]


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of the draws' values (linear interpolation)."""
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100.0 - tail])
    return float(low), float(high)


def speaker_index(speakers: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted unique speakers and each item's index among them."""
    names, index = np.unique(np.asarray(speakers, dtype=object).astype(str),
                             return_inverse=True)
    return names.tolist(), index.astype(np.int64)


def bootstrap(statistic: Callable[[np.ndarray], float | None], num_speakers: int,
              num_draws: int = NUM_DRAWS, seed: int = SEED, level: float = LEVEL,
              ) -> dict[str, object]:
    """The interval of ``statistic(multiplicities)`` over speaker draws.

    ``statistic`` gets the ``(num_speakers,)`` multiplicities of one draw and returns the
    metric, or None where the draw leaves it undefined (e.g. no target trial left); those
    draws are left out and counted.  Returns ``{"ci": [low, high], "bootstrap": {...}}``
    for a results.json (the second part says how the interval was made).
    """
    values = [statistic(w) for w in speaker_draws(num_speakers, num_draws, seed)]
    return interval_of_draws(np.array([np.nan if v is None else v for v in values]),
                             num_speakers, seed, level)


def interval_of_draws(values: np.ndarray, num_speakers: int, seed: int = SEED,
                      level: float = LEVEL) -> dict[str, object]:
    """:func:`bootstrap`'s result from the draws' values (NaN where undefined), for
    metrics that compute all draws at once."""
    values = np.asarray(values, dtype=np.float64)
    defined = values[np.isfinite(values)]
    info = {"unit": "speaker", "num_speakers": int(num_speakers), "num_draws": len(values),
            "num_undefined": int(len(values) - len(defined)), "seed": seed, "level": level}
    if not len(defined):
        return {"ci": None, "bootstrap": info}
    low, high = percentile_interval(defined, level)
    return {"ci": [round(low, 6), round(high, 6)], "bootstrap": info}


def weighted_ratio(numerator: np.ndarray, denominator: np.ndarray, speaker: np.ndarray,
                   num_speakers: int) -> Callable[[np.ndarray], float | None]:
    """A statistic sum(w * numerator) / sum(w * denominator) over items with speaker weights
    w: accuracy (correct / 1), WER (errors / reference words).  Per-speaker sums are taken
    once, so a draw costs O(speakers)."""
    num = np.bincount(speaker, weights=numerator, minlength=num_speakers)
    den = np.bincount(speaker, weights=denominator, minlength=num_speakers)

    def statistic(weights: np.ndarray) -> float | None:
        total = float(weights @ den)
        return None if total == 0 else float(weights @ num) / total
    return statistic
