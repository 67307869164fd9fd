"""Score speaker-verification trials on a data dir's embeddings or pooled features.

Writes ``<out-dir>/scores`` (Kaldi's ``<enroll> <test> <score>``), ``det.png`` and, last,
``results.json`` (EER as Kaldi's compute-eer, minDCF at p_target 0.01 and 0.001 as Kaldi's
sid/compute_min_dcf.py, each with its 95% interval over the enrollment speakers as
``<metric>_ci``, see :mod:`speechssl.eval.bootstrap`), after removing those of an earlier
run.  See :mod:`speechssl.eval.sv` for the backends and AS-Norm (``--score-norm asnorm``),
after which the scores file, the metrics and their intervals are those of normalised scores.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from speechssl.cli import kaldi_bool, run
from speechssl.data.datadir import DataDir
from speechssl.data.trials import check_trials_cover, read_trials
from speechssl.errors import InputError
from speechssl.eval.bootstrap import bootstrap, speaker_index
from speechssl.eval.metrics import compute_eer, compute_min_dcf
from speechssl.eval.results import remove_outputs, write_results
from speechssl.eval.sv import (
    BackendConfig,
    SpeakerResampledScores,
    asnorm_scores,
    available_utts,
    check_cohort,
    enrollment_speakers,
    load_embeddings,
    make_backend,
    make_cohort,
    plot_det,
    score_trials,
    write_scores,
)

log = logging.getLogger("score_sv")
OUTPUTS = ("scores", "det.png")  # besides results.json
# results.json key -> the metric of (target, nontarget) scores, as Kaldi computes it
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "eer": lambda target, nontarget: compute_eer(target, nontarget)[0],
    "min_dcf_0.01": lambda target, nontarget: compute_min_dcf(target, nontarget, 0.01)[0],
    "min_dcf_0.001": lambda target, nontarget: compute_min_dcf(target, nontarget, 0.001)[0],
}
DIGITS = 4


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/score_sv.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="score_sv", description=__doc__)
    p.add_argument("--backend", choices=("cosine", "plda"), default="cosine")
    p.add_argument("--train-dir", default=None,
                   help="labelled data dir (utt2spk) for the mean, LDA, PLDA, AS-Norm cohort")
    p.add_argument("--lda-dim", type=int, default=100)
    p.add_argument("--mean-norm", type=kaldi_bool, default=True)
    p.add_argument("--length-norm", type=kaldi_bool, default=True)
    p.add_argument("--cmvn", type=kaldi_bool, default=False,
                   help="apply the speaker's CMVN (cmvn.scp) before pooling frame features")
    p.add_argument("--score-norm", choices=("none", "asnorm"), default="none",
                   help="adaptive S-norm against a cohort of --train-dir embeddings")
    # 300: WeSpeaker's VoxCeleb recipes (AS-Norm(300) in their results tables).
    p.add_argument("--cohort-size", type=cohort_size, default=300,
                   help="asnorm: the N highest cohort scores per utterance (at least 2)")
    # speaker: one entry per training speaker (the mean of its utterances), so the top N
    # are N distinct impostors rather than many utterances of the few closest speakers,
    # and the cohort is small (VoxCeleb2 dev: 5994 speakers, 1M utterances); as WeSpeaker.
    p.add_argument("--cohort-unit", choices=("utt", "speaker"), default="speaker",
                   help="asnorm: cohort of training utterances or speaker means")
    p.add_argument("data_dir")
    p.add_argument("trials")
    p.add_argument("out_dir")
    return p


def cohort_size(text: str) -> int:
    """At least 2 scores: the standard deviation of one is 0."""
    n = int(text)
    if n < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {n}")
    return n


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.score_norm == "asnorm" and args.train_dir is None:
        raise InputError("--score-norm asnorm needs --train-dir <labelled data dir> (the "
                         "cohort)")
    return args


def system_name(args: argparse.Namespace) -> str:
    """The backend, and the score normalisation if any: 'cosine', 'plda + AS-Norm'."""
    return args.backend + (" + AS-Norm" if args.score_norm == "asnorm" else "")


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


def normalise(args, backend, emb, trials, scores: np.ndarray, train, train_labels,
              ) -> tuple[np.ndarray, int | None]:
    """The scores after --score-norm, and the cohort's size (None without one)."""
    if args.score_norm == "none":
        return scores, None
    cohort = make_cohort(train, train_labels, args.cohort_unit)
    if args.cohort_unit == "speaker":
        utt2spk = DataDir(args.data_dir).utt2spk
        evaluated, what = {utt2spk[u] for u in emb.utts if u in utt2spk}, "speakers"
    else:
        evaluated, what = set(emb.utts), "utterances"
    check_cohort(cohort, args.cohort_size, evaluated, what, args.train_dir)
    log.info("AS-Norm: top %d of a cohort of %d training %s", args.cohort_size,
             len(cohort.utts), what)
    return asnorm_scores(backend, emb, trials, scores, cohort, args.cohort_size), \
        len(cohort.utts)


def metric_statistic(resampled: SpeakerResampledScores,
                     metric: Callable[[np.ndarray, np.ndarray], float]):
    """The bootstrap statistic of one metric: its value on a draw's scores."""
    def statistic(weights: np.ndarray) -> float | None:
        drawn = resampled.draw(weights)
        return None if drawn is None else metric(*drawn)
    return statistic


def speaker_intervals(scores: np.ndarray, is_target: np.ndarray, speakers: Sequence[str],
                      ) -> dict[str, dict]:
    """Each metric's :func:`bootstrap` over the trials' speakers (the same draws for all)."""
    names, speaker = speaker_index(speakers)
    resampled = SpeakerResampledScores(scores, is_target, speaker)
    return {key: bootstrap(metric_statistic(resampled, metric), len(names))
            for key, metric in METRICS.items()}


def rounded(ci: list[float] | None, digits: int = DIGITS) -> list[float] | None:
    return None if ci is None else [round(x, digits) for x in ci]


def metric_values(scores: np.ndarray, is_target: np.ndarray, speakers: Sequence[str],
                  ) -> tuple[dict, dict]:
    """``<metric>`` and ``<metric>_ci`` of every metric; how the intervals were made (the
    same for all: the draws are, and so are the draws without a target or nontarget)."""
    target, nontarget = scores[is_target], scores[~is_target]
    intervals = speaker_intervals(scores, is_target, speakers)
    values = {}
    for key, metric in METRICS.items():
        values[key] = round(metric(target, nontarget), DIGITS)
        values[f"{key}_ci"] = rounded(intervals[key]["ci"])
    return values, intervals["eer"]["bootstrap"]


def results(scores: np.ndarray, is_target: np.ndarray, speakers: Sequence[str], args,
            source: str, num_cohort: int | None = None) -> dict:
    """results.json; ``speakers``: each trial's, that of its enrollment utterance;
    ``num_cohort``: AS-Norm's cohort entries (the cohort keys are null without AS-Norm)."""
    asnorm = args.score_norm == "asnorm"
    target, nontarget = scores[is_target], scores[~is_target]
    values, how = metric_values(scores, is_target, speakers)
    return {"task": f"sv_{args.backend}", **values,
            "num_trials": int(target.size + nontarget.size), "num_target": int(target.size),
            "backend": args.backend, "features": Path(args.data_dir).name,
            "data_dir": str(Path(args.data_dir).resolve()),
            "input": source, "eer_threshold": compute_eer(target, nontarget)[1],
            "train_dir": args.train_dir, "mean_norm": args.mean_norm,
            "length_norm": args.length_norm, "lda_dim": args.lda_dim, "cmvn": args.cmvn,
            "score_norm": args.score_norm, "cohort_size": args.cohort_size if asnorm else None,
            "cohort_unit": args.cohort_unit if asnorm else None, "num_cohort": num_cohort,
            "bootstrap": how}


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
    speakers = enrollment_speakers(trials, DataDir(args.data_dir).utt2spk,
                                   Path(args.data_dir) / "utt2spk")
    emb = load_embeddings(args.data_dir, [x for t in trials for x in (t.enroll, t.test)],
                          cmvn=args.cmvn)
    train, train_labels = load_training(args.train_dir, args.cmvn, emb.vectors.shape[1])
    config = BackendConfig(args.backend, args.mean_norm, args.length_norm, args.lda_dim)
    backend = make_backend(config, emb, train, train_labels)
    scores, num_cohort = normalise(args, backend, emb, trials, score_trials(backend, emb, trials),
                                   train, train_labels)
    out.mkdir(parents=True, exist_ok=True)
    write_scores(out / "scores", trials, scores)
    res = results(scores, labels, speakers, args, emb.source, num_cohort)
    plot_det(out / "det.png", scores[labels], scores[~labels], res["eer"],
             f"{res['features']} ({system_name(args)})")
    write_results(out, res)
    log.info("%s, %s: EER %.2f%% (95%% interval over %d speakers %s), minDCF(0.01) %.4f, "
             "minDCF(0.001) %.4f on %d trials", res["features"], system_name(args), res["eer"],
             res["bootstrap"]["num_speakers"], res["eer_ci"], res["min_dcf_0.01"],
             res["min_dcf_0.001"], res["num_trials"])
    return 0


if __name__ == "__main__":
    run(main, "score_sv")
