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
from threadpoolctl import threadpool_limits

from speechssl.data.feature_loader import FeatureLoader
from speechssl.data.table import PathLike, iter_table
from speechssl.dtw import condensed_dtw, normalise_rows
from speechssl.errors import InputError

log = logging.getLogger(__name__)

METHODS = ("dtw", "downsample")
DOWNSAMPLE_FRAMES = 10
ROW_BLOCK = 256     # segments per matrix product of the downsample method
CHUNKS_PER_JOB = 8  # more chunks than processes balance segment lengths across them


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
    rows = np.arange(n, dtype=np.int64)
    starts = rows * n - rows * (rows + 1) // 2  # condensed index of (i, i+1)
    k = np.arange(lo, hi, dtype=np.int64)
    i = np.searchsorted(starts, k, side="right") - 1
    j = k - starts[i] + i + 1
    return np.stack([i, j], axis=1)


# Set in the parent before the worker processes fork, so they share it without pickling.
_STATE: dict[str, object] = {}


def _chunk_distances(bounds: tuple[int, int]) -> np.ndarray:
    """Distances of condensed pairs ``lo:hi`` of the segments in ``_STATE``."""
    lo, hi = bounds
    if _STATE["method"] == "dtw":
        # One BLAS thread per process: --nj processes share the cores, and BLAS threads
        # on top of them would oversubscribe (nj 2 ran slower than nj 1 without this).
        with threadpool_limits(1):
            return condensed_dtw(_STATE["unit"], _STATE["offsets"], lo, hi)
    pairs = condensed_pairs(_STATE["num"], lo, hi)
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


def _prepare(segments: list[np.ndarray], method: str) -> None:
    _STATE.clear()
    _STATE.update(method=method, num=len(segments))
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
                       ) -> np.ndarray:
    """Distances of all N(N-1)/2 pairs in ``pdist`` order, ``(N(N-1)/2,)`` float64.

    ``nj > 1`` splits the pair range over that many forked processes; every pair is computed
    by the same code either way, so the result equals ``nj = 1`` bit for bit.
    """
    dims = {s.shape[1] for s in segments}
    if len(dims) > 1:
        raise InputError(f"segments have different feature dimensions {sorted(dims)}")
    _prepare(segments, method)
    total = len(segments) * (len(segments) - 1) // 2
    if nj <= 1:
        return _chunk_distances((0, total))
    edges = np.linspace(0, total, nj * CHUNKS_PER_JOB + 1).astype(np.int64)
    chunks = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    with mp.get_context("fork").Pool(nj) as pool:
        parts = pool.map(_chunk_distances, chunks, chunksize=1)
    return np.concatenate(parts)


def _ranked_precision(dist: np.ndarray, match: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matches sorted by ascending distance (stable) and precision@i = cumsum / i."""
    order = np.argsort(dist, kind="stable")
    ranked = match[order]
    return ranked, np.cumsum(ranked) / np.arange(1, len(ranked) + 1)


def average_precision(dist: np.ndarray, match: np.ndarray) -> float:
    """AP = sum(precision@i * match_i) / #matching pairs, pairs by ascending distance."""
    ranked, precision = _ranked_precision(dist, match)
    return float(np.sum(precision * ranked) / np.sum(ranked))


def precision_recall_breakeven(dist: np.ndarray, match: np.ndarray) -> float:
    """Precision made monotone from the end (running maximum from the last rank), then the
    mean of precision and recall where ``|recall - precision|`` is smallest (first such)."""
    ranked, precision = _ranked_precision(dist, match)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    recall = np.cumsum(ranked) / np.sum(ranked)
    i = int(np.argmin(np.abs(recall - precision)))
    return float((recall[i] + precision[i]) / 2)


def pair_labels(segments: list[Segment]) -> tuple[np.ndarray, np.ndarray]:
    """``(same_word, same_speaker)`` boolean arrays over the pairs in ``pdist`` order."""
    words = np.unique([s.word for s in segments], return_inverse=True)[1]
    spks = np.unique([s.speaker for s in segments], return_inverse=True)[1]
    i, j = np.triu_indices(len(segments), k=1)  # row-major: pdist order
    return words[i] == words[j], spks[i] == spks[j]


def _scores(dist: np.ndarray, match: np.ndarray) -> tuple[float | None, float | None]:
    if not match.any():
        return None, None
    return average_precision(dist, match), precision_recall_breakeven(dist, match)


def score(segments: list[Segment], dist: np.ndarray) -> dict[str, object]:
    """AP and PRB overall and over different-speaker pairs, with the pair counts."""
    same_word, same_spk = pair_labels(segments)
    if not same_word.any():
        raise InputError("no word occurs twice in the word list: AP is undefined")
    diff = ~same_spk
    ap, prb = _scores(dist, same_word)
    ap_diff, prb_diff = _scores(dist[diff], same_word[diff])
    if ap_diff is None:
        log.warning("no same-word pair has two different speakers; "
                    "ap_diff_speaker is null")
    return {"ap": ap, "prb": prb, "ap_diff_speaker": ap_diff, "prb_diff_speaker": prb_diff,
            "num_segments": len(segments), "num_pairs": int(len(dist)),
            "num_same_pairs": int(same_word.sum()),
            "num_diff_speaker_pairs": int(diff.sum()),
            "num_same_diff_speaker_pairs": int((same_word & diff).sum()),
            "random_ap": float(same_word.mean())}


def evaluate(loader: FeatureLoader, word_list: PathLike, method: str = "dtw", nj: int = 1,
             ) -> dict[str, object]:
    """Same-different results for the features of ``loader`` on ``word_list``."""
    segments = read_word_list(word_list)
    counts: dict[str, int] = {}
    for seg in segments:
        counts[seg.word] = counts.get(seg.word, 0) + 1
    single = sorted(w for w, c in counts.items() if c == 1)
    if single:
        log.warning("%d of %d words occur once (e.g. '%s'): they count in different-word "
                    "pairs only", len(single), len(counts), single[0])
    feats = cut_segments(loader, segments, word_list)
    dist = pairwise_distances(feats, method, nj)
    results = score(segments, dist)
    data_dir = Path(loader.data.path).resolve()
    results.update(task=f"samediff_{method}", method=method, features=data_dir.name,
                   data_dir=str(data_dir),
                   word_list=str(Path(word_list).resolve()),
                   feature_dim=int(feats[0].shape[1]))
    return results
