"""Speaker-verification scoring speed: trials per second of speechssl.eval.sv (cosine and
LDA+PLDA, matrix products over unique utterances) against a per-trial Python loop over
the same trials and the same backend, in the same run, on pooled MFCC of the default
mini corpus (test trials; PLDA trained on train).

The loop is what a straightforward scorer does: for each trial, project the enrollment
and the test embedding and score the pair.  Embedding loading is not timed.  A second row
per backend times scoring plus AS-Norm, top 300 of a cohort of the training utterances
(not speaker means: the corpus has fewer than 300 training speakers).

    python bench/bench_sv.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from speechssl.data.datadir import DataDir
from speechssl.data.trials import read_trials
from speechssl.eval.sv import (
    BackendConfig,
    asnorm_scores,
    load_embeddings,
    make_backend,
    make_cohort,
    score_trials,
)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "out" / "train"
OUT = ROOT / "bench" / "out" / "sv"
RECIPE = ROOT / "egs" / "mini"
TOP_N = 300  # steps/score_sv.sh's --cohort-size


def sh(command: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "ssl"))
    subprocess.run(["bash", "-c", f". ./path.sh && {command}"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare() -> Path:
    """MFCC of the default mini corpus's train and test sets (kept between runs)."""
    data = CORPUS / "data"
    if not (data / "test" / "trials").is_file():
        sh(f"python -m speechssl.bin.make_mini_corpus --preset default --nj 2 "
           f"{CORPUS}/wav {data}")
    for x in ("train", "test"):
        dest = OUT / f"{x}_mfcc"
        if not (dest / "feats.scp").is_file():
            sh(f"utils/copy_data_dir.sh {data}/{x} {dest} && steps/make_mfcc.sh --nj 2 "
               f"--mfcc-config {RECIPE}/conf/mfcc.conf {dest}")
    return data / "test" / "trials"


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def loop_scores(backend, emb, trials) -> np.ndarray:
    pos = {u: i for i, u in enumerate(emb.utts)}
    out = []
    for t in trials:
        u = backend.project(emb.vectors[[pos[t.enroll]]])
        v = backend.project(emb.vectors[[pos[t.test]]])
        out.append(backend.score_pairs(u, v)[0])
    return np.array(out)


def with_asnorm(backend, emb, trials, cohort) -> np.ndarray:
    return asnorm_scores(backend, emb, trials, score_trials(backend, emb, trials), cohort, TOP_N)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    trials = read_trials(prepare())
    emb = load_embeddings(OUT / "test_mfcc", [x for t in trials for x in (t.enroll, t.test)])
    train = load_embeddings(OUT / "train_mfcc")
    utt2spk = DataDir(OUT / "train_mfcc").utt2spk
    labels = np.array([utt2spk[u] for u in train.utts])
    cohort = make_cohort(train, labels, "utt")
    print(f"{len(trials)} trials, {len(emb.utts)} test utterances, dim {emb.vectors.shape[1]}")
    for name in ("cosine", "plda"):
        backend = make_backend(BackendConfig(name, lda_dim=100), emb, train, labels)
        fast = score_trials(backend, emb, trials)
        ref = loop_scores(backend, emb, trials)
        np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-6)
        t_fast = best_time(lambda b=backend: score_trials(b, emb, trials), args.repeat)
        t_ref = best_time(lambda b=backend: loop_scores(b, emb, trials), 3)
        print(f"{name:7s} vectorised {len(trials) / t_fast:12,.0f} trials/s   "
              f"per-trial loop {len(trials) / t_ref:10,.0f} trials/s   "
              f"ratio {t_ref / t_fast:6.0f}x")
        t_norm = best_time(lambda b=backend: with_asnorm(b, emb, trials, cohort), args.repeat)
        print(f"{name:7s} + AS-Norm  {len(trials) / t_norm:12,.0f} trials/s   "
              f"({t_norm * 1e3:.1f} ms against {t_fast * 1e3:.1f} ms without; top {TOP_N} of "
              f"{len(cohort.utts)} training utterances)")


if __name__ == "__main__":
    main()
