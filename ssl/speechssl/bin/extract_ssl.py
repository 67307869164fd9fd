"""Write a trained model's representations of a data dir as a Kaldi archive.

Frame-level models give one vector per input frame (a ``(T, H)`` float matrix per
utterance, T equal to the input's frame count); utterance-level models give one embedding
(a float vector).  Inputs are prepared exactly as in training (the config stored in the
checkpoint says how), without crops or augmentation.

Consecutive utterances are represented together, padded to the longest, up to
``--batch-frames`` padded frames: :meth:`SSLMethod.represent` takes padded batches with
their lengths and leaves each utterance's output as it is alone (every method's test in
tests/test_extract_batching.py), and a recurrence steps through a batch at about the cost
of one utterance.  The ark keeps the data dir's order.

``--layer all`` writes every layer of the default representation's width, stacked along
the feature axis (the format of :mod:`speechssl.eval.layers`), from one pass of the model
where the method allows it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from speechssl.cli import add_device_option, run
from speechssl.data.ark import ArkScpWriter
from speechssl.errors import InputError, SpeechSSLError
from speechssl.fileio import atomic_write
from speechssl.models.base import same_width_layers

log = logging.getLogger("extract_ssl")
ALL_LAYERS = "all"


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/extract_ssl.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="extract_ssl", description=__doc__)
    p.add_argument("--layer", type=layer_choice, default=None,
                   help="hidden layer to extract (default: the method's published choice), "
                        "or 'all': the layers stacked (speechssl.eval.layers)")
    add_device_option(p)
    p.add_argument("--num-threads", type=int, default=1,
                   help="torch threads; 1 per job, as parallel jobs share the cores")
    p.add_argument("--batch-frames", type=int, default=20000,
                   help="padded frames per batch of utterances (1: one at a time)")
    p.add_argument("--write-info", metavar="FILE",
                   help="also write '<level> <dim>' to FILE (steps/extract_ssl.sh reads it)")
    p.add_argument("checkpoint")
    p.add_argument("data_dir")
    p.add_argument("ark")
    p.add_argument("scp")
    return p


def layer_choice(text: str) -> int | str:
    if text == ALL_LAYERS:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a layer number or '{ALL_LAYERS}', "
                                         f"got '{text}'") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.batch_frames < 1:
        p.error(f"--batch-frames must be at least 1, got {args.batch_frames}")
    return args


@torch.no_grad()
def represent_batch(model, feats: list, layer: int | list[int | None] | None,
                    device: torch.device | str) -> list:
    """Utterances ``(T_i, D)`` padded into one batch: their ``(T_i, H)`` or ``(H,)``; a
    list of layers gives them stacked, ``(T_i, L * H)``."""
    lengths = [f.shape[0] for f in feats]
    x = torch.zeros(len(feats), max(lengths), feats[0].shape[1]).to(device)
    for i, f in enumerate(feats):
        x[i, :lengths[i]] = torch.from_numpy(f)
    lens = torch.tensor(lengths, device=device)
    if isinstance(layer, list):
        out = torch.cat(model.represent_layers(x, lens, layer), dim=-1)
    else:
        out = model.represent(x, lens, layer=layer)
    out = out.float().cpu().numpy()                          # (B, T, H) or (B, H)
    return [o[:n] for o, n in zip(out, lengths, strict=True)] if out.ndim == 3 else list(out)


def batches(inputs, batch_frames: int):
    """Consecutive ``(utt, feats)`` in lists of at most ``batch_frames`` padded frames
    (an utterance longer than that alone)."""
    batch, longest = [], 0
    for utt, feats in inputs:
        if batch and max(longest, len(feats)) * (len(batch) + 1) > batch_frames:
            yield batch
            batch, longest = [], 0
        batch.append((utt, feats))
        longest = max(longest, len(feats))
    if batch:
        yield batch


def chosen_layers(model, layer: int | str | None) -> tuple[int | list[int | None] | None, str]:
    """What :func:`represent_batch` takes for ``--layer``, and the info file's text:
    ``<level> <dim>``, then for stacked layers ``layers <names>`` and ``layer_dim <H>``."""
    if layer != ALL_LAYERS:
        return layer, f"{model.level} {model.representation_dim(layer)}\n"
    if model.level != "frame":
        raise InputError(f"--layer all: {model.name} gives one {model.level}-level "
                         "representation, there are no layers to stack")
    layers = same_width_layers(model)
    width = model.representation_dim(None)
    names = " ".join("default" if k is None else str(k) for k in layers)
    return layers, f"frame {len(layers) * width}\nlayers {names}\nlayer_dim {width}\n"


def main(argv: Sequence[str] | None = None) -> int:
    from speechssl.train.checkpoint import load_for_inference
    from speechssl.train.data import utterance_inputs
    from speechssl.train.distributed import select_device

    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    device = select_device(args.device)
    model, config, input_dim = load_for_inference(Path(args.checkpoint), device)
    layer, info = chosen_layers(model, args.layer)
    if args.write_info:
        with atomic_write(args.write_info) as f:
            f.write(info)
    done = 0
    with ArkScpWriter(args.ark, args.scp) as writer:
        for batch in batches(utterance_inputs(config, args.data_dir), args.batch_frames):
            for utt, feats in batch:
                if feats.shape[1] != input_dim:
                    raise InputError(f"input dim {feats.shape[1]} differs from the model's "
                                     f"{input_dim}; extract from the kind of data it was "
                                     "trained on", path=args.data_dir, key=utt)
            outs = represent_batch(model, [f for _, f in batch], layer, device)
            for (utt, feats), out in zip(batch, outs, strict=True):
                if model.level == "frame" and out.shape[0] != feats.shape[0]:
                    raise SpeechSSLError(f"{utt}: model gave {out.shape[0]} frames for "
                                         f"{feats.shape[0]} input frames")
                writer.write(utt, out)
                done += 1
    log.info("Wrote %s-level representations of %d utterances (%s)", model.level, done,
             info.replace("\n", "; ").strip("; "))
    return 0


if __name__ == "__main__":
    run(main, "extract_ssl")
