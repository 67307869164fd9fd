"""Batched extraction (bin/extract_ssl.py): every method's ``represent`` gives each
utterance of a padded batch the representation it gets alone (the contract of
:class:`SSLMethod`, which extraction relies on to batch), and the batches keep the data
dir's order within their frame budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechssl.bin.extract_ssl import batches, represent_batch
from speechssl.models import METHODS
from speechssl.typed_config import from_dict

DIM = 6
SMALL = {   # every method, small enough for a unit test
    "apc": {"num_layers": 2, "hidden": 12},
    "capc": {"num_layers": 2, "hidden": 12},
    "cpc": {"enc_hidden": 16, "z_dim": 8, "c_dim": 12, "num_negatives": 5},
    "cae": {"hidden": [10, 10], "bottleneck": 4, "ae_steps": 5},
    "vicreg": {"encoder": "resnet", "projector_dims": [32, 32, 16],
               "resnet": {"channels": [4, 4, 8, 8], "blocks": [1, 1, 1, 1],
                          "embedding_dim": 8}},
    **{m: {"num_layers": 2, "hidden": 16, "heads": 2, "ffn": 24}
       for m in ("mockingjay", "tera", "albert")},
}
LAYERS = {"apc": [None, 1], "capc": [None, 1], "cpc": [None, 1], "cae": [None, 1, 2],
          "vicreg": [None], "mockingjay": [None, 0, 1], "tera": [None, 0, 1],
          "albert": [None, 0, 1]}


def small_model(name: str, **overrides):
    cls = METHODS[name]
    torch.manual_seed(0)
    return cls(from_dict(cls.Config, {**SMALL[name], **overrides}, "model"), DIM).eval()


def utterances(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, DIM)).astype(np.float32) for n in lengths]


def test_every_method_is_covered():
    assert sorted(SMALL) == sorted(LAYERS) == sorted(METHODS)


@pytest.mark.parametrize("name,overrides", [(m, {}) for m in sorted(METHODS)]
                         + [("vicreg", {"encoder": "tdnn", "tdnn": {
                             "channels": [16, 16, 16, 16, 32], "embedding_dim": 8}}),
                            ("cpc", {"context": "lstm"})])
def test_batched_representations_equal_one_by_one(name, overrides):
    model = small_model(name, **overrides)
    feats = utterances([37, 5, 64, 9, 20])
    for layer in LAYERS[name]:
        together = represent_batch(model, feats, layer, "cpu")
        for f, got in zip(feats, together, strict=True):
            alone = represent_batch(model, [f], layer, "cpu")[0]
            want = (len(f), model.representation_dim(layer)) if model.level == "frame" \
                else (model.representation_dim(layer),)
            assert got.shape == alone.shape == want
            np.testing.assert_allclose(got, alone, rtol=1e-5, atol=1e-5)


def test_batches_keep_order_and_budget():
    lengths = [10, 30, 5, 50, 200, 7, 7, 7]
    inputs = [(f"u{i}", np.zeros((n, 2))) for i, n in enumerate(lengths)]
    got = list(batches(iter(inputs), 60))
    assert [u for b in got for u, _ in b] == [u for u, _ in inputs]
    for b in got:
        padded = max(len(f) for _, f in b) * len(b)
        assert padded <= 60 or len(b) == 1
    assert [len(b) for b in got] == [2, 1, 1, 1, 3]   # 200 frames alone, over budget
    assert [len(b) for b in batches(iter(inputs), 1)] == [1] * len(lengths)
