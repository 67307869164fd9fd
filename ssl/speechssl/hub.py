"""A Python upstream API for trained models: 16 kHz waveforms in, hidden states out.

::

    from speechssl import hub
    upstream = hub.load("exp/apc")           # an exp dir (its final.pt) or a checkpoint
    out = upstream([wav1, wav2])             # 1-D float tensors, 16 kHz, samples in [-1, 1]
    out["last_hidden_state"]                 # (B, T', D), zeros past each waveform's frames
    out["hidden_states"]                     # [(B, T', D), ...]; the last is the one above
    upstream(padded, wav_lengths)            # or a zero-padded (B, T) batch and its lengths
    upstream.get_downsample_rates("last_hidden_state")   # 160 samples: 10 ms frames

S3PRL's upstream contract (a list of waveforms in, a dict with ``hidden_states`` out) with
no dependency on S3PRL.  The module is frozen: eval mode, also after ``.train()`` (so
dropout stays off inside a trained parent), no parameter requires grad, and the forward
pass runs without autograd.

**Inputs** are computed from each waveform as the model's training inputs were, by the
code the recipes run, with dither off (deterministic outputs):

- Models trained on stored features (``data.source: feats``: APC, CPC, CAPC and the CAE in
  the recipes) get Kaldi fbank or MFCC from :class:`speechssl.features.FeatureExtractor`
  (what steps/make_feats.sh runs) with the options the checkpoint records: the trainer
  stores the training data dir's ``conf/<kind>.conf`` in every checkpoint.  Checkpoints
  written before it did need ``training_data=`` (the data dir the model was trained on).
  Then CMVN and deltas as the config's ``data.cmvn``, ``data.norm_vars`` and
  ``data.delta_order`` say.
- Models trained on audio (``data.source: wav``: VICReg) get the torch fbank of the
  config's ``data.fbank``, normalised by its own statistics, as in training and extraction.

**Differences from steps/extract_ssl.sh**, which reads a data dir's stored features:

- CMVN.  Extraction, like training, normalises with each speaker's statistics (cmvn.scp).
  A waveform here has no speaker, so each is normalised with its own statistics: Kaldi's
  apply-cmvn with the stats of that utterance alone (means, and variances with
  ``norm_vars``).  That equals extraction where every speaker has one utterance (the case
  tests/test_hub.py checks); otherwise the statistics here come from fewer frames.  Global
  statistics stored with the model were not chosen: the model never saw features
  normalised that way, and per-utterance statistics are what on-the-fly features (VICReg)
  use in training already.
- Dither.  The recipes compute stored features with ``--dither=1.0``; here dither is 0.
  That changes quiet frames: little where the audio has a noise floor well above the
  dither, much in digital silence, whose log mel energies sit at Kaldi's floor instead of
  at the dither's level.

**Outputs.**  Frame-level models give one vector per Kaldi frame of the waveform (its
``num_frames``: with snip-edges, ``1 + (N - 400) // 160`` for N samples), every 160 samples.
``hidden_states`` holds the method's layers that have the width of its published
representation, in network order, ending with it: every GRU layer of APC and CAPC; CPC's
context only and the CAE's bottleneck only (their other layers are of other widths, unless
configured to the same).  ``last_hidden_state`` is what extract_ssl writes (its default
``--layer``).  Utterance-level models (VICReg) give their embedding, embedding.scp's
vector, as a single frame: ``(B, 1, E)``, and ``hidden_states`` is a list of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speechssl.errors import InputError
from speechssl.features import (
    FEATURE_CONFIGS,
    FeatureExtractor,
    add_deltas,
    apply_cmvn,
    cmvn_stats,
)
from speechssl.models.base import same_width_layers
from speechssl.models.layers import length_mask
from speechssl.train.checkpoint import FINAL, load_checkpoint, model_from_checkpoint
from speechssl.train.config import ExperimentConfig
from speechssl.train.inputs import (
    INT16_SCALE,
    fbank_config,
    recorded_input_features,
    torch_fbank,
    wav_postprocess,
)

SAMPLE_RATE = 16000


class WaveformInputs:
    """A model's input features ``(T, D)`` of one waveform (samples in [-1, 1]), computed as
    its training inputs were, with dither off and CMVN per waveform (module docstring)."""

    def __init__(self, config: ExperimentConfig, input_features: dict[str, Any] | None):
        self.data = config.data
        if self.data.source == "wav":
            self.options = fbank_config(config)
            self.fbank = torch_fbank(self.options)
        else:
            kind = FEATURE_CONFIGS[input_features["kind"]]
            options = kind.from_kaldi_options(input_features["options"])
            self.options = dataclasses.replace(options, dither=0.0)
            self.extractor = FeatureExtractor(self.options)
        self.config = config

    @property
    def dim(self) -> int:
        return self.options.dim * (self.data.delta_order + 1)

    def __call__(self, wave: np.ndarray, name: str) -> np.ndarray:
        if self.options.num_frames(wave.size) == 0:
            raise InputError(f"{wave.size} samples are too short for one frame "
                             f"({self.options.window_size} samples)", key=name)
        if self.data.source == "wav":
            feats = self.fbank(torch.from_numpy(wave) * INT16_SCALE, dither=0.0)  # (T, D)
            return wav_postprocess(feats, self.config)
        feats = self.extractor.compute(wave * INT16_SCALE, name)  # (T, D)
        if self.data.cmvn or self.data.norm_vars:
            feats = apply_cmvn(feats, cmvn_stats([feats]), norm_vars=self.data.norm_vars)
        if self.data.delta_order > 0:
            feats = add_deltas(feats, order=self.data.delta_order)
        return feats.astype(np.float32, copy=False)


class Upstream(nn.Module):
    """A frozen trained model that takes waveforms; made by :func:`load`."""

    def __init__(self, model: nn.Module, inputs: WaveformInputs, path: Path):
        super().__init__()
        self.model = model
        self.inputs = inputs
        self.path = path
        self.layers = same_width_layers(model)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Upstream:
        # Frozen: a parent module's .train() must not turn on dropout or batch statistics.
        return super().train(False)

    def get_downsample_rates(self, key: str) -> int:
        """Samples per output frame, for any output ``key``."""
        return self.inputs.options.window_shift

    @torch.no_grad()
    def forward(self, wavs: Sequence[torch.Tensor] | torch.Tensor,
                wav_lengths: Sequence[int] | torch.Tensor | None = None) -> dict[str, Any]:
        """Hidden states of a list of 1-D waveforms, or of a zero-padded ``(B, T)`` batch
        with ``wav_lengths``: ``{"hidden_states": [(B, T', D), ...],
        "last_hidden_state": (B, T', D)}``."""
        device = next(self.model.parameters()).device
        feats = [torch.from_numpy(self.inputs(wave, f"wavs[{i}]"))
                 for i, wave in enumerate(waveforms(wavs, wav_lengths))]
        lengths = torch.tensor([len(f) for f in feats], device=device)
        x = nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)  # (B, T, D)
        if self.model.level == "utterance":
            states = [self.model.represent(x, lengths).unsqueeze(1)]  # (B, 1, E)
        else:
            padding = ~length_mask(lengths, x.shape[1]).unsqueeze(-1)  # (B, T, 1)
            states = [s.masked_fill(padding, 0.0)
                      for s in self.model.represent_layers(x, lengths, self.layers)]
        return {"hidden_states": states, "last_hidden_state": states[-1]}


def waveforms(wavs, wav_lengths=None) -> list[np.ndarray]:
    """Float32 NumPy vectors of a list of 1-D waveforms or of a padded ``(B, T)`` batch
    with its lengths, checked."""
    if isinstance(wavs, torch.Tensor):
        if wavs.dim() != 2 or wav_lengths is None:
            raise InputError(f"got a tensor of shape {tuple(wavs.shape)}: pass a list of 1-D "
                             "waveforms, or a zero-padded (B, T) batch with wav_lengths")
        lengths = torch.as_tensor(wav_lengths).tolist()
        if len(lengths) != len(wavs) or not all(0 < n <= wavs.shape[1] for n in lengths):
            raise InputError(f"wav_lengths {lengths} do not fit a batch of shape "
                             f"{tuple(wavs.shape)}: one length in 1..T per waveform")
        wavs = [w[:n] for w, n in zip(wavs, lengths, strict=True)]
    elif wav_lengths is not None:
        raise InputError("wav_lengths goes with a padded (B, T) tensor, not with a list")
    if len(wavs) == 0:
        raise InputError("no waveforms: pass a list of 1-D 16 kHz waveforms")
    out = []
    for i, wav in enumerate(wavs):
        wav = torch.as_tensor(wav)
        if wav.dim() != 1 or not wav.is_floating_point():
            raise InputError(f"wavs[{i}] is a {wav.dtype} tensor of shape {tuple(wav.shape)}: "
                             "expected one 1-D float waveform (mono, 16 kHz, in [-1, 1])")
        if not torch.isfinite(wav).all():
            raise InputError(f"wavs[{i}] holds NaN or infinite samples")
        out.append(wav.detach().to("cpu", torch.float32).numpy())
    return out


def checkpoint_path(path: Path) -> Path:
    """``path`` itself, or an exp dir's ``final.pt``."""
    if path.is_dir():
        if not (path / FINAL).is_file():
            raise InputError(f"no {FINAL} in this exp dir (training unfinished?); pass a "
                             "checkpoint of its checkpoints/ instead", path=path)
        return path / FINAL
    if not path.exists():
        raise InputError("no such exp dir or checkpoint file", path=path)
    return path


def load(path: str | Path, *, training_data: str | Path | None = None,
         device: str | torch.device = "cpu", method: str | None = None) -> Upstream:
    """The frozen model of an exp dir (its final.pt) or of a checkpoint, on ``device``.

    ``training_data``: the data dir the model was trained on, whose ``conf/<kind>.conf``
    says how its input features are computed; only needed for checkpoints that do not say
    so themselves (written before they did), and used instead of what they say if given.
    ``method``: refuse a checkpoint of any other method (the torch.hub entry points).
    """
    checkpoint = checkpoint_path(Path(path))
    state = load_checkpoint(checkpoint)
    if method is not None and state["method"] != method:
        raise InputError(f"holds a '{state['method']}' model, not '{method}' (load it with "
                         f"{state['method']}_local)", path=checkpoint)
    model, config = model_from_checkpoint(state, checkpoint)
    input_dim = int(state["input_dim"])
    record = state.get("input_features")
    if training_data is not None:
        record = recorded_input_features(config, training_data, input_dim)
        where, why = training_data, "has no conf/fbank.conf or conf/mfcc.conf"
    else:
        where, why = checkpoint, "does not record how its input features were computed"
    if record is None and config.data.source == "feats":
        raise InputError(f"{why} of the model's {input_dim}-dim input (with "
                         f"{config.data.delta_order} deltas); pass training_data=<the data "
                         "dir it was trained on> (steps/make_feats.sh writes its conf/)",
                         path=where)
    inputs = WaveformInputs(config, record)
    if inputs.options.sample_frequency != SAMPLE_RATE:
        raise InputError(f"the model's features are computed at "
                         f"{inputs.options.sample_frequency:g} Hz; speechssl.hub takes "
                         f"{SAMPLE_RATE} Hz audio", path=where)
    if inputs.dim != input_dim:
        raise InputError(f"the recorded features give {inputs.dim}-dim input, the model "
                         f"takes {input_dim}", path=where)
    return Upstream(model.to(device), inputs, checkpoint)
