"""The S3PRL masked-reconstruction Transformers (Mockingjay, TERA, Audio ALBERT): the masking
rules against their statement (span counts, 80/10/10 once per utterance, frequency bands,
noise), the loss positions, weight sharing, the position encoding against its formula,
padding independence, learning, and the configs.

Small models throughout, in eval mode where outputs are compared exactly (dropout off); the
padded frames hold noise so that anything reading them would change.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT
from speechssl.errors import InputError
from speechssl.models import METHODS
from speechssl.models.masking import KEEP, NONE, RANDOM, ZERO, apply_plan, draw_plan, span_starts
from speechssl.models.mockingjay import (
    AudioALBERTConfig,
    MockingjayConfig,
    TERAConfig,
    masked_l1,
)
from speechssl.models.transformer import sinusoidal_encoding
from speechssl.train.config import load_config
from speechssl.typed_config import from_dict, to_dict
from test_models_frame import (  # noqa: F401 (_few_threads: an autouse fixture)
    _few_threads,
    frame_batch,
    pad,
    training_losses,
    utterances,
)

DIM = 6
NAMES = ("mockingjay", "tera", "albert")
SMALL = {"num_layers": 3, "hidden": 16, "heads": 2, "ffn": 24}


def small(name: str, dim: int = DIM, **overrides):
    cls = METHODS[name]
    torch.manual_seed(0)
    return cls(from_dict(cls.Config, {**SMALL, **overrides}, "model"), dim)


def plan_of(lengths: list[int], max_len: int, dim: int = DIM, proportion: float = 0.15,
            max_band: float = 0.0, noise_prob: float = 0.0):
    return draw_plan(torch.tensor(lengths), max_len, dim, proportion, 7, max_band, noise_prob)


def runs(row: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a bool vector."""
    edges = np.diff(np.concatenate([[0], row.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


# ---------------------------------------------------------------- time masking

@pytest.mark.parametrize("length", [6, 7, 8, 23, 24, 46, 47, 70, 100, 333, 1500])
def test_span_starts_count_and_range(length):
    want = min(round(length * 0.15 / 7), max(length - 6, 0))
    for _ in range(20):
        starts = span_starts(length, 0.15, 7).numpy()
        assert len(starts) == want, (length, starts)
        assert len(set(starts)) == len(starts), "drawn without replacement"
        assert ((starts >= 0) & (starts + 7 <= length)).all(), (length, starts)


def test_masked_frames_are_spans_of_seven_in_the_valid_frames():
    lengths = [30, 100, 7, 64, 250, 5]
    for seed in range(30):
        torch.manual_seed(seed)
        plan = plan_of(lengths, 260)
        for b, n in enumerate(lengths):
            row = plan.frames[b].numpy()
            count = round(n * 0.15 / 7)
            assert not row[n:].any(), "a padded frame is masked"
            assert row.sum() <= 7 * count and all(r >= 7 for r in runs(row)), (n, runs(row))
            assert (plan.actions[b] == NONE) == (count == 0)
        # The same draws give the union of the spans from span_starts.
        torch.manual_seed(seed)
        starts = span_starts(lengths[0], 0.15, 7)
        want = np.zeros(260, bool)
        for s in starts.tolist():
            want[s:s + 7] = True
        np.testing.assert_array_equal(plan.frames[0].numpy(), want)


def test_zero_random_keep_is_80_10_10_once_per_utterance():
    torch.manual_seed(1)
    lengths = [60] * 100
    seqs = utterances(lengths, seed=3)
    feats = pad(seqs, 64)
    counts = {ZERO: 0, RANDOM: 0, KEEP: 0}
    for _ in range(30):  # 3000 utterances
        plan = plan_of(lengths, 64)
        inputs, _ = apply_plan(feats, torch.tensor(lengths), plan, 0.2)
        for b, n in enumerate(lengths):
            action, masked = int(plan.actions[b]), plan.frames[b, :n].numpy()
            counts[action] += 1
            got, orig = inputs[b, :n].numpy(), feats[b, :n].numpy()
            np.testing.assert_array_equal(got[~masked], orig[~masked])  # unmasked: as they are
            if action == ZERO:
                assert (got[masked] == 0).all()
            elif action == KEEP:
                np.testing.assert_array_equal(got, orig)
            else:  # every masked frame is one of the utterance's own frames
                same = (got[masked][:, None, :] == orig[None, :, :]).all(-1)  # (M, n)
                assert same.any(-1).all()
                assert not (got[masked] == 0).all(-1).any()
    total = sum(counts.values())
    shares = [counts[a] / total for a in (ZERO, RANDOM, KEEP)]
    assert shares == pytest.approx([0.8, 0.1, 0.1], abs=0.025), shares


def test_random_replacement_copies_whole_spans():
    torch.manual_seed(0)
    n = 200
    feats = torch.arange(n, dtype=torch.float32).view(1, n, 1).repeat(1, 1, DIM)  # frame id
    for _ in range(200):
        plan = plan_of([n], n)
        if plan.actions[0] != RANDOM:
            continue
        inputs, _ = apply_plan(feats, torch.tensor([n]), plan, 0.2)
        ids = inputs[0, :, 0].long().numpy()
        masked = plan.frames[0].numpy()
        # Within a masked run the copied frame ids are consecutive, span by span.
        steps = np.diff(ids)[masked[1:] & masked[:-1]]
        assert (steps == 1).mean() > 0.7
        return
    pytest.fail("no utterance drew the random replacement")


# ---------------------------------------------------------------- the loss

def test_masked_l1_reads_only_the_masked_positions():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 9, DIM, generator=gen), torch.randn(2, 9, DIM, generator=gen)
    positions = torch.zeros(2, 9, DIM, dtype=torch.bool)
    positions[0, 2:5] = True
    positions[1, :, 1:3] = True
    loss = masked_l1(pred, target, positions)
    assert loss.item() == pytest.approx((pred - target).abs()[positions].mean().item())
    changed = target.clone()
    changed[~positions] += 100.0
    assert masked_l1(pred, changed, positions).item() == pytest.approx(loss.item())
    changed = target.clone()
    changed[0, 3, 0] += 1.0
    assert masked_l1(pred, changed, positions).item() != pytest.approx(loss.item())
    assert masked_l1(pred, target, torch.zeros_like(positions)).item() == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_the_l1_of_the_reconstruction_at_the_altered_positions(name):
    model = small(name, noise_prob=0.5).eval()
    lengths = [40, 25, 33]
    batch = frame_batch(utterances(lengths), 44, [0, 1, 2])
    torch.manual_seed(4)
    got = model.loss(batch)["loss"]
    torch.manual_seed(4)
    inputs, positions = model.corrupt(batch.feats, batch.lengths)
    with torch.no_grad():
        pred = model.head(model.encoder(inputs, batch.lengths)[-1])
    pred.requires_grad_(True)
    want = (pred - batch.feats).abs()[positions].mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    want.backward()
    read = pred.grad.abs() > 0  # what the loss reads
    assert torch.equal(read, positions) and positions.any()
    assert not positions[:, 40:].any() and not positions[1, 25:].any(), "padding counts"


@pytest.mark.parametrize("name", NAMES)
def test_loss_ignores_padding(name):
    model = small(name, noise_prob=1.0).eval()
    seqs = utterances([30, 12, 21])
    losses = []
    for max_len in (30, 47):
        torch.manual_seed(5)
        with torch.no_grad():
            losses.append(model.loss(frame_batch(seqs, max_len, [0, 0, 1]))["loss"].item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5), losses


# ---------------------------------------------------------------- TERA's alterations

def test_frequency_band_width_bounds_zeroed_and_in_the_loss():
    dim, lengths = 40, [20, 13]
    feats = pad(utterances(lengths, dim=dim), 24) + 3.0  # no zeros of their own
    widths = []
    for seed in range(400):
        torch.manual_seed(seed)
        plan = plan_of(lengths, 24, dim=dim, proportion=0.0, max_band=0.2)
        inputs, positions = apply_plan(feats, torch.tensor(lengths), plan, 0.2)
        for b, n in enumerate(lengths):
            band = plan.bands[b].numpy()
            width = int(band.sum())
            widths.append(width)
            assert runs(band) in ([], [width]), "one contiguous band"
            assert (inputs[b, :n][:, band] == 0).all() and (inputs[b, :n][:, ~band] != 0).all()
            assert torch.equal(positions[b, :n], plan.bands[b].expand(n, dim))
            assert not positions[b, n:].any()
    assert set(widths) == set(range(int(0.2 * dim) + 1)), sorted(set(widths))
    counts = np.bincount(widths)
    assert counts.min() > 0.5 * counts.mean(), counts  # about uniform over 0..8


def test_magnitude_noise_with_its_probability_on_valid_frames():
    lengths = [400, 170]
    noisy = 0
    for seed in range(2000):  # one draw per batch
        torch.manual_seed(seed)
        noisy += plan_of(lengths, 400, proportion=0.0, noise_prob=0.15).noise
    assert noisy / 2000 == pytest.approx(0.15, abs=0.025)
    assert not plan_of(lengths, 400, noise_prob=0.0).noise
    feats = pad(utterances(lengths), 400)
    plan = plan_of(lengths, 400, proportion=0.0, noise_prob=1.0)
    inputs, positions = apply_plan(feats, torch.tensor(lengths), plan, 0.2)
    assert (inputs - feats)[:, :170].std().item() == pytest.approx(0.2, rel=0.05)
    assert torch.equal(inputs[1, 170:], feats[1, 170:]), "padding gets no noise"
    assert not positions.any(), "noise alone adds no loss positions"


# ---------------------------------------------------------------- the network

def test_sinusoidal_encoding_equals_the_formula():
    for length, dim in ((50, 16), (7, 9)):
        want = np.zeros((length, dim))
        for p in range(length):
            for j in range(dim):
                angle = p / 10000 ** (2 * (j // 2) / dim)
                want[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
        got = sinusoidal_encoding(length, dim).numpy()
        np.testing.assert_allclose(got, want, atol=1e-6)


def _layer_parameters(hidden: int, ffn: int) -> int:
    """One post-LN layer: Q, K, V and output projections, two LayerNorms, the FFN."""
    return 4 * (hidden * hidden + hidden) + 2 * 2 * hidden + (hidden * ffn + ffn) \
        + (ffn * hidden + hidden)


def test_albert_has_one_layer_applied_three_times():
    def count(model):
        return sum(p.numel() for p in model.parameters())

    mockingjay, albert = small("mockingjay"), small("albert")
    assert count(mockingjay) - count(albert) == 2 * _layer_parameters(16, 24)
    assert len(albert.encoder.layers) == 1 and len(mockingjay.encoder.layers) == 3
    assert albert.encoder.layer(1) is albert.encoder.layer(2) is albert.encoder.layer(3)
    albert.eval()
    feats, lengths = pad(utterances([20, 14]), 20), torch.tensor([20, 14])
    padding = torch.arange(20)[None, :] >= lengths[:, None]
    with torch.no_grad():
        states = albert.encoder(feats, lengths)
        h = albert.encoder.embed(feats)
        for k in (1, 2, 3):
            h = albert.encoder.layers[0](h, padding)
            torch.testing.assert_close(states[k], h, rtol=0, atol=0)
    full = METHODS["mockingjay"](MockingjayConfig(), 80)
    assert count(full) - count(METHODS["albert"](AudioALBERTConfig(), 80)) \
        == 2 * _layer_parameters(768, 3072)


@pytest.mark.parametrize("name", NAMES)
def test_represent_does_not_depend_on_padding_or_the_batch(name):
    model = small(name).eval()
    lengths = [37, 5, 64, 9]
    seqs = utterances(lengths)
    with torch.no_grad():
        together = {k: model.represent(pad(seqs, 70), torch.tensor(lengths), layer=k)
                    for k in model.hidden_layers()}
        for b, seq in enumerate(seqs):
            for k, states in together.items():
                alone = model.represent(seq.unsqueeze(0), torch.tensor([len(seq)]), layer=k)
                torch.testing.assert_close(states[b, :len(seq)], alone[0], rtol=1e-5,
                                           atol=1e-5, msg=f"utterance {b}, layer {k}")


def test_layers_and_their_widths():
    model = small("tera").eval()
    feats, lengths = pad(utterances([12, 9]), 12), torch.tensor([12, 9])
    assert model.hidden_layers() == [0, 1, 2, 3]
    with torch.no_grad():
        default = model.represent(feats, lengths)
        assert default.shape == (2, 12, 16) and model.representation_dim() == 16
        assert torch.equal(default, model.represent(feats, lengths, layer=3))
        assert torch.equal(model.represent(feats, lengths, layer=0), model.encoder.embed(feats))
    for bad in (-1, 4):
        with pytest.raises(ValueError, match="layer must be 0..3"):
            model.represent(feats, lengths, layer=bad)
    assert model.level == "frame" and model.batch_kind == "frames"


@pytest.mark.parametrize("name", NAMES)
def test_a_short_training_lowers_the_loss(name):
    model = small(name, hidden=32, heads=4, ffn=64, dropout=0.0, attention_dropout=0.0).train()
    batch = frame_batch(utterances([48, 40, 44, 48]), 48, [0, 0, 1, 1])
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = training_losses(model, batch, optimiser, 40)
    first, last = np.mean(history[:5]), np.mean(history[-5:])
    assert last < 0.6 * first, f"{name}: {history[:5]} -> {history[-5:]}"


# ---------------------------------------------------------------- configs

@pytest.mark.parametrize("config_cls", [MockingjayConfig, TERAConfig, AudioALBERTConfig])
def test_unknown_config_keys_and_bad_values_are_errors(config_cls):
    with pytest.raises(InputError, match=r"unknown key 'model.hiden'; valid keys: .*hidden"):
        from_dict(config_cls, {"hiden": 64}, "model")
    with pytest.raises(InputError, match="must be a multiple of heads"):
        from_dict(config_cls, {"hidden": 64, "heads": 3}, "model")
    with pytest.raises(InputError, match="freq_mask: must be in"):
        from_dict(config_cls, {"freq_mask": 1.0}, "model")


def test_published_defaults():
    mockingjay, tera, albert = MockingjayConfig(), TERAConfig(), AudioALBERTConfig()
    network = ("num_layers", "hidden", "heads", "ffn")
    for config in (mockingjay, tera, albert):
        assert [getattr(config, k) for k in network] == [3, 768, 12, 3072]
        assert (config.mask_proportion, config.mask_span) == (0.15, 7)
    assert (mockingjay.dropout, mockingjay.freq_mask, mockingjay.noise_prob) == (0.1, 0, 0)
    assert not mockingjay.share_layers and albert.share_layers
    assert (tera.dropout, tera.attention_dropout) == (0.3, 0.3)
    assert (tera.freq_mask, tera.noise_prob, tera.noise_std) == (0.2, 0.15, 0.2)
    assert to_dict(albert) == {**to_dict(mockingjay), "share_layers": True}


@pytest.mark.parametrize("name", NAMES)
def test_recipe_configs(name):
    """The LibriSpeech recipe trains the published settings; egs/mini's config loads with
    the method's masking as published and S3PRL's 7% warm-up."""
    def load(path):
        return yaml.safe_load(path.read_text())

    published = ROOT / "egs" / "mini" / "conf" / "published" / f"{name}.yaml"
    assert load(ROOT / "egs" / "librispeech" / "conf" / f"{name}.yaml") == load(published)
    mini = load_config(ROOT / "egs" / "mini" / "conf" / f"{name}.yaml")
    default = METHODS[name].Config()
    for key in ("mask_proportion", "mask_span", "freq_mask", "noise_prob", "share_layers"):
        assert getattr(mini.model, key) == getattr(default, key), key
    assert mini.optim.warmup_steps == round(0.07 * mini.train.max_steps)
    optim = load_config(published).optim
    assert (optim.name, optim.lr, optim.grad_clip) == ("adamw", 2e-4, 5.0)
    assert optim.warmup_steps == round(0.07 * load_config(published).train.max_steps)
