"""Same-different word discrimination (Carlin et al. 2011, as in Kamper's ``samediff``).

Word segments are cut from a data dir's features by a word list (``samediff_words``:
``<word>_<spk>_<utt>_<ssssss>-<eeeeee> <utt> <start-frame> <end-frame>``, end exclusive).
All N(N-1)/2 pairs get a distance, either

- ``dtw``: DTW with cosine frame distance, local costs summed once per cell of the path and
  divided by ``n + m`` (:mod:`speechssl.dtw`, one compiled loop over the pairs), or
- ``downsample``: each segment resampled to 10 frames by linear interpolation over time
  (Kamper's ``downsample.py`` "interpolate": ``interp1d`` evaluated at
  ``linspace(0, T-1, 10)``, not the FFT ``scipy.signal.resample``), flattened, and compared
  by cosine distance.

Pairs are ranked by ascending distance; average precision (AP) and precision-recall
breakeven (PRB) are computed exactly as REFERENCES.md section 2 defines them, over all pairs
and over the different-speaker pairs only (speaker = second ``_`` field of the key; both the
same-word and the different-word pairs are restricted, unlike Kamper's SWDP which keeps
all different-word pairs).  Ties in distance keep the pair order (row-major over the word
list, ``scipy.spatial.distance.pdist`` order), so results do not depend on ``nj``.

A long list is scored on a sample of its pairs (``max_pairs``, :func:`sample_pairs`):
every same-word pair, and a seeded uniform sample of the different-word pairs, each of which
then stands for ``negatives / sampled`` pairs in AP and PRB (an inverse-probability
weight), so the sample estimates the full list's numbers while the DTW work stays bounded.
results.json says how many pairs were scored and with what weight.

Each AP has a 95% interval from the speaker bootstrap (:mod:`speechssl.eval.bootstrap`).
A speaker drawn twice is two speakers of the resampled test set, so a draw is scored as if
the drawn speakers' tokens were copied, each copy a speaker of its own: a pair of two
speakers drawn ``m_a`` and ``m_b`` times counts ``m_a * m_b`` times, a pair of one speaker
drawn ``m_a`` times ``m_a`` times (once within each copy; the tokens of two copies of one
speaker are not paired: their distances are same-speaker distances, and counting them as
different-speaker pairs would bias every draw towards the easy pairs).  :func:`ap_draws`
computes that without a pass over the pairs per draw.

Words that occur once stay in the evaluation: they take part in different-word pairs only,
as in Kamper's scripts (a warning counts them).  A list with fewer than two segments or no
word occurring twice is an error: AP is undefined.  The list is used as given: the >= 50
frames and >= 5 characters selection is made when the list is written.

>>> dist = np.array([0.1, 0.2, 0.3, 0.4])
>>> match = np.array([True, False, True, False])
>>> round(average_precision(dist, match), 4)  # (1/1 + 2/3) / 2
0.8333
>>> round(precision_recall_breakeven(dist, match), 4)  # monotone precision 2/3, recall 1/2
0.5833
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import digamma
from threadpoolctl import threadpool_limits

from speechssl.data.feature_loader import FeatureLoader
from speechssl.data.table import PathLike, iter_table
from speechssl.dtw import condensed_dtw, listed_pairs_dtw, normalise_rows
from speechssl.errors import InputError
from speechssl.eval import bootstrap

log = logging.getLogger(__name__)

METHODS = ("dtw", "downsample")
DOWNSAMPLE_FRAMES = 10
ROW_BLOCK = 256     # segments per matrix product of the downsample method
CHUNKS_PER_JOB = 8  # more chunks than processes balance segment lengths across them
# Pairs scored at most: 940 words (the mini test set of 6 speakers) have 441,330 pairs; 14
# speakers' 2,200 words 2.4 million, 5x the DTW time.  A sample of 300,000 keeps every
# same-word pair and the AP estimate well inside its bootstrap interval (see the tests).
MAX_PAIRS = 300_000
DRAWS_PER_BLOCK = 50   # bootstrap draws computed together: 50 x matches floats per array


@dataclass(frozen=True)
class Segment:
    """One line of a word list: frames ``start:end`` of ``utt``."""

    key: str
    utt: str
    start: int
    end: int
    line: int

    @property
    def word(self) -> str:
        return self.key.split("_")[0]

    @property
    def speaker(self) -> str:
        return self.key.split("_")[1]


def read_word_list(path: PathLike) -> list[Segment]:
    """Parse a ``samediff_words`` file; malformed lines are errors naming file and line."""
    segments = []
    for line, key, rest in iter_table(path, min_fields=4, max_fields=4):
        utt, start, end = rest.split()
        if key.count("_") < 2:
            raise InputError("key is not <word>_<spk>_...", path=path, line=line, key=key)
        try:
            s, e = int(start), int(end)
        except ValueError:
            raise InputError(f"start and end must be frame numbers, got '{start} {end}'",
                             path=path, line=line, key=key) from None
        if not 0 <= s < e:
            raise InputError(f"need 0 <= start < end, got {s} {e}", path=path, line=line,
                             key=key)
        segments.append(Segment(key, utt, s, e, line))
    if len(segments) < 2:
        raise InputError(f"need at least 2 segments, got {len(segments)}", path=path)
    return segments


def cut_segments(loader: FeatureLoader, segments: list[Segment], list_path: PathLike,
                 ) -> list[np.ndarray]:
    """The ``(end - start, D)`` feature matrix of every segment, each utterance read once."""
    by_utt: dict[str, list[int]] = {}
    for i, seg in enumerate(segments):
        by_utt.setdefault(seg.utt, []).append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(segments)
    for utt, idx in by_utt.items():
        if utt not in loader.feats:
            first = segments[idx[0]]
            raise InputError(f"utterance '{utt}' has no features in "
                             f"{loader.data.path / 'feats.scp'}", path=list_path,
                             line=first.line, key=first.key)
        feats = loader[utt]
        for i in idx:
            seg = segments[i]
            if seg.end > feats.shape[0]:
                raise InputError(f"segment {seg.start}-{seg.end} runs past the end of "
                                 f"'{utt}' ({feats.shape[0]} frames)", path=list_path,
                                 line=seg.line, key=seg.key)
            out[i] = feats[seg.start:seg.end]
    return out


def downsample(x: np.ndarray, n: int = DOWNSAMPLE_FRAMES) -> np.ndarray:
    """``(T, D) -> (n, D)`` by linear interpolation at ``n`` evenly spaced times from frame 0
    to frame T-1 (a one-frame segment is repeated).

    >>> downsample(np.array([[0.0], [1.0], [2.0]]), 5)[:, 0].tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    t = np.linspace(0.0, x.shape[0] - 1, n)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, x.shape[0] - 1)
    frac = (t - i0)[:, None]
    return (1.0 - frac) * x[i0] + frac * x[i1]


def condensed_pairs(n: int, lo: int, hi: int) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j < n``, at condensed (``pdist``) indices ``lo:hi``: ``(P, 2)``.

    >>> condensed_pairs(4, 2, 5).tolist()
    [[0, 3], [1, 2], [1, 3]]
    """
    return pairs_at(n, np.arange(lo, hi, dtype=np.int64))


def pairs_at(n: int, index: np.ndarray) -> np.ndarray:
    """Pairs ``(i, j)`` at the condensed indices ``index``: ``(P, 2)``."""
    rows = np.arange(n, dtype=np.int64)
    starts = rows * n - rows * (rows + 1) // 2  # condensed index of (i, i+1)
    i = np.searchsorted(starts, index, side="right") - 1
    return np.stack([i, index - starts[i] + i + 1], axis=1)


def condensed_index(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The condensed index of pairs ``i < j``.

    >>> condensed_index(4, np.array([0, 1]), np.array([3, 2])).tolist()
    [2, 3]
    """
    return i * n - i * (i + 1) // 2 + (j - i - 1)


@dataclass(frozen=True)
class PairSample:
    """The pairs scored: condensed indices (ascending, so ``pdist`` order) and the number
    of pairs each stands for."""

    index: np.ndarray    # (P,) int64
    weight: np.ndarray   # (P,) float64: 1 for same-word pairs
    num_total: int       # N(N-1)/2
    seed: int

    def summary(self) -> dict[str, object]:
        negatives = self.weight != 1.0
        return {"num_pairs_scored": int(len(self.index)), "sample_seed": self.seed,
                "different_word_pair_weight": float(self.weight[negatives][0])
                if negatives.any() else 1.0}


def same_word_index(segments: list[Segment]) -> np.ndarray:
    """Condensed indices of every same-word pair, ascending."""
    by_word: dict[str, list[int]] = {}
    for k, seg in enumerate(segments):
        by_word.setdefault(seg.word, []).append(k)
    parts = [np.empty(0, dtype=np.int64)]
    for tokens in by_word.values():
        if len(tokens) > 1:
            t = np.array(tokens, dtype=np.int64)
            i, j = np.triu_indices(len(t), k=1)
            parts.append(condensed_index(len(segments), t[i], t[j]))
    return np.sort(np.concatenate(parts))


def sample_pairs(segments: list[Segment], max_pairs: int, seed: int = 0,
                 ) -> PairSample | None:
    """Every same-word pair and a uniform sample of the different-word pairs, ``max_pairs``
    in all; None when all pairs fit.  The same list and seed give the same sample."""
    n = len(segments)
    total = n * (n - 1) // 2
    if total <= max_pairs:
        return None
    same = same_word_index(segments)
    budget = max_pairs - len(same)
    if budget < 1:
        raise InputError(f"{len(same)} same-word pairs alone reach max_pairs {max_pairs}: "
                         "raise it")
    negatives = total - len(same)
    rank = np.sort(np.random.default_rng(seed).choice(negatives, size=budget, replace=False))
    # The rank-th different-word pair: skip the same-word indices at or below it.
    skipped = np.searchsorted(same - np.arange(len(same)), rank, side="right")
    index = np.concatenate([same, rank + skipped])
    weight = np.concatenate([np.ones(len(same)), np.full(budget, negatives / budget)])
    order = np.argsort(index)
    return PairSample(index[order], weight[order], total, seed)


# Set in the parent before the worker processes fork, so they share it without pickling.
_STATE: dict[str, object] = {}


def _chunk_distances(bounds: tuple[int, int]) -> np.ndarray:
    """Distances of condensed pairs ``lo:hi`` of the segments in ``_STATE``."""
    lo, hi = bounds
    listed = _STATE["index"]
    if _STATE["method"] == "dtw":
        # One BLAS thread per process: --nj processes share the cores, and BLAS threads
        # on top of them would oversubscribe (nj 2 ran slower than nj 1 without this).
        with threadpool_limits(1):
            if listed is None:
                return condensed_dtw(_STATE["unit"], _STATE["offsets"], lo, hi)
            return listed_pairs_dtw(_STATE["unit"], _STATE["offsets"],
                                    pairs_at(_STATE["num"], listed[lo:hi]))
    pairs = (condensed_pairs(_STATE["num"], lo, hi) if listed is None
             else pairs_at(_STATE["num"], listed[lo:hi]))
    emb = _STATE["unit"]                                          # (N, 10 D), unit rows
    # Dot products as matrix products of fixed row blocks: gathering both rows of every
    # pair costs pairs x 10 D memory (18 GB for 940 APC words).  The blocks start at
    # multiples of ROW_BLOCK whatever the chunk, so every nj computes the same products.
    dots = np.empty(len(pairs))
    rows = pairs[:, 0]
    with threadpool_limits(1):
        for start in range(rows[0] - rows[0] % ROW_BLOCK, rows[-1] + 1, ROW_BLOCK):
            sel = slice(np.searchsorted(rows, start), np.searchsorted(rows, start + ROW_BLOCK))
            block = emb[start:start + ROW_BLOCK] @ emb.T
            dots[sel] = block[rows[sel] - start, pairs[sel, 1]]
    return np.maximum(1.0 - dots, 0.0)


def _prepare(segments: list[np.ndarray], method: str, index: np.ndarray | None) -> None:
    _STATE.clear()
    _STATE.update(method=method, num=len(segments), index=index)
    if method == "dtw":
        lengths = np.array([s.shape[0] for s in segments], dtype=np.int64)
        _STATE["offsets"] = np.concatenate([[0], np.cumsum(lengths)])
        _STATE["unit"] = normalise_rows(np.concatenate(segments))         # (F, D)
    elif method == "downsample":
        flat = np.stack([downsample(s.astype(np.float64)).ravel() for s in segments])
        _STATE["unit"] = normalise_rows(flat)                              # (N, 10 D)
    else:
        raise ValueError(f"unknown method '{method}', choose from {METHODS}")


def pairwise_distances(segments: list[np.ndarray], method: str = "dtw", nj: int = 1,
                       index: np.ndarray | None = None) -> np.ndarray:
    """Distances of all N(N-1)/2 pairs in ``pdist`` order, ``(N(N-1)/2,)`` float64, or of
    the pairs at the ascending condensed indices ``index`` only.

    ``nj > 1`` splits the pairs over that many forked processes; every pair is computed by
    the same code either way, so the result equals ``nj = 1`` bit for bit.
    """
    dims = {s.shape[1] for s in segments}
    if len(dims) > 1:
        raise InputError(f"segments have different feature dimensions {sorted(dims)}")
    _prepare(segments, method, index)
    total = len(segments) * (len(segments) - 1) // 2 if index is None else len(index)
    if nj <= 1:
        return _chunk_distances((0, total))
    edges = np.linspace(0, total, nj * CHUNKS_PER_JOB + 1).astype(np.int64)
    chunks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    with mp.get_context("fork").Pool(nj) as pool:
        parts = pool.map(_chunk_distances, chunks, chunksize=1)
    return np.concatenate(parts)


def _ranked(dist: np.ndarray, match: np.ndarray, weight: np.ndarray | None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches sorted by ascending distance (stable), and the cumulative weight of the
    matches and of all pairs up to each rank."""
    order = np.argsort(dist, kind="stable")
    ranked = match[order]
    w = np.ones(len(ranked)) if weight is None else weight[order]
    return ranked, np.cumsum(w * ranked), np.cumsum(w)


def average_precision(dist: np.ndarray, match: np.ndarray,
                      weight: np.ndarray | None = None) -> float:
    """AP = sum(precision@i * match_i) / #matching pairs, pairs by ascending distance.

    With ``weight``, a different-word pair stands for ``weight`` pairs and a matching pair
    of integer weight w for w copies of itself ranked one after another (the bootstrap's
    copies): copy k after C matches among N pairs has precision (C + k) / (N + k), and the
    w copies sum to w - (N - C) (psi(N + w + 1) - psi(N + 1)).
    """
    if weight is None:
        ranked, hits, seen = _ranked(dist, match, None)
        return float(np.sum(hits / seen * ranked) / np.sum(ranked))
    order = np.argsort(dist, kind="stable")
    ranked, w = match[order], weight[order]
    seen = np.cumsum(w) - w                      # pairs ranked before each
    hits = np.cumsum(w * ranked) - w * ranked    # matches ranked before each
    return float(_matches_ap(seen[ranked], hits[ranked], w[ranked]))


def _matches_ap(seen: np.ndarray, hits: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """AP from, for each matching pair, the pairs and the matches ranked before it and its
    copies (last axis; leading axes are draws).  NaN where no match has a copy."""
    gain = copies - (seen - hits) * (digamma(seen + copies + 1.0) - digamma(seen + 1.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return gain.sum(axis=-1) / copies.sum(axis=-1)


def precision_recall_breakeven(dist: np.ndarray, match: np.ndarray,
                               weight: np.ndarray | None = None) -> float:
    """Precision made monotone from the end (running maximum from the last rank), then the
    mean of precision and recall where ``|recall - precision|`` is smallest (first such).
    ``weight``: the pairs each pair stands for, counted at its rank."""
    ranked, hits, seen = _ranked(dist, match, weight)
    precision = np.maximum.accumulate((hits / seen)[::-1])[::-1]
    recall = hits / hits[-1]
    i = int(np.argmin(np.abs(recall - precision)))
    return float((recall[i] + precision[i]) / 2)


def ap_draws(dist: np.ndarray, match: np.ndarray, spk_i: np.ndarray, spk_j: np.ndarray,
             draws: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """AP in each speaker draw of ``draws`` ``(B, S)`` (multiplicities), pair (i, j)
    counting ``m[spk_i] * m[spk_j] * weight`` times, or ``m[spk_i] * weight`` if both are
    one speaker's (the module's docstring says why), as :func:`average_precision` defines
    it.  Pairs are grouped by their two speakers, so a draw costs a product over the
    groups, not a pass over the pairs: for every matching pair, the pairs and the matches of
    each group ranked before it are counted once.  NaN where a draw keeps no match."""
    num_speakers = draws.shape[1]
    order = np.argsort(dist, kind="stable")
    ranked = match[order]
    w = np.ones(len(ranked)) if weight is None else weight[order]
    low, high = np.minimum(spk_i, spk_j)[order], np.maximum(spk_i, spk_j)[order]
    groups, group = np.unique(low * num_speakers + high, return_inverse=True)
    at_match = np.flatnonzero(ranked)
    seen = np.zeros((len(at_match), len(groups)))   # (matches, groups): weight ranked before
    hits = np.zeros_like(seen)
    by_group = np.argsort(group, kind="stable")     # each group's ranks, ascending
    bounds = np.searchsorted(group[by_group], np.arange(len(groups) + 1))
    for g in range(len(groups)):
        ranks = by_group[bounds[g]:bounds[g + 1]]
        before = np.searchsorted(ranks, at_match)   # the group's pairs ranked before
        seen[:, g] = np.concatenate([[0.0], np.cumsum(w[ranks])])[before]
        hits[:, g] = np.concatenate([[0.0], np.cumsum(w[ranks] * ranked[ranks])])[before]
    first, second = groups // num_speakers, groups % num_speakers
    copies = np.where(first == second, draws[:, first], draws[:, first] * draws[:, second]
                      ).astype(np.float64)                          # (B, groups)
    out = np.empty(len(draws))
    for lo in range(0, len(draws), DRAWS_PER_BLOCK):   # (block, matches) arrays at a time
        c = copies[lo:lo + DRAWS_PER_BLOCK]
        out[lo:lo + len(c)] = _matches_ap(c @ seen.T, c @ hits.T,
                                          c[:, group[ranked]] * w[ranked])
    return out


def pair_labels(segments: list[Segment], index: np.ndarray | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(same_word, same_speaker, speaker_i, speaker_j)`` over the pairs in ``pdist``
    order (or at the condensed indices ``index``); speakers as indices into the sorted
    speaker names."""
    words = np.unique([s.word for s in segments], return_inverse=True)[1]
    spks = bootstrap.speaker_index([s.speaker for s in segments])[1]
    if index is None:
        i, j = np.triu_indices(len(segments), k=1)  # row-major: pdist order
    else:
        i, j = pairs_at(len(segments), index).T
    return words[i] == words[j], spks[i] == spks[j], spks[i], spks[j]


def _scores(dist: np.ndarray, match: np.ndarray, weight: np.ndarray | None,
            ) -> tuple[float | None, float | None]:
    if not match.any():
        return None, None
    return (average_precision(dist, match, weight),
            precision_recall_breakeven(dist, match, weight))


def ap_interval(dist: np.ndarray, match: np.ndarray, spk_i: np.ndarray, spk_j: np.ndarray,
                num_speakers: int, weight: np.ndarray | None = None) -> dict[str, object]:
    """The AP's speaker-bootstrap interval: ``{"ci": [low, high], "bootstrap": {...}}``."""
    values = ap_draws(dist, match, spk_i, spk_j, bootstrap.speaker_draws(num_speakers),
                      weight)
    return bootstrap.interval_of_draws(values, num_speakers)


def score(segments: list[Segment], dist: np.ndarray, sample: PairSample | None = None,
          intervals: bool = True) -> dict[str, object]:
    """AP and PRB overall and over different-speaker pairs, the APs' bootstrap intervals
    (unless ``intervals`` is false) and the pair counts; ``dist`` of all pairs, or of
    ``sample``'s."""
    index, weight = (None, None) if sample is None else (sample.index, sample.weight)
    same_word, same_spk, spk_i, spk_j = pair_labels(segments, index)
    if not same_word.any():
        raise InputError("no word occurs twice in the word list: AP is undefined")
    num_speakers = len({s.speaker for s in segments})
    diff = ~same_spk
    w = np.ones(len(dist)) if weight is None else weight
    ap, prb = _scores(dist, same_word, weight)
    interval = (ap_interval(dist, same_word, spk_i, spk_j, num_speakers, weight)
                if intervals else {"ci": None, "bootstrap": None})
    ap_diff, prb_diff = _scores(dist[diff], same_word[diff], w[diff])
    diff_ci = None
    if ap_diff is None:
        log.warning("no same-word pair has two different speakers; "
                    "ap_diff_speaker is null")
    elif intervals:
        diff_ci = ap_interval(dist[diff], same_word[diff], spk_i[diff], spk_j[diff],
                              num_speakers, w[diff])["ci"]
    results = {"ap": ap, "ap_ci": interval["ci"], "prb": prb,
               "ap_diff_speaker": ap_diff, "ap_diff_speaker_ci": diff_ci,
               "prb_diff_speaker": prb_diff, "num_segments": len(segments),
               "num_pairs": int(len(dist)) if sample is None else sample.num_total,
               "num_same_pairs": int(same_word.sum()),
               "num_diff_speaker_pairs": round(float(w[diff].sum())),
               "num_same_diff_speaker_pairs": int((same_word & diff).sum()),
               "random_ap": float(same_word.sum() / w.sum()),
               "bootstrap": interval["bootstrap"]}
    results.update(sample.summary() if sample is not None
                   else {"num_pairs_scored": int(len(dist))})
    return results


def evaluate(loader: FeatureLoader, word_list: PathLike, method: str = "dtw", nj: int = 1,
             max_pairs: int = MAX_PAIRS, sample_seed: int = 0) -> dict[str, object]:
    """Same-different results for the features of ``loader`` on ``word_list``, on at most
    ``max_pairs`` pairs (:func:`sample_pairs`)."""
    segments = read_word_list(word_list)
    counts: dict[str, int] = {}
    for seg in segments:
        counts[seg.word] = counts.get(seg.word, 0) + 1
    single = sorted(w for w, c in counts.items() if c == 1)
    if single:
        log.warning("%d of %d words occur once (e.g. '%s'): they count in different-word "
                    "pairs only", len(single), len(counts), single[0])
    feats = cut_segments(loader, segments, word_list)
    sample = sample_pairs(segments, max_pairs, sample_seed)
    if sample is not None:
        log.info("scoring %d of %d pairs: every same-word pair and a sample of the others "
                 "(seed %d)", len(sample.index), sample.num_total, sample_seed)
    dist = pairwise_distances(feats, method, nj, None if sample is None else sample.index)
    results = score(segments, dist, sample)
    results["max_pairs"] = max_pairs
    data_dir = Path(loader.data.path).resolve()
    results.update(task=f"samediff_{method}", method=method, features=data_dir.name,
                   data_dir=str(data_dir),
                   word_list=str(Path(word_list).resolve()),
                   feature_dim=int(feats[0].shape[1]))
    return results
