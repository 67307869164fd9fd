"""Autoregressive predictive coding (APC): Chung, Hsu, Tang and Glass, "An unsupervised
autoregressive model for speech representation learning", Interspeech 2019.

A stack of unidirectional GRUs reads frames x_1..x_t; a linear head predicts the frame n
steps ahead from the last layer: the loss is L1(x_{t+n}, W h_t) for t < T - n.

Details and choices:

- Loss normalisation: the mean absolute error over valid (frame, dim) elements, i.e.
  ``torch.nn.L1Loss()``'s per-element mean, which is what Chung's released training script
  uses.  The published training L1 (LibriSpeech-360, 80-d log-mel: n=1 0.53, n=3 0.87, n=5
  1.09) is only plausible per element: summed over 80 dims it would mean an error of 0.007
  per mel bin.  One difference: Chung's mean also counts zero-padded frames (utterances padded
  to 1600 frames, where the error is only the head's bias), which lowers his numbers; ours
  averages over valid frames only, so expect somewhat higher values (roughly 1.3x for
  LibriSpeech's ~12 s utterances).
- ``shift`` n = 3 by default (Chung et al.'s phone classification was best around n = 3);
  van Staden and Kamper (2021) use 1, S3PRL uses 5.
- Chung's released script defaults to dropout 0 and no residuals; the defaults here (dropout
  0.1, residuals on) follow the paper's configuration as our references give it.
- Every GRU layer has its own weights; residual connections join layers 2..L (layer 1 maps
  the input dim to ``hidden``); dropout acts between layers, not after the last.  (The van
  Staden release shares weights between layers 2-3 and runs the recurrence over the batch
  axis: bugs, not the method.)
- Sequences are not packed: a unidirectional GRU's outputs at valid frames do not depend on
  the padding after them, and the loss ignores padded frames.
- Representation: the last GRU layer's output (Chung), or ``layer=k`` for GRU layer k
  (1-based), taken after the residual sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speechssl.data.batch import FrameBatch
from speechssl.models.base import SSLMethod
from speechssl.models.layers import check_layer, length_mask, masked_mean
from speechssl.typed_config import bounded


@dataclass
class APCConfig:
    num_layers: int = bounded(3, gt=0)  # GRU layers (Chung et al. 2019: 3)
    hidden: int = bounded(512, gt=0)  # units per GRU layer (Chung: 512)
    dropout: float = bounded(0.1, ge=0, lt=1)  # dropout between GRU layers (Chung: 0.1)
    residual: bool = True     # residual connections between GRU layers 2..L (Chung: used)
    # n: predict x_{t+n} from h_t (Chung: best 3; van Staden 1; S3PRL 5)
    shift: int = bounded(3, gt=0)


class APCNetwork(nn.Module):
    """The GRU stack and the linear prediction head, shared by APC and CAPC."""

    def __init__(self, input_dim: int, num_layers: int, hidden: int, dropout: float,
                 residual: bool):
        super().__init__()
        sizes = [input_dim] + [hidden] * num_layers
        self.grus = nn.ModuleList(
            nn.GRU(sizes[i], sizes[i + 1], batch_first=True) for i in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.residual = residual
        self.head = nn.Linear(hidden, input_dim)

    def layers(self, feats: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Outputs of GRU layers 1..``upto`` (all by default) for ``feats`` ``(B, T, D)``,
        each ``(B, T, H)``."""
        upto = len(self.grus) if upto is None else upto
        outputs = []
        inputs = feats  # (B, T, D)
        for i, gru in enumerate(self.grus[:upto]):
            h, _ = gru(inputs)  # (B, T, H)
            if self.residual and i > 0 and h.shape[-1] == inputs.shape[-1]:
                h = h + inputs
            outputs.append(h)
            inputs = self.dropout(h) if i + 1 < len(self.grus) else h
        return outputs

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Predictions ``(B, T, D)``: row t predicts the frame ``shift`` steps after t."""
        return self.head(self.layers(feats)[-1])


def shifted_l1(pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor,
               shift: int) -> torch.Tensor:
    """Mean |target_{t+shift} - pred_t| over valid frames t < length - shift and all dims.

    ``pred`` and ``target`` are ``(B, T, D)``; frames at or after a sequence's length are
    ignored.  Zero (with a graph) when no sequence is longer than ``shift``."""
    max_len = pred.shape[1]
    if max_len <= shift:
        return pred.sum() * 0.0
    diff = (pred[:, :max_len - shift] - target[:, shift:]).abs()  # (B, T-n, D)
    return masked_mean(diff, length_mask(lengths - shift, max_len - shift))


class APC(SSLMethod):
    """APC (Chung et al. 2019) on frame batches; see the module docstring."""

    name = "apc"
    Config = APCConfig
    batch_kind = "frames"
    level = "frame"

    def __init__(self, config: APCConfig, input_dim: int):
        super().__init__(config, input_dim)
        self.net = APCNetwork(input_dim, config.num_layers, config.hidden, config.dropout,
                              config.residual)

    def loss(self, batch: FrameBatch) -> dict[str, torch.Tensor]:
        pred = self.net(batch.feats)  # (B, T, D)
        return {"loss": shifted_l1(pred, batch.feats, batch.lengths, self.config.shift)}

    def represent(self, feats: torch.Tensor, lengths: torch.Tensor,
                  layer: int | None = None) -> torch.Tensor:
        """GRU layer ``layer`` (1-based; default the last) for ``feats`` ``(B, T, D)``:
        ``(B, T, hidden)``.  ``lengths`` is not needed: the GRUs are causal."""
        chosen = check_layer(layer, self.config.num_layers, self.config.num_layers, self.name)
        return self.net.layers(feats, upto=chosen)[-1]

    def represent_layers(self, feats: torch.Tensor, lengths: torch.Tensor,
                         layers: list[int | None]) -> list[torch.Tensor]:
        """Several GRU layers from one pass."""
        depth = self.config.num_layers
        chosen = [check_layer(k, depth, depth, self.name) for k in layers]
        outputs = self.net.layers(feats, upto=max(chosen))
        return [outputs[k - 1] for k in chosen]

    def representation_dim(self, layer: int | None = None) -> int:
        check_layer(layer, self.config.num_layers, self.config.num_layers, self.name)
        return self.config.hidden

    def hidden_layers(self) -> list[int]:
        return list(range(1, self.config.num_layers + 1))
