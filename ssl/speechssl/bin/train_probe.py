"""Train a probing classifier (phone, speaker or language) on one data dir's features
and measure its accuracy on another's, with a 95% interval over the test speakers.  Writes
the classifier ``probe.pt``, ``per_class.txt`` and, last, ``<exp-dir>/results.json``, after
removing an earlier run's; see :mod:`speechssl.eval.probe` for the protocol and
:mod:`speechssl.eval.probe_data` for the examples and labels.

The phone probe streams its training frames (``--stream true``) instead of holding them
as one matrix when that matrix (frames x dim x 4 bytes, from the feature headers) would
take more than ``--max-memory-mb`` (``--stream auto``): LibriSpeech's 28 M frames are 29 GB
at 256-d, while the streamed probe holds ``--buffer-frames`` frames at a time.  Both give
the same results.json (``streamed`` says which ran, ``peak_rss_mb`` what it took)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speechssl.cli import add_device_option, kaldi_bool, run
from speechssl.data.feature_loader import FeatureTransform
from speechssl.errors import InputError
from speechssl.eval.layers import (
    StackedLayers,
    layer_weights_report,
    read_stacked_layers,
    require_stacked_layers,
)
from speechssl.eval.probe import (
    TASK_DEFAULTS,
    Moments,
    Probe,
    ProbeConfig,
    Tally,
    accuracy_interval,
    per_class_table,
    percent,
    predict,
    tally_streamed,
    train_probe,
    train_probe_streamed,
)
from speechssl.eval.probe_data import (
    TASKS,
    FrameSet,
    ProbeSet,
    check_held_out,
    check_speakers,
    feature_size,
    load_set,
    phone_frames,
    utterance_speakers,
)
from speechssl.eval.results import remove_outputs, write_results
from speechssl.fileio import atomic_write
from speechssl.memory import peak_rss_mb
from speechssl.train.distributed import select_device

log = logging.getLogger("train_probe")
OUTPUTS = ("probe.pt", "per_class.txt")  # besides results.json
# 500,000 frames (~980 minibatches of 512) are ~400 LibriSpeech utterances from most of
# its speakers, so a minibatch drawn from a buffer is close to one drawn from the whole
# set; they take 0.5 GB at 256-d, 1.5 GB at 768-d (a wav2vec 2.0 / HuBERT Base layer).
# Fewer utterances mix worse: on egs/mini's 7 languages, buffers of 50 utterances cost up
# to 3 points of test accuracy against one buffer (bench/bench_probe_memory.py).
BUFFER_FRAMES = 500_000


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
    p.add_argument("--layer-sum", type=kaldi_bool, default=False,
                   help="a learnable weighted sum of the stacked layers of "
                        "'extract_ssl.sh --layer all' (speechssl.eval.layers)")
    p.add_argument("--layer-norm", type=kaldi_bool, default=False,
                   help="with --layer-sum: layer-normalise each layer before the sum")
    p.add_argument("--stream", choices=("auto", "true", "false"), default="auto",
                   help="phone: read the training frames a buffer at a time instead of "
                        "holding them; auto: when they exceed --max-memory-mb")
    p.add_argument("--max-memory-mb", type=float, default=1024,
                   help="--stream auto streams a training matrix (frames x dim x 4 bytes) "
                        "larger than this; in memory, the probe peaks at about 3 times the "
                        "training matrix plus the test set's")
    p.add_argument("--buffer-frames", type=int, default=BUFFER_FRAMES,
                   help="frames of a streamed buffer (shuffled within)")
    add_device_option(p, "where to train")
    p.add_argument("train_dir")
    p.add_argument("test_dir")
    p.add_argument("exp_dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "buffer_frames"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.max_memory_mb > 0:
        p.error("--max-memory-mb must be positive")
    if args.stream == "true" and args.task != "phone":
        p.error("--stream true applies to --task phone (the others hold one vector per "
                "utterance)")
    if args.lr is not None and not args.lr > 0:
        p.error("--lr must be positive")
    if args.hidden_dim < 0 or args.delta_order < 0:
        p.error("--hidden-dim and --delta-order must be non-negative")
    if args.layer_norm and not args.layer_sum:
        p.error("--layer-norm true applies to --layer-sum true only")
    return args


def probe_config(args: argparse.Namespace, layout: StackedLayers | None) -> ProbeConfig:
    """The task's defaults with the options given on the command line."""
    given = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size")
             if getattr(args, k) is not None}
    return dataclasses.replace(TASK_DEFAULTS[args.task], hidden_dim=args.hidden_dim,
                               seed=args.seed, layer_sum=len(layout.names) if layout else 0,
                               layer_norm=args.layer_norm, **given)


def stacked_layout(args: argparse.Namespace) -> StackedLayers | None:
    """With --layer-sum, the layers of the training dir, which the test dir must share."""
    if not args.layer_sum:
        return None
    layout = read_stacked_layers(args.train_dir)
    if layout is None:
        raise InputError("--layer-sum needs the stacked layers of 'steps/extract_ssl.sh "
                         "--layer all' (layer=all in ssl_model)", path=args.train_dir)
    if read_stacked_layers(args.test_dir) != layout:
        raise InputError(f"the training dir stacks layers {' '.join(layout.names)} of "
                         f"{layout.layer_dim}; the test dir does not", path=args.test_dir)
    return layout


def label_order(label: str) -> tuple:
    """Integers in numeric order (CPC's phone ids), then other labels in C order."""
    return (0, int(label), "") if label.lstrip("-").isdigit() else (1, 0, label)


def label_rows(vocab: list[str], classes: list[str]) -> tuple[np.ndarray, list[str]]:
    """The :class:`Tally` row of each label of ``vocab``: its index in ``classes``, or for
    a label that is none of them, ``len(classes)`` + its index in the sorted others (which
    are returned too)."""
    unseen = sorted(set(vocab) - set(classes))
    index = {c: i for i, c in enumerate([*classes, *unseen])}
    return np.array([index[w] for w in vocab], dtype=np.int64), unseen


def check_sets(args: argparse.Namespace, train: ProbeSet | FrameSet,
               test: ProbeSet | FrameSet) -> None:
    check_held_out(train, test)
    if args.layer_sum:
        require_stacked_layers(args.train_dir, train.dim)
    if train.dim != test.dim:
        raise InputError(f"training vectors ({args.train_dir}, {train.source}) have dimension "
                         f"{train.dim}, test vectors ({test.source}) {test.dim}: use the "
                         "same kind of features for both", path=args.test_dir)
    for d in (train, test):
        if not d.num_examples:
            raise InputError("no labelled examples", path=d.path)
        log.info("%s: %d examples of dim %d from %d utterances (%s), %d labels", d.path,
                 d.num_examples, d.dim, d.num_utts, d.source, len(d.vocab))


def load_sets(args: argparse.Namespace, transform: FeatureTransform,
              ) -> tuple[ProbeSet, ProbeSet]:
    if args.task != "phone":
        check_speakers(args.task, args.train_dir, args.test_dir)
    train = load_set(args.train_dir, args.task, transform)
    test = load_set(args.test_dir, args.task, transform)
    check_sets(args, train, test)
    return train, test


def choose_streaming(args: argparse.Namespace, transform: FeatureTransform) -> bool:
    """--stream, where auto compares the training matrix's size, known from the feature
    headers, with --max-memory-mb."""
    if args.task != "phone" or args.stream == "false":
        return False
    if args.stream == "true":
        return True
    if not (Path(args.train_dir) / "feats.scp").is_file():
        return False   # the phone set says what is missing
    frames, dim = feature_size(args.train_dir, transform)
    megabytes = frames * dim * 4 / 2 ** 20
    streamed = megabytes > args.max_memory_mb
    log.info("training frames: %d x %d floats, %.1f MB %s --max-memory-mb %g: %s", frames,
             dim, megabytes, ">" if streamed else "<=", args.max_memory_mb,
             "streamed" if streamed else "in memory")
    return streamed


@dataclass
class Fitted:
    """A trained probe and what results.json and per_class.txt report of it."""

    probe: Probe
    losses: list[float]
    classes: list[str]
    unseen: list[str]             # test labels not among the classes (rows after them)
    train_counts: np.ndarray      # training examples per class
    train: Tally
    test: Tally
    sets: tuple[ProbeSet | FrameSet, ProbeSet | FrameSet]
    speakers: list[str]
    utt_speaker: np.ndarray       # of each test utterance
    loaded: float                 # when the examples were loaded and checked


def fit_in_memory(args: argparse.Namespace, config: ProbeConfig, transform: FeatureTransform,
                  device: str) -> Fitted:
    train, test = load_sets(args, transform)
    speakers, utt_speaker = utterance_speakers(test.path, test.utts)   # before the training
    loaded = time.perf_counter()
    classes = sorted(train.vocab, key=label_order)
    train_y = label_rows(train.vocab, classes)[0][train.label_ids]
    test_rows, unseen = label_rows(test.vocab, classes)
    probe, losses = train_probe(train.x, train_y, len(classes), config, device)
    tallies = []
    for d, y, rows in ((train, train_y, len(classes)),
                       (test, test_rows[test.label_ids], len(classes) + len(unseen))):
        tallies.append(Tally(rows, len(classes), d.num_utts))
        tallies[-1].add(y, predict(probe, d.x), d.example_utt)
    return Fitted(probe, losses, classes, unseen, np.bincount(train_y, minlength=len(classes)),
                  *tallies, (train, test), speakers, utt_speaker, loaded)


def fit_streamed(args: argparse.Namespace, config: ProbeConfig, transform: FeatureTransform,
                 device: str) -> Fitted:
    """The phone probe with its frames read a buffer at a time: one pass over each set
    checks it (and gives the training statistics), then one per epoch and one per set to
    predict."""
    moments = Moments()
    train = phone_frames(args.train_dir, transform, moments.add)
    test = phone_frames(args.test_dir, transform)
    check_sets(args, train, test)
    speakers, utt_speaker = utterance_speakers(test.path, test.utts)   # before the training
    loaded = time.perf_counter()
    classes = sorted(train.vocab, key=label_order)
    train_rows = label_rows(train.vocab, classes)[0]
    test_rows, unseen = label_rows(test.vocab, classes)
    probe, losses = train_probe_streamed(train, moments.standardisation(), train_rows,
                                         len(classes), config, args.buffer_frames, device)
    tallies = [tally_streamed(probe, d, rows, Tally(num, len(classes), d.num_utts),
                              args.buffer_frames)
               for d, rows, num in ((train, train_rows, len(classes)),
                                    (test, test_rows, len(classes) + len(unseen)))]
    train_counts = np.bincount(train_rows, weights=train.label_counts(),
                               minlength=len(classes)).astype(np.int64)
    return Fitted(probe, losses, classes, unseen, train_counts, *tallies, (train, test),
                  speakers, utt_speaker, loaded)


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
                    "delta_order": results["delta_order"],
                    "layer_weights": results.get("layer_weights")}, f)
    with atomic_write(out / "per_class.txt") as f:
        f.write("\n".join(table) + "\n")
    write_results(out, results)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    remove_outputs(args.exp_dir, OUTPUTS)
    torch.set_num_threads(1)   # several probes may run side by side
    start = time.perf_counter()
    layout = stacked_layout(args)
    config = probe_config(args, layout)
    if args.task != "phone" and args.cmvn:
        log.warning("--cmvn true subtracts each speaker's mean frame before pooling, which "
                    "removes most of what a mean-pooled %s probe measures", args.task)
    transform = FeatureTransform(cmvn=args.cmvn, delta_order=args.delta_order)
    streamed = choose_streaming(args, transform)
    fit = (fit_streamed if streamed else fit_in_memory)(args, config, transform,
                                                         select_device(args.device))
    train, test = fit.sets
    classes = fit.classes
    unseen = fit.test.confusion[len(classes):].sum()
    if unseen:
        log.warning("%d test examples have labels unseen in training (%s): counted as errors",
                    unseen, " ".join(fit.unseen[:10]))
    majority = fit.train_counts.argmax()
    interval = accuracy_interval(fit.test.correct, fit.utt_speaker, len(fit.speakers),
                                 fit.test.total)
    num_test = fit.test.num_examples
    results = {
        "task": f"probe_{args.task}", "features": Path(args.test_dir).name,
        "accuracy": fit.test.accuracy(),
        "accuracy_ci": rounded(interval["ci"]),
        "train_accuracy": fit.train.accuracy(),
        "majority_baseline": percent(fit.test.confusion[majority].sum(), num_test),
        "num_classes": len(classes), "num_train": fit.train.num_examples,
        "num_test": num_test, "unseen_test_labels": int(unseen),
        "num_train_utts": train.num_utts, "num_test_utts": test.num_utts,
        "input": train.source, "dim": int(train.dim),
        "hidden_dim": config.hidden_dim, "epochs": config.epochs, "lr": config.lr,
        "batch_size": config.batch_size, "seed": config.seed, "cmvn": args.cmvn,
        "delta_order": args.delta_order, "final_loss": round(fit.losses[-1], 4),
        "train_dir": args.train_dir, "test_dir": args.test_dir,
        **{f"train_{k}": v for k, v in train.counts.items()},
        **{f"test_{k}": v for k, v in test.counts.items()},
        "bootstrap": interval["bootstrap"],
        "streamed": streamed, "buffer_frames": args.buffer_frames if streamed else None,
        "load_seconds": round(fit.loaded - start, 3),
        "seconds": round(time.perf_counter() - start, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **(layer_weights_report(fit.probe.layers, layout) if layout else {}),
    }
    table = per_class_table(classes, fit.train_counts, fit.test.confusion, fit.unseen)
    write_outputs(Path(args.exp_dir), fit.probe, classes, table, results)
    log.info("%s probe on %s: accuracy %.2f%% (95%% interval over %d test speakers %s; "
             "train %.2f%%, majority baseline %.2f%%), %d classes, %d train / %d test "
             "examples, %s, peak RSS %.0f MB, %.1f s", args.task, results["features"],
             results["accuracy"], len(fit.speakers), results["accuracy_ci"],
             results["train_accuracy"], results["majority_baseline"], len(classes),
             results["num_train"], num_test, "streamed" if streamed else "in memory",
             results["peak_rss_mb"], results["seconds"])
    if layout:
        log.info("layer weights %s", results["layer_weights"])
    return 0


if __name__ == "__main__":
    run(main, "train_probe")
