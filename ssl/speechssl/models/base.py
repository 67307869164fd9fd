"""The one interface every self-supervised method implements.

The trainer, the extractor and the evaluators know only this interface.  A method is one
module with one :class:`SSLMethod` subclass and one config dataclass holding the published
hyperparameters as defaults; adding a method is adding that file and a line in
``speechssl.models.METHODS``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class SSLMethod(nn.Module):
    """Base class of the methods.

    Class attributes a method sets:

    - ``name``: its key in ``speechssl.models.METHODS`` and in YAML (``method: apc``).
    - ``Config``: a dataclass of its model hyperparameters (the YAML ``model:`` section).
    - ``batch_kind``: which batches it trains on: ``"frames"`` (:class:`FrameBatch`),
      ``"pairs"`` (:class:`PairBatch`) or ``"views"`` (:class:`ViewBatch`).
    - ``level``: ``"frame"`` (a vector every 10 ms) or ``"utterance"`` (one embedding).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    batch_kind: ClassVar[str]
    level: ClassVar[str]

    def __init__(self, config: Any, input_dim: int):
        super().__init__()
        self.config = config
        self.input_dim = input_dim

    def loss(self, batch: Any) -> dict[str, torch.Tensor]:
        """Named loss terms for one batch; ``"loss"`` is the total that is minimised.

        Terms other than ``"loss"`` are logged (detached by the trainer)."""
        raise NotImplementedError

    def represent(self, feats: torch.Tensor, lengths: torch.Tensor,
                  layer: int | None = None) -> torch.Tensor:
        """The representation of padded inputs ``(B, T, D)`` with ``lengths`` ``(B,)``:
        ``(B, T, H)`` for frame-level methods (same T: one vector per input frame),
        ``(B, H)`` for utterance-level ones.  ``layer`` picks a hidden layer where a
        method has several (None: the method's published choice).  An utterance's output
        must not depend on the padding or on the other utterances: extraction batches
        them (tests/test_extract_batching.py checks every method)."""
        raise NotImplementedError

    def represent_layers(self, feats: torch.Tensor, lengths: torch.Tensor,
                         layers: list[int | None]) -> list[torch.Tensor]:
        """:meth:`represent` of each of ``layers``; methods whose layers come from one
        pass override it to run the network once."""
        return [self.represent(feats, lengths, layer=k) for k in layers]

    def representation_dim(self, layer: int | None = None) -> int:
        raise NotImplementedError

    def hidden_layers(self) -> list[int]:
        """The ``layer`` values :meth:`represent` accepts, in network order, the default
        (published) one last; empty where a method has one representation only (``layer``
        must then be None)."""
        return []

    def on_step(self, step: int) -> None:
        """Called by the trainer before each optimisation step (0-based), for methods
        whose objective changes during training (e.g. the CAE's AE pretraining phase)."""


def same_width_layers(model: SSLMethod) -> list[int | None]:
    """The layers of a frame-level model that have its default representation's width, in
    network order and ending with the default (S3PRL's ``hidden_states``, and what
    ``extract_ssl --layer all`` stacks); [None] where it has one representation only."""
    width = model.representation_dim(None)
    return [k for k in model.hidden_layers() if model.representation_dim(k) == width] or [None]
