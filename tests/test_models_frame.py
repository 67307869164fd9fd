"""The frame-level methods (APC, CPC, CAPC, frame CAE): losses against brute-force loops,
padding invariance, learning on a small structured batch, shapes, configs.

Small configs throughout; models run in eval mode where a loss is compared exactly (dropout
off), and the padded frames hold noise so that a loss reading them would change.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from speechssl.data.batch import FrameBatch, PairBatch
from speechssl.errors import InputError
from speechssl.models.apc import APC, APCConfig
from speechssl.models.cae import CAEConfig, FrameCAE
from speechssl.models.capc import CAPC, CAPCConfig
from speechssl.models.cpc import CPC, CPCConfig, negative_pools, sample_negatives
from speechssl.typed_config import from_dict

DIM = 6


@pytest.fixture(autouse=True)
def _few_threads():
    """Other jobs share this machine: keep the tests on 2 threads, seeded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def utterances(lengths: list[int], dim: int = DIM, seed: int = 0) -> list[torch.Tensor]:
    """Structured 'features': per utterance, sinusoids of a random pitch across dims."""
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        t = np.arange(n)[:, None]
        freq = 0.15 + 0.25 * rng.random()
        phase = np.linspace(0, np.pi, dim)[None, :] + rng.random()
        x = np.sin(freq * t + phase) + 0.05 * rng.standard_normal((n, dim))
        out.append(torch.tensor(x, dtype=torch.float32))
    return out


def pad(seqs: list[torch.Tensor], max_len: int, noise: bool = True) -> torch.Tensor:
    """``(B, max_len, D)``; padded frames get large noise (a loss must not read them)."""
    gen = torch.Generator().manual_seed(99)
    out = torch.randn(len(seqs), max_len, seqs[0].shape[1], generator=gen) * 10.0
    if not noise:
        out.zero_()
    for b, s in enumerate(seqs):
        out[b, :len(s)] = s
    return out


def frame_batch(seqs: list[torch.Tensor], max_len: int, speakers: list[int]) -> FrameBatch:
    return FrameBatch(feats=pad(seqs, max_len), lengths=torch.tensor([len(s) for s in seqs]),
                      speakers=torch.tensor(speakers), keys=[f"u{i}" for i in range(len(seqs))])


def pair_batch(xs: list[torch.Tensor], ys: list[torch.Tensor], max_len: int) -> PairBatch:
    return PairBatch(x=pad(xs, max_len), y=pad(ys, max_len),
                     lengths=torch.tensor([len(s) for s in xs]),
                     keys=[f"a{i}~b{i}" for i in range(len(xs))])


def aligned_partner(xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """A 'DTW-aligned other token': a frame-wise, learnable transform of x plus noise."""
    gen = torch.Generator().manual_seed(7)
    return [0.8 * x.roll(1, dims=1) + 0.1 + 0.05 * torch.randn(x.shape, generator=gen)
            for x in xs]


LENGTHS = [9, 12, 5, 11]
SPEAKERS = [0, 0, 1, -1]


# ---------------------------------------------------------------- brute-force references

def l1_reference(pred: torch.Tensor, target: torch.Tensor, lengths: list[int],
                 shift: int) -> float:
    """Mean |target[b, t+n, d] - pred[b, t, d]| over t < len - n and all d, by loops."""
    total, count = 0.0, 0
    for b, n_frames in enumerate(lengths):
        for t in range(n_frames - shift):
            for d in range(pred.shape[2]):
                total += abs(float(target[b, t + shift, d]) - float(pred[b, t, d]))
                count += 1
    return total / count


def mse_reference(pred: torch.Tensor, target: torch.Tensor, lengths: list[int]) -> float:
    total, count = 0.0, 0
    for b, n_frames in enumerate(lengths):
        for t in range(n_frames):
            for d in range(pred.shape[2]):
                total += (float(pred[b, t, d]) - float(target[b, t, d])) ** 2
                count += 1
    return total / count


def infonce_reference(model: CPC, z: torch.Tensor, c: torch.Tensor, lengths: list[int],
                      negatives: torch.Tensor) -> tuple[float, float]:
    """InfoNCE and accuracy by loops over b, t, k, in float64."""
    z64, c64 = z.double(), c.double()
    flat = z64.reshape(-1, z64.shape[-1])
    total, hits, count = 0.0, 0, 0
    for b, n_frames in enumerate(lengths):
        for t in range(n_frames):
            for k, predictor in enumerate(model.predictors, start=1):
                if t + k >= n_frames:
                    continue
                pred = predictor.weight.detach().double() @ c64[b, t]
                scores = [float(z64[b, t + k] @ pred)]
                scores += [float(flat[int(i)] @ pred) for i in negatives[b, t + k]]
                scores = np.array(scores) / math.sqrt(z.shape[-1])
                log_norm = np.log(np.sum(np.exp(scores - scores.max()))) + scores.max()
                total += log_norm - scores[0]
                hits += int(np.argmax(scores) == 0)
                count += 1
    return total / count, hits / count


# ---------------------------------------------------------------- APC and CAPC

def small_apc(cls=APC, **overrides):
    config = (APCConfig if cls is APC else CAPCConfig)(
        **{"num_layers": 2, "hidden": 8, **overrides})
    return cls(config, DIM)


@pytest.mark.parametrize("shift", [1, 3])
def test_apc_loss_is_shifted_l1(shift):
    model = small_apc(shift=shift).eval()
    batch = frame_batch(utterances(LENGTHS), 14, SPEAKERS)
    with torch.no_grad():
        got = model.loss(batch)["loss"].item()
        pred = model.net(batch.feats)
    want = l1_reference(pred, batch.feats, LENGTHS, shift)
    assert got == pytest.approx(want, rel=1e-5), f"loss {got} vs loops {want}"


def test_capc_loss_predicts_the_aligned_token():
    model = small_apc(CAPC).eval()
    assert model.config.shift == 1
    xs = utterances(LENGTHS)
    batch = pair_batch(xs, aligned_partner(xs), 14)
    with torch.no_grad():
        got = model.loss(batch)["loss"].item()
        pred = model.net(batch.x)
    want = l1_reference(pred, batch.y, LENGTHS, 1)
    assert got == pytest.approx(want, rel=1e-5), f"loss {got} vs loops {want}"
    assert got != pytest.approx(l1_reference(pred, batch.x, LENGTHS, 1), rel=1e-3)


def test_apc_residual_and_separate_layers():
    model = small_apc(num_layers=3, residual=True).eval()
    grus = model.net.grus
    for a, b in [(0, 1), (1, 2)]:
        for (name, pa), (_, pb) in zip(grus[a].named_parameters(), grus[b].named_parameters(),
                                       strict=True):
            if pa.shape == pb.shape:
                assert pa is not pb and pa.data_ptr() != pb.data_ptr(), name
                assert not torch.equal(pa, pb), f"layers {a + 1} and {b + 1} share {name}"
    x = pad(utterances(LENGTHS), 14)
    with torch.no_grad():
        h1, h2, h3 = model.net.layers(x)
        assert torch.allclose(h2, grus[1](h1)[0] + h1, atol=1e-6)
        assert torch.allclose(h3, grus[2](h2)[0] + h2, atol=1e-6)
        plain = small_apc(num_layers=3, residual=False).eval()
        g1, g2, _ = plain.net.layers(x)
        assert torch.allclose(g2, plain.net.grus[1](g1)[0], atol=1e-6)


@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_apc_variants_train(residual, dropout):
    model = small_apc(residual=residual, dropout=dropout).train()
    loss = model.loss(frame_batch(utterances(LENGTHS), 14, SPEAKERS))["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


# ---------------------------------------------------------------- CPC

def small_cpc(**overrides):
    config = CPCConfig(**{"enc_hidden": 16, "z_dim": 8, "c_dim": 12, "num_negatives": 5,
                          **overrides})
    return CPC(config, DIM)


@pytest.mark.parametrize("context", ["gru", "lstm"])
def test_cpc_infonce_matches_loops(context):
    model = small_cpc(context=context).eval()
    batch = frame_batch(utterances(LENGTHS), 14, SPEAKERS)
    with torch.no_grad():
        z, c = model.encode(batch.feats)
        torch.manual_seed(3)
        negatives = sample_negatives(batch.lengths, negative_pools(batch.speakers,
                                     "same_speaker"), 14, 5)
        got = model.infonce(z, c, batch.lengths, negatives)
        torch.manual_seed(3)
        via_loss = model.loss(batch)
    want, acc = infonce_reference(model, z, c, LENGTHS, negatives)
    assert got["loss"].item() == pytest.approx(want, rel=1e-5)
    assert got["acc"].item() == pytest.approx(acc, abs=1e-6)
    assert via_loss["loss"].item() == pytest.approx(want, rel=1e-5), "loss() wiring"


def pools_of(speakers: list[int], lengths: list[int], max_len: int) -> list[set[int]]:
    """Valid flat frame ids of each utterance's same-speaker pool (unknown: own only)."""
    pools = []
    for b, spk in enumerate(speakers):
        utts = [u for u, s in enumerate(speakers) if (s == spk and spk >= 0) or u == b]
        pools.append({u * max_len + t for u in utts for t in range(lengths[u])})
    return pools


@pytest.mark.parametrize("mode", ["same_speaker", "batch"])
def test_negatives_follow_the_pool_rule(mode):
    lengths, max_len, draws = torch.tensor(LENGTHS), 14, 3000
    negatives = sample_negatives(lengths, negative_pools(torch.tensor(SPEAKERS), mode),
                                 max_len, draws)
    if mode == "batch":
        everything = set().union(*pools_of([0] * 4, LENGTHS, max_len))
        pools = [everything] * 4
    else:
        pools = pools_of(SPEAKERS, LENGTHS, max_len)
    for b, n_frames in enumerate(LENGTHS):
        for j in range(n_frames):
            target = b * max_len + j
            drawn = negatives[b, j].tolist()
            allowed = pools[b] - {target}
            assert set(drawn) == allowed, f"({b}, {j}): drawn {set(drawn) ^ allowed} differ"
            counts = np.bincount(drawn, minlength=len(LENGTHS) * max_len)[sorted(allowed)]
            expected = draws / len(allowed)
            assert 0.4 * expected < counts.min() and counts.max() < 1.6 * expected, (b, j)


def test_negatives_single_utterance_speaker_uses_own_frames():
    negatives = sample_negatives(torch.tensor([4]), torch.tensor([7]), 6, 200)
    for j in range(4):
        assert set(negatives[0, j].tolist()) == set(range(4)) - {j}


def test_negatives_use_global_rng_and_ignore_padding():
    lengths, pools = torch.tensor(LENGTHS), torch.tensor(SPEAKERS)
    state = torch.get_rng_state()
    first = sample_negatives(lengths, pools, 14, 7)
    torch.set_rng_state(state)
    again = sample_negatives(lengths, pools, 14, 7)
    assert torch.equal(first, again)
    torch.set_rng_state(state)
    wider = sample_negatives(lengths, pools, 20, 7)
    for b, n_frames in enumerate(LENGTHS):  # the same (utterance, frame) at either padding
        assert torch.equal(first[b, :n_frames] // 14, wider[b, :n_frames] // 20)
        assert torch.equal(first[b, :n_frames] % 14, wider[b, :n_frames] % 20)


def test_cpc_representation_layers():
    model = small_cpc().eval()
    feats = pad(utterances(LENGTHS), 14)
    with torch.no_grad():
        z, c = model.encode(feats)
        assert torch.equal(model.represent(feats, torch.tensor(LENGTHS), layer=1), z)
        assert torch.equal(model.represent(feats, torch.tensor(LENGTHS)), c)


# ---------------------------------------------------------------- CAE

def small_cae(**overrides):
    return FrameCAE(CAEConfig(**{"hidden": (10, 10), "bottleneck": 4, "ae_steps": 5,
                                 **overrides}), DIM)


def test_cae_phases_and_mse():
    model = small_cae().eval()
    xs = utterances(LENGTHS)
    batch = pair_batch(xs, aligned_partner(xs), 14)
    with torch.no_grad():
        recon = model.reconstruct(batch.x)
        model.on_step(4)
        ae = model.loss(batch)
        model.on_step(5)
        cae = model.loss(batch)
    assert ae["phase_ae"].item() == 1.0 and cae["phase_ae"].item() == 0.0
    assert ae["loss"].item() == pytest.approx(mse_reference(recon, batch.x, LENGTHS), rel=1e-5)
    assert cae["loss"].item() == pytest.approx(mse_reference(recon, batch.y, LENGTHS),
                                               rel=1e-5)


def test_cae_layers():
    model = small_cae(hidden=(10, 9), bottleneck=4)
    assert isinstance(model.decoder[-1][-1], torch.nn.Linear), "output layer must be linear"
    assert [model.representation_dim(k) for k in (1, 2, 3)] == [10, 9, 4]
    feats = pad(utterances(LENGTHS), 14) * 5.0
    with torch.no_grad():
        bottleneck = model.represent(feats, torch.tensor(LENGTHS))
        assert bottleneck.abs().max() < 1.0  # tanh
        assert torch.equal(model.encode(feats), bottleneck)
        assert torch.equal(model.represent(feats, torch.tensor(LENGTHS), layer=1),
                           model.encoder[0](feats))


# ---------------------------------------------------------------- all methods

def build(method: str, **overrides):
    if method == "cpc":
        return small_cpc(**overrides)
    if method == "cae":
        return small_cae(**overrides)
    return small_apc(CAPC if method == "capc" else APC, **overrides)


def method_batch(model, seqs, max_len):
    if model.batch_kind == "pairs":
        return pair_batch(seqs, aligned_partner(seqs), max_len)
    return frame_batch(seqs, max_len, SPEAKERS)


@pytest.mark.parametrize("method", ["apc", "capc", "cpc", "cae"])
def test_loss_ignores_padding(method):
    model = build(method).eval()
    model.on_step(10**6)
    seqs = utterances(LENGTHS)
    losses = []
    for max_len in (12, 20):
        torch.manual_seed(5)
        with torch.no_grad():
            losses.append(model.loss(method_batch(model, seqs, max_len))["loss"].item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5), losses


@pytest.mark.parametrize("method,layers", [("apc", 2), ("capc", 2), ("cpc", 2), ("cae", 3)])
def test_represent_shapes(method, layers):
    model = build(method).eval()
    feats, lengths = pad(utterances(LENGTHS), 14), torch.tensor(LENGTHS)
    with torch.no_grad():
        for layer in [None, *range(1, layers + 1)]:
            out = model.represent(feats, lengths, layer=layer)
            assert out.shape == (4, 14, model.representation_dim(layer)), (layer, out.shape)
    with pytest.raises(ValueError):
        model.represent(feats, lengths, layer=layers + 1)
    assert model.level == "frame"


LEARN = {"apc": {"hidden": 24}, "capc": {"hidden": 24}, "cae": {"hidden": (32, 32)},
         "cpc": {"enc_hidden": 32, "z_dim": 16, "c_dim": 24, "enc_dropout": 0.0}}


def training_losses(model, batch, optimiser, steps: int) -> list[float]:
    """The loss at each of ``steps`` optimiser steps on one batch."""
    history = []
    for _ in range(steps):
        loss = model.loss(batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(loss.item())
    return history


@pytest.mark.parametrize("method", ["apc", "capc", "cpc", "cae"])
def test_loss_falls(method):
    model = build(method, **LEARN[method]).train()
    batch = method_batch(model, utterances([32, 28, 24, 32]), 32)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.on_step(10**6)  # the CAE's correspondence phase (AE phase: see the next test)
    history = training_losses(model, batch, optimiser, 25)
    assert min(history[-5:]) < 0.7 * history[0], f"{method}: {history[0]} -> {history[-5:]}"


def test_cae_autoencoder_phase_learns():
    model = small_cae(hidden=(32, 32), ae_steps=25).train()
    batch = method_batch(model, utterances([32, 28, 24, 32]), 32)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for step in range(25):
        model.on_step(step)
        out = model.loss(batch)
        assert out["phase_ae"].item() == 1.0
        optimiser.zero_grad()
        out["loss"].backward()
        optimiser.step()
        history.append(out["loss"].item())
    assert min(history[-5:]) < 0.7 * history[0], history


# ---------------------------------------------------------------- configs

@pytest.mark.parametrize("config_cls", [APCConfig, CAPCConfig, CPCConfig, CAEConfig])
def test_unknown_config_key_is_an_error(config_cls):
    with pytest.raises(InputError, match="unknown key"):
        from_dict(config_cls, {"hiden": 3}, "model")


def test_config_values_checked():
    with pytest.raises(InputError):
        from_dict(CPCConfig, {"context": "transformer"}, "model")
    with pytest.raises(InputError):
        from_dict(CPCConfig, {"negatives": "other_speaker"}, "model")
    with pytest.raises(InputError):
        from_dict(APCConfig, {"shift": 0}, "model")
    assert from_dict(CAEConfig, {"hidden": [50, 40]}, "model").hidden == (50, 40)
    assert from_dict(CAPCConfig, {"hidden": 64}, "model") == CAPCConfig(hidden=64, shift=1)


def test_published_defaults():
    assert (APCConfig().num_layers, APCConfig().hidden, APCConfig().shift) == (3, 512, 3)
    cpc = CPCConfig()
    assert (cpc.z_dim, cpc.c_dim, cpc.future_steps, cpc.num_negatives) == (64, 256, 3, 31)
    assert CAPCConfig().shift == 1
    model = CPC(cpc, 80)
    linear = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [512] * 5 + [64]
    dropout_at = [i for i, m in enumerate(model.encoder) if isinstance(m, torch.nn.Dropout)]
    assert dropout_at == [9], "dropout after the third Linear+LayerNorm+ReLU block"
