"""The experiment config: one YAML file with ``method``, ``model``, ``data``, ``optim`` and
``train`` sections.  ``model`` is checked against the method's own config dataclass.

Every section has its defaults here (or in the method's module) and nowhere else; the
resolved config, defaults filled in, is what the exp dir and every checkpoint store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from speechssl.errors import InputError
from speechssl.typed_config import bounded, check_sections, from_dict, read_yaml, to_dict

SECTIONS = ("method", "model", "data", "optim", "train")


@dataclass
class NoiseSource:
    """One category of recorded noise (e.g. MUSAN's noise, music or babble): ``count``
    files of the list ``wav_scp`` (``<id> <wav file>``, at the training sample rate) added
    to a view, each at its own SNR drawn from ``snr_db``."""

    name: str
    wav_scp: str
    snr_db: tuple[float, float] = bounded()
    count: tuple[int, int] = (1, 1)  # files mixed in, drawn uniformly (babble: 3 to 7)

    def __post_init__(self):
        if self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"noise source '{self.name}': snr_db {list(self.snr_db)} "
                             "must be [low, high]")
        if not 1 <= self.count[0] <= self.count[1]:
            raise ValueError(f"noise source '{self.name}': count {list(self.count)} must "
                             "be [low, high] with 1 <= low <= high")


@dataclass
class AugmentConfig:
    """Waveform augmentation for on-the-fly (``source: wav``) views, each applied with its
    probability: a room reverberation, a random band-pass, additive noise, a random gain.

    The noise is synthetic coloured noise at an SNR in ``snr_db`` unless ``noises`` lists
    recorded ones (then one source, drawn uniformly, with its own SNR range); the
    reverberation is a synthetic room response unless ``rir_scp`` lists recorded or
    simulated impulse responses.  Relative list paths are relative to where training runs.
    """

    noise_prob: float = bounded(0.6, ge=0, le=1)
    snr_db: tuple[float, float] = bounded((5.0, 20.0))
    reverb_prob: float = bounded(0.3, ge=0, le=1)
    bandpass_prob: float = bounded(0.2, ge=0, le=1)
    gain_prob: float = bounded(0.5, ge=0, le=1)
    gain_db: tuple[float, float] = bounded((-6.0, 6.0))
    noises: list[NoiseSource] = field(default_factory=list)  # empty: synthetic noise
    rir_scp: str = ""                # ``<id> <wav file>`` of RIRs; empty: synthetic rooms


@dataclass
class DataConfig:
    source: str = "feats"            # "feats": feats.scp (+ cmvn.scp); "wav": wav.scp + torch fbank
    cmvn: bool = True                # per-speaker mean normalisation from cmvn.scp
    norm_vars: bool = False          # and variance normalisation
    delta_order: int = bounded(0, ge=0)  # 2: MFCC 13 -> 39
    crop_frames: int = bounded(1000, gt=0)  # frame batches: longest crop (frames)
    min_frames: int = bounded(20, ge=1)  # shorter utterances are skipped (and counted)
    batch_frames: int = bounded(32000, gt=0)  # frame batches: padded frames per batch, about
    max_batch_size: int = bounded(64, gt=0)
    # pairs (CAPC, CAE): same-word tokens from words.ctm, or a list of pairs
    pairs: str = "words.ctm"         # "words.ctm" or a file "<utt> <s> <e> <utt> <s> <e>"
    min_word_frames: int = bounded(50, ge=1)  # 0.5 s, Kamper's and van Staden's threshold
    min_word_chars: int = bounded(5, ge=0)
    max_pairs_per_type: int = bounded(0, ge=0)  # 0: all N(N-1)/2 pairs of a word type
    # views (VICReg, SimCLR, ...)
    view_frames: int = bounded(200, gt=0)  # 2 s crops
    batch_size: int = bounded(64, gt=0)
    fbank: dict[str, Any] = field(default_factory=lambda: {"num-mel-bins": 40, "dither": 1.0})
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    num_workers: int = bounded(1, ge=0)  # DataLoader worker processes (0: load in the trainer)
    # Scheduling priority of the workers (os.nice increment, 0-19).  With as many training
    # threads as cores, a worker at equal priority preempts one of them and the others wait
    # for it at every parallel op (the step doubles on 2 cores); at 19 a worker runs when a
    # core is free, prefetching ahead.  Worth it only when cores are that scarce.
    worker_nice: int = bounded(0, ge=0, le=19)

    def __post_init__(self):
        if self.source not in ("feats", "wav"):
            raise ValueError(f"data.source must be 'feats' or 'wav', got '{self.source}'")


@dataclass
class OptimConfig:
    name: str = "adam"               # "adam" or "adamw"
    lr: float = bounded(1e-3, gt=0)
    betas: tuple[float, float] = bounded((0.9, 0.999), ge=0, lt=1)
    weight_decay: float = bounded(0.0, ge=0)
    warmup_steps: int = bounded(0, ge=0)
    schedule: str = "constant"       # "constant", "linear" or "cosine" decay after warmup
    min_lr_ratio: float = bounded(0.0, ge=0, le=1)  # decay ends at lr * min_lr_ratio
    grad_clip: float = bounded(5.0, ge=0)  # max global gradient norm (0: off)
    # batches per optimisation step, their gradients summed (each loss / accumulate); an
    # epoch's last step takes what is left
    accumulate: int = bounded(1, gt=0)

    def __post_init__(self):
        if self.name not in ("adam", "adamw"):
            raise ValueError(f"optim.name must be 'adam' or 'adamw', got '{self.name}'")
        if self.schedule not in ("constant", "linear", "cosine"):
            raise ValueError("optim.schedule must be constant, linear or cosine, "
                             f"got '{self.schedule}'")


@dataclass
class TrainConfig:
    epochs: int = bounded(100, ge=0)  # 0 only with max_steps
    max_steps: int = bounded(0, ge=0)  # stop after this many steps (0: after `epochs`)
    seed: int = bounded(0, ge=0)
    checkpoint_every: int = bounded(1000, gt=0)  # steps; one is also written after each epoch
    keep_checkpoints: int = bounded(2, gt=0)  # older step checkpoints are deleted
    log_every: int = bounded(50, gt=0)  # steps between TensorBoard points
    amp: bool = True                 # mixed precision on CUDA (ignored on CPU)

    def __post_init__(self):
        if self.max_steps <= 0 and self.epochs < 1:
            raise ValueError("train.epochs must be at least 1 (or train.max_steps set)")


@dataclass
class ExperimentConfig:
    method: str
    model: Any                       # the method's Config dataclass
    data: DataConfig
    optim: OptimConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "model": to_dict(self.model), "data": to_dict(self.data),
                "optim": to_dict(self.optim), "train": to_dict(self.train)}


def experiment_config(raw: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """Build and check a config from plain data (a parsed YAML file or a checkpoint)."""
    from speechssl.models import method_class  # the models import torch: only when needed

    check_sections(raw, SECTIONS, where)
    if "method" not in raw:
        raise InputError(f"{where}: 'method' is missing")
    cls = method_class(raw["method"])
    return ExperimentConfig(
        method=raw["method"],
        model=from_dict(cls.Config, raw.get("model"), f"{where}: model"),
        data=from_dict(DataConfig, raw.get("data"), f"{where}: data"),
        optim=from_dict(OptimConfig, raw.get("optim"), f"{where}: optim"),
        train=from_dict(TrainConfig, raw.get("train"), f"{where}: train"))


def load_config(path: str | Path) -> ExperimentConfig:
    return experiment_config(read_yaml(path), str(path))


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    from speechssl.fileio import atomic_write

    with atomic_write(path) as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False)
