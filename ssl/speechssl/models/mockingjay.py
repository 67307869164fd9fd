"""The S3PRL masked-reconstruction Transformers: Mockingjay (Liu et al., ICASSP 2020), TERA
(Liu, Li and Lee, IEEE/ACM TASLP 2021) and Audio ALBERT (Chi et al., SLT 2021), as S3PRL's
``pretrain/mockingjay``, ``pretrain/tera`` and ``pretrain/audio_albert`` train them.

A Transformer encoder (:mod:`speechssl.models.transformer`) reads corrupted frames
(:mod:`speechssl.models.masking`) and a prediction head reconstructs the clean frames; the
loss is the L1 error on the corrupted positions only, the mean over those (frame, bin)
elements (S3PRL's ``L1Loss`` over ``masked_select``); padded frames never count.

- Mockingjay: time masking (15% of frames in spans of 7; zeros / random spans / unchanged
  80/10/10, drawn once per utterance).
- TERA ("T-F-M", S3PRL's ``logMelBase-T-F-M.yaml``): time masking, frequency masking (one
  band of up to 20% of the bins) and magnitude alteration (N(0, 0.2^2) noise on the whole
  input of 15% of the batches); dropout 0.3 on hidden states and attention probabilities.
- Audio ALBERT: Mockingjay with one layer's weights shared by the 3 layers.

Input: the papers use 80 log-mel bins with CMVN (the recipes give whatever features their
data dir holds).  S3PRL's runner (AdamW 2e-4, 7% linear warm-up then linear decay, gradient
clipping 5, crops of at most 1500 frames) is in the ``optim`` and ``data`` sections of the
published configs, not here.

Representation: ``layer=k`` for the output of Transformer layer k (default: the last),
``layer=0`` for the input representation (projection + positions, normalised); these are
S3PRL's ``hidden_states``.  Run it in eval mode (dropout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechssl.data.batch import FrameBatch
from speechssl.models.base import SSLMethod
from speechssl.models.layers import check_layer
from speechssl.models.masking import apply_plan, draw_plan
from speechssl.models.transformer import PredictionHead, TransformerEncoder
from speechssl.typed_config import bounded


@dataclass
class MockingjayConfig:
    num_layers: int = bounded(3, gt=0)  # Transformer layers (S3PRL: 3)
    hidden: int = bounded(768, gt=0)  # model width (S3PRL hidden_size: 768)
    heads: int = bounded(12, gt=0)  # attention heads (S3PRL: 12)
    ffn: int = bounded(3072, gt=0)  # feed-forward width (S3PRL intermediate_size: 3072)
    dropout: float = bounded(0.1, ge=0, lt=1)  # on hidden states (S3PRL: 0.1)
    attention_dropout: float = bounded(0.1, ge=0, lt=1)  # on attention probabilities (0.1)
    share_layers: bool = False  # one layer's weights for every layer (Audio ALBERT)
    mask_proportion: float = bounded(0.15, ge=0, le=1)  # time masking, at most (S3PRL: 0.15)
    mask_span: int = bounded(7, gt=0)  # frames per masked span (S3PRL: 7)
    # widest frequency band masked, a fraction of the input dim (TERA: 0.2; 0: none)
    freq_mask: float = bounded(0.0, ge=0, lt=1)
    noise_prob: float = bounded(0.0, ge=0, le=1)  # batches with added noise (TERA: 0.15)
    noise_std: float = bounded(0.2, ge=0)  # that noise's standard deviation (TERA: 0.2)

    def __post_init__(self):
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads "
                             f"({self.heads})")


@dataclass
class TERAConfig(MockingjayConfig):
    """Mockingjay's fields with S3PRL's TERA "T-F-M" defaults (``logMelBase-T-F-M.yaml``):
    time, frequency and magnitude alteration, more dropout."""

    dropout: float = bounded(0.3, ge=0, lt=1)  # hidden_dropout_prob: 0.3
    attention_dropout: float = bounded(0.3, ge=0, lt=1)  # attention_probs_dropout_prob: 0.3
    freq_mask: float = bounded(0.2, ge=0, lt=1)  # mask_frequency: 0.2
    noise_prob: float = bounded(0.15, ge=0, le=1)  # noise_proportion: 0.15


@dataclass
class AudioALBERTConfig(MockingjayConfig):
    """Mockingjay's fields; the layers share one set of weights (Chi et al. 2021)."""

    share_layers: bool = True


def masked_l1(pred: torch.Tensor, target: torch.Tensor, positions: torch.Tensor
              ) -> torch.Tensor:
    """Mean |pred - target| over the elements where ``positions`` ``(B, T, D)`` is True;
    zero (with a graph) where there are none."""
    error = (pred.float() - target).abs()  # (B, T, D)
    kept = torch.where(positions, error, torch.zeros_like(error))
    return kept.sum() / positions.sum().clamp(min=1)


class Mockingjay(SSLMethod):
    """Masked acoustic model with a Transformer encoder; see the module docstring.  TERA
    and Audio ALBERT are this class with other config defaults."""

    name = "mockingjay"
    Config = MockingjayConfig
    batch_kind = "frames"
    level = "frame"

    def __init__(self, config: MockingjayConfig, input_dim: int):
        super().__init__(config, input_dim)
        self.encoder = TransformerEncoder(
            input_dim, config.hidden, config.num_layers, config.heads, config.ffn,
            config.dropout, config.attention_dropout, config.share_layers)
        self.head = PredictionHead(config.hidden, input_dim)

    def corrupt(self, feats: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The corrupted input ``(B, T, D)`` and the loss positions ``(B, T, D)`` bool."""
        c = self.config
        plan = draw_plan(lengths.cpu(), feats.shape[1], feats.shape[2], c.mask_proportion,
                         c.mask_span, c.freq_mask, c.noise_prob)
        return apply_plan(feats, lengths, plan, c.noise_std)

    def loss(self, batch: FrameBatch) -> dict[str, torch.Tensor]:
        inputs, positions = self.corrupt(batch.feats, batch.lengths)
        pred = self.head(self.encoder(inputs, batch.lengths)[-1])  # (B, T, D)
        return {"loss": masked_l1(pred, batch.feats, positions)}

    def represent(self, feats: torch.Tensor, lengths: torch.Tensor,
                  layer: int | None = None) -> torch.Tensor:
        """State ``layer`` (0: the input representation, k: layer k; default the last):
        ``(B, T, hidden)``."""
        depth = self.config.num_layers
        chosen = check_layer(layer, depth, depth, self.name, first=0)
        return self.encoder(feats, lengths, upto=chosen)[chosen]

    def represent_layers(self, feats: torch.Tensor, lengths: torch.Tensor,
                         layers: list[int | None]) -> list[torch.Tensor]:
        """Several states from one pass of the encoder."""
        depth = self.config.num_layers
        chosen = [check_layer(k, depth, depth, self.name, first=0) for k in layers]
        states = self.encoder(feats, lengths, upto=max(chosen))
        return [states[k] for k in chosen]

    def representation_dim(self, layer: int | None = None) -> int:
        depth = self.config.num_layers
        check_layer(layer, depth, depth, self.name, first=0)
        return self.config.hidden

    def hidden_layers(self) -> list[int]:
        return list(range(self.config.num_layers + 1))


class TERA(Mockingjay):
    """TERA: Mockingjay with frequency masking and magnitude alteration (its defaults)."""

    name = "tera"
    Config = TERAConfig


class AudioALBERT(Mockingjay):
    """Audio ALBERT: Mockingjay with the layers' weights shared (its defaults)."""

    name = "albert"
    Config = AudioALBERTConfig
