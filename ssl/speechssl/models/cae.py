"""Frame-level correspondence autoencoder (cAE): Kamper, Elsner, Jansen and Goldwater,
"Unsupervised neural network based feature extraction using weak top-down constraints",
ICASSP 2015.

A frame-wise MLP autoencoder.  Phase 1 (the first ``ae_steps`` steps) trains it as a plain
autoencoder on the input token's frames: MSE(x_t, dec(enc(x_t))).  Phase 2 trains it as a
correspondence AE on DTW-aligned frame pairs of two tokens of the same word: MSE(y_t,
dec(enc(x_t))); the data give both directions, (x, y) and (y, x).  The trainer's
:meth:`FrameCAE.on_step` switches the phase; the ``phase_ae`` term logs it (1.0 / 0.0).
MSE is the mean over valid frames and dims.

Architecture: the paper (as our references summarise it) uses a deep stack of 100-unit tanh
hidden layers, about six layers in all, with a narrow feature layer, and the output layer is
linear (the targets are CMVN'd and negative half the time).  Defaults here: encoder
100-100-100 then a 39-unit bottleneck, decoder 100-100-100 mirrored, tanh on every hidden
layer including the bottleneck, linear output.  The bottleneck width (39, the MFCC+deltas
dimension the features are compared with) is our choice, not confirmed from the paper.

Deviations: the paper initialises the cAE from a stacked AE pretrained layer by layer; here
the whole AE is pretrained end to end for ``ae_steps`` steps, and phases are counted in
steps, not epochs (``ae_steps`` = 2000 is our choice, not a published value).

Representation: the bottleneck (default), or ``layer=k`` for encoder layer k (1-based: 1..3
the hidden layers, 4 the bottleneck), after its activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speechssl.data.batch import PairBatch
from speechssl.models.base import SSLMethod
from speechssl.models.layers import check_layer, length_mask, masked_mean
from speechssl.typed_config import bounded

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass
class CAEConfig:
    # encoder hidden layers (Kamper 2015: 100 units)
    hidden: tuple[int, ...] = bounded((100, 100, 100), gt=0)
    # feature layer width (our choice; see the module docstring)
    bottleneck: int = bounded(39, gt=0)
    activation: str = "tanh"  # hidden activation, "tanh" (Kamper 2015) or "relu"
    # AE pretraining steps before the correspondence phase (our choice)
    ae_steps: int = bounded(2000, ge=0)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got "
                             f"'{self.activation}'")


def mlp(sizes: list[int], activation: str, linear_last: bool) -> nn.ModuleList:
    """One ``Sequential(Linear, activation)`` per size step; the last one without the
    activation if ``linear_last``."""
    layers = nn.ModuleList()
    for i in range(len(sizes) - 1):
        step: list[nn.Module] = [nn.Linear(sizes[i], sizes[i + 1])]
        if not (linear_last and i == len(sizes) - 2):
            step.append(ACTIVATIONS[activation]())
        layers.append(nn.Sequential(*step))
    return layers


class FrameCAE(SSLMethod):
    """The frame-level cAE (Kamper et al. 2015); see the module docstring."""

    name = "cae"
    Config = CAEConfig
    batch_kind = "pairs"
    level = "frame"

    def __init__(self, config: CAEConfig, input_dim: int):
        super().__init__(config, input_dim)
        widths = [input_dim, *config.hidden, config.bottleneck]
        self.encoder = mlp(widths, config.activation, linear_last=False)
        self.decoder = mlp(widths[::-1], config.activation, linear_last=True)
        self.ae_phase = True

    def on_step(self, step: int) -> None:
        """AE pretraining for steps 0 .. ae_steps - 1, then the correspondence objective."""
        self.ae_phase = step < self.config.ae_steps

    def encode(self, feats: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Encoder layer ``upto`` (default: the bottleneck) of ``feats`` ``(B, T, D)``."""
        h = feats  # (B, T, D)
        for layer in self.encoder[:upto]:
            h = layer(h)  # (B, T, width)
        return h

    def reconstruct(self, feats: torch.Tensor) -> torch.Tensor:
        """dec(enc(feats)) ``(B, T, D)``, frame by frame."""
        h = self.encode(feats)  # (B, T, bottleneck)
        for layer in self.decoder:
            h = layer(h)
        return h  # (B, T, D)

    def loss(self, batch: PairBatch) -> dict[str, torch.Tensor]:
        target = batch.x if self.ae_phase else batch.y  # (B, T, D)
        error = (self.reconstruct(batch.x) - target) ** 2  # (B, T, D)
        mse = masked_mean(error, length_mask(batch.lengths, error.shape[1]))
        phase = torch.tensor(1.0 if self.ae_phase else 0.0, device=mse.device)
        return {"loss": mse, "phase_ae": phase}

    def represent(self, feats: torch.Tensor, lengths: torch.Tensor,
                  layer: int | None = None) -> torch.Tensor:
        """Encoder layer ``layer`` (1-based; default the bottleneck): ``(B, T, width)``."""
        depth = len(self.encoder)
        return self.encode(feats, upto=check_layer(layer, depth, depth, self.name))

    def representation_dim(self, layer: int | None = None) -> int:
        depth = len(self.encoder)
        chosen = check_layer(layer, depth, depth, self.name)
        return [*self.config.hidden, self.config.bottleneck][chosen - 1]

    def hidden_layers(self) -> list[int]:
        return list(range(1, len(self.encoder) + 1))

