"""Utterance-level encoders: padded log-mel frames ``(B, T, D)`` -> one embedding ``(B, E)``.

Two families, chosen by name in a method's config through :data:`ENCODERS`:

- ``"resnet"``: :class:`ThinResNet`, the Thin-ResNet34 of sslsv (Lepage & Dehak 2022, after
  Chung et al. 2020 "In defence of metric learning", voxceleb_trainer's ResNetSE34V2):
  instance norm of the input over time, conv 3x3 32, residual squeeze-excitation blocks
  [3, 4, 6, 3] with 32/64/128/256 channels (strides 1, 2, 2, 2 in time and frequency),
  channel-wise self-attentive pooling, a linear layer to 1024.  sslsv's "Fast ResNet-34"
  (its VICReg result, 11.33% EER on VoxCeleb1-O) is the same net with half the channels
  and 512-d: ``channels: [16, 32, 64, 128]``, ``embedding_dim: 512``.
- ``"tdnn"``: :class:`TDNN`, the x-vector network of Snyder et al. (2018): five frame layers
  (contexts [-2, 2], {-2, 0, 2}, {-3, 0, 3}, {0}, {0}; 512 x 4 then 1500 channels), each
  affine-ReLU-batchnorm as in Kaldi, statistics pooling (mean + standard deviation), and the
  first segment layer, 512-d (the x-vector is taken before its ReLU).  Attentive statistics
  pooling (Okabe et al. 2018) is an option.

Every encoder honours ``lengths``: padding frames are excluded from the instance norm, the
squeeze-excitation averages and the pooling, and are zeroed before every convolution, so an
utterance's embedding in a padded batch equals its embedding computed alone (in eval mode;
in training, batch norm statistics also count padding, but view crops all have one length).
Deviation from Kaldi's x-vector: the frame layers zero-pad the edges ("same" convolutions)
instead of dropping 7 frames at each end, so any length >= 1 can be embedded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from speechssl.errors import InputError
from speechssl.typed_config import bounded

# ---------------------------------------------------------------- masks and normalisation


def frame_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B, T)`` bool, True on real frames.

    >>> frame_mask(torch.tensor([1, 3]), 3).int().tolist()
    [[1, 0, 0], [1, 1, 1]]
    """
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def strided_lengths(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    """Frames after a convolution with this stride and 'same' padding: ceil(L / stride).

    >>> strided_lengths(torch.tensor([7, 8, 1]), 2).tolist()
    [4, 4, 1]
    """
    return torch.div(lengths - 1, stride, rounding_mode="floor") + 1


def instance_norm(feats: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each feature dimension of each utterance to zero mean and unit variance over
    its real frames (``nn.InstanceNorm1d`` without affine, as sslsv's input normalisation, but
    blind to padding); padding frames come out as zeros."""
    mask = frame_mask(lengths, feats.shape[1]).unsqueeze(-1).to(feats.dtype)  # (B, T, 1)
    count = lengths.clamp(min=1).to(feats.dtype)[:, None, None]                # (B, 1, 1)
    mean = (feats * mask).sum(1, keepdim=True) / count                           # (B, 1, D)
    var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count            # (B, 1, D)
    return (feats - mean) / torch.sqrt(var + eps) * mask                         # (B, T, D)


# ---------------------------------------------------------------- pooling over time


class StatsPooling(nn.Module):
    """Mean and standard deviation over real frames (Snyder et al. 2018): ``(B, C, T)`` ->
    ``(B, 2C)``.  The variance is floored before the square root, as in Kaldi's
    StatisticsPoolingComponent (floor 1e-10; here 1e-5 to keep the gradient finite)."""

    def __init__(self, channels: int):
        super().__init__()
        self.output_dim = 2 * channels

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        weights = frame_mask(lengths, x.shape[-1]).to(x.dtype)               # (B, T)
        weights = weights / lengths.clamp(min=1).to(x.dtype)[:, None]
        return weighted_stats(x, weights)


def weighted_stats(x: torch.Tensor, weights: torch.Tensor, floor: float = 1e-5) -> torch.Tensor:
    """``x`` (B, C, T), ``weights`` (B, T) or (B, C, T) summing to 1 over T -> [mean, std]
    (B, 2C)."""
    if weights.dim() == 2:
        weights = weights[:, None, :]                                           # (B, 1, T)
    mean = (x * weights).sum(-1)                                                # (B, C)
    var = ((x - mean[..., None]) ** 2 * weights).sum(-1)                        # (B, C)
    return torch.cat([mean, torch.sqrt(var.clamp(min=floor))], dim=-1)


def masked_softmax(scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis (time) of ``(B, ..., T)`` scores, padding given weight 0."""
    mask = frame_mask(lengths, scores.shape[-1])                              # (B, T)
    mask = mask.view(mask.shape[0], *([1] * (scores.dim() - 2)), mask.shape[1])
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class AttentivePooling(nn.Module):
    """Channel-wise attentive pooling as in sslsv's and voxceleb_trainer's Thin-ResNet34
    ("SAP"/"ASP"): per-channel weights softmax_t(W2 BN(ReLU(W1 h_t))) over real frames
    (Cai et al. 2018's self-attentive pooling, with a weight per channel as in ECAPA);
    ``(B, C, T)`` -> the weighted mean ``(B, C)``, or with ``stats`` the weighted mean and
    standard deviation ``(B, 2C)`` (attentive statistics pooling, Okabe et al. 2018)."""

    def __init__(self, channels: int, stats: bool = False, attention_dim: int = 128):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(channels, attention_dim, 1), nn.ReLU(),
            nn.BatchNorm1d(attention_dim), nn.Conv1d(attention_dim, channels, 1))
        self.stats = stats
        self.output_dim = 2 * channels if stats else channels

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        weights = masked_softmax(self.attention(x), lengths)                     # (B, C, T)
        if self.stats:
            return weighted_stats(x, weights)                                    # (B, 2C)
        return (x * weights).sum(-1)                                             # (B, C)


class SelfAttentivePooling(AttentivePooling):
    """The attention-weighted mean (sslsv's SAP)."""

    def __init__(self, channels: int):
        super().__init__(channels, stats=False)


class AttentiveStatsPooling(AttentivePooling):
    """The attention-weighted mean and standard deviation (ASP)."""

    def __init__(self, channels: int):
        super().__init__(channels, stats=True)


POOLINGS: dict[str, type[nn.Module]] = {
    "stats": StatsPooling,
    "sap": SelfAttentivePooling,
    "asp": AttentiveStatsPooling,
}


def unknown_name(kind: str, name: str, available: dict) -> str:
    """The message for a name missing from a registry dict.

    >>> unknown_name("pooling", "max", POOLINGS)
    "unknown pooling 'max'; available: asp, sap, stats"
    """
    return f"unknown {kind} '{name}'; available: {', '.join(sorted(available))}"


def pooling_layer(name: str, channels: int) -> nn.Module:
    if name not in POOLINGS:
        raise InputError(unknown_name("pooling", name, POOLINGS))
    return POOLINGS[name](channels)


# ---------------------------------------------------------------- Thin-ResNet34


@dataclass
class ThinResNetConfig:
    """Thin-ResNet34 of sslsv; the defaults are the full net (7.0 M parameters at 40 mels;
    the "fast" half-width net, channels [16, 32, 64, 128] and 512-d, has 1.8 M)."""

    # per stage (sslsv), and SE blocks per stage (ResNet34)
    channels: list[int] = bounded(default_factory=lambda: [32, 64, 128, 256], gt=0)
    blocks: list[int] = bounded(default_factory=lambda: [3, 4, 6, 3], gt=0)
    # sslsv's Thin-ResNet34 (512 in the "fast" half-width net)
    embedding_dim: int = bounded(1024, gt=0)
    pooling: str = "sap"             # attentive pooling (sslsv); "asp" adds the std; or "stats"
    se_reduction: int = bounded(8, gt=0)  # squeeze-excitation bottleneck ratio (voxceleb_trainer)

    def __post_init__(self):
        if len(self.channels) != len(self.blocks) or not self.channels:
            raise ValueError("resnet: 'channels' and 'blocks' need one entry per stage, got "
                             f"{len(self.channels)} and {len(self.blocks)}")
        if self.pooling not in POOLINGS:
            raise ValueError(unknown_name("pooling", self.pooling, POOLINGS))


class SqueezeExcitation(nn.Module):
    """Channel gates from the mean over frequency and real frames (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor):
        # x (B, C, F, T), mask (B, 1, 1, T)
        count = (lengths.clamp(min=1) * x.shape[2]).to(x.dtype)[:, None]      # (B, 1)
        squeezed = (x * mask).sum((2, 3)) / count                                # (B, C)
        return x * self.gate(squeezed)[:, :, None, None]


class SEBasicBlock(nn.Module):
    """conv3x3-ReLU-BN-conv3x3-BN-SE plus the (projected) input, then ReLU: the He et al.
    (2016) basic block with squeeze-excitation, in sslsv's order (ReLU before the first batch
    norm).  Returns the output with its padding zeroed, and its lengths."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, se_reduction: int):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.se = SqueezeExcitation(out_ch, se_reduction)
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        # x (B, C_in, F, T) with its padding zeroed
        out_lengths = strided_lengths(lengths, self.stride)
        y = self.bn1(torch.relu(self.conv1(x)))                                # (B, C, F', T')
        mask = frame_mask(out_lengths, y.shape[-1])[:, None, None, :].to(y.dtype)
        y = self.bn2(self.conv2(y * mask))
        y = self.se(y, mask, out_lengths)
        return torch.relu(y + self.shortcut(x)) * mask, out_lengths


class ThinResNet(nn.Module):
    """Thin-ResNet34 (sslsv): ``(B, T, n_mels)`` log-mel -> ``(B, embedding_dim)``.

    The input is instance-normalised over time, read as a 1-channel image (frequency x
    time), and each stage after the first halves both axes; the last stage's channels x
    frequency are pooled over time and projected linearly to the embedding."""

    Config = ThinResNetConfig

    def __init__(self, config: ThinResNetConfig, input_dim: int):
        super().__init__()
        c0 = config.channels[0]
        self.stem = nn.Sequential(nn.Conv2d(1, c0, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.BatchNorm2d(c0))
        self.blocks = nn.ModuleList()
        in_ch, freq = c0, input_dim
        for stage, (ch, n) in enumerate(zip(config.channels, config.blocks, strict=True)):
            stride = 1 if stage == 0 else 2
            for i in range(n):
                self.blocks.append(SEBasicBlock(in_ch, ch, stride if i == 0 else 1,
                                                config.se_reduction))
                in_ch = ch
            freq = math.ceil(freq / stride)
        self.pool = pooling_layer(config.pooling, in_ch * freq)
        self.fc = nn.Linear(self.pool.output_dim, config.embedding_dim)
        self.output_dim = config.embedding_dim
        for m in self.modules():   # He init of the convolutions, as in sslsv
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = instance_norm(feats, lengths).transpose(1, 2).unsqueeze(1)          # (B, 1, D, T)
        mask = frame_mask(lengths, x.shape[-1])[:, None, None, :].to(x.dtype)
        x = self.stem(x) * mask                                                  # (B, C, D, T)
        for block in self.blocks:
            x, lengths = block(x, lengths)                                       # (B, C, F, T')
        x = x.flatten(1, 2)                                                      # (B, C*F, T')
        return self.fc(self.pool(x, lengths))                                    # (B, E)


# ---------------------------------------------------------------- x-vector TDNN


@dataclass
class TDNNConfig:
    """x-vector TDNN (Snyder et al. 2018); the defaults are the paper's (4.3 M
    parameters at 40 input dims)."""

    # frame1-5; contexts [-2,2] {-2,0,2} {-3,0,3} ...
    channels: list[int] = bounded(default_factory=lambda: [512, 512, 512, 512, 1500], gt=0)
    kernels: list[int] = bounded(default_factory=lambda: [5, 3, 3, 1, 1], gt=0)
    dilations: list[int] = bounded(default_factory=lambda: [1, 2, 3, 1, 1], gt=0)
    embedding_dim: int = bounded(512, gt=0)  # segment6, the x-vector (taken before its ReLU)
    pooling: str = "stats"           # mean + std (Snyder); "asp": attentive stats (Okabe 2018)

    def __post_init__(self):
        if not (len(self.channels) == len(self.kernels) == len(self.dilations) > 0):
            raise ValueError("tdnn: 'channels', 'kernels' and 'dilations' need one entry per "
                             f"layer, got {len(self.channels)}, {len(self.kernels)} and "
                             f"{len(self.dilations)}")
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f"tdnn: kernels must be odd (symmetric contexts), got {self.kernels}")
        if self.pooling not in POOLINGS:
            raise ValueError(unknown_name("pooling", self.pooling, POOLINGS))


class TDNN(nn.Module):
    """x-vector network: ``(B, T, D)`` -> ``(B, embedding_dim)``.  Each frame layer is
    dilated Conv1d-ReLU-BatchNorm (Kaldi's affine, relu, batchnorm order)."""

    Config = TDNNConfig

    def __init__(self, config: TDNNConfig, input_dim: int):
        super().__init__()
        self.layers = nn.ModuleList()
        in_ch = input_dim
        for ch, k, d in zip(config.channels, config.kernels, config.dilations, strict=True):
            self.layers.append(nn.Sequential(
                nn.Conv1d(in_ch, ch, k, dilation=d, padding=d * (k - 1) // 2),
                nn.ReLU(inplace=True), nn.BatchNorm1d(ch)))
            in_ch = ch
        self.pool = pooling_layer(config.pooling, in_ch)
        self.fc = nn.Linear(self.pool.output_dim, config.embedding_dim)
        self.output_dim = config.embedding_dim

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = instance_norm(feats, lengths).transpose(1, 2)                       # (B, D, T)
        mask = frame_mask(lengths, x.shape[-1])[:, None, :].to(x.dtype)           # (B, 1, T)
        for layer in self.layers:
            x = layer(x) * mask                                                  # (B, C, T)
        return self.fc(self.pool(x, lengths))                                    # (B, E)


# ---------------------------------------------------------------- the registry

ENCODERS: dict[str, type[nn.Module]] = {
    "resnet": ThinResNet,
    "tdnn": TDNN,
}


def encoder_class(name: str) -> type[nn.Module]:
    """The encoder class for a config name; an unknown name lists the available ones.

    >>> encoder_class("tdnn").__name__
    'TDNN'
    >>> encoder_class("ecapa")
    Traceback (most recent call last):
    ...
    speechssl.errors.InputError: unknown encoder 'ecapa'; available: resnet, tdnn
    """
    if name not in ENCODERS:
        raise InputError(unknown_name("encoder", name, ENCODERS))
    return ENCODERS[name]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
