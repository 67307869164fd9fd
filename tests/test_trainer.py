"""The trainer on a tiny method with dropout and a fake data pipeline: exact resumption
after a crash (data position, RNG, optimiser and schedule state), checkpoints, non-finite
losses, TensorBoard, gradient clipping, optimiser, AMP off on CPU, seeds, the CLI and the
step script.

The test doubles (:class:`ToyMethod`, :class:`FakeData`, :func:`toy_config`) are imported
by test_checkpoint.py and test_ddp.py too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import yaml
from torch import nn

from conftest import ROOT, sh
from speechssl.data.batch import FrameBatch
from speechssl.errors import InputError, SpeechSSLError
from speechssl.models.base import SSLMethod
from speechssl.train import checkpoint as ckpt
from speechssl.train import trainer
from speechssl.train.config import DataConfig, ExperimentConfig, OptimConfig, TrainConfig
from speechssl.train.distributed import DistInfo
from speechssl.train.schedule import lr_factor

STEPS_PER_EPOCH = 7


class SimulatedCrash(RuntimeError):
    """What the toy method raises at ``ToyMethod.crash_at``: a kill in the middle of a run."""


@dataclass
class ToyConfig:
    hidden: int = 16
    dropout: float = 0.3


class ToyMethod(SSLMethod):
    """Predict the next frame through one hidden layer with dropout (so the RNG matters)."""

    name = "toy"
    Config = ToyConfig
    batch_kind = "frames"
    level = "frame"
    crash_at: ClassVar[int | None] = None     # on_step index that raises SimulatedCrash
    nan_at: ClassVar[int | None] = None       # on_step index whose loss is NaN
    steps_seen: ClassVar[list[int]] = []      # every on_step index, over all instances
    autocast_seen: ClassVar[list[bool]] = []

    def __init__(self, config: ToyConfig, input_dim: int):
        super().__init__(config, input_dim)
        self.enc = nn.Linear(input_dim, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.dec = nn.Linear(config.hidden, input_dim)
        self.step = 0

    def on_step(self, step: int) -> None:
        type(self).steps_seen.append(step)
        if step == type(self).crash_at:
            raise SimulatedCrash(f"simulated crash at step index {step}")
        self.step = step

    def loss(self, batch: FrameBatch) -> dict[str, torch.Tensor]:
        type(self).autocast_seen.append(torch.is_autocast_enabled("cpu")
                                        or torch.is_autocast_enabled("cuda"))
        h = self.drop(torch.tanh(self.enc(batch.feats[:, :-1])))          # (B, T-1, H)
        pred = self.dec(h)                                                # (B, T-1, D)
        t = torch.arange(batch.feats.shape[1] - 1, device=batch.feats.device)
        mask = (t[None, :] < (batch.lengths[:, None] - 1)).float()        # (B, T-1)
        mse = (((pred.float() - batch.feats[:, 1:]) ** 2).mean(-1) * mask).sum() / mask.sum()
        reg = 1e-3 * h.float().pow(2).mean()
        loss = mse + reg
        if self.step == type(self).nan_at:
            loss = loss * float("nan")
        return {"loss": loss, "mse": mse, "reg": reg}

    def represent(self, feats, lengths, layer=None):
        return torch.tanh(self.enc(feats))

    def representation_dim(self, layer=None) -> int:
        return self.config.hidden


class FakeData:
    """The TrainingData contract: batches a pure function of (seed, epoch, index, rank)."""

    input_dim = 6
    num_speakers = 3
    per_epoch = STEPS_PER_EPOCH
    short_by = 0                                 # give fewer batches than num_batches says
    draws_global_rng = False                     # as a DataLoader does when its iterator is made

    def __init__(self, config: ExperimentConfig, data_dir, batch_kind: str, rank: int = 0,
                 world_size: int = 1):
        assert batch_kind == "frames"
        self.seed, self.rank, self.world_size = config.train.seed, rank, world_size

    def num_batches(self, epoch: int) -> int:
        return self.per_epoch

    def batch(self, epoch: int, index: int) -> FrameBatch:
        g = torch.Generator().manual_seed(
            ((self.seed * 1009 + epoch) * 1013 + index) * 1019 + self.rank)
        lengths = torch.randint(5, 13, (4,), generator=g)
        feats = torch.randn(4, 12, self.input_dim, generator=g)
        feats *= (torch.arange(12)[None, :] < lengths[:, None]).unsqueeze(-1)
        return FrameBatch(feats=feats, lengths=lengths, speakers=torch.zeros(4, dtype=torch.long),
                          keys=[f"e{epoch}-b{index}-{i}" for i in range(4)])

    def batches(self, epoch: int, start: int = 0):
        if self.draws_global_rng:
            torch.empty((), dtype=torch.int64).random_()
        return (self.batch(epoch, index) for index in range(start, self.per_epoch - self.short_by))

    def describe(self) -> str:
        return f"fake data, {self.per_epoch} batches/epoch"


def toy_config(**train) -> ExperimentConfig:
    """Two epochs of 7 steps; checkpoints after steps 3, 6, 7 (epoch end), 9, 12, 14."""
    return ExperimentConfig(
        method="toy", model=ToyConfig(), data=DataConfig(),
        optim=OptimConfig(name="adamw", lr=1e-2, weight_decay=0.01, warmup_steps=2,
                          schedule="cosine", min_lr_ratio=0.1, grad_clip=1.0),
        train=TrainConfig(**{"epochs": 2, "checkpoint_every": 3, "keep_checkpoints": 2,
                             "log_every": 2, "seed": 0, **train}))


def train_toy(config: ExperimentConfig, exp_dir: Path) -> Path:
    return trainer.train(config, "unused-data-dir", exp_dir, "cpu", method_cls=ToyMethod,
                         data_cls=FakeData)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_checkpoint(path)["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), \
            f"{name}: max difference {(a[name] - b[name]).abs().max().item():.3g}"


@pytest.fixture(autouse=True)
def fresh_toy(monkeypatch):
    monkeypatch.setattr(ToyMethod, "steps_seen", [])
    monkeypatch.setattr(ToyMethod, "autocast_seen", [])
    monkeypatch.setattr(ToyMethod, "crash_at", None)
    monkeypatch.setattr(ToyMethod, "nan_at", None)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run of toy_config(): its exp dir."""
    exp = tmp_path_factory.mktemp("reference")
    train_toy(toy_config(), exp)
    return exp


def test_uninterrupted_run_layout(reference):
    final = ckpt.load_checkpoint(reference / "final.pt", method="toy")
    assert (final["step"], final["epoch"], final["batch"]) == (14, 2, 0)
    assert [s for s, _ in ckpt.step_checkpoints(reference)] == [12, 14]  # keep_checkpoints 2
    assert_same_weights(final["model"], weights(reference / "checkpoints" / "step-14.pt"))
    saved = yaml.safe_load((reference / "config.yaml").read_text())
    assert saved == toy_config().to_dict()
    assert not list(reference.rglob("*.tmp"))


def test_on_step_gets_each_step_index_before_the_step(tmp_path):
    train_toy(toy_config(), tmp_path)
    assert ToyMethod.steps_seen == list(range(2 * STEPS_PER_EPOCH))


@pytest.mark.parametrize("crashes,resumed_from", [
    ((4,), [3]),          # mid epoch 1: back to step 3, replays steps 4 and 5
    ((11,), [9]),         # mid epoch 2, after the epoch-end checkpoint at 7
    ((4, 11), [3, 9]),    # killed twice
])
def test_resume_after_a_crash_ends_with_identical_weights(reference, tmp_path, monkeypatch,
                                                          caplog, crashes, resumed_from):
    caplog.set_level(logging.INFO, logger="speechssl.train.trainer")
    for crash in crashes:
        monkeypatch.setattr(ToyMethod, "crash_at", crash)
        with pytest.raises(SimulatedCrash):
            train_toy(toy_config(), tmp_path)
        assert not (tmp_path / "final.pt").exists()
    monkeypatch.setattr(ToyMethod, "crash_at", None)
    ToyMethod.steps_seen.clear()
    train_toy(toy_config(), tmp_path)
    assert ToyMethod.steps_seen[0] == resumed_from[-1]  # the replay starts after the checkpoint
    resumes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Resuming")]
    assert [int(m.split()[3]) for m in resumes] == resumed_from, resumes
    assert_same_weights(weights(tmp_path / "final.pt"), weights(reference / "final.pt"))
    ref, got = (ckpt.load_checkpoint(p / "final.pt") for p in (reference, tmp_path))
    assert got["optimizer"]["state"][0]["exp_avg"].equal(ref["optimizer"]["state"][0]["exp_avg"])
    assert got["scheduler"]["_last_lr"] == ref["scheduler"]["_last_lr"]


def test_resume_is_exact_when_the_data_pipeline_draws_from_the_global_rng(
        reference, tmp_path, monkeypatch):
    monkeypatch.setattr(FakeData, "draws_global_rng", True)
    monkeypatch.setattr(ToyMethod, "crash_at", 4)
    with pytest.raises(SimulatedCrash):
        train_toy(toy_config(), tmp_path)
    monkeypatch.setattr(ToyMethod, "crash_at", None)
    train_toy(toy_config(), tmp_path)
    assert_same_weights(weights(tmp_path / "final.pt"), weights(reference / "final.pt"))


def test_resume_depends_on_the_saved_rng_state(reference, tmp_path, monkeypatch):
    """Guard for the test above: with dropout, a resume that skipped the RNG would differ."""
    monkeypatch.setattr(ToyMethod, "crash_at", 4)
    with pytest.raises(SimulatedCrash):
        train_toy(toy_config(), tmp_path)
    monkeypatch.setattr(ToyMethod, "crash_at", None)
    monkeypatch.setattr(trainer.torch, "set_rng_state", lambda state: None)
    train_toy(toy_config(), tmp_path)
    ref, got = weights(reference / "final.pt"), weights(tmp_path / "final.pt")
    assert not all(torch.equal(ref[k], got[k]) for k in ref)


def test_finished_run_rerun_does_nothing(reference, caplog):
    final = reference / "final.pt"
    before = final.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="speechssl.train.trainer"):
        assert train_toy(toy_config(), reference) == final
    assert "already trained" in caplog.text
    assert ToyMethod.steps_seen == []
    assert final.stat().st_mtime_ns == before


def test_max_steps_stops_mid_epoch_and_can_be_extended(tmp_path, caplog):
    train_toy(toy_config(max_steps=10), tmp_path)
    state = ckpt.load_checkpoint(tmp_path / "final.pt")
    assert (state["step"], state["epoch"], state["batch"]) == (10, 1, 3)
    with caplog.at_level(logging.WARNING):
        train_toy(toy_config(max_steps=12), tmp_path)
    assert "train.max_steps changed from 10 to 12" in caplog.text
    assert ckpt.load_checkpoint(tmp_path / "final.pt")["step"] == 12


def test_resume_refuses_another_config(tmp_path):
    train_toy(toy_config(max_steps=3), tmp_path)
    other = toy_config(max_steps=6)
    other.model.hidden = 8
    with pytest.raises(InputError, match=r"another config \(model.hidden: 16 in the checkpoint"):
        train_toy(other, tmp_path)
    state = ckpt.load_checkpoint(tmp_path / "final.pt")
    with pytest.raises(InputError, match="written by 1 processes; resume it with as many"):
        trainer.check_same_experiment(state, toy_config(), tmp_path, DistInfo(world_size=2))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(ToyMethod, "nan_at", 7)   # the 8th step; checkpoints at 3, 6, 7
    with pytest.raises(SpeechSSLError) as e:
        train_toy(toy_config(), tmp_path)
    message = str(e.value)
    assert "non-finite loss at step 8" in message
    assert "loss=nan" in message and "mse=" in message and "reg=" in message
    assert "step-7.pt" in message
    assert [s for s, _ in ckpt.step_checkpoints(tmp_path)] == [6, 7]
    assert not (tmp_path / "final.pt").exists()
    state = ckpt.load_checkpoint(tmp_path / "checkpoints" / "step-7.pt")
    assert state["step"] == 7 and all(torch.isfinite(v).all() for v in state["model"].values())
    # As the message says: a re-run with a lower learning rate continues from there.
    monkeypatch.setattr(ToyMethod, "nan_at", None)
    lower = toy_config()
    lower.optim.lr = 1e-3
    train_toy(lower, tmp_path)
    assert ToyMethod.steps_seen[-7:] == list(range(7, 14))
    final = ckpt.load_checkpoint(tmp_path / "final.pt")
    group = final["optimizer"]["param_groups"][0]
    assert group["initial_lr"] == 1e-3 and final["scheduler"]["base_lrs"] == [1e-3]
    assert group["lr"] == pytest.approx(1e-3 * lr_factor(14, 2, 14, "cosine", 0.1))


def test_data_that_breaks_its_batch_count_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(FakeData, "short_by", 2)
    with pytest.raises(SpeechSSLError, match="gave 5 batches for epoch 1, but said it has 7"):
        train_toy(toy_config(), tmp_path)


def test_tensorboard_scalars(reference):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(reference / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"loss/loss", "loss/mse", "loss/reg", "lr", "grad_norm", "frames_per_second"}
    assert expected <= tags, tags
    assert [e.step for e in events.Scalars("loss/loss")] == list(range(2, 15, 2))
    config = toy_config().optim
    lr_step_2 = config.lr * lr_factor(1, config.warmup_steps, 14, "cosine", config.min_lr_ratio)
    assert events.Scalars("lr")[0].value == pytest.approx(lr_step_2)
    assert all(e.value > 0 for e in events.Scalars("frames_per_second"))


def _run(tmp_path: Path, **optim) -> trainer.Run:
    config = toy_config()
    config.optim = replace(config.optim, **optim)
    return trainer.build_run(config, "unused", tmp_path, torch.device("cpu"), DistInfo(),
                             ToyMethod, FakeData)


def _grad_norm(module: nn.Module) -> float:
    return torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in module.parameters()])).item()


def test_gradient_clipping_on_the_global_norm(tmp_path):
    batch = FakeData.batch(FakeData(toy_config(), None, "frames"), 0, 0)
    clipped = _run(tmp_path, grad_clip=0.05)
    result = trainer.train_step(clipped, batch)
    assert result.grad_norm.item() > 0.05
    assert _grad_norm(clipped.method) == pytest.approx(0.05, rel=1e-4)
    unclipped = _run(tmp_path, grad_clip=0.0)
    result = trainer.train_step(unclipped, batch)
    assert _grad_norm(unclipped.method) == pytest.approx(result.grad_norm.item(), rel=1e-6)
    assert result.grad_norm.item() > 0.05


def _full_batch(data: FakeData, index: int) -> FrameBatch:
    """A fake batch with every utterance 12 frames long: the toy loss, a mean over frames,
    is then the mean of the halves' losses for two such batches put together."""
    batch = data.batch(0, index)
    feats = torch.randn(batch.feats.shape, generator=torch.Generator().manual_seed(index))
    return replace(batch, feats=feats, lengths=torch.full_like(batch.lengths, 12))


def test_accumulating_two_batches_is_one_step_of_both(tmp_path):
    data = FakeData(toy_config(), None, "frames")
    a, b = _full_batch(data, 0), _full_batch(data, 1)
    both = FrameBatch(feats=torch.cat([a.feats, b.feats]), lengths=torch.cat([a.lengths,
                      b.lengths]), speakers=torch.cat([a.speakers, b.speakers]),
                      keys=a.keys + b.keys)
    runs = []
    for accumulate, batches in ((2, (a, b)), (1, (both,))):
        run = _run(tmp_path, accumulate=accumulate)
        run.method.drop.p = 0.0  # no dropout: the two steps must see the same network
        runs.append((run, trainer.train_step(run, *batches)))
    (split, split_result), (joint, joint_result) = runs
    assert split_result.terms["loss"].item() == pytest.approx(
        joint_result.terms["loss"].item(), rel=1e-6)
    assert split_result.grad_norm.item() == pytest.approx(joint_result.grad_norm.item(),
                                                          rel=1e-5)
    for (name, got), want in zip(split.method.state_dict().items(),
                                 joint.method.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)


def test_accumulation_groups_each_epochs_batches_and_resumes_exactly(tmp_path, monkeypatch):
    config = toy_config()
    config.optim = replace(config.optim, accumulate=2)
    straight = train_toy(config, tmp_path / "straight")
    state = ckpt.load_checkpoint(straight)
    assert (state["step"], state["epoch"], state["batch"]) == (8, 2, 0)  # 7 batches: 2+2+2+1
    assert ToyMethod.steps_seen == list(range(8))
    assert [s for s, _ in ckpt.step_checkpoints(tmp_path / "straight")] == [6, 8]
    monkeypatch.setattr(ToyMethod, "crash_at", 5)
    with pytest.raises(SimulatedCrash):
        train_toy(config, tmp_path / "resumed")
    monkeypatch.setattr(ToyMethod, "crash_at", None)
    train_toy(config, tmp_path / "resumed")
    assert_same_weights(weights(tmp_path / "resumed" / "final.pt"), state["model"])


def test_checkpoints_from_before_accumulation_resume(tmp_path):
    train_toy(toy_config(max_steps=3), tmp_path)
    state = ckpt.load_checkpoint(tmp_path / "final.pt")
    del state["config"]["optim"]["accumulate"]   # as written before the key existed
    trainer.check_same_experiment(state, toy_config(max_steps=6), tmp_path, DistInfo())
    config = toy_config(max_steps=6)
    config.optim = replace(config.optim, accumulate=2)
    with pytest.raises(InputError, match=r"another config \(optim.accumulate: 1 in the"):
        trainer.check_same_experiment(state, config, tmp_path, DistInfo())


def test_optimiser_from_config(tmp_path):
    run = _run(tmp_path, name="adam", betas=(0.8, 0.9), weight_decay=0.5)
    assert type(run.optimizer) is torch.optim.Adam
    group = run.optimizer.param_groups[0]
    assert (group["betas"], group["weight_decay"]) == ((0.8, 0.9), 0.5)
    assert type(_run(tmp_path, name="adamw").optimizer) is torch.optim.AdamW


def test_no_autocast_on_cpu(tmp_path):
    assert trainer.amp_dtype_for(torch.device("cpu"), True) is None
    run = _run(tmp_path)
    assert run.amp_dtype is None and not run.scaler.is_enabled()
    trainer.train_step(run, FakeData(toy_config(), None, "frames").batch(0, 0))
    assert ToyMethod.autocast_seen == [False]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_on_cuda(tmp_path):
    final = trainer.train(toy_config(max_steps=4), "unused", tmp_path, "cuda",
                          method_cls=ToyMethod, data_cls=FakeData)
    assert all(ToyMethod.autocast_seen)
    dtype = trainer.amp_dtype_for(torch.device("cuda"), True)
    scaler = ckpt.load_checkpoint(final)["scaler"]
    assert bool(scaler) == (dtype == torch.float16)


def test_seed_makes_the_initial_weights_reproducible():
    def init(seed: int) -> dict[str, torch.Tensor]:
        config = toy_config(seed=seed)
        return trainer.build_model(config, 6, ToyMethod, torch.device("cpu")).state_dict()
    torch.rand(3)  # whatever the global RNG did before
    assert_same_weights(init(1), init(1))
    assert not torch.equal(init(1)["enc.weight"], init(2)["enc.weight"])


def test_bad_train_settings_are_refused(tmp_path):
    with pytest.raises(InputError, match="train.keep_checkpoints: must be > 0, got 0"):
        train_toy(toy_config(keep_checkpoints=0), tmp_path)
    bad = toy_config()
    bad.data.max_batch_size = -1  # built in code: from_dict's range checks never saw it
    with pytest.raises(InputError, match="data.max_batch_size: must be > 0, got -1"):
        train_toy(bad, tmp_path)


class WiderData(FakeData):
    input_dim = 8


def test_resume_on_data_of_another_dim_says_so(tmp_path):
    """Not PyTorch's "size mismatch for enc.weight" traceback from load_state_dict."""
    train_toy(toy_config(max_steps=3), tmp_path)
    with pytest.raises(InputError, match=rf"{tmp_path}: the checkpoints of this exp dir were "
                       "trained on 6-dim input, but unused-data-dir gives 8-dim input; use a "
                       "new exp dir"):
        trainer.train(toy_config(max_steps=6), "unused-data-dir", tmp_path, "cpu",
                      method_cls=ToyMethod, data_cls=WiderData)


# The CLI and the step script go through the method registry and TrainingData: a plugin
# (sitecustomize.py, imported by Python at start-up) puts the doubles in their place in
# the training process (not in the others, which need not pay for importing torch).
PLUGIN = f"""
import sys
if "speechssl.bin.train_ssl" in sys.orig_argv:
    sys.path.insert(0, {str(Path(__file__).parent)!r})
    import speechssl.models
    import speechssl.train.trainer
    from test_trainer import FakeData, ToyMethod
    speechssl.models.METHODS["toy"] = ToyMethod
    speechssl.train.trainer._data_class = lambda: FakeData
"""


def _toy_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    raw = toy_config().to_dict()
    path.write_text(yaml.safe_dump({"method": "toy", "optim": raw["optim"],
                                    "train": raw["train"]}))
    return path


def test_cli_saves_the_resolved_config_and_applies_overrides(tmp_path, monkeypatch):
    import speechssl.models
    from speechssl.bin import train_ssl

    monkeypatch.setitem(speechssl.models.METHODS, "toy", ToyMethod)
    monkeypatch.setattr(trainer, "_data_class", lambda: FakeData)
    exp = tmp_path / "exp"
    train_ssl.main(["--device", "cpu", "--override", "train.max_steps=4", "--override",
                    "model.hidden=8", str(_toy_yaml(tmp_path)), "unused", str(exp)])
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["train"]["max_steps"] == 4 and saved["model"] == {"hidden": 8, "dropout": 0.3}
    assert saved["data"] == toy_config().to_dict()["data"]  # defaults filled in
    assert ckpt.load_checkpoint(exp / "final.pt")["step"] == 4
    with pytest.raises(InputError, match="no config section 'trian'"):
        train_ssl.resolve_config(str(_toy_yaml(tmp_path)), ["trian.seed=1"])
    with pytest.raises(InputError,
                       match=r"unknown key '.*toy.yaml \(with --override\): train.sed'"):
        train_ssl.resolve_config(str(_toy_yaml(tmp_path)), ["train.sed=1"])


def test_step_script_trains_resumes_and_logs(tmp_path, data_dir):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "sitecustomize.py").write_text(PLUGIN)
    config, exp = _toy_yaml(tmp_path), tmp_path / "exp"
    pythonpath = os.pathsep.join([str(plugin), str(ROOT / "ssl"),
                                  os.environ.get("PYTHONPATH", "")])
    command = (f"PYTHONPATH={pythonpath} steps/train_ssl.sh --device cpu --num-threads 1 "
               f"--overrides 'train.max_steps=4 train.checkpoint_every=2' "
               f"{config} {data_dir} {exp}")
    proc = sh(command, cwd=ROOT)
    assert "succeeded training" in proc.stderr
    log_text = (exp / "log" / "train.log").read_text()
    assert "re-run the same command to resume" in log_text
    assert ckpt.load_checkpoint(exp / "final.pt")["step"] == 4
    again = sh(command, cwd=ROOT)
    assert "already trained" in (exp / "log" / "train.log").read_text()
    assert (exp / "log" / "train.1.log").is_file() and "succeeded" in again.stderr
    bad = sh(f"steps/train_ssl.sh --nproc two {config} {data_dir} {exp}", cwd=ROOT, check=False)
    assert bad.returncode == 1 and "--nproc must be a positive integer" in bad.stderr
    bad = sh(f"steps/train_ssl.sh --num-threads 0 {config} {data_dir} {exp}", cwd=ROOT,
             check=False)
    assert bad.returncode == 1 and "--num-threads must be a positive integer" in bad.stderr
