"""Train a probing classifier (phone, speaker or language) on one data dir's features
and measure its accuracy on another's, with a 95% interval over the test speakers.  Writes
the classifier ``probe.pt``, ``per_class.txt`` and, last, ``<exp-dir>/results.json``, after
removing an earlier run's; see :mod:`speechssl.eval.probe` for the protocol and
:mod:`speechssl.eval.probe_data` for the examples and labels."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from speechssl.cli import add_device_option, kaldi_bool, run
from speechssl.data.feature_loader import FeatureTransform
from speechssl.errors import InputError
from speechssl.eval.probe import (
    TASK_DEFAULTS,
    ProbeConfig,
    accuracy_interval,
    per_class_table,
    percent,
    predict,
    train_probe,
)
from speechssl.eval.probe_data import (
    TASKS,
    ProbeSet,
    check_held_out,
    check_speakers,
    example_speakers,
    load_set,
)
from speechssl.eval.results import remove_outputs, write_results
from speechssl.fileio import atomic_write
from speechssl.train.distributed import select_device

log = logging.getLogger("train_probe")
OUTPUTS = ("probe.pt", "per_class.txt")  # besides results.json


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/train_probe.sh's defaults (tests/test_cli_defaults.py); the
    step resolves --cmvn and --delta-order (from <data-dir>/eval_opts) and passes them."""
    p = argparse.ArgumentParser(prog="train_probe", description=__doc__)
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("--hidden-dim", type=int, default=0, help="0: linear; else one ReLU layer")
    p.add_argument("--cmvn", type=kaldi_bool, required=True,
                   help="subtract the speaker's mean (cmvn.scp) from frame features")
    p.add_argument("--delta-order", type=int, required=True, help="2 gives MFCC 13 -> 39")
    p.add_argument("--epochs", type=int, help="default: per task (speechssl.eval.probe)")
    p.add_argument("--lr", type=float, help="Adam learning rate; default: per task")
    p.add_argument("--batch-size", type=int, help="default: per task")
    p.add_argument("--seed", type=int, default=0)
    add_device_option(p, "where to train")
    p.add_argument("train_dir")
    p.add_argument("test_dir")
    p.add_argument("exp_dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr is not None and not args.lr > 0:
        p.error("--lr must be positive")
    if args.hidden_dim < 0 or args.delta_order < 0:
        p.error("--hidden-dim and --delta-order must be non-negative")
    return args


def probe_config(args: argparse.Namespace) -> ProbeConfig:
    """The task's defaults with the options given on the command line."""
    given = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size")
             if getattr(args, k) is not None}
    return dataclasses.replace(TASK_DEFAULTS[args.task], hidden_dim=args.hidden_dim,
                               seed=args.seed, **given)


def label_order(label: str) -> tuple:
    """Integers in numeric order (CPC's phone ids), then other labels in C order."""
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)


def class_ids(data: ProbeSet, classes: list[str]) -> np.ndarray:
    """The set's labels as indices into ``classes``; -1 for labels not among them."""
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index.get(w, -1) for w in data.vocab], dtype=np.int64)[data.label_ids]


def load_sets(args: argparse.Namespace, transform: FeatureTransform,
              ) -> tuple[ProbeSet, ProbeSet]:
    if args.task != "phone":
        check_speakers(args.task, args.train_dir, args.test_dir)
    train = load_set(args.train_dir, args.task, transform)
    test = load_set(args.test_dir, args.task, transform)
    check_held_out(train, test)
    if train.x.shape[1] != test.x.shape[1]:
        raise InputError(f"training vectors ({args.train_dir}, {train.source}) have dimension "
                         f"{train.x.shape[1]}, test vectors ({test.source}) "
                         f"{test.x.shape[1]}: use the same kind of features for both",
                         path=args.test_dir)
    for d in (train, test):
        if not len(d.x):
            raise InputError("no labelled examples", path=d.path)
        log.info("%s: %d examples of dim %d from %d utterances (%s), %d labels", d.path,
                 len(d.x), d.x.shape[1], d.num_utts, d.source, len(d.vocab))
    return train, test


def rounded(ci: list[float] | None) -> list[float] | None:
    """An interval rounded as the accuracies (2 decimals of a percent)."""
    return None if ci is None else [round(x, 2) for x in ci]


def write_outputs(out: Path, probe, classes: list[str], table: list[str],
                  results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "probe.pt", "wb") as f:
        torch.save({"state_dict": probe.state_dict(), "classes": classes,
                    "task": results["task"], "hidden_dim": results["hidden_dim"],
                    "dim": results["dim"], "cmvn": results["cmvn"],
                    "delta_order": results["delta_order"]}, f)
    with atomic_write(out / "per_class.txt") as f:
        f.write("\n".join(table) + "\n")
    write_results(out, results)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    remove_outputs(args.exp_dir, OUTPUTS)
    torch.set_num_threads(1)   # several probes may run side by side
    start = time.perf_counter()
    config = probe_config(args)
    if args.task != "phone" and args.cmvn:
        log.warning("--cmvn true subtracts each speaker's mean frame before pooling, which "
                    "removes most of what a mean-pooled %s probe measures", args.task)
    train, test = load_sets(args, FeatureTransform(cmvn=args.cmvn,
                                                   delta_order=args.delta_order))
    speakers, test_speaker = example_speakers(test)   # checked before the training
    loaded = time.perf_counter()
    classes = sorted(train.vocab, key=label_order)
    train_y, test_y = class_ids(train, classes), class_ids(test, classes)
    probe, losses = train_probe(train.x, train_y, len(classes), config,
                                 select_device(args.device))
    train_pred, test_pred = predict(probe, train.x), predict(probe, test.x)
    unseen = test_y < 0
    if unseen.any():
        log.warning("%d test examples have labels unseen in training (%s): counted as errors",
                    int(unseen.sum()), " ".join(sorted(set(test.labels[unseen]))[:10]))
    majority = np.bincount(train_y, minlength=len(classes)).argmax()
    interval = accuracy_interval(test_pred == test_y, test_speaker, len(speakers))
    results = {
        "task": f"probe_{args.task}", "features": Path(args.test_dir).name,
        "accuracy": percent((test_pred == test_y).sum(), len(test_y)),
        "accuracy_ci": rounded(interval["ci"]),
        "train_accuracy": percent((train_pred == train_y).sum(), len(train_y)),
        "majority_baseline": percent((test_y == majority).sum(), len(test_y)),
        "num_classes": len(classes), "num_train": len(train_y), "num_test": len(test_y),
        "unseen_test_labels": int(unseen.sum()),
        "num_train_utts": train.num_utts, "num_test_utts": test.num_utts,
        "input": train.source, "dim": int(train.x.shape[1]),
        "hidden_dim": config.hidden_dim, "epochs": config.epochs, "lr": config.lr,
        "batch_size": config.batch_size, "seed": config.seed, "cmvn": args.cmvn,
        "delta_order": args.delta_order, "final_loss": round(losses[-1], 4),
        "train_dir": args.train_dir, "test_dir": args.test_dir,
        **{f"train_{k}": v for k, v in train.counts.items()},
        **{f"test_{k}": v for k, v in test.counts.items()},
        "bootstrap": interval["bootstrap"],
        "load_seconds": round(loaded - start, 3),
        "seconds": round(time.perf_counter() - start, 3),
    }
    table = per_class_table(classes, train_y, test.labels, test_y, test_pred)
    write_outputs(Path(args.exp_dir), probe, classes, table, results)
    log.info("%s probe on %s: accuracy %.2f%% (95%% interval over %d test speakers %s; "
             "train %.2f%%, majority baseline %.2f%%), %d classes, %d train / %d test "
             "examples, %.1f s", args.task, results["features"], results["accuracy"],
             len(speakers), results["accuracy_ci"], results["train_accuracy"],
             results["majority_baseline"], len(classes), len(train_y), len(test_y),
             results["seconds"])
    return 0


if __name__ == "__main__":
    run(main, "train_probe")
