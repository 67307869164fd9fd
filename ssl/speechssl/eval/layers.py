"""Several hidden layers in one data dir, and a learnable weighted sum of them.

``steps/extract_ssl.sh --layer all`` writes the stacked format: frame t's vector is the
concatenation of the model's layers at t, ``[h_t(l_1); h_t(l_2); ...; h_t(l_L)]``, L blocks
of the layer width H in network order (the layers the hub API returns as
``hidden_states``).  ``<data>/ssl_model`` records them (``layers=0 1 2 3``,
``layer_dim=128``).  Kaldi reads the result as any feats.scp, and one layer is a column
range: ``select-feats 128-255 scp:feats.scp ark:-`` is layer 1 when H is 128.

The probes and the hybrid DNN take ``--layer-sum true`` on such a dir: S3PRL's Featurizer,
softmax weights over the L blocks, equal at the start and trained with the downstream
model, optionally after a layer norm of each block (no affine parameters), which puts
layers of very different scales on an equal footing before they are weighted.  Without
it, a stacked dir is the layers' concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from speechssl.errors import InputError

LAYOUT_FILE = "ssl_model"


@dataclass(frozen=True)
class StackedLayers:
    """The layers of a stacked data dir, by name, and the width of each block."""

    names: tuple[str, ...]
    layer_dim: int

    @property
    def dim(self) -> int:
        return len(self.names) * self.layer_dim


def read_stacked_layers(data_dir) -> StackedLayers | None:
    """The layout ``extract_ssl.sh --layer all`` recorded; None for other data dirs."""
    path = Path(data_dir) / LAYOUT_FILE
    if not path.is_file():
        return None
    fields = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        fields[key.strip()] = value.strip()
    if fields.get("layer") != "all":
        return None
    try:
        layout = StackedLayers(tuple(fields["layers"].split()), int(fields["layer_dim"]))
    except (KeyError, ValueError):
        raise InputError("layer=all needs 'layers=<names>' and 'layer_dim=<int>' lines",
                         path=path) from None
    if not layout.names or layout.layer_dim < 1:
        raise InputError("no layers or a layer_dim below 1", path=path)
    return layout


def require_stacked_layers(data_dir, dim: int) -> StackedLayers:
    """The stacked layout of a data dir whose vectors have ``dim`` dimensions, for
    ``--layer-sum``; a clear error where it has none or another width."""
    layout = read_stacked_layers(data_dir)
    if layout is None:
        raise InputError("--layer-sum needs the stacked layers of 'steps/extract_ssl.sh "
                         f"--layer all' (layer=all in {LAYOUT_FILE})", path=data_dir)
    if layout.dim != dim:
        raise InputError(f"{len(layout.names)} layers of {layout.layer_dim} make "
                         f"{layout.dim} dimensions, the features have {dim}",
                         path=Path(data_dir) / LAYOUT_FILE)
    return layout


class WeightedLayerSum(nn.Module):
    """``(..., L * H)`` stacked layers -> ``(..., H)``: their softmax-weighted sum."""

    def __init__(self, num_layers: int, layer_dim: int, layer_norm: bool = False):
        super().__init__()
        self.num_layers, self.layer_dim, self.layer_norm = num_layers, layer_dim, layer_norm
        self.weights = nn.Parameter(torch.zeros(num_layers))   # softmax: equal at start

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        layers = stacked.unflatten(-1, (self.num_layers, self.layer_dim))  # (..., L, H)
        if self.layer_norm:
            layers = nn.functional.layer_norm(layers, (self.layer_dim,))
        return torch.einsum("...lh,l->...h", layers, self.weights.softmax(0))

    def normalised_weights(self) -> list[float]:
        """The softmax weights, in layer order."""
        return self.weights.detach().softmax(0).cpu().tolist()


def layer_weights_report(layers: WeightedLayerSum, layout: StackedLayers) -> dict:
    """What results.json records of a trained weighted sum."""
    weights = layers.normalised_weights()
    return {"layer_weights": {name: round(w, 4)
                              for name, w in zip(layout.names, weights, strict=True)},
            "layer_norm": layers.layer_norm}
