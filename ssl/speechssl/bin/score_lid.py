"""Closed-set language recognition of a data dir's utterances from their vectors, with the
languages and back-end learnt on a training data dir of held-out speakers.

Writes ``<out-dir>/scores`` (Kaldi-style ``<utt> <language> <score>`` lines, every test
utterance against every language) and, last, ``results.json`` (identification accuracy,
EER over the language trials, Cavg and min Cavg, intervals from a speaker bootstrap within
languages), after removing an earlier run's.  See :mod:`speechssl.eval.lid`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from speechssl.cli import kaldi_bool, run
from speechssl.data.datadir import DataDir
from speechssl.errors import InputError, examples
from speechssl.eval import lid
from speechssl.eval.results import remove_outputs, write_results
from speechssl.eval.sv import load_embeddings
from speechssl.fileio import atomic_write

log = logging.getLogger("score_lid")
OUTPUTS = ("scores",)  # besides results.json
DIGITS = 2


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/score_lid.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="score_lid", description=__doc__)
    p.add_argument("--backend", choices=lid.BACKENDS, default="cosine")
    p.add_argument("--cmvn", type=kaldi_bool, default=False,
                   help="speaker CMVN (cmvn.scp) before pooling frame features")
    p.add_argument("--seed", type=int, default=0, help="the linear back-end's training")
    p.add_argument("train_dir")
    p.add_argument("test_dir")
    p.add_argument("out_dir")
    return p


def labelled(data_dir: str, cmvn: bool) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Vectors (embedding.scp, or feats.scp mean+std pooled as for SV) of the utterances
    with a language, their languages and speakers; every utterance needs a language."""
    data = DataDir(data_dir)
    if not data.has("utt2lang"):
        raise InputError("no utt2lang: language recognition needs each utterance's language",
                         path=data.path)
    utt2lang, utt2spk = data.table("utt2lang"), data.utt2spk
    emb = load_embeddings(data_dir, cmvn=cmvn)
    missing = [u for u in emb.utts if u not in utt2lang]
    if missing:
        raise InputError(f"{len(missing)} utterances have no language ({examples(missing)})",
                         path=data.path / "utt2lang")
    return (emb.vectors, [utt2lang[u] for u in emb.utts], [utt2spk[u] for u in emb.utts],
            emb.utts)


def check_protocol(train_dir: str, test_dir: str, train_langs: list[str],
                   test_langs: list[str], train_spk: list[str], test_spk: list[str]) -> None:
    """Closed set: every test language is a training one, and there are two or more;
    held-out speakers: none of the test speakers is a training one."""
    unseen = sorted(set(test_langs) - set(train_langs))
    if unseen:
        raise InputError(f"test languages {examples(unseen)} have no training utterances: a "
                         "closed-set task needs each in training", path=Path(test_dir) / "utt2lang")
    if len(set(train_langs)) < 2:
        raise InputError("fewer than two languages in training", path=Path(train_dir) / "utt2lang")
    shared = sorted(set(train_spk) & set(test_spk))
    if shared:
        raise InputError(f"{len(shared)} speakers occur in both training and test "
                         f"({examples(shared)}): language recognition needs held-out speakers",
                         path=Path(test_dir) / "utt2spk")


def write_scores(path: Path, utts: list[str], languages: list[str], scores: np.ndarray) -> None:
    with atomic_write(path) as f:
        for utt, row in zip(utts, scores, strict=True):
            f.writelines(f"{utt} {lang} {s:.6f}\n" for lang, s in zip(languages, row,
                                                                     strict=True))


def rounded(ci: list[float] | None) -> list[float] | None:
    return None if ci is None else [round(x, DIGITS) for x in ci]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # One thread: evaluations run side by side, and two jobs' spinning thread pools made
    # the linear back-end 13x slower on 2 cores (71 s against 5.5 s alone).
    torch.set_num_threads(1)
    out = Path(args.out_dir)
    remove_outputs(out, OUTPUTS)
    train, train_langs, train_spk, _ = labelled(args.train_dir, args.cmvn)
    test, test_langs, test_spk, test_utts = labelled(args.test_dir, args.cmvn)
    if train.shape[1] != test.shape[1]:
        raise InputError(f"training vectors have dimension {train.shape[1]}, test vectors "
                         f"{test.shape[1]}: use the same kind of features", path=args.test_dir)
    check_protocol(args.train_dir, args.test_dir, train_langs, test_langs, train_spk, test_spk)
    languages = sorted(set(train_langs))
    index = {lang: k for k, lang in enumerate(languages)}
    train_y = np.array([index[x] for x in train_langs])
    truth = np.array([index[x] for x in test_langs])
    if args.backend == "cosine":
        scores = lid.cosine_scores(train, train_y, test, len(languages))
    else:
        scores = lid.linear_scores(train, train_y, test, len(languages), args.seed)
    speakers, utt_speaker, speaker_lang = lid.speaker_languages(test_spk, test_langs)
    curve = lid.CavgCurve(scores, truth)
    intervals = lid.intervals(scores, truth, utt_speaker, speaker_lang, curve)
    values = {"accuracy": lid.identification_accuracy(scores, truth),
              "cavg": curve.at(0.0), "min_cavg": curve.minimum()}
    results = {"task": f"lid_{args.backend}", "features": Path(args.test_dir).name,
               **{k: round(v, DIGITS) for k, v in values.items()},
               **{f"{k}_ci": rounded(intervals[k]["ci"]) for k in values},
               "eer": round(lid.language_eer(scores, truth), DIGITS),
               "languages": languages, "num_test_utts": len(truth),
               "num_train_utts": len(train_y), "num_test_speakers": len(speakers),
               "p_target": lid.P_TARGET, "backend": args.backend, "cmvn": args.cmvn,
               "train_dir": args.train_dir, "test_dir": args.test_dir,
               "bootstrap": intervals["accuracy"]["bootstrap"]}
    out.mkdir(parents=True, exist_ok=True)
    write_scores(out / "scores", test_utts, languages, scores)
    write_results(out, results)
    log.info("%s, %s: accuracy %.2f%% %s, min Cavg %.2f %s, Cavg(0) %.2f, EER %.2f%% over "
             "%d utterances of %d languages", results["features"], args.backend,
             results["accuracy"], results["accuracy_ci"], results["min_cavg"],
             results["min_cavg_ci"], results["cavg"], results["eer"], len(truth),
             len(languages))
    return 0


if __name__ == "__main__":
    run(main, "score_lid")
