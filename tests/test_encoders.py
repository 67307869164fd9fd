"""Utterance-level encoders: padding never leaks into an embedding, the building blocks agree
with independent references (torch's own InstanceNorm1d, Conv2d output sizes, plain
mean/std), and names resolve through the ENCODERS dict."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from speechssl.errors import InputError
from speechssl.models.encoders import (
    ENCODERS,
    POOLINGS,
    TDNN,
    StatsPooling,
    TDNNConfig,
    ThinResNet,
    ThinResNetConfig,
    encoder_class,
    instance_norm,
    strided_lengths,
)
from speechssl.typed_config import from_dict

D = 20
SMALL_RESNET = {"channels": [4, 8, 8, 16], "blocks": [1, 2, 1, 1], "embedding_dim": 12}
SMALL_TDNN = {"channels": [16, 16, 16, 16, 24], "embedding_dim": 12}


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics and affine parameters, so that a
    missing mask after one (BN(0) != 0) shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g))


def small_encoder(name: str, pooling: str) -> nn.Module:
    raw = dict(SMALL_RESNET if name == "resnet" else SMALL_TDNN, pooling=pooling)
    cls = ENCODERS[name]
    torch.manual_seed(0)
    model = cls(from_dict(cls.Config, raw), D).double()
    randomise_batchnorm(model)
    return model.eval()


@pytest.mark.parametrize("pooling", sorted(POOLINGS))
@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_padding_does_not_change_embedding(name, pooling):
    model = small_encoder(name, pooling)
    g = torch.Generator().manual_seed(1)
    utt = torch.randn(1, 37, D, generator=g, dtype=torch.float64)   # odd: strided rounding
    other = torch.randn(1, 60, D, generator=g, dtype=torch.float64)
    garbage = 100 * torch.randn(1, 23, D, generator=g, dtype=torch.float64) + 7
    batch = torch.cat([torch.cat([utt, garbage], dim=1), other])          # (2, 60, D)
    with torch.no_grad():
        alone = model(utt, torch.tensor([37]))
        padded = model(batch, torch.tensor([37, 60]))
        other_alone = model(other, torch.tensor([60]))
    for got, want in ((padded[:1], alone), (padded[1:], other_alone)):
        diff = (got - want).abs().max().item()
        assert diff < 1e-9, f"{name}/{pooling}: padded vs alone differ by {diff:.3g}"


def test_padding_test_would_notice_a_leak():
    """Control for the test above: the same garbage inside the length does change it."""
    model = small_encoder("resnet", "sap")
    g = torch.Generator().manual_seed(1)
    utt = torch.randn(1, 37, D, generator=g, dtype=torch.float64)
    garbage = 100 * torch.randn(1, 23, D, generator=g, dtype=torch.float64) + 7
    with torch.no_grad():
        alone = model(utt, torch.tensor([37]))
        longer = model(torch.cat([utt, garbage], dim=1), torch.tensor([38]))
    assert (alone - longer).abs().max() > 1e-3


def test_instance_norm_matches_torch_on_real_frames():
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(2, 30, D, generator=g, dtype=torch.float64) * 3 + 1
    feats[0, 18:] = 1e3                                                     # padding
    got = instance_norm(feats, torch.tensor([18, 30]))
    ref = nn.InstanceNorm1d(D)
    for b, n in enumerate((18, 30)):
        want = ref(feats[b:b + 1, :n].transpose(1, 2)).transpose(1, 2)[0]
        diff = (got[b, :n] - want).abs().max().item()
        assert diff < 1e-9, f"utterance {b}: max diff {diff:.3g}"
    assert torch.all(got[0, 18:] == 0)


def test_stats_pooling_is_mean_and_std_of_real_frames():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 40, generator=g, dtype=torch.float64)             # (B, C, T)
    got = StatsPooling(5)(x, torch.tensor([25, 40]))
    for b, n in enumerate((25, 40)):
        real = x[b, :, :n]
        want = torch.cat([real.mean(-1), real.std(-1, unbiased=False)])
        assert torch.allclose(got[b], want, atol=1e-9), f"utterance {b}"


def test_strided_lengths_match_conv_output_sizes():
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)
    for n in range(1, 20):
        out = conv(torch.zeros(1, 1, 4, n)).shape[-1]
        assert strided_lengths(torch.tensor([n]), 2).item() == out, f"length {n}"


def test_resnet_pools_channels_times_frequency_like_sslsv():
    """sslsv: the pooled vector has n_mels / 8 * 256 = 1280 dims at 40 mels."""
    model = ThinResNet(ThinResNetConfig(), 40)
    assert model.fc.in_features == 1280
    assert model.output_dim == 1024


def test_tdnn_default_is_the_xvector_network():
    model = TDNN(TDNNConfig(), 40)
    convs = [layer[0] for layer in model.layers]
    contexts = [(c.kernel_size[0] - 1) * c.dilation[0] // 2 for c in convs]
    assert contexts == [2, 2, 3, 0, 0]
    assert [c.out_channels for c in convs] == [512, 512, 512, 512, 1500]
    assert model.fc.in_features == 3000 and model.output_dim == 512


def test_unknown_names_list_the_available_ones():
    with pytest.raises(InputError, match="available: resnet, tdnn"):
        encoder_class("ecapa")
    with pytest.raises(InputError, match="unknown pooling 'max'; available: asp, sap, stats"):
        from_dict(TDNNConfig, {"pooling": "max"}, "model.tdnn")
    with pytest.raises(InputError, match="one entry per stage"):
        from_dict(ThinResNetConfig, {"channels": [8, 16]}, "model.resnet")
