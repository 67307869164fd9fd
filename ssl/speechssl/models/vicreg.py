"""VICReg: variance-invariance-covariance regularisation (Bardes, Ponce & LeCun, ICLR 2022),
applied to speaker embeddings as in sslsv (Lepage & Dehak, Interspeech 2022).

Two augmented crops of one utterance (a :class:`ViewBatch`) go through the same encoder
(:mod:`speechssl.models.encoders`; each view separately, so batch norm sees one view at a
time as in the paper's code) and projector Linear-BN-ReLU-Linear-BN-ReLU-Linear
(2048-2048-512, sslsv's; the last layer without bias as in the paper's code).  With Z, Z'
the ``(N, D)`` projections of the two views:

    loss = inv_weight * s(Z, Z') + var_weight * [v(Z) + v(Z')] + cov_weight * [c(Z) + c(Z')]

- s: mean squared error over all N x D entries (invariance);
- v(Z) = mean_d relu(gamma - sqrt(Var(Z)_d + eps)), Var unbiased over the batch (variance);
- c(Z) = sum_{i != j} C(Z)_ij^2 / D, C(Z) = (Z - mean)^T (Z - mean) / (N - 1) (covariance).

This is the paper's equation (6) and sslsv's loss.  The paper's released code halves the
variance term (its std_loss averages the two views), so its effective variance weight is
12.5; sslsv and this module sum the views.

Weights: the paper's 25/25/1 (sslsv's default 1/1/0.04 is the same up to a factor of 25).
sslsv's best speaker-verification config is 1/1/0.1, i.e. ``inv_weight: 25, var_weight: 25,
cov_weight: 2.5`` in this module's scale.

The logged terms ``invariance``, ``variance``, ``covariance`` are UNWEIGHTED (variance and
covariance summed over the two views); ``loss`` is the weighted total.

Several processes (DDP): v and c are computed on the projections gathered from every
process (:func:`speechssl.models.gather.gather_with_grad`, the global batch, as in the
paper's code), s on each process's own pairs.  Each process then holds the same global v,
c, and gather_with_grad's backward sums their gradients over processes, so each process
gets ``world_size`` times its share; DDP's averaging of parameter gradients divides that
back: the result equals the single-process gradient of the global loss (for s, the average
of the per-process means is the global mean when the per-process batches are equal).  The
paper also converts the projector's batch norms to SyncBatchNorm; that is the trainer's
choice (``nn.SyncBatchNorm.convert_sync_batchnorm``), not done here.

The representation (``represent``) is the encoder output, before the projector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from speechssl.data.batch import ViewBatch
from speechssl.errors import InputError
from speechssl.models.base import SSLMethod
from speechssl.models.encoders import (
    ENCODERS,
    TDNNConfig,
    ThinResNetConfig,
    encoder_class,
    unknown_name,
)
from speechssl.models.gather import gather_with_grad
from speechssl.typed_config import bounded


@dataclass
class VICRegConfig:
    """The ``model:`` section; defaults are the published ones (paper, sslsv).  Only the
    section named by ``encoder`` is used.  A CPU-sized net (0.6 M parameters, about 0.25 s
    per batch of 32 x 2 views x 200 frames on 2 cores)::

        encoder: resnet
        resnet: {channels: [8, 16, 32, 64], blocks: [1, 1, 1, 1], embedding_dim: 128}
        projector_dims: [512, 512, 128]
    """

    encoder: str = "resnet"          # a key of encoders.ENCODERS: "resnet" (sslsv) or "tdnn"
    resnet: ThinResNetConfig = field(default_factory=ThinResNetConfig)  # if encoder: resnet
    tdnn: TDNNConfig = field(default_factory=TDNNConfig)  # used if encoder: tdnn
    projector_dims: list[int] = bounded(default_factory=lambda: [2048, 2048, 512], gt=0)
    inv_weight: float = bounded(25.0, ge=0)  # lambda, paper (sslsv: 1, i.e. 25 in this scale)
    var_weight: float = bounded(25.0, ge=0)  # mu, paper (sslsv: 1)
    cov_weight: float = bounded(1.0, ge=0)  # nu, paper (sslsv: 0.04 = 1/25; sslsv best: 0.1 = 2.5)
    gamma: float = bounded(1.0, gt=0)  # target standard deviation per dimension, paper
    eps: float = bounded(1e-4, gt=0)  # added to the variance before the square root, paper

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(unknown_name("encoder", self.encoder, ENCODERS))
        if not self.projector_dims:
            raise ValueError("projector_dims needs at least one layer")


# ---------------------------------------------------------------- the loss terms


def invariance_term(za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
    """Mean squared error between paired projections ``(N, D)``."""
    return F.mse_loss(za, zb)


def variance_term(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """mean_d relu(gamma - sqrt(Var(z)_d + eps)); ``z`` (N, D), unbiased variance over N.

    >>> float(variance_term(torch.tensor([[0.0], [2.0]])))   # std sqrt(2) > 1: no penalty
    0.0
    """
    std = torch.sqrt(z.var(dim=0) + eps)                                     # (D,)
    return F.relu(gamma - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of the squared off-diagonal covariances of ``z`` (N, D), divided by D."""
    n, d = z.shape
    centred = z - z.mean(dim=0)                                              # (N, D)
    cov = centred.T @ centred / (n - 1)                                      # (D, D)
    return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / d


def vicreg_terms(za: torch.Tensor, zb: torch.Tensor, gamma: float = 1.0,
                 eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """The unweighted terms for projections ``(B, D)`` of the two views on this process:
    invariance on the local pairs, variance and covariance (summed over the views) on the
    batch gathered from all processes; computed in float32 (or float64) even under AMP."""
    dtype = torch.promote_types(za.dtype, torch.float32)   # never in half precision
    za, zb = za.to(dtype), zb.to(dtype)
    za_all, zb_all = gather_with_grad(za), gather_with_grad(zb)              # (N, D)
    if za_all.shape[0] < 2:
        raise InputError("VICReg needs at least 2 utterances per batch (the variance and "
                         "covariance are batch statistics); raise data.batch_size")
    with torch.autocast(za.device.type, enabled=False):
        return {
            "invariance": invariance_term(za, zb),
            "variance": variance_term(za_all, gamma, eps) + variance_term(zb_all, gamma, eps),
            "covariance": covariance_term(za_all) + covariance_term(zb_all),
        }


# ---------------------------------------------------------------- the model


def build_projector(input_dim: int, dims: list[int]) -> nn.Sequential:
    """Linear-BN-ReLU for every layer but the last, which is Linear without bias (paper)."""
    layers: list[nn.Module] = []
    for i, dim in enumerate(dims):
        if i == len(dims) - 1:
            layers.append(nn.Linear(input_dim, dim, bias=False))
        else:
            layers += [nn.Linear(input_dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
        input_dim = dim
    return nn.Sequential(*layers)


class VICReg(SSLMethod):
    """VICReg on two views of each utterance; embedding = the encoder output."""

    name = "vicreg"
    Config = VICRegConfig
    batch_kind = "views"
    level = "utterance"

    def __init__(self, config: VICRegConfig, input_dim: int):
        super().__init__(config, input_dim)
        encoder_config = getattr(config, config.encoder)
        self.encoder = encoder_class(config.encoder)(encoder_config, input_dim)
        self.projector = build_projector(self.encoder.output_dim, config.projector_dims)

    def project(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(feats, lengths))                  # (B, D)

    def loss(self, batch: ViewBatch) -> dict[str, torch.Tensor]:
        za = self.project(batch.view_a, batch.lengths)                       # (B, D)
        zb = self.project(batch.view_b, batch.lengths)                       # (B, D)
        terms = vicreg_terms(za, zb, self.config.gamma, self.config.eps)
        c = self.config
        terms["loss"] = (c.inv_weight * terms["invariance"] + c.var_weight * terms["variance"]
                         + c.cov_weight * terms["covariance"])
        return terms

    def represent(self, feats: torch.Tensor, lengths: torch.Tensor,
                  layer: int | None = None) -> torch.Tensor:
        self._check_layer(layer)
        return self.encoder(feats, lengths)                                  # (B, E)

    def representation_dim(self, layer: int | None = None) -> int:
        self._check_layer(layer)
        return self.encoder.output_dim

    def _check_layer(self, layer: int | None) -> None:
        if layer is not None:
            raise InputError(f"vicreg has one representation, the encoder output; "
                             f"layer must be unset, got {layer}")
