"""The CAE-RNN acoustic word embedding model: Kamper, "Truly unsupervised acoustic word
embeddings using weak top-down constraints in encoder-decoder models", ICASSP 2019 (as used
by van Staden and Kamper, SLT 2021).

An encoder RNN reads a word segment ``x`` (``(T, D)`` frames); the final hidden state of
its last layer goes through a linear layer to the embedding ``z`` (130-d).  A second linear
layer maps ``z`` to the decoder's input, which is fed unchanged at every decoding step; the
decoder RNN runs for the length of the target and a linear layer maps its outputs back to
``D`` dimensions.  This is the structure of Kamper's released recipe
(``recipe_bucktsong_awe``: ``build_multi_encdec_lazydynamic_latentfunc`` with a linear
latent layer ``400 -> 130 -> 400``).

The loss is the squared error averaged over the feature dimensions, summed over the
target's frames and divided by its length, then averaged over the batch.  As an
autoencoder (AE) the target is ``x`` itself; as a correspondence autoencoder (CAE) it is
another token ``y`` of the same word, of its own length.

Padding never changes a result: the GRUs are unidirectional, so the output at frame t
depends on frames up to t only; the embedding reads the encoder's last layer at each
segment's own last frame, and decoder outputs past a target's length are zeroed and left out
of the loss.  A segment gets the same embedding alone or in any padded batch.  (This is
what packed sequences would compute; on the CPU, PyTorch's backward through packed GRUs
zero-fills the whole input gradient at every time step, about 10x slower than padding.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speechssl.models.layers import length_mask
from speechssl.typed_config import bounded


@dataclass
class CAERNNConfig:
    """Kamper 2019 / van Staden & Kamper 2021: GRU encoder and decoder, 3 x 400, z 130."""

    enc_layers: int = bounded(3, gt=0)
    enc_hidden: int = bounded(400, gt=0)
    dec_layers: int = bounded(3, gt=0)
    dec_hidden: int = bounded(400, gt=0)
    embed_dim: int = bounded(130, gt=0)


def pad_segments(segments: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded ``(B, T_max, D)`` batch and the ``(B,)`` int64 lengths."""
    lengths = torch.tensor([s.shape[0] for s in segments], dtype=torch.int64)
    return nn.utils.rnn.pad_sequence(segments, batch_first=True), lengths


class CAERNN(nn.Module):
    """Encoder-decoder GRU with a linear embedding layer; see the module docstring."""

    def __init__(self, config: CAERNNConfig, input_dim: int):
        super().__init__()
        self.config = config
        self.input_dim = input_dim
        self.encoder = nn.GRU(input_dim, config.enc_hidden, config.enc_layers,
                              batch_first=True)
        self.to_embedding = nn.Linear(config.enc_hidden, config.embed_dim)
        self.to_decoder = nn.Linear(config.embed_dim, config.dec_hidden)
        self.decoder = nn.GRU(config.dec_hidden, config.dec_hidden, config.dec_layers,
                              batch_first=True)
        self.to_output = nn.Linear(config.dec_hidden, input_dim)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, embed_dim)`` of the padded segments ``x`` ``(B, T, D)``."""
        out, _ = self.encoder(x[:, :int(lengths.max())])          # (B, T, enc_hidden)
        last = (lengths - 1).to(out.device)
        final = out[torch.arange(out.shape[0], device=out.device), last]  # (B, enc_hidden)
        return self.to_embedding(final)                           # (B, embed_dim)

    def decode(self, z: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(B, max(lengths), D)`` from ``z``, each ``lengths[b]`` frames
        long (zeros after)."""
        steps = int(lengths.max())
        cond = self.to_decoder(z)                                 # (B, dec_hidden)
        out, _ = self.decoder(cond.unsqueeze(1).expand(-1, steps, -1).contiguous())
        mask = length_mask(lengths.to(z.device), steps)           # (B, T)
        return self.to_output(out) * mask.unsqueeze(-1)           # (B, T, D)

    def forward(self, x: torch.Tensor, x_lengths: torch.Tensor,
                y_lengths: torch.Tensor) -> torch.Tensor:
        """Decode ``x`` into sequences of ``y_lengths`` frames: ``(B, max(y_lengths), D)``."""
        return self.decode(self.embed(x, x_lengths), y_lengths)

    def loss(self, x: torch.Tensor, x_lengths: torch.Tensor, y: torch.Tensor,
             y_lengths: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss of target ``y`` from input ``x`` (``y = x`` for the AE)."""
        pred = self(x, x_lengths, y_lengths)                     # (B, T_y, D)
        return sequence_mse(pred, y[:, :pred.shape[1]], y_lengths)


def sequence_mse(pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor,
                 ) -> torch.Tensor:
    """Mean over the batch of (sum over a sequence's frames of the mean squared error over
    dimensions) / its length; padded frames of ``pred`` and ``target`` must be zero.

    >>> pred = torch.zeros(2, 3, 1)
    >>> target = torch.tensor([[[1.0], [3.0], [0.0]], [[2.0], [2.0], [2.0]]])
    >>> sequence_mse(pred, target, torch.tensor([2, 3])).item()  # ((1 + 9) / 2 + 12 / 3) / 2
    4.5
    """
    per_frame = ((pred - target) ** 2).mean(dim=-1)              # (B, T)
    lengths = lengths.to(per_frame.device, per_frame.dtype)
    return (per_frame.sum(dim=1) / lengths).mean()
