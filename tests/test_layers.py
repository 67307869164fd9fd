"""Stacked layers and their learnable weighted sum (speechssl.eval.layers): the sum against
a brute-force loop, the layout file's checks, and the hybrid DNN learning to weight the
informative layer of a stacked data dir."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from speechssl.errors import InputError
from speechssl.eval.layers import (
    StackedLayers,
    WeightedLayerSum,
    read_stacked_layers,
    require_stacked_layers,
)


def weighted_sum_loop(stacked: np.ndarray, logits: np.ndarray, num_layers: int,
                      layer_norm: bool) -> np.ndarray:
    """Independent reference: softmax weights, each block (optionally) normalised to zero
    mean and unit variance (eps 1e-5), summed block by block."""
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    dim = stacked.shape[-1] // num_layers
    out = np.zeros(stacked.shape[:-1] + (dim,))
    for layer in range(num_layers):
        block = stacked[..., layer * dim:(layer + 1) * dim].astype(np.float64)
        if layer_norm:
            mean = block.mean(-1, keepdims=True)
            block = (block - mean) / np.sqrt(block.var(-1, keepdims=True) + 1e-5)
        out += weights[layer] * block
    return out


@pytest.mark.parametrize("layer_norm", [False, True])
def test_weighted_sum_against_a_loop(layer_norm):
    rng = np.random.default_rng(0)
    stacked = rng.normal(size=(5, 7, 3 * 4)) * np.repeat([1.0, 10.0, 0.1], 4)
    module = WeightedLayerSum(3, 4, layer_norm)
    # equal weights at the start: the mean of the (normalised) layers
    got = module(torch.tensor(stacked, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, weighted_sum_loop(stacked, np.zeros(3), 3, layer_norm),
                               rtol=1e-5, atol=1e-5)
    logits = np.array([0.5, -1.0, 2.0])
    with torch.no_grad():
        module.weights.copy_(torch.tensor(logits))
    got = module(torch.tensor(stacked, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, weighted_sum_loop(stacked, logits, 3, layer_norm),
                               rtol=1e-5, atol=1e-5)
    assert module.normalised_weights() == pytest.approx(
        list(np.exp(logits) / np.exp(logits).sum()), abs=1e-6)


def test_the_weights_are_learnt():
    module = WeightedLayerSum(2, 3)
    module(torch.ones(4, 6)).sum().backward()
    assert module.weights.grad is not None and module.weights.grad.shape == (2,)


def write_layout(data, text):
    data.mkdir(parents=True, exist_ok=True)
    (data / "ssl_model").write_text(text)
    return data


def test_layout_of_a_stacked_dir(tmp_path):
    data = write_layout(tmp_path / "d", "model=/x/final.pt\nlayer=all\nlevel=frame\n"
                        "dim=12\nlayers=0 1 2\nlayer_dim=4\n")
    assert read_stacked_layers(data) == StackedLayers(("0", "1", "2"), 4)
    assert require_stacked_layers(data, 12).dim == 12


@pytest.mark.parametrize("text,dim,message", [
    (None, 12, "needs the stacked layers of 'steps/extract_ssl.sh --layer all'"),
    ("layer=3\nlevel=frame\ndim=4\n", 4, "needs the stacked layers"),
    ("layer=all\nlayers=0 1 2\nlayer_dim=4\n", 13, "3 layers of 4 make 12 dimensions, "
                                                   "the features have 13"),
    ("layer=all\nlayers=0 1 2\n", 12, "ssl_model: layer=all needs 'layers=<names>'"),
    ("layer=all\nlayers=\nlayer_dim=4\n", 12, "no layers"),
])
def test_bad_layouts_are_refused_clearly(tmp_path, text, dim, message):
    data = tmp_path / "d"
    data.mkdir()
    if text is not None:
        write_layout(data, text)
    with pytest.raises(InputError, match=message):
        require_stacked_layers(data, dim)


# ---------------------------------------------------------------- the probes

def write_stacked_phone_dir(path, num_utts: int, seed: int, layout: bool = True):
    """Utterances of 30 frames, 4 phone classes; layer "1" holds each frame's class mean
    plus noise, layer "0" noise only; speakers differ by an offset of layer "1"."""
    from speechssl.data.ark import ArkScpWriter

    rng = np.random.default_rng(seed)
    means = 3.0 * np.eye(4)
    path.mkdir(parents=True)
    utt2spk, ali = [], []
    with ArkScpWriter(path / "feats.ark", path / "feats.scp") as w:
        for i in range(num_utts):
            spk_index = i * 4 // num_utts
            spk = f"spk{spk_index}"
            utt = f"{spk}-{seed}-{i:03d}"
            labels = rng.integers(0, 4, 30)
            informative = means[labels] + rng.normal(0, 1, (30, 4)) + spk_index
            noise = rng.normal(0, 3, (30, 4))
            w.write(utt, np.concatenate([noise, informative], 1).astype(np.float32))
            utt2spk.append(f"{utt} {spk}\n")
            ali.append(f"{utt} {' '.join(f'p{x}' for x in labels)}\n")
    (path / "utt2spk").write_text("".join(utt2spk))
    (path / "phone_ali").write_text("".join(ali))
    if layout:
        write_layout(path, "layer=all\nlevel=frame\ndim=8\nlayers=0 1\nlayer_dim=4\n")
    return path


@pytest.mark.parametrize("stream", ["false", "true"])
def test_probe_layer_sum_weights_the_informative_layer(tmp_path, stream):
    from speechssl.bin import train_probe

    train = write_stacked_phone_dir(tmp_path / "train", 40, 0)
    test = write_stacked_phone_dir(tmp_path / "test", 16, 1)
    exp = tmp_path / "exp"
    assert train_probe.main(["--task", "phone", "--cmvn", "false", "--delta-order", "0",
                             "--layer-sum", "true", "--stream", stream, "--buffer-frames",
                             "300", str(train), str(test), str(exp)]) == 0
    results = json.loads((exp / "results.json").read_text())
    weights = results["layer_weights"]
    assert sorted(weights) == ["0", "1"] and sum(weights.values()) == pytest.approx(1, abs=1e-3)
    assert weights["1"] > weights["0"], weights
    assert results["accuracy"] > 80 and results["streamed"] == (stream == "true")
    assert results["dim"] == 8 and results["layer_norm"] is False
    saved = torch.load(exp / "probe.pt", weights_only=True)
    assert saved["layer_weights"] == weights and "layers.weights" in saved["state_dict"]


def test_utterance_probe_layer_sum(tmp_path):
    from speechssl.bin import train_probe

    train = write_stacked_phone_dir(tmp_path / "train", 40, 0)
    test = write_stacked_phone_dir(tmp_path / "test", 16, 1)
    exp = tmp_path / "exp"
    assert train_probe.main(["--task", "speaker", "--cmvn", "false", "--delta-order", "0",
                             "--layer-sum", "true", "--layer-norm", "true", str(train),
                             str(test), str(exp)]) == 0
    results = json.loads((exp / "results.json").read_text())
    assert results["input"] == "feats.scp mean-pooled" and results["layer_norm"] is True
    assert sum(results["layer_weights"].values()) == pytest.approx(1, abs=1e-3)


def test_probe_layer_sum_needs_both_dirs_stacked(tmp_path):
    from speechssl.bin import train_probe

    train = write_stacked_phone_dir(tmp_path / "train", 8, 0)
    test = write_stacked_phone_dir(tmp_path / "test", 4, 1, layout=False)
    args = ["--task", "phone", "--cmvn", "false", "--delta-order", "0", "--layer-sum", "true"]
    with pytest.raises(InputError, match="test.*the training dir stacks layers 0 1 of 4"):
        train_probe.main([*args, str(train), str(test), str(tmp_path / "exp")])
    with pytest.raises(InputError, match="test.*--layer-sum needs the stacked layers"):
        train_probe.main([*args, str(test), str(train), str(tmp_path / "exp")])
    with pytest.raises(SystemExit):
        train_probe.main(["--task", "phone", "--cmvn", "false", "--delta-order", "0",
                          "--layer-norm", "true", str(train), str(test), str(tmp_path / "e")])
    assert not (tmp_path / "exp" / "results.json").exists()


# ---------------------------------------------------------------- the hybrid DNN

pytest.importorskip("kaldi_hmm_gmm")


@pytest.fixture(scope="module", name="stacked")
def stacked_fixture(tmp_path_factory):
    """A stacked data dir whose layer "1" carries the pdfs (frames around per-pdf means)
    and layer "0" only noise, with its alignments, lang and graph."""
    from asr_tiny_models import (
        pdf_means,
        tiny_gmm,
        tiny_transition_model,
        write_corpus,
        write_model_dirs,
    )
    from speechssl.data.ark import ArkScpWriter, iter_scp

    root = tmp_path_factory.mktemp("layers")
    tm, _ = tiny_transition_model(3)
    means = pdf_means(tm.num_pdfs, 4)
    dirs = {}
    for name, num_utts, seed in (("train", 30, 0), ("test", 12, 1)):
        plain, alis = write_corpus(root, tm, num_utts, seed, means, name)
        if name == "train":
            ali, lang, graph = write_model_dirs(root, tm, tiny_gmm(tm, 4, means), alis, 3)
        data = root / f"{name}_stacked"
        shutil.copytree(plain, data)
        rng = np.random.default_rng(seed + 10)
        with ArkScpWriter(data / "feats.ark", data / "feats.scp") as w:
            for utt, feats in iter_scp(plain / "feats.scp"):
                noise = rng.normal(0, 3.0, feats.shape).astype(np.float32)
                w.write(utt, np.concatenate([noise, feats], axis=1))
        write_layout(data, "layer=all\nlevel=frame\ndim=8\nlayers=0 1\nlayer_dim=4\n")
        dirs[name] = data
    return {"root": root, "ali": ali, "lang": lang, "graph": graph, **dirs}


def test_hybrid_layer_sum_weights_the_informative_layer(stacked):
    from speechssl.bin import decode, score_wer, train_hybrid

    exp = stacked["root"] / "exp"
    assert train_hybrid.main([
        "--cmvn", "false", "--delta-order", "0", "--left-context", "1", "--right-context", "1",
        "--num-layers", "1", "--hidden-dim", "32", "--max-epochs", "6", "--lr", "0.01",
        "--batch-size", "32", "--layer-sum", "true", str(stacked["train"]),
        str(stacked["ali"]), str(stacked["lang"]), str(exp)]) == 0
    summary = json.loads((exp / "training.json").read_text())
    weights = summary["layer_weights"]
    assert sorted(weights) == ["0", "1"] and sum(weights.values()) == pytest.approx(1, abs=1e-3)
    assert weights["1"] > weights["0"], weights
    out = stacked["root"] / "decode"
    assert decode.main(["--model", str(exp / "final.mdl"), "--nnet", str(exp / "final.pt"),
                        "--class-frame-counts", str(exp / "ali_train_pdf.counts"),
                        "--lmwt-range", "1:2", str(stacked["graph"]), str(stacked["test"]),
                        str(out)]) == 0
    assert score_wer.main([str(stacked["test"]), str(stacked["lang"]), str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["layer_weights"] == {k: round(v, 4) for k, v in weights.items()}


def test_hybrid_layer_sum_needs_a_stacked_dir(stacked, tmp_path):
    from speechssl.bin import train_hybrid

    plain = stacked["root"] / "train"
    with pytest.raises(InputError, match="--layer-sum needs the stacked layers"):
        train_hybrid.main(["--cmvn", "false", "--delta-order", "0", "--layer-sum", "true",
                           str(plain), str(stacked["ali"]), str(stacked["lang"]),
                           str(tmp_path / "exp")])
    assert not (tmp_path / "exp" / "final.pt").exists()
