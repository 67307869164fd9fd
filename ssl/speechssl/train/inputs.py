"""Training inputs from a data dir: frame counts and durations from metadata, and whole
utterances transformed exactly as training sees them (for extraction).

``source: feats`` inputs are :class:`speechssl.data.feature_loader.FeatureLoader` features
(speaker CMVN, deltas); ``source: wav`` inputs are Kaldi fbank computed in torch, each
sequence normalised by its own statistics over time when ``cmvn``/``norm_vars`` are set.
:func:`recorded_input_features` says how stored features were computed, so that a
checkpoint can say it too (:mod:`speechssl.hub` computes them again from audio).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechssl.data.ark import read_matrix
from speechssl.data.audio import AudioReader, audio_header
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.errors import InputError
from speechssl.features import FEATURE_CONFIGS, FbankConfig, add_deltas, load_feature_config
from speechssl.train.config import ExperimentConfig

INT16_SCALE = 32768.0     # AudioReader gives [-1, 1); Kaldi fbank expects int16 scale

def feature_transform(config: ExperimentConfig) -> FeatureTransform:
    d = config.data
    return FeatureTransform(cmvn=d.cmvn, norm_vars=d.norm_vars, delta_order=d.delta_order)


def kaldi_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def fbank_config(config: ExperimentConfig) -> FbankConfig:
    """The on-the-fly fbank options (``data.fbank``, Kaldi option names)."""
    opts = {k: kaldi_value(v) for k, v in config.data.fbank.items()}
    return FbankConfig.from_kaldi_options(opts, path="data.fbank")


def input_dim(config: ExperimentConfig, data_dir) -> int:
    """The model's input dimension: stored features (after deltas) or fbank bins."""
    if config.data.source == "wav":
        return fbank_config(config).dim * (config.data.delta_order + 1)
    data = DataDir(data_dir)
    features = FeatureLoader(data, feature_transform(config))
    if not features.feats:
        raise InputError("feats.scp is empty", path=data.path / "feats.scp")
    return features[next(iter(features.feats))].shape[1]


def recorded_input_features(config: ExperimentConfig, data_dir,
                            input_dim: int) -> dict[str, Any] | None:
    """How the stored features of ``data_dir`` were computed, as plain data for a checkpoint:
    ``{"kind": "mfcc", "options": {Kaldi option: value}}`` (every option, resolved).

    Read from the ``conf/<kind>.conf`` that steps/make_feats.sh keeps beside feats.scp, the
    one whose dimension, with ``data.delta_order`` deltas, is ``input_dim`` (a data dir may
    keep both kinds' files after features of both were made in it).  None for on-the-fly
    features (``config.data.fbank`` says how) and when no file, or more than one, fits.
    """
    if config.data.source != "feats":
        return None
    found = []
    for kind in FEATURE_CONFIGS:
        path = Path(data_dir) / "conf" / f"{kind}.conf"
        if path.is_file():
            options = load_feature_config(kind, path)
            if options.dim * (config.data.delta_order + 1) == input_dim:
                found.append({"kind": kind, "options": options.to_kaldi_options()})
    return found[0] if len(found) == 1 else None


def header_rows(rx: str) -> int | None:
    """Rows of a binary matrix from its header alone (``x.ark:offset``); None when the
    entry is something else (pipe, row range, text), to be loaded instead."""
    path, _, offset = rx.rpartition(":")
    if not path or not offset.isdigit() or path.rstrip().endswith("|"):
        return None
    with open(path, "rb") as f:
        f.seek(int(offset))
        head = f.read(18)
    if head[:5] in (b"\0BFM ", b"\0BDM ") and head[5:6] == b"\x04":
        return struct.unpack("<i", head[6:10])[0]
    if head[:5] == b"\0BCM ":   # token, then min, range (floats), rows, cols
        return struct.unpack("<i", head[13:17])[0]
    if head[:6] in (b"\0BCM2 ", b"\0BCM3 "):
        return struct.unpack("<i", head[14:18])[0]
    return None


def feature_frames(data: DataDir) -> dict[str, int]:
    """Frames of every utterance of utt2spk: utt2num_frames, or feats.scp headers.

    An utterance without features is an error naming feats.scp and the utterance.
    """
    feats = data.table("feats.scp")
    missing = [u for u in data.utts if u not in feats]
    if missing:
        raise InputError(f"{len(missing)} utterances of utt2spk have no features "
                         "(run utils/fix_data_dir.sh)", path=data.path / "feats.scp",
                         key=missing[0])
    if data.has("utt2num_frames"):
        table = data.table("utt2num_frames")
        if all(u in table for u in data.utts):
            return {u: int(table[u]) for u in data.utts}
    scp = data.path / "feats.scp"
    out = {}
    for utt in data.utts:
        try:
            rows = header_rows(feats[utt])
        except OSError as e:
            raise InputError(f"cannot read '{feats[utt]}': {e}", path=scp, key=utt) from None
        out[utt] = rows if rows is not None else read_matrix(feats[utt], scp, utt).shape[0]
    return out


def utterance_durations(data: DataDir) -> dict[str, float]:
    """Seconds of audio of every utterance: utt2dur, else segments, else the audio."""
    if data.has("utt2dur"):
        table = data.table("utt2dur")
        if all(u in table for u in data.utts):
            return {u: float(table[u]) for u in data.utts}
    if data.has("segments"):
        segs = data.table("segments")
        return {u: float(segs[u].split()[2]) - float(segs[u].split()[1]) for u in data.utts}
    reader = AudioReader(data, sample_rate=None)
    return {utt: audio_seconds(reader, utt) for utt in data.utts}


def audio_seconds(reader: AudioReader, utt: str) -> float:
    """Duration from a file's header, or by reading the audio (pipes)."""
    entry = reader.wav_scp.get(utt, "")
    if not entry.endswith("|") and Path(entry).is_file():
        with contextlib.suppress(InputError):  # reading it gives the error with the key
            return audio_header(entry).seconds
    samples, rate = reader.read(utt)
    return samples.size / rate


def normalise_over_time(feats: torch.Tensor, means: bool, variances: bool) -> torch.Tensor:
    """Per-sequence normalisation over time of ``(..., T, D)``: means, and deviations."""
    if means or variances:
        feats = feats - feats.mean(dim=-2, keepdim=True)
    if variances:
        feats = feats / feats.std(dim=-2, keepdim=True, unbiased=False).clamp_min(1e-5)
    return feats


def wav_postprocess(feats: torch.Tensor, config: ExperimentConfig) -> np.ndarray:
    """Normalisation and deltas of on-the-fly fbank ``(..., T, D)`` -> float32 numpy."""
    d = config.data
    x = normalise_over_time(feats, d.cmvn, d.norm_vars).numpy()
    if d.delta_order > 0:
        flat = x.reshape(-1, *x.shape[-2:])
        x = np.stack([add_deltas(m, order=d.delta_order) for m in flat]).reshape(
            *x.shape[:-1], -1)
    return np.ascontiguousarray(x, dtype=np.float32)


def utterance_inputs(config: ExperimentConfig, data_dir) -> Iterator[tuple[str, np.ndarray]]:
    """Every utterance of ``data_dir`` in utt2spk order, whole, as the model's training
    inputs were computed (no crop, no augmentation, no dither): ``(utt, (T, D) float32)``.

    For ``source: feats`` T is the utterance's feats.scp frame count.
    """
    data = DataDir(data_dir)
    if config.data.source == "feats":
        features = FeatureLoader(data, feature_transform(config))
        for utt in data.utts:
            yield utt, features[utt]
        return
    fbank_cfg = fbank_config(config)
    reader = AudioReader(data, sample_rate=int(fbank_cfg.sample_frequency))
    fbank = torch_fbank(fbank_cfg)
    for utt in data.utts:
        samples, _ = reader.read(utt)
        if fbank_cfg.num_frames(samples.size) == 0:
            raise InputError(f"{samples.size} samples are too short for one frame",
                             path=data.path / "wav.scp", key=utt)
        with torch.no_grad():
            feats = fbank(torch.from_numpy(samples) * INT16_SCALE, dither=0.0)  # (T, D)
        yield utt, wav_postprocess(feats, config)


def torch_fbank(config: FbankConfig):
    from speechssl.features.torch_fbank import TorchFbank

    return TorchFbank(config)
