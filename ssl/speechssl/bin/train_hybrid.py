"""Train the DNN of a hybrid DNN-HMM system on a data dir's frozen features and the pdf ids
of an alignment dir (Kaldi's ``steps/nnet/train.sh``); see :mod:`speechssl.asr.hybrid`.

Writes to ``<exp-dir>``: ``ali_train_pdf.counts`` (the priors), copies of the alignment
dir's ``final.mdl``, ``tree`` and ``phones.txt`` (decoding needs the transition model),
``training.json`` (per-epoch losses, CV frame accuracy, frames/s, peak RSS) and, last,
``final.pt``.  Every check (alignments against lang and features) runs before anything
is written; a failed run leaves no ``final.pt``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from speechssl.asr import hybrid
from speechssl.cli import add_device_option, kaldi_bool, run
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.errors import InputError
from speechssl.eval.layers import layer_weights_report, require_stacked_layers
from speechssl.eval.probe_data import match_utterances
from speechssl.fileio import atomic_write
from speechssl.memory import peak_rss_mb
from speechssl.train.distributed import select_device

log = logging.getLogger("train_hybrid")
OUTPUTS = ("final.pt", "training.json", "ali_train_pdf.counts", "final.mdl", "tree",
           "phones.txt")
DEFAULTS = hybrid.HybridConfig()


def build_parser() -> argparse.ArgumentParser:
    """steps/train_hybrid.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="train_hybrid", description=__doc__)
    p.add_argument("--cmvn", type=kaldi_bool, required=True,
                   help="speaker mean normalisation (the data dir's eval_opts)")
    p.add_argument("--delta-order", type=int, required=True)
    for name in ("left_context", "right_context", "num_layers", "hidden_dim", "batch_size",
                 "max_epochs", "min_epochs", "buffer_utts", "seed"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(DEFAULTS, name))
    for name in ("dropout", "lr", "cv_fraction", "start_halving_impr", "end_halving_impr",
                 "halving_factor"):
        p.add_argument("--" + name.replace("_", "-"), type=float,
                       default=getattr(DEFAULTS, name))
    p.add_argument("--layer-sum", type=kaldi_bool, default=DEFAULTS.layer_sum,
                   help="a learnable weighted sum of the stacked layers of "
                        "'extract_ssl.sh --layer all' (speechssl.eval.layers)")
    p.add_argument("--layer-norm", type=kaldi_bool, default=DEFAULTS.layer_norm,
                   help="with --layer-sum: layer-normalise each layer before the sum")
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--max-unaligned-fraction", type=float, default=0.1,
                   help="most utterances that may lack an alignment (align_si's failures)")
    add_device_option(p, "where to train")
    p.add_argument("data_dir")
    p.add_argument("ali_dir")
    p.add_argument("lang_dir")
    p.add_argument("exp_dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if min(args.left_context, args.right_context, args.delta_order, args.num_layers) < 0:
        p.error("contexts, --delta-order and --num-layers must be non-negative")
    if min(args.hidden_dim, args.batch_size, args.max_epochs, args.buffer_utts,
           args.num_threads) < 1:
        p.error("--hidden-dim, --batch-size, --max-epochs, --buffer-utts and --num-threads "
                "must be at least 1")
    if not 0 < args.cv_fraction < 1 or not 0 <= args.dropout < 1 or not args.lr > 0:
        p.error("--cv-fraction must be in (0, 1), --dropout in [0, 1), --lr positive")
    if args.layer_norm and not args.layer_sum:
        p.error("--layer-norm true applies to --layer-sum true only")
    return args


def hybrid_config(args: argparse.Namespace) -> hybrid.HybridConfig:
    return hybrid.HybridConfig(**{k: getattr(args, k) for k in asdict(DEFAULTS)})


def load_targets(ali_dir: Path, lang_dir: Path):
    """(transition model, utt -> pdf ids); the alignments must use the lang's phones."""
    from speechssl.asr.model_io import (
        check_phones_compatible,
        read_alignments,
        read_transition_model,
    )

    if not (ali_dir / "final.mdl").is_file():
        raise InputError("no final.mdl: not an alignment dir (steps/align_si.sh)", path=ali_dir)
    check_phones_compatible(ali_dir / "phones.txt", lang_dir / "phones.txt")
    tm = read_transition_model(ali_dir / "final.mdl")
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array())
    pdfs = hybrid.alignment_pdfs(read_alignments(ali_dir), tid2pdf, ali_dir)
    return tm, pdfs


def fit_targets(loader: FeatureLoader, pdfs: dict, ali_dir: Path, max_unaligned: float,
                ) -> tuple[list[str], dict, dict]:
    """The utterances with features and alignments, their pdfs fitted to the feature
    frame counts (checked for every utterance before training starts), and counts.
    Utterances that failed to align are skipped and counted, as Kaldi's nnet training
    does, up to ``max_unaligned`` of them (align_si.sh's --max-fail-fraction)."""
    utts, counts = match_utterances(pdfs, loader.utterances(), ali_dir / "ali.*.gz",
                                    loader.data.path / "feats.scp", max_unaligned)
    fitted, adjusted = {}, 0
    for utt in utts:
        n = loader.num_frames.get(utt)
        if n is None:
            n = len(loader[utt])
        fitted[utt] = hybrid.fit_alignment(pdfs[utt], n, utt, ali_dir)
        adjusted += len(fitted[utt]) != len(pdfs[utt])
    if adjusted:
        log.info("%d utterances had their alignment trimmed or padded by <= %d frames",
                 adjusted, hybrid.MAX_FRAME_DIFF)
    counts["alignments_adjusted"] = adjusted
    return utts, fitted, counts


def write_outputs(exp: Path, ali_dir: Path, model, config, meta: dict, counts: np.ndarray,
                  summary: dict) -> None:
    exp.mkdir(parents=True, exist_ok=True)
    with atomic_write(exp / "ali_train_pdf.counts") as f:
        f.write(hybrid.format_counts(counts))
    for name in ("final.mdl", "tree", "phones.txt"):
        if (ali_dir / name).is_file():
            with atomic_write(exp / name, "wb") as f, open(ali_dir / name, "rb") as src:
                shutil.copyfileobj(src, f)
    with atomic_write(exp / "training.json") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    hybrid.save_checkpoint(exp / "final.pt", model.cpu(), config, meta)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exp, ali_dir = Path(args.exp_dir), Path(args.ali_dir)
    for name in OUTPUTS:
        (exp / name).unlink(missing_ok=True)
    torch.set_num_threads(args.num_threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    config = hybrid_config(args)
    tm, pdfs = load_targets(ali_dir, Path(args.lang_dir))
    loader = FeatureLoader(args.data_dir, FeatureTransform(cmvn=args.cmvn,
                                                          delta_order=args.delta_order))
    utts, pdfs, counts = fit_targets(loader, pdfs, ali_dir, args.max_unaligned_fraction)
    train_utts, cv_utts = hybrid.split_cv(utts, config.cv_fraction, config.seed)
    layout = (require_stacked_layers(args.data_dir, loader[train_utts[0]].shape[1])
              if config.layer_sum else None)   # checked before the pass over the data
    mean, std, train_frames = hybrid.feature_stats(lambda u: loader[u], train_utts)
    layer_names = list(layout.names) if layout else [None]

    def load(utt: str) -> np.ndarray:
        return (loader[utt] - mean) / std

    model = hybrid.HybridMLP(len(mean), tm.num_pdfs, config, mean, std, len(layer_names))
    model.to(select_device(args.device))
    log.info("%d pdfs, input dim %d x %d frames, %d training / %d CV utterances, %d "
             "training frames", tm.num_pdfs, len(mean), config.left_context + 1 +
             config.right_context, len(train_utts), len(cv_utts), train_frames)
    history = hybrid.train(model, load, pdfs, train_utts, cv_utts, config, time.perf_counter)
    pdf_counts = hybrid.pdf_counts(pdfs, tm.num_pdfs)
    best = min((h for h in history if h.accepted), key=lambda h: h.cv_loss, default=None)
    frames = sum(h.frames for h in history)
    seconds = sum(h.seconds for h in history)
    summary = {
        "cv_frame_accuracy": round(best.cv_acc, 2) if best else None,
        "cv_loss": round(best.cv_loss, 4) if best else None,
        "epochs": [asdict(h) for h in history], "num_pdfs": tm.num_pdfs,
        "unseen_pdfs": int((pdf_counts == 0).sum()), "train_frames": train_frames,
        "train_utts": len(train_utts), "cv_utts": len(cv_utts), **counts,
        "frames_per_second": round(frames / max(seconds, 1e-9), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1), "config": asdict(config),
        "seconds": round(time.perf_counter() - start, 2),
        **(layer_weights_report(model.layer_sum, layout) if layout else {}),
    }
    meta = {"input_dim": len(mean), "num_pdfs": tm.num_pdfs, "cmvn": args.cmvn,
            "delta_order": args.delta_order, "data_dir": str(args.data_dir),
            "ali_dir": str(ali_dir), "layer_names": layer_names}
    write_outputs(exp, ali_dir, model, config, meta, pdf_counts, summary)
    log.info("CV frame accuracy %s%%, %.0f training frames/s, peak RSS %.0f MB, %.1f s",
             summary["cv_frame_accuracy"], summary["frames_per_second"],
             summary["peak_rss_mb"], summary["seconds"])
    if layout:
        log.info("layer weights %s", summary["layer_weights"])
    return 0


if __name__ == "__main__":
    run(main, "train_hybrid")
