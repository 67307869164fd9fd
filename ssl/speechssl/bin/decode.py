"""Decode a data dir through an HCLG graph, once per LM weight (acoustic scale 1/lmwt):
a GMM (``--model final.mdl``, Kaldi's ``gmm-decode-faster``) or a hybrid DNN
(``--nnet final.pt`` with the transition model of ``--model`` and the priors of
``--class-frame-counts``, Kaldi's ``nnet-forward | decode-faster-mapped``); see
:mod:`speechssl.asr.decode`.

Writes ``<out-dir>/scoring/<lmwt>.tra`` (``utt word-id...``, Kaldi's scoring layout),
``<out-dir>/scoring/<lmwt>.phn`` (the best path's phones for PER: position markers
stripped, silence removed) and ``<out-dir>/decode_stats.json`` (frames, CPU seconds,
real-time factor, failed decodes); with ``--write-loglikes x.ark`` also the DNN's
(T, num_pdfs) log-likelihoods as ``x.ark`` + ``x.scp``, which Kaldi's
``latgen-faster-mapped`` decodes with the same ``final.mdl`` and ``HCLG.fst``.
Every file is written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechssl.asr import decode as dec
from speechssl.cli import kaldi_bool, run
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

log = logging.getLogger("decode")
DEFAULTS = dec.DecoderOptions()


def build_parser() -> argparse.ArgumentParser:
    """steps/decode.sh's and steps/decode_hybrid.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="decode", description=__doc__)
    p.add_argument("--model", required=True, help="final.mdl (GMM, or the DNN's transitions)")
    p.add_argument("--nnet", help="a hybrid DNN's final.pt; without it, decode the GMM")
    p.add_argument("--class-frame-counts", help="the DNN's ali_train_pdf.counts (priors)")
    p.add_argument("--prior-scale", type=float, default=1.0)
    p.add_argument("--cmvn", type=kaldi_bool, help="GMM features: speaker CMVN")
    p.add_argument("--delta-order", type=int, help="GMM features: deltas to append")
    p.add_argument("--beam", type=float, default=DEFAULTS.beam)
    p.add_argument("--max-active", type=int, default=DEFAULTS.max_active)
    p.add_argument("--min-active", type=int, default=DEFAULTS.min_active)
    p.add_argument("--lmwt-range", default="7:17",
                   help="N, MIN:MAX or MIN:MAX:STEP (local/score.sh)")
    p.add_argument("--write-loglikes", help="x.ark: also write the DNN's log-likelihoods")
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (DNN)")
    p.add_argument("graph_dir")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        args.lmwts = dec.lmwt_values(args.lmwt_range)
    except ValueError as e:
        p.error(str(e))
    if args.nnet is None and (args.cmvn is None or args.delta_order is None):
        p.error("decoding a GMM needs --cmvn and --delta-order (the features it was trained on)")
    if args.nnet is not None and args.class_frame_counts is None:
        p.error("--nnet needs --class-frame-counts (the priors)")
    if args.write_loglikes and args.nnet is None:
        p.error("--write-loglikes needs --nnet")
    if not args.beam > 0 or args.max_active < 1 or not 0 <= args.min_active <= args.max_active:
        p.error("--beam must be positive, --max-active at least 1, --min-active from 0 to "
                "--max-active")
    return args


@dataclass
class Acoustics:
    """How to decode one utterance at an acoustic scale, for either kind of model."""

    loader: FeatureLoader
    decode: Callable[[np.ndarray, float], dec.BestPath]
    prepare: Callable[[np.ndarray], np.ndarray]    # features -> what decode() takes
    about: dict = field(default_factory=dict)      # the model's facts for decode_stats.json


def gmm_acoustics(args, tm, am, decoder) -> Acoustics:
    loader = FeatureLoader(args.data_dir, FeatureTransform(cmvn=args.cmvn,
                                                          delta_order=args.delta_order))
    return Acoustics(loader, lambda feats, scale: dec.decode_gmm(
        decoder, tm, am, feats, scale), lambda feats: feats)


def dnn_acoustics(args, tm, decoder) -> Acoustics:
    import torch

    from speechssl.asr import hybrid

    torch.set_num_threads(args.num_threads)
    model, ckpt = hybrid.load_checkpoint(args.nnet)
    if ckpt["num_pdfs"] != tm.num_pdfs:
        raise InputError(f"the DNN has {ckpt['num_pdfs']} outputs, {args.model} has "
                         f"{tm.num_pdfs} pdfs: use the final.mdl the DNN was trained with",
                         path=args.nnet)
    counts = hybrid.parse_counts(Path(args.class_frame_counts).read_text(),
                                 args.class_frame_counts)
    if len(counts) != tm.num_pdfs:
        raise InputError(f"{len(counts)} counts for {tm.num_pdfs} pdfs",
                         path=args.class_frame_counts)
    log_prior = hybrid.log_priors(counts)
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array())
    loader = FeatureLoader(args.data_dir, FeatureTransform(cmvn=ckpt["cmvn"],
                                                          delta_order=ckpt["delta_order"]))

    def prepare(feats: np.ndarray) -> np.ndarray:
        if feats.shape[1] != ckpt["input_dim"]:
            raise InputError(f"features of dimension {feats.shape[1]}, the DNN was trained "
                             f"on {ckpt['input_dim']} ({ckpt.get('data_dir')}): decode the "
                             "same kind of features", path=args.data_dir)
        return hybrid.log_likelihoods(model, feats, log_prior, args.prior_scale)

    about = {}
    if model.layer_sum is not None:   # the weights it learnt for the stacked layers
        about["layer_weights"] = {str(name): round(w, 4) for name, w in zip(
            ckpt["layer_names"], model.layer_sum.normalised_weights(), strict=True)}
    return Acoustics(loader, lambda ll, scale: dec.decode_loglikes(
        decoder, tid2pdf, ll, scale), prepare, about)


def silence_names(graph_dir: Path, id2phone: dict[int, str]) -> set[str] | None:
    """The lang's silence phones, position markers stripped (graph_dir/phones/silence.csl,
    which mkgraph copies from the lang); None without it (no PER then)."""
    csl = graph_dir / "phones" / "silence.csl"
    if not csl.is_file():
        return None
    ids = [int(x) for x in csl.read_text().strip().split(":") if x]
    return {dec.POSITION.sub("", id2phone[i]) for i in ids if i in id2phone}


class Outputs(contextlib.ExitStack):
    """The per-LM-weight hypothesis files, each renamed into place only on success."""

    def __init__(self, out_dir: Path, lmwts: Sequence[int], phones: bool):
        super().__init__()
        self.tra = {w: self.enter_context(atomic_write(out_dir / "scoring" / f"{w}.tra"))
                    for w in lmwts}
        self.phn = ({w: self.enter_context(atomic_write(out_dir / "scoring" / f"{w}.phn"))
                     for w in lmwts} if phones else {})


def decode_all(args, acoustics: Acoustics, tm, id2phone, silence, writer) -> dict:
    """Decode every utterance at every LM weight; the counts and timings."""
    from speechssl.asr.model_io import phones_of_alignment

    out = Path(args.out_dir)
    stats = {"utterances": 0, "frames": 0, "failed": 0, "decode_cpu_seconds": 0.0,
             "acoustic_cpu_seconds": 0.0}
    with Outputs(out, args.lmwts, silence is not None) as files:
        for utt in acoustics.loader.utterances():
            t0 = time.process_time()
            x = acoustics.prepare(acoustics.loader[utt])
            stats["acoustic_cpu_seconds"] += time.process_time() - t0
            if writer is not None:
                writer.write(utt, x.astype(np.float32))
            for w in args.lmwts:
                t0 = time.process_time()
                path = acoustics.decode(x, 1.0 / w)
                stats["decode_cpu_seconds"] += time.process_time() - t0
                stats["failed"] += not path.succeeded
                files.tra[w].write(" ".join([utt, *map(str, path.words)]) + "\n")
                if silence is not None:
                    phones = dec.scoring_phones(phones_of_alignment(tm, path.alignment),
                                                id2phone, silence)
                    files.phn[w].write(" ".join([utt, *phones]) + "\n")
            stats["utterances"] += 1
            stats["frames"] += len(x)
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    from speechssl.asr.model_io import read_model
    from speechssl.data.ark import ArkScpWriter
    from speechssl.data.datadir import DataDir

    args = parse_args(argv)
    graph_dir, out = Path(args.graph_dir), Path(args.out_dir)
    tm, am = read_model(args.model)
    dec.check_graph(graph_dir, tm.num_pdfs, Path(args.model).parent / "phones.txt",
                    args.model)
    options = dec.DecoderOptions(args.beam, args.max_active, args.min_active)
    decoder = dec.make_decoder(graph_dir / "HCLG.fst", options)
    acoustics = (dnn_acoustics(args, tm, decoder) if args.nnet
                 else gmm_acoustics(args, tm, am, decoder))
    id2phone = ({i: s for s, i in dec.read_symbols(graph_dir / "phones.txt").items()}
                if (graph_dir / "phones.txt").is_file() else {})
    silence = silence_names(graph_dir, id2phone) if id2phone else None
    if silence is None:
        log.warning("%s has no phones.txt or phones/silence.csl: no phone output for PER",
                    graph_dir)
    with contextlib.ExitStack() as stack:
        writer = None
        if args.write_loglikes:
            ark = Path(args.write_loglikes)
            writer = stack.enter_context(ArkScpWriter(ark, ark.with_suffix(".scp")))
        stats = decode_all(args, acoustics, tm, id2phone, silence, writer)
    data = DataDir(args.data_dir)
    shift = data.frame_shift() if data.has("frame_shift") else 0.01
    audio = stats["frames"] * shift
    stats.update(lmwts=args.lmwts, audio_seconds=round(audio, 2), frame_shift=shift,
                 rtf=round(stats["decode_cpu_seconds"] / max(audio * len(args.lmwts), 1e-9),
                           4),
                 acoustic_rtf=round(stats["acoustic_cpu_seconds"] / max(audio, 1e-9), 4),
                 model="dnn" if args.nnet else "gmm", **acoustics.about, beam=args.beam,
                 max_active=args.max_active)
    with atomic_write(out / "decode_stats.json") as f:
        f.write(json.dumps(stats, indent=2) + "\n")
    log.info("decoded %d utterances (%d frames) at %d LM weights: RTF %.4f per weight "
             "(search), %.4f (acoustic model), %d failed (partial paths kept)",
             stats["utterances"], stats["frames"], len(args.lmwts), stats["rtf"],
             stats["acoustic_rtf"], stats["failed"])
    return 0


if __name__ == "__main__":
    run(main, "decode")
