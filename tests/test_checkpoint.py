"""Checkpoint files: the layout, safe loading (weights_only: a pickled object is refused
without running it), clear errors for wrong tags, versions, methods and non-checkpoints,
atomic writes, pruning, and load_for_inference rebuilding the model from the checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from speechssl.errors import InputError
from speechssl.train import checkpoint as ckpt
from test_trainer import ToyMethod, toy_config, train_toy


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("exp")
    train_toy(toy_config(max_steps=6), exp)
    return exp


def _state(**changes) -> dict:
    state = {"method": "toy", "config": toy_config().to_dict(), "input_dim": 6,
             "model": {"w": torch.ones(2)}, "optimizer": {}, "scheduler": {}, "scaler": {},
             "step": 3, "epoch": 0, "batch": 3, "world_size": 1,
             "rng": [{"torch": torch.get_rng_state(), "cuda": None}]}
    return {**state, **changes}


def test_layout_and_tags(trained):
    state = ckpt.load_checkpoint(trained / "final.pt", method="toy")
    assert set(state) == set(ckpt.REQUIRED)
    assert (state["format"], state["version"]) == ("speechssl-checkpoint", 1)
    assert state["method"] == "toy" and state["input_dim"] == 6
    assert state["config"] == toy_config(max_steps=6).to_dict()
    assert (state["step"], state["epoch"], state["batch"], state["world_size"]) == (6, 0, 6, 1)
    assert state["rng"][0]["torch"].dtype == torch.uint8 and state["rng"][0]["cuda"] is None
    assert state["scaler"] == {}        # no fp16 AMP on CPU
    assert state["scheduler"]["last_epoch"] == 6
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == ["step-3.pt",
                                                                           "step-6.pt"]


def test_load_for_inference(trained, monkeypatch):
    import speechssl.models

    monkeypatch.setitem(speechssl.models.METHODS, "toy", ToyMethod)
    model, config, input_dim = ckpt.load_for_inference(trained / "final.pt")
    assert isinstance(model, ToyMethod) and not model.training
    assert config == toy_config(max_steps=6) and input_dim == 6
    saved = ckpt.load_checkpoint(trained / "final.pt")["model"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name


def test_weights_that_do_not_fit_the_config(tmp_path, monkeypatch):
    import speechssl.models

    monkeypatch.setitem(speechssl.models.METHODS, "toy", ToyMethod)
    path = tmp_path / "x.pt"
    ckpt.save_checkpoint(_state(), path)
    with pytest.raises(InputError, match=r"x.pt: the weights do not fit a 'toy' model"):
        ckpt.load_for_inference(path)


@pytest.mark.parametrize("changes,message", [
    ({"format": "other-tool"}, "not a speechssl checkpoint \\(format tag 'other-tool'"),
    ({"version": 99}, "checkpoint format version 99 is not supported"),
    ({"method": "apc"}, "checkpoint holds a 'apc' model, but the config's method is 'toy'"),
])
def test_wrong_tag_version_or_method(tmp_path, changes, message):
    path = tmp_path / "bad.pt"
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION, **_state(), **changes}, path)
    with pytest.raises(InputError, match=f"{path}: {message}"):
        ckpt.load_checkpoint(path, method="toy")


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(InputError, match=f"{text}: not a checkpoint: the file is corrupt"):
        ckpt.load_checkpoint(text)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(InputError, match=f"{tensor}: not a speechssl checkpoint \\(format tag"):
        ckpt.load_checkpoint(tensor)
    with pytest.raises(InputError, match=f"{tmp_path / 'none.pt'}: no such checkpoint file"):
        ckpt.load_checkpoint(tmp_path / "none.pt")
    state = _state()
    del state["rng"]
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION, **state}, tensor)
    with pytest.raises(InputError, match="checkpoint lacks 'rng'"):
        ckpt.load_checkpoint(tensor)


class Payload:
    """Unpickling this would create a file: a stand-in for arbitrary code in a checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickled_objects_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "was-run"
    path = tmp_path / "evil.pt"
    torch.save(_state(model={"w": torch.ones(1), "x": Payload(marker)}), path)
    with pytest.raises(InputError, match=f"{path}: refusing to load: the file holds pickled"):
        ckpt.load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty"])
def test_damaged_files_are_called_corrupt_not_a_security_risk(tmp_path, damage):
    """torch reports a damaged file with the same "weights only load failed ... arbitrary
    code execution" error as one holding pickled objects: only the second is a risk."""
    path = tmp_path / "final.pt"
    ckpt.save_checkpoint(_state(), path)
    data = bytearray(path.read_bytes())
    if damage == "random bytes":
        data = bytearray(np.random.default_rng(0).bytes(len(data)))
    elif damage == "truncated":
        data = data[:len(data) // 2]
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"{path}: not a checkpoint: the file is corrupt or "
                                         r"truncated") as e:
        ckpt.load_checkpoint(path)
    assert "could run code" not in str(e.value)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "step-3.pt"
    ckpt.save_checkpoint(_state(), path)
    real_save = torch.save

    def dying_save(obj, f):
        real_save(obj, f)
        raise KeyboardInterrupt  # killed after writing, before the rename
    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(_state(step=99), path)
    assert ckpt.load_checkpoint(path)["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["step-3.pt"]
    with pytest.raises(ValueError, match="lacks rng"):
        ckpt.save_checkpoint({k: v for k, v in _state().items() if k != "rng"}, path)


def test_prune_and_latest(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path) is None
    for step in (10, 2, 30, 4):
        ckpt.save_checkpoint(_state(step=step), ckpt.step_checkpoint_path(tmp_path, step))
    (tmp_path / "checkpoints" / "notes.txt").write_text("not a checkpoint name\n")
    assert [s for s, _ in ckpt.step_checkpoints(tmp_path)] == [2, 4, 10, 30]
    removed = ckpt.prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["step-2.pt", "step-4.pt"]
    assert ckpt.latest_checkpoint(tmp_path).name == "step-30.pt"
    ckpt.save_checkpoint(_state(step=30), tmp_path / ckpt.FINAL)
    assert ckpt.latest_checkpoint(tmp_path).name == ckpt.FINAL
    ckpt.save_checkpoint(_state(step=40), ckpt.step_checkpoint_path(tmp_path, 40))
    assert ckpt.latest_checkpoint(tmp_path).name == "step-40.pt"  # a run extended after final
