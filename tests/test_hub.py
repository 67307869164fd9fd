"""speechssl.hub and hubconf.py: waveforms in, the representations extract_ssl writes out.

Every utterance of the data dir here is its own speaker, so extraction's speaker CMVN is
the per-utterance CMVN the API applies, and the features are made with dither 0, which the
API always uses: the API must then give extract_ssl's output for every method."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import ROOT, make_data_dir, sh
from speechssl import hub
from speechssl.bin.extract_ssl import main as extract_ssl
from speechssl.data.ark import iter_scp
from speechssl.data.table import read_table
from speechssl.errors import InputError
from speechssl.features import FbankConfig
from speechssl.models import METHODS, method_class
from speechssl.train import checkpoint as ckpt
from speechssl.train.config import experiment_config
from speechssl.train.inputs import recorded_input_features
from speechssl.train.trainer import train
from test_extract_batching import small_model

FRAME_METHODS = ("apc", "cpc", "capc", "cae", "mockingjay", "tera", "albert")
# egs/mini's feature options, with dither 0.
CONFS = {"fbank": "--sample-frequency=16000\n--num-mel-bins=80\n--dither=0\n",
         "mfcc": "--sample-frequency=16000\n--num-mel-bins=23\n--num-ceps=13\n--low-freq=20\n"
                 "--high-freq=-400\n--dither=0\n"}
MFCC_INPUT = {"source": "feats", "cmvn": True, "norm_vars": True, "delta_order": 2}
# method: (training data, model section, data section); APC is trained, the others keep
# their initial weights.
SETUPS = {
    "apc": ("fbank", {"num_layers": 2, "hidden": 16},
            {"source": "feats", "cmvn": True, "delta_order": 0, "crop_frames": 50,
             "min_frames": 20, "batch_frames": 200, "num_workers": 0}),
    "cpc": ("mfcc", {"enc_hidden": 16, "z_dim": 8, "c_dim": 12, "num_negatives": 5},
            MFCC_INPUT),
    "capc": ("mfcc", {"num_layers": 2, "hidden": 12}, MFCC_INPUT),
    "cae": ("mfcc", {"hidden": [10, 10], "bottleneck": 6},
            {**MFCC_INPUT, "norm_vars": False}),
    "vicreg": ("mfcc", {"encoder": "resnet", "projector_dims": [32, 32, 16],
                        "resnet": {"channels": [4, 4, 8, 8], "blocks": [1, 1, 1, 1],
                                   "embedding_dim": 8}},
               {"source": "wav", "cmvn": True, "fbank": {"num-mel-bins": 40, "dither": 1.0}}),
    **{m: ("mfcc", {"num_layers": 2, "hidden": 16, "heads": 2, "ffn": 24}, MFCC_INPUT)
       for m in ("mockingjay", "tera", "albert")},
}
# hidden_states: every layer of the default representation's width (CPC's z is 8-d, the
# CAE's hidden layers 10-d; the Transformers' input representation and both layers).
NUM_HIDDEN_STATES = {"apc": 2, "cpc": 1, "capc": 2, "cae": 1, "vicreg": 1, "mockingjay": 3,
                     "tera": 3, "albert": 3}


def experiment(method: str, data: Path, exp: Path) -> Path:
    """``exp`` with a final.pt of ``method``: APC trained for 2 steps by the trainer,
    the others with their initial weights, saved by the checkpoint writer."""
    _, model, data_section = SETUPS[method]
    config = experiment_config({"method": method, "model": model, "data": data_section,
                                "train": {"max_steps": 2, "checkpoint_every": 2}})
    if method == "apc":
        train(config, data, exp, "cpu")
        return exp
    torch.manual_seed(0)
    input_dim = 40 if method == "vicreg" else 39
    net = method_class(method)(config.model, input_dim)
    state = {"method": method, "config": config.to_dict(), "input_dim": input_dim,
             "model": net.state_dict(), "optimizer": {}, "scheduler": {}, "scaler": {},
             "step": 0, "epoch": 0, "batch": 0, "world_size": 1,
             "rng": [{"torch": torch.get_rng_state(), "cuda": None}]}
    record = recorded_input_features(config, data, input_dim)
    ckpt.save_checkpoint({**state, **({"input_features": record} if record else {})},
                         exp / ckpt.FINAL)
    return exp


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("hub")
    data = make_data_dir(base, num_speakers=2, utts_per_speaker=3)   # 0.6, 0.7, 0.8 s
    utts = [line.split()[0] for line in (data / "utt2spk").read_text().splitlines()]
    for table in ("utt2spk", "spk2utt"):   # every utterance its own speaker
        (data / table).write_text("".join(f"{u} {u}\n" for u in utts))
    dirs = {}
    for kind, conf in CONFS.items():
        (base / f"{kind}.conf").write_text(conf)
        dirs[kind] = base / "data" / kind
        sh(f"utils/copy_data_dir.sh {data} {dirs[kind]} && steps/make_{kind}.sh --nj 1 "
           f"--{kind}-config {base}/{kind}.conf {dirs[kind]} && "
           f"steps/compute_cmvn_stats.sh {dirs[kind]}", cwd=ROOT)
    wavs = {utt: torch.from_numpy(sf.read(path, dtype="float32")[0])
            for utt, path in read_table(data / "wav.scp").items()}
    exps = {m: experiment(m, dirs[SETUPS[m][0]], base / "exp" / m) for m in METHODS}
    return {"base": base, "dirs": dirs, "utts": utts, "wavs": [wavs[u] for u in utts],
            "exps": exps}


def extracted(setup: dict, method: str, *layer: str) -> dict[str, np.ndarray]:
    """What extract_ssl writes for the method's training data dir (``--layer k``)."""
    data = setup["dirs"][SETUPS[method][0]]
    out = setup["base"] / "extracted" / f"{method}{''.join(layer)}"
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()   # extract_ssl sets its --num-threads
    try:
        extract_ssl([*(("--layer", *layer) if layer else ()), "--device", "cpu",
                     str(setup["exps"][method] / ckpt.FINAL), str(data), str(out / "repr.ark"),
                     str(out / "repr.scp")])
    finally:
        torch.set_num_threads(threads)
    return dict(iter_scp(out / "repr.scp"))


@pytest.mark.parametrize("method", FRAME_METHODS)
def test_hidden_states_equal_what_extract_ssl_writes(setup, method):
    upstream = hub.load(setup["exps"][method])
    out = upstream(setup["wavs"])
    states = out["hidden_states"]
    assert len(states) == NUM_HIDDEN_STATES[method]
    assert out["last_hidden_state"] is states[-1]
    assert len({s.shape for s in states}) == 1
    frames = read_table(setup["dirs"][SETUPS[method][0]] / "utt2num_frames")
    assert states[-1].shape[:2] == (len(setup["utts"]), max(map(int, frames.values())))
    for state, layer in zip(states, upstream.layers, strict=True):
        want = extracted(setup, method, *([] if layer is None else [str(layer)]))
        for i, utt in enumerate(setup["utts"]):
            n = int(frames[utt])
            assert want[utt].shape == (n, state.shape[2])
            np.testing.assert_allclose(state[i, :n].numpy(), want[utt], atol=1e-4, rtol=0)
            assert not state[i, n:].any()   # zeros past the waveform's frames


def test_vicreg_gives_the_embedding_scp_vector_as_one_frame(setup):
    out = hub.load(setup["exps"]["vicreg"])(setup["wavs"])
    want = extracted(setup, "vicreg")
    assert out["last_hidden_state"].shape == (len(setup["utts"]), 1, 8)
    assert len(out["hidden_states"]) == 1
    for i, utt in enumerate(setup["utts"]):
        np.testing.assert_allclose(out["last_hidden_state"][i, 0].numpy(), want[utt],
                                   atol=1e-4, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_a_padded_batch_equals_the_list(setup, method):
    upstream = hub.load(setup["exps"][method])
    wavs = setup["wavs"]
    lengths = torch.tensor([len(w) for w in wavs])
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)   # (B, T)
    listed, batched = upstream(wavs), upstream(padded, lengths)
    for a, b in zip(listed["hidden_states"], batched["hidden_states"], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=0)
    alone = upstream([wavs[0]])["last_hidden_state"]
    np.testing.assert_allclose(alone[0].numpy(),
                               listed["last_hidden_state"][0, :alone.shape[1]].numpy(),
                               atol=1e-5, rtol=0)


def test_the_module_is_frozen_and_frames_are_10_ms(setup):
    upstream = hub.load(setup["exps"]["apc"])
    torch.nn.Sequential(upstream).train()     # a parent in training mode
    assert not any(m.training for m in upstream.modules())
    assert not any(p.requires_grad for p in upstream.parameters())
    assert upstream.get_downsample_rates("hidden_states") == 160
    assert upstream.get_downsample_rates("last_hidden_state") == 160
    out = upstream([setup["wavs"][0].clone().requires_grad_(True)])
    assert not out["last_hidden_state"].requires_grad


def test_checkpoints_record_their_input_features(setup):
    state = ckpt.load_checkpoint(setup["exps"]["apc"] / ckpt.FINAL)
    conf = FbankConfig.from_file(setup["dirs"]["fbank"] / "conf" / "fbank.conf")
    assert state["input_features"] == {"kind": "fbank", "options": conf.to_kaldi_options()}
    vicreg = ckpt.load_checkpoint(setup["exps"]["vicreg"] / ckpt.FINAL)
    assert "input_features" not in vicreg    # its config's data.fbank says


def test_an_older_checkpoint_needs_its_training_data(setup, tmp_path):
    state = ckpt.load_checkpoint(setup["exps"]["apc"] / ckpt.FINAL)
    del state["input_features"]
    old = tmp_path / "old.pt"
    ckpt.save_checkpoint(state, old)
    with pytest.raises(InputError, match=f"{old}: does not record how its input features "
                                         ".* pass training_data="):
        hub.load(old)
    with pytest.raises(InputError, match=f"{tmp_path}: has no conf/fbank.conf"):
        hub.load(old, training_data=tmp_path)
    got = hub.load(old, training_data=setup["dirs"]["fbank"])(setup["wavs"][:2])
    want = hub.load(setup["exps"]["apc"])(setup["wavs"][:2])
    assert torch.equal(got["last_hidden_state"], want["last_hidden_state"])


def hubconf():
    spec = importlib.util.spec_from_file_location("speechssl_hubconf", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_hub_loads_every_method_from_the_checkout(setup):
    entry_points = hubconf()
    assert {f"{m}_local" for m in METHODS} <= set(dir(entry_points))
    assert "torch" in entry_points.dependencies
    wavs = setup["wavs"][:2]
    for method in METHODS:
        model = torch.hub.load(str(ROOT), f"{method}_local", ckpt=setup["exps"][method],
                               source="local")
        want = hub.load(setup["exps"][method])(wavs)["last_hidden_state"]
        assert torch.equal(model(wavs)["last_hidden_state"], want), method
    final = setup["exps"]["apc"] / ckpt.FINAL
    with pytest.raises(InputError, match=f"{final}: holds a 'apc' model, not 'cpc'"):
        torch.hub.load(str(ROOT), "cpc_local", ckpt=final, source="local")


def test_hubconf_makes_the_package_importable_itself(setup, tmp_path):
    """torch.hub.load in a Python where speechssl is not on the path (no PYTHONPATH, the
    editable install's entry taken out), from another directory."""
    code = ("import sys; sys.path = [p for p in sys.path if not p.endswith('/ssl')]; "
            "import torch; "
            f"m = torch.hub.load({str(ROOT)!r}, 'cae_local', ckpt={str(setup['exps']['cae'])!r}, "
            "source='local'); "
            "print(m([torch.zeros(1600)])['last_hidden_state'].shape, "
            "sys.modules['speechssl'].__file__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["torch.Size([1,", "8,", "6])",
                                   str(ROOT / "ssl" / "speechssl" / "__init__.py")]


def test_missing_checkpoints_are_named(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path / 'nothing'}: no such exp dir or "):
        hub.load(tmp_path / "nothing")
    with pytest.raises(InputError, match=f"{tmp_path}: no final.pt in this exp dir"):
        hub.load(tmp_path)


@pytest.mark.parametrize("args,message", [
    (([],), "no waveforms"),
    (([torch.zeros(2, 16000)],), r"wavs\[0\] is a torch.float32 tensor of shape \(2, 16000\)"),
    (([torch.zeros(8000, dtype=torch.int16)],), r"wavs\[0\] is a torch.int16 tensor"),
    ((torch.zeros(16000),), r"shape \(16000,\): pass a list of 1-D waveforms, or a"),
    ((torch.zeros(2, 16000),), r"shape \(2, 16000\): pass a list .* with wav_lengths"),
    ((torch.zeros(2, 16000), [16000]), r"wav_lengths \[16000\] do not fit"),
    ((torch.zeros(2, 16000), [16001, 5]), r"wav_lengths \[16001, 5\] do not fit"),
    (([torch.zeros(16000)], [16000]), "wav_lengths goes with a padded"),
    (([torch.full((800,), float("nan"))],), r"wavs\[0\] holds NaN"),
    (([torch.zeros(16000), torch.zeros(300)],), r"key 'wavs\[1\]': 300 samples are too short"),
])
def test_bad_input_is_refused_clearly(setup, args, message):
    upstream = hub.load(setup["exps"]["cae"])
    with pytest.raises(InputError, match=message):
        upstream(*args)


@pytest.mark.parametrize("method", METHODS)
def test_hidden_layers_end_with_the_default_representation(method):
    model = small_model(method)
    layers = model.hidden_layers()
    assert layers == sorted(layers)
    feats, lengths = torch.randn(2, 30, 6), torch.tensor([30, 17])
    with torch.no_grad():
        default = model.represent(feats, lengths)
        if layers:
            assert torch.equal(model.represent(feats, lengths, layer=layers[-1]), default)
            for k in layers:
                assert model.represent(feats, lengths, layer=k).shape[-1] == \
                    model.representation_dim(k)


@pytest.mark.parametrize("method", FRAME_METHODS)
def test_layer_all_stacks_what_each_layer_extracts(setup, method):
    """``--layer all``: the layers hub returns, concatenated in that order, from one pass
    where the method runs one (APC, CAPC, the Transformers) and per layer elsewhere."""
    stacked = extracted(setup, method, "all")
    layers = hub.load(setup["exps"][method]).layers
    parts = [extracted(setup, method, *([] if k is None else [str(k)])) for k in layers]
    for utt, got in stacked.items():
        want = np.concatenate([p[utt] for p in parts], axis=1)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_layer_all_data_dir_records_its_layers(setup):
    from speechssl.eval.layers import read_stacked_layers

    dest = setup["base"] / "data" / "mockingjay_all"
    sh(f"steps/extract_ssl.sh --nj 1 --device cpu --layer all {setup['exps']['mockingjay']} "
       f"{setup['dirs']['mfcc']} {dest}", cwd=ROOT)
    layout = read_stacked_layers(dest)
    assert layout is not None and layout.names == ("0", "1", "2") and layout.layer_dim == 16
    feats = dict(iter_scp(dest / "feats.scp"))
    assert {f.shape[1] for f in feats.values()} == {layout.dim}
    model_file = (dest / "ssl_model").read_text()
    assert "layer=all\n" in model_file and f"dim={layout.dim}\n" in model_file


def test_layer_all_of_an_utterance_level_method_is_refused(setup, tmp_path):
    with pytest.raises(InputError, match="vicreg gives one utterance-level representation"):
        extract_ssl(["--layer", "all", "--device", "cpu",
                     str(setup["exps"]["vicreg"] / ckpt.FINAL), str(setup["dirs"]["mfcc"]),
                     str(tmp_path / "r.ark"), str(tmp_path / "r.scp")])
