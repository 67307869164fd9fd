"""Contrastive predictive coding (CPC) on frame features: van den Oord, Li and Vinyals,
"Representation learning with contrastive predictive coding", 2018, in the variant of van
Staden and Kamper (SLT 2021) that replaces the waveform conv encoder by a frame-wise MLP.

- g_enc: 5 x (Linear 512 + LayerNorm + ReLU), dropout 0.5 after the third block, then a
  Linear to z (64-d), applied to each frame on its own.
- g_ar: one unidirectional GRU (or LSTM) layer of 256 units over z: the context c_t.
- For k = 1..K (K = 3 for 10 ms frame features; 12 is for waveform encoders), a prediction
  W_k c_t (W_k: Linear 256 -> 64 without bias, as in f_k = exp(z^T W_k c_t)) is scored
  against the true z_{t+k} and against negatives by the scaled dot product
  z . W_k c_t / sqrt(z_dim).
- InfoNCE: for every valid t and k with t + k < length, the cross-entropy of the positive
  among itself and ``num_negatives`` negatives; the loss is the mean over all such (b, t, k).
  ``acc`` is the fraction of those where the positive scores highest.

Negatives (:func:`sample_negatives`), the exact rule: each target frame (b, j) gets
``num_negatives`` frames drawn uniformly, with replacement, from its pool minus the target
frame itself.  With ``negatives="same_speaker"`` (van Staden: 31 from the same speaker) the
pool is every valid frame of every utterance in the batch with b's speaker, b's own other
frames included, so a speaker with one utterance in the batch gives negatives from other times
of that utterance; an unknown speaker (-1) counts as a speaker of its own utterance only.
With ``negatives="batch"`` the pool is every valid frame of the batch.  The negatives of a
target frame are shared by the K predictions of it (from c_{j-1} ... c_{j-K}), as in the
common CPC implementations that sample once per position.  Sampling uses the global torch RNG
(``torch.rand``), so saving and restoring the RNG state reproduces a run, and it draws one
row per valid frame in (b, t) order, so padding does not change the draws.

Representation: ``layer=2`` (default) the context c (256-d), ``layer=1`` the encoder output
z (64-d).  Run it in eval mode (the encoder's dropout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from speechssl.data.batch import FrameBatch
from speechssl.models.base import SSLMethod
from speechssl.models.layers import check_layer, length_mask
from speechssl.typed_config import bounded


@dataclass
class CPCConfig:
    # units of each encoder block (van Staden & Kamper 2021: 512)
    enc_hidden: int = bounded(512, gt=0)
    enc_layers: int = bounded(5, gt=0)  # Linear + LayerNorm + ReLU blocks in g_enc (van Staden: 5)
    enc_dropout: float = bounded(0.5, ge=0, lt=1)  # dropout after encoder block 3 (van Staden: 0.5)
    z_dim: int = bounded(64, gt=0)  # encoder output z (van Staden: 64)
    c_dim: int = bounded(256, gt=0)  # context c, the g_ar units (van Staden: 256)
    context: str = "gru"      # g_ar: "gru" or "lstm" (van den Oord: GRU)
    # K predicted frames (3 for 10 ms frame features; 12 for waveform)
    future_steps: int = bounded(3, gt=0)
    num_negatives: int = bounded(31, gt=0)  # negatives per positive (van Staden: 31)
    negatives: str = "same_speaker"  # negative pool: "same_speaker" (van Staden) or "batch"

    def __post_init__(self):
        if self.context not in ("gru", "lstm"):
            raise ValueError(f"context must be 'gru' or 'lstm', got '{self.context}'")
        if self.negatives not in ("same_speaker", "batch"):
            raise ValueError(f"negatives must be 'same_speaker' or 'batch', got "
                             f"'{self.negatives}'")


def frame_encoder(config: CPCConfig, input_dim: int) -> nn.Sequential:
    """g_enc: frame-wise blocks of Linear + LayerNorm + ReLU, dropout after the third (or
    the last, if fewer), then Linear to ``z_dim``."""
    blocks: list[nn.Module] = []
    size = input_dim
    for i in range(config.enc_layers):
        blocks += [nn.Linear(size, config.enc_hidden), nn.LayerNorm(config.enc_hidden),
                   nn.ReLU()]
        if i == min(2, config.enc_layers - 1):
            blocks.append(nn.Dropout(config.enc_dropout))
        size = config.enc_hidden
    blocks.append(nn.Linear(size, config.z_dim))
    return nn.Sequential(*blocks)


def negative_pools(speakers: torch.Tensor, mode: str) -> torch.Tensor:
    """``(B,)`` pool id per utterance: its speaker (unknown speakers -1 get a pool of their
    own) for ``"same_speaker"``, one pool for ``"batch"``."""
    if mode == "batch":
        return torch.zeros_like(speakers)
    own = -2 - torch.arange(speakers.shape[0], device=speakers.device)
    return torch.where(speakers >= 0, speakers, own)


def sample_negatives(lengths: torch.Tensor, pools: torch.Tensor, max_len: int,
                     num_negatives: int) -> torch.Tensor:
    """Negative frame indices ``(B, T, N)`` into the flattened ``(B * T)`` frames: row
    (b, j) holds ``num_negatives`` frames drawn uniformly with replacement from the valid
    frames of the utterances in b's pool, never (b, j) itself.  Rows of padded frames are 0.

    Uses the global torch RNG: one ``torch.rand`` row per valid frame, in (b, t) order."""
    valid = length_mask(lengths, max_len).flatten()  # (B*T,)
    frames = valid.nonzero().squeeze(1)  # (V,) flat ids, (b, t) order
    _, utt_pool = torch.unique(pools, return_inverse=True)  # (B,) compact pool ids
    frame_pool = utt_pool[frames // max_len]  # (V,)
    order = torch.argsort(frame_pool, stable=True)  # pool by pool, (b, t) order within
    sizes = torch.bincount(frame_pool)  # (P,)
    offsets = torch.cumsum(sizes, 0) - sizes  # (P,)
    position = torch.empty_like(order)
    position[order] = torch.arange(order.numel(), device=order.device)
    rank = (position - offsets[frame_pool]).unsqueeze(1)  # (V, 1) target's place in pool
    size = sizes[frame_pool].unsqueeze(1)  # (V, 1)
    draw = torch.rand(frames.numel(), num_negatives, device=lengths.device)  # (V, N)
    pick = (draw * (size - 1)).long().clamp(max=(size - 2).clamp(min=0))  # (V, N)
    pick = (pick + (pick >= rank).long()).clamp(max=size - 1)  # skip the target itself
    chosen = frames[order][offsets[frame_pool].unsqueeze(1) + pick]  # (V, N)
    out = torch.zeros(valid.numel(), num_negatives, dtype=torch.long, device=lengths.device)
    out[frames] = chosen
    return out.view(lengths.shape[0], max_len, num_negatives)


class CPC(SSLMethod):
    """CPC with a frame-wise MLP encoder (van Staden & Kamper 2021); see the module
    docstring for the negatives."""

    name = "cpc"
    Config = CPCConfig
    batch_kind = "frames"
    level = "frame"

    def __init__(self, config: CPCConfig, input_dim: int):
        super().__init__(config, input_dim)
        self.encoder = frame_encoder(config, input_dim)
        rnn = nn.GRU if config.context == "gru" else nn.LSTM
        self.context = rnn(config.z_dim, config.c_dim, batch_first=True)
        self.predictors = nn.ModuleList(
            nn.Linear(config.c_dim, config.z_dim, bias=False)
            for _ in range(config.future_steps))

    def encode(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z ``(B, T, z_dim)`` and c ``(B, T, c_dim)`` for ``feats`` ``(B, T, D)``.  The
        context RNN is causal, so padding does not change c at valid frames."""
        z = self.encoder(feats)  # (B, T, z_dim)
        c, _ = self.context(z)  # (B, T, c_dim)
        return z, c

    def infonce(self, z: torch.Tensor, c: torch.Tensor, lengths: torch.Tensor,
                negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """InfoNCE over all valid (b, t, k), given ``negatives`` ``(B, T, N)`` from
        :func:`sample_negatives`: ``{"loss", "acc"}``."""
        batch, max_len, z_dim = z.shape
        z_neg = z.reshape(batch * max_len, z_dim)[negatives]  # (B, T, N, z_dim)
        scale = 1.0 / math.sqrt(z_dim)
        total = z.new_zeros(())
        correct = z.new_zeros(())
        count = z.new_zeros(())
        for k, predictor in enumerate(self.predictors, start=1):
            if max_len <= k:
                break
            pred = predictor(c[:, :max_len - k])  # (B, T-k, z_dim)
            pos = (pred * z[:, k:]).sum(-1, keepdim=True)  # (B, T-k, 1)
            neg = torch.einsum("btd,btnd->btn", pred, z_neg[:, k:])  # (B, T-k, N)
            logits = torch.cat([pos, neg], dim=-1) * scale  # (B, T-k, 1+N)
            ce = torch.logsumexp(logits, dim=-1) - logits[..., 0]  # (B, T-k)
            mask = length_mask(lengths - k, max_len - k)  # (B, T-k)
            total = total + torch.where(mask, ce, torch.zeros_like(ce)).sum()
            hits = (logits.argmax(-1) == 0) & mask
            correct = correct + hits.sum()
            count = count + mask.sum()
        count = count.clamp(min=1)
        return {"loss": total / count, "acc": (correct / count).detach()}

    def loss(self, batch: FrameBatch) -> dict[str, torch.Tensor]:
        z, c = self.encode(batch.feats)
        pools = negative_pools(batch.speakers, self.config.negatives)
        negatives = sample_negatives(batch.lengths, pools, z.shape[1],
                                     self.config.num_negatives)
        return self.infonce(z, c, batch.lengths, negatives)

    def represent(self, feats: torch.Tensor, lengths: torch.Tensor,
                  layer: int | None = None) -> torch.Tensor:
        """``layer=1``: z ``(B, T, z_dim)``; ``layer=2`` (default): c ``(B, T, c_dim)``."""
        chosen = check_layer(layer, 2, 2, self.name)
        if chosen == 1:
            return self.encoder(feats)
        return self.encode(feats)[1]

    def representation_dim(self, layer: int | None = None) -> int:
        chosen = check_layer(layer, 2, 2, self.name)
        return self.config.z_dim if chosen == 1 else self.config.c_dim

    def hidden_layers(self) -> list[int]:
        return [1, 2]
