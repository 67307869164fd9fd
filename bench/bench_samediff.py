"""Same-different DTW speed: pairs per second of speechssl.eval.samediff at --nj 1 and 2
against a reference DTW on the same pairs, measured in the same run.

Two references, timed on a random subset of the pairs and scaled per pair: the cosine
cost matrix of a pair from one NumPy product, then the textbook double loop over it in
Python, indexing the NumPy arrays cell by cell ("textbook"), and the same loop over Python
lists (``.tolist()`` first: what a careful pure-Python implementation does, about 5x
faster).  Targets: at least 500x the reference per core, near-linear scaling with --nj.
Uses the test set of the default mini corpus in bench/out/train/data (generated if
missing), MFCC + deltas with CMVN.

    python bench/bench_samediff.py [--ref-pairs 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.dtw import normalise_rows, normalised_cost
from speechssl.eval import samediff

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "out" / "train" / "data"
OUT = ROOT / "bench" / "out" / "samediff"


def sh(command: str) -> None:
    subprocess.run(["bash", "-c", f". path.sh && {command}"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def test_mfcc() -> Path:
    """bench/out/samediff/data/test_mfcc: the default corpus's test set with MFCC."""
    data = OUT / "data" / "test_mfcc"
    if (data / "cmvn.scp").is_file():
        return data
    corpus = CORPUS
    if not (corpus / "test" / "samediff_words").is_file():
        corpus = OUT / "corpus" / "data"
        sh(f"python -m speechssl.bin.make_mini_corpus --preset default --nj 2 "
           f"{OUT / 'corpus' / 'wav'} {corpus}")
    sh(f"utils/copy_data_dir.sh {corpus / 'test'} {data} && "
       f"cp {corpus / 'test' / 'samediff_words'} {data} && "
       f"steps/make_mfcc.sh --nj 2 --mfcc-config egs/mini/conf/mfcc.conf {data} && "
       f"steps/compute_cmvn_stats.sh {data}")
    return data


def textbook_dtw(x: np.ndarray, y: np.ndarray) -> float:
    """One NumPy product for the costs, then the textbook double loop over NumPy arrays."""
    cost = normalised_cost(normalise_rows(x), normalise_rows(y))
    n, m = cost.shape
    acc = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            if i == 0 and j == 0:
                best = 0.0
            elif i == 0:
                best = acc[0, j - 1]
            elif j == 0:
                best = acc[i - 1, 0]
            else:
                best = min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
            acc[i, j] = best + cost[i, j]
    return acc[n - 1, m - 1] / (n + m)


def reference_dtw(x: np.ndarray, y: np.ndarray) -> float:
    """The same loop over Python lists."""
    cost = normalised_cost(normalise_rows(x), normalise_rows(y)).tolist()
    n, m = len(cost), len(cost[0])
    acc = [[0.0] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            if i == 0 and j == 0:
                best = 0.0
            elif i == 0:
                best = acc[0][j - 1]
            elif j == 0:
                best = acc[i - 1][0]
            else:
                best = min(acc[i - 1][j - 1], acc[i - 1][j], acc[i][j - 1])
            acc[i][j] = best + cost[i][j]
    return acc[n - 1][m - 1] / (n + m)


def timed(segs: list[np.ndarray], nj: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    dist = samediff.pairwise_distances(segs, "dtw", nj)
    return dist, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ref-pairs", type=int, default=300)
    args = p.parse_args()
    data = test_mfcc()
    words = data / "samediff_words"
    loader = FeatureLoader(data, FeatureTransform(cmvn=True, delta_order=2))
    segs = samediff.cut_segments(loader, samediff.read_word_list(words), words)
    lengths = np.array([len(s) for s in segs])
    num = len(segs)
    pairs = num * (num - 1) // 2
    cells = (lengths.sum() ** 2 - (lengths ** 2).sum()) / 2
    samediff.pairwise_distances(segs[:3], "dtw")  # compile (or load numba's cache)
    d1, t1 = timed(segs, 1)
    d2, t2 = timed(segs, 2)
    assert np.array_equal(d1, d2), "nj 2 differs from nj 1"

    rng = np.random.default_rng(0)
    sample = rng.choice(pairs, size=min(args.ref_pairs, pairs), replace=False)
    ij = samediff.condensed_pairs(num, 0, pairs)[sample]
    per_pair = {}
    for name, fn in (("textbook (NumPy arrays)", textbook_dtw), ("lists", reference_dtw)):
        start = time.perf_counter()
        ref = [fn(segs[a], segs[b]) for a, b in ij]
        per_pair[name] = (time.perf_counter() - start) / len(sample)
        np.testing.assert_allclose(d1[sample], ref, atol=1e-9)

    print(f"{num} segments ({lengths.mean():.1f} frames mean, dim {segs[0].shape[1]}), "
          f"{pairs} pairs, {cells:.3g} DTW cells; {os.cpu_count()} CPUs")
    for name, t_pair in per_pair.items():
        print(f"reference, {name}: {1 / t_pair:10.0f} pairs/s ({len(sample)} pairs timed)")
    for nj, t in ((1, t1), (2, t2)):
        ratios = ", ".join(f"{t_pair * pairs / t / nj:.0f}x {name.split()[0]}"
                           for name, t_pair in per_pair.items())
        print(f"speechssl --nj {nj}: {pairs / t:10.0f} pairs/s, {t:.2f} s, "
              f"{t * nj * 1e9 / cells:.2f} ns/cell/core, per core: {ratios}")
    print(f"scaling nj 2 / nj 1: {t1 / t2:.2f}x")


if __name__ == "__main__":
    main()
