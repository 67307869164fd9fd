"""Score speaker-verification trials on a data dir's embeddings or pooled features.

Writes ``<out-dir>/scores`` (Kaldi's ``<enroll> <test> <score>``), ``det.png`` and, last,
``results.json`` (EER as Kaldi's compute-eer, minDCF at p_target 0.01 and 0.001 as Kaldi's
sid/compute_min_dcf.py), after removing those of an earlier run.  See
:mod:`speechssl.eval.sv` for the backends.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speechssl.cli import kaldi_bool, run
from speechssl.data.datadir import DataDir
from speechssl.data.trials import check_trials_cover, read_trials
from speechssl.errors import InputError
from speechssl.eval.metrics import compute_eer, compute_min_dcf
from speechssl.eval.results import remove_outputs, write_results
from speechssl.eval.sv import (
    BackendConfig,
    available_utts,
    load_embeddings,
    make_backend,
    plot_det,
    score_trials,
    write_scores,
)

log = logging.getLogger("score_sv")
OUTPUTS = ("scores", "det.png")  # besides results.json


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/score_sv.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="score_sv", description=__doc__)
    p.add_argument("--backend", choices=("cosine", "plda"), default="cosine")
    p.add_argument("--train-dir", default=None,
                   help="labelled data dir (utt2spk) for the mean, LDA and PLDA")
    p.add_argument("--lda-dim", type=int, default=100)
    p.add_argument("--mean-norm", type=kaldi_bool, default=True)
    p.add_argument("--length-norm", type=kaldi_bool, default=True)
    p.add_argument("--cmvn", type=kaldi_bool, default=False,
                   help="apply the speaker's CMVN (cmvn.scp) before pooling frame features")
    p.add_argument("data_dir")
    p.add_argument("trials")
    p.add_argument("out_dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def load_training(train_dir: str | None, cmvn: bool, dim: int):
    if train_dir is None:
        return None, None
    train = load_embeddings(train_dir, cmvn=cmvn)
    if train.vectors.shape[1] != dim:
        raise InputError(f"training embeddings have dim {train.vectors.shape[1]}, the "
                         f"evaluated ones {dim}: use the same kind of features",
                         path=train_dir)
    utt2spk = DataDir(train_dir).utt2spk
    return train, np.array([utt2spk[u] for u in train.utts])


def results(target: np.ndarray, nontarget: np.ndarray, args, source: str) -> dict:
    eer, threshold = compute_eer(target, nontarget)
    return {"task": f"sv_{args.backend}", "eer": round(eer, 4),
            "min_dcf_0.01": round(compute_min_dcf(target, nontarget, 0.01)[0], 4),
            "min_dcf_0.001": round(compute_min_dcf(target, nontarget, 0.001)[0], 4),
            "num_trials": int(target.size + nontarget.size), "num_target": int(target.size),
            "backend": args.backend, "features": Path(args.data_dir).name,
            "data_dir": str(Path(args.data_dir).resolve()),
            "input": source, "eer_threshold": threshold,
            "train_dir": args.train_dir, "mean_norm": args.mean_norm,
            "length_norm": args.length_norm, "lda_dim": args.lda_dim, "cmvn": args.cmvn}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out_dir)
    remove_outputs(out, OUTPUTS)
    trials = read_trials(args.trials)
    name, known = available_utts(args.data_dir)
    check_trials_cover(trials, known, args.trials, what=f"utterances of {args.data_dir}/{name}")
    labels = np.array([t.target for t in trials])
    if labels.all() or not labels.any():
        raise InputError("trials need both target and nontarget lines", path=args.trials)
    emb = load_embeddings(args.data_dir, [x for t in trials for x in (t.enroll, t.test)],
                          cmvn=args.cmvn)
    train, train_labels = load_training(args.train_dir, args.cmvn, emb.vectors.shape[1])
    config = BackendConfig(args.backend, args.mean_norm, args.length_norm, args.lda_dim)
    scores = score_trials(make_backend(config, emb, train, train_labels), emb, trials)
    out.mkdir(parents=True, exist_ok=True)
    write_scores(out / "scores", trials, scores)
    res = results(scores[labels], scores[~labels], args, emb.source)
    plot_det(out / "det.png", scores[labels], scores[~labels], res["eer"],
             f"{res['features']} ({args.backend})")
    write_results(out, res)
    log.info("%s, %s: EER %.2f%%, minDCF(0.01) %.4f, minDCF(0.001) %.4f on %d trials",
             res["features"], args.backend, res["eer"], res["min_dcf_0.01"],
             res["min_dcf_0.001"], res["num_trials"])
    return 0


if __name__ == "__main__":
    run(main, "score_sv")
