"""Correspondence APC (CAPC): van Staden and Kamper, "A comparison of self-supervised speech
representations as input features for unsupervised acoustic word embeddings", SLT 2021.

The APC network (:class:`speechssl.models.apc.APCNetwork`) reads one word token x of a pair
of same-word tokens; the target is the other token y, DTW-aligned to x's frames (the
:class:`PairBatch` gives y already aligned: frame t of y corresponds to frame t of x).  The
loss is L1(y_{t+n}, W h_{x,t}) for t < T_x - n, with n = 1 as in van Staden's configuration,
normalised like APC's (mean over valid frames and dims).  The data provide both directions,
(x, y) and (y, x).  Representation: as APC (last GRU layer, or ``layer=k``).

The van Staden release shares weights between GRU layers 2-3 and runs the recurrence over the
batch axis; both are bugs, not the method: every layer has its own weights here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechssl.data.batch import PairBatch
from speechssl.models.apc import APC, APCConfig, shifted_l1
from speechssl.typed_config import bounded


@dataclass
class CAPCConfig(APCConfig):
    """APC's fields (layers, hidden, dropout, residual); only the default shift differs."""

    shift: int = bounded(1, gt=0)  # n: predict y_{t+n} from h_{x,t} (van Staden & Kamper 2021: 1)


class CAPC(APC):
    """CAPC on pair batches; the network, ``represent`` and ``representation_dim`` are
    APC's."""

    name = "capc"
    Config = CAPCConfig
    batch_kind = "pairs"
    level = "frame"

    def loss(self, batch: PairBatch) -> dict[str, torch.Tensor]:
        pred = self.net(batch.x)  # (B, T, D): predictions from the input token
        return {"loss": shifted_l1(pred, batch.y, batch.lengths, self.config.shift)}
