"""The Transformer encoder of the S3PRL masked-reconstruction family (Mockingjay, TERA, Audio
ALBERT), as S3PRL's ``upstream/mockingjay/model.py`` builds it (BERT's encoder on frames):

- input representation: Linear(input_dim -> hidden) + sinusoidal position encoding, then
  LayerNorm and dropout;
- post-LN layers: x = LN(x + drop(SelfAttention(x))); x = LN(x + drop(W2 GELU(W1 x)));
  attention dropout on the attention probabilities; LayerNorm eps 1e-12 (BERT's);
- weights drawn from N(0, 0.02), biases 0, LayerNorms 1 and 0 (BERT's initialiser);
- with ``shared`` (Audio ALBERT) one layer's module is applied ``num_layers`` times.

Padded frames are kept out of attention with a key padding mask, so an utterance's states at
its valid frames do not depend on the padding or on the other utterances of a batch.

>>> sinusoidal_encoding(3, 4)
tensor([[ 0.0000,  1.0000,  0.0000,  1.0000],
        [ 0.8415,  0.5403,  0.0100,  0.9999],
        [ 0.9093, -0.4161,  0.0200,  0.9998]])
"""

from __future__ import annotations

import torch
from torch import nn

from speechssl.models.layers import length_mask

LAYER_NORM_EPS = 1e-12  # BERT's and S3PRL's
INIT_STD = 0.02  # S3PRL's initializer_range


def sinusoidal_encoding(length: int, dim: int, device: torch.device | None = None
                        ) -> torch.Tensor:
    """``(length, dim)``: row p holds sin(p / 10000^(2i/dim)) at column 2i and
    cos(p / 10000^(2i/dim)) at column 2i + 1 (Vaswani et al. 2017, S3PRL's table)."""
    position = torch.arange(length, dtype=torch.float64, device=device).unsqueeze(1)  # (T, 1)
    pair = torch.arange(dim, dtype=torch.float64, device=device) // 2  # (dim,): i of 2i, 2i+1
    angle = position / torch.pow(10000.0, 2.0 * pair / dim)  # (T, dim)
    table = torch.where(torch.arange(dim, device=device) % 2 == 0, angle.sin(), angle.cos())
    return table.float()


class EncoderLayer(nn.Module):
    """One post-LN Transformer layer (BERT's): self-attention, then a GELU feed-forward."""

    def __init__(self, hidden: int, heads: int, ffn: int, dropout: float,
                 attention_dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=attention_dropout,
                                               batch_first=True)
        self.attention_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden))
        self.ffn_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, H)``; ``padding`` ``(B, T)`` True at padded frames."""
        attended, _ = self.attention(x, x, x, key_padding_mask=padding, need_weights=False)
        x = self.attention_norm(x + self.dropout(attended))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))


class TransformerEncoder(nn.Module):
    """Input representation and ``num_layers`` layers; :meth:`forward` gives every state."""

    def __init__(self, input_dim: int, hidden: int, num_layers: int, heads: int, ffn: int,
                 dropout: float, attention_dropout: float, shared: bool):
        super().__init__()
        self.project = nn.Linear(input_dim, hidden)
        self.input_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(dropout)
        distinct = 1 if shared else num_layers
        self.layers = nn.ModuleList(
            EncoderLayer(hidden, heads, ffn, dropout, attention_dropout) for _ in range(distinct))
        self.num_layers = num_layers
        self.apply(init_weights)

    def layer(self, k: int) -> EncoderLayer:
        """The module of layer ``k`` (1-based): the one shared module when shared."""
        return self.layers[(k - 1) % len(self.layers)]

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """The input representation ``(B, T, H)`` of ``feats`` ``(B, T, D)``."""
        position = sinusoidal_encoding(feats.shape[1], self.project.out_features, feats.device)
        return self.dropout(self.input_norm(self.project(feats) + position))

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, upto: int | None = None
                ) -> list[torch.Tensor]:
        """States 0..``upto`` (all by default), each ``(B, T, H)``: 0 is the input
        representation, k the output of layer k."""
        upto = self.num_layers if upto is None else upto
        padding = ~length_mask(lengths, feats.shape[1])  # (B, T)
        states = [self.embed(feats)]
        for k in range(1, upto + 1):
            states.append(self.layer(k)(states[-1], padding))
        return states


class PredictionHead(nn.Module):
    """S3PRL's spectrogram prediction head: Linear + GELU + LayerNorm, then Linear back to
    the input dimension."""

    def __init__(self, hidden: int, output_dim: int):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(),
                                       nn.LayerNorm(hidden, eps=LAYER_NORM_EPS))
        self.output = nn.Linear(hidden, output_dim)
        self.apply(init_weights)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.output(self.transform(states))


def init_weights(module: nn.Module) -> None:
    """BERT's initialiser (S3PRL's ``init_Transformer_weights``): N(0, 0.02) weights, zero
    biases; LayerNorms are already 1 and 0.  The attention's fused input projection is not
    an ``nn.Linear``, so it is set here too."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.MultiheadAttention):
        nn.init.normal_(module.in_proj_weight, std=INIT_STD)
        nn.init.zeros_(module.in_proj_bias)
