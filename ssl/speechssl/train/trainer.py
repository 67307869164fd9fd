"""The training loop shared by every method: optimiser, LR schedule, AMP, gradient clipping,
checkpoints, resumption, TensorBoard, and data parallelism under torchrun.

A run is defined by its config alone.  Steps are global optimisation steps, counted from 1
in logs and checkpoint names (``step-N.pt`` holds the state after N steps); a method's
``on_step`` gets the 0-based index of the step about to be taken.  With
``train.max_steps > 0`` the run is that many steps long and ``train.epochs`` is ignored.
With ``optim.accumulate = k`` a step takes k batches (an epoch's last step what is left) and
minimises the mean of their losses: their gradients, each scaled by 1/k, are summed
(under DDP synchronised once, with the last batch).

Resumption is exact: a checkpoint holds the model, optimiser, schedule and grad-scaler
state, the data position (epoch, next batch) and every rank's RNG state; the data pipeline
draws its randomness from (seed, epoch, batch) alone, and batches are fetched with the
global RNG forked (:func:`isolated_batches`), so the training RNG stream does not depend on
when the data iterator was made.  A run killed at any point and re-run with the same
command thus ends, on CPU, with the same weights, bit for bit, as a run that was never
interrupted (on CUDA up to the non-determinism of its kernels).  A re-run may change only
:data:`RESUMABLE_CHANGES` (and must use as many processes); anything else is refused.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechssl.errors import InputError, SpeechSSLError
from speechssl.train import checkpoint as ckpt
from speechssl.train import distributed as dist
from speechssl.train.config import ExperimentConfig, OptimConfig, TrainConfig, save_config
from speechssl.train.schedule import build_scheduler
from speechssl.typed_config import check_ranges

log = logging.getLogger(__name__)

# Config keys a re-run may change: bookkeeping, the length of the run, and the optimiser
# settings (to continue a diverging run with a lower learning rate, say).
RESUMABLE_CHANGES = ("train.checkpoint_every", "train.keep_checkpoints", "train.log_every",
                     "data.num_workers", "train.epochs", "train.max_steps", "optim.lr",
                     "optim.betas", "optim.weight_decay", "optim.warmup_steps",
                     "optim.schedule", "optim.min_lr_ratio", "optim.grad_clip")
# Config keys added since checkpoints were first written, with the value a checkpoint
# without them was trained with: re-running such a run is still the same experiment.
ADDED_KEYS = {"optim.accumulate": 1}


@dataclass
class Position:
    """Where a run is: optimisation steps done, and the next batch (``batch`` of ``epoch``)."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


@dataclass
class Meter:
    """Sums over the steps since the last log line: frames, grad norm, loss terms."""

    steps: int = 0
    frames: int = 0
    sums: torch.Tensor | None = None           # (1 + num_terms,): grad_norm, terms...
    names: list[str] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    def add(self, terms: dict[str, torch.Tensor], grad_norm: torch.Tensor, frames: int) -> None:
        values = torch.stack([grad_norm.float(), *(v.float() for v in terms.values())])
        self.names = list(terms)
        self.sums = values if self.sums is None else self.sums + values
        self.steps += 1
        self.frames += frames


@dataclass
class Run:
    """Everything a training run holds; built by :func:`build_run`."""

    config: ExperimentConfig
    exp_dir: Path
    device: torch.device
    info: dist.DistInfo
    data: Any                                  # speechssl.train.data.TrainingData
    method: nn.Module                          # the SSLMethod
    module: nn.Module                          # what the loss goes through (DDP or not)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    total_steps: int
    position: Position = field(default_factory=Position)
    meter: Meter = field(default_factory=Meter)
    writer: Any = None                         # TensorBoard SummaryWriter (rank 0)
    progress: Any = None                       # tqdm bar (rank 0, on a terminal)
    lr: float = 0.0                            # the learning rate of the last step
    input_features: dict[str, Any] | None = None  # how stored features were computed


@dataclass
class StepResult:
    terms: dict[str, torch.Tensor]             # detached loss terms
    grad_norm: torch.Tensor                    # global norm before clipping


def train(config: ExperimentConfig, data_dir: str | Path, exp_dir: str | Path,
          device: str | None = None, *, method_cls: type | None = None,
          data_cls: type | None = None) -> Path:
    """Train ``config`` on ``data_dir`` into ``exp_dir`` (resuming from its newest checkpoint
    if there is one) and return the path of the final checkpoint, ``<exp-dir>/final.pt``.

    ``method_cls`` and ``data_cls`` replace the method class from the registry and
    :class:`speechssl.train.data.TrainingData` (tests use small stand-ins).  Under torchrun
    every process calls this and trains its share of the batches.
    """
    exp_dir = Path(exp_dir)
    info = dist.dist_info_from_env()
    dev = dist.resolve_device(device, info)
    dist.quiet_other_ranks(info)
    check_config(config)
    dist.join_process_group(dev, info)
    resume = find_resume_state(config, exp_dir, info)
    final = exp_dir / ckpt.FINAL
    if resume is not None and is_finished(resume_position(resume), config.train) \
            and final.is_file():
        log.info("%s is already trained (step %d): %s. Nothing to do; delete it, or use "
                 "another exp dir, to train again.", exp_dir, resume["step"], final)
        return final
    run = build_run(config, data_dir, exp_dir, dev, info, method_cls, data_cls)
    if resume is not None:
        check_same_input_dim(resume, run.data.input_dim, exp_dir, data_dir)
    start(run, resume)
    try:
        train_loop(run)
    finally:
        close(run)
    write_checkpoint(run, final)
    log.info("Training done after %d steps: %s", run.position.step, final)
    dist.barrier()
    return final


def check_config(config: ExperimentConfig) -> None:
    """The range checks :func:`speechssl.typed_config.from_dict` makes on a config file, for a
    config built in code (tests, notebooks); the dataclasses check the rest themselves."""
    check_ranges(config)


def is_finished(position: Position, train: TrainConfig) -> bool:
    if train.max_steps > 0:
        return position.step >= train.max_steps
    return position.epoch >= train.epochs


def resume_position(state: dict[str, Any]) -> Position:
    return Position(int(state["step"]), int(state["epoch"]), int(state["batch"]))


def find_resume_state(config: ExperimentConfig, exp_dir: Path,
                      info: dist.DistInfo) -> dict[str, Any] | None:
    """The newest checkpoint of ``exp_dir`` (rank 0 picks it), checked against ``config``."""
    path = dist.broadcast_from_main(ckpt.latest_checkpoint(exp_dir) if info.is_main else None)
    if path is None:
        return None
    state = ckpt.load_checkpoint(path, method=config.method)
    check_same_experiment(state, config, path, info)
    return state


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_same_experiment(state: dict[str, Any], config: ExperimentConfig, path: Path,
                          info: dist.DistInfo) -> None:
    """A re-run must train what the checkpoint was training: same config (up to
    :data:`RESUMABLE_CHANGES`), same number of processes."""
    old, new = {**ADDED_KEYS, **_flatten(state["config"])}, _flatten(config.to_dict())
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    fixed = [k for k in changed if k not in RESUMABLE_CHANGES]
    if fixed:
        k = fixed[0]
        raise InputError(f"this exp dir holds a run of another config ({k}: {old.get(k)!r} in "
                         f"the checkpoint, {new.get(k)!r} now); use a new exp dir, or the "
                         "config it was started with", path=path)
    for k in changed if info.is_main else ():
        log.warning("%s changed from %r to %r since %s", k, old.get(k), new.get(k), path)
    if int(state["world_size"]) != info.world_size:
        raise InputError(f"checkpoint written by {state['world_size']} processes; resume it "
                         f"with as many (now {info.world_size}) for the same data order",
                         path=path)


def check_same_input_dim(state: dict[str, Any], input_dim: int, exp_dir: Path,
                         data_dir: str | Path) -> None:
    """Resuming on features of another dimension would fail in ``load_state_dict`` with
    PyTorch's size-mismatch traceback; say what happened instead."""
    trained = int(state["input_dim"])
    if trained != input_dim:
        raise InputError(f"the checkpoints of this exp dir were trained on {trained}-dim "
                         f"input, but {data_dir} gives {input_dim}-dim input; use a new exp "
                         "dir, or the features (and data.delta_order) it was trained on",
                         path=exp_dir)


def _data_class() -> type:
    from speechssl.train.data import TrainingData
    return TrainingData


def _method_class(name: str) -> type:
    from speechssl.models import method_class
    return method_class(name)


def build_model(config: ExperimentConfig, input_dim: int, method_cls: type,
                device: torch.device) -> nn.Module:
    """The method with its initial weights, drawn after ``torch.manual_seed(train.seed)``."""
    torch.manual_seed(config.train.seed)
    return method_cls(config.model, input_dim).to(device)


def training_seed(seed: int, rank: int) -> int:
    """The seed of the RNG during training (dropout, masking...), distinct on each rank."""
    return seed + 7919 * (rank + 1)


def build_optimizer(params, optim: OptimConfig) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if optim.name == "adamw" else torch.optim.Adam
    return cls(params, lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)


def amp_dtype_for(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype: on CUDA bf16 where supported, else fp16; None (no AMP) on CPU."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def total_steps(config: ExperimentConfig, data: Any) -> int:
    if config.train.max_steps > 0:
        return config.train.max_steps
    k = config.optim.accumulate
    return sum(-(-data.num_batches(epoch) // k) for epoch in range(config.train.epochs))


def build_run(config: ExperimentConfig, data_dir: str | Path, exp_dir: Path,
              device: torch.device, info: dist.DistInfo, method_cls: type | None,
              data_cls: type | None) -> Run:
    cls = method_cls or _method_class(config.method)
    data = (data_cls or _data_class())(config, data_dir, cls.batch_kind, rank=info.rank,
                                       world_size=info.world_size)
    method = build_model(config, data.input_dim, cls, device)
    torch.manual_seed(training_seed(config.train.seed, info.rank))
    optimizer = build_optimizer(method.parameters(), config.optim)
    steps = total_steps(config, data)
    amp_dtype = amp_dtype_for(device, config.train.amp)
    return Run(config=config, exp_dir=exp_dir, device=device, info=info, data=data,
               method=method, module=dist.wrap_for_training(method, device),
               optimizer=optimizer, scheduler=build_scheduler(optimizer, config.optim, steps),
               scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
               amp_dtype=amp_dtype, total_steps=steps,
               input_features=input_features_of(config, data_dir, data.input_dim, info))


def input_features_of(config: ExperimentConfig, data_dir: str | Path, input_dim: int,
                      info: dist.DistInfo) -> dict[str, Any] | None:
    """What the checkpoints record of how the stored input features were computed, so that
    :mod:`speechssl.hub` can compute them from audio; a warning where the data dir does
    not say."""
    from speechssl.train.inputs import recorded_input_features

    record = recorded_input_features(config, data_dir, input_dim)
    if record is None and config.data.source == "feats" and info.is_main:
        log.warning("%s has no conf/fbank.conf or conf/mfcc.conf of %d-dim features "
                    "(steps/make_feats.sh writes one): the checkpoints cannot say how the "
                    "input features were computed, and speechssl.hub.load will need the "
                    "training data dir", data_dir, input_dim)
    return record


def restore(run: Run, state: dict[str, Any]) -> None:
    """Load a checkpoint's state into ``run``, RNG and data position included."""
    run.method.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if state["scaler"] and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["scaler"])
    rng = state["rng"][run.info.rank]
    torch.set_rng_state(rng["torch"])
    if run.device.type == "cuda" and rng["cuda"] is not None:
        torch.cuda.set_rng_state(rng["cuda"], run.device)
    run.position = resume_position(state)
    apply_optim_config(run)


def apply_optim_config(run: Run) -> None:
    """The config's optimiser settings over those restored from a checkpoint: the same
    values unless a re-run changed them (see :data:`RESUMABLE_CHANGES`)."""
    optim, scheduler = run.config.optim, run.scheduler
    scheduler.base_lrs = [optim.lr for _ in run.optimizer.param_groups]
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for group in run.optimizer.param_groups:
        group.update(initial_lr=optim.lr, lr=optim.lr * factor, betas=tuple(optim.betas),
                     weight_decay=optim.weight_decay)


def start(run: Run, resume: dict[str, Any] | None) -> None:
    """Restore or announce, save the resolved config, open TensorBoard and the progress bar."""
    if resume is not None:
        restore(run, resume)
        p = run.position
        log.info("Resuming from step %d (epoch %d, batch %d) of %d", p.step, p.epoch + 1,
                 p.batch, run.total_steps)
    else:
        log.info("Training %s from scratch for %d steps", run.config.method, run.total_steps)
    params = sum(p.numel() for p in run.method.parameters())
    log.info("Model: %s, %d parameters, input dim %d; device %s, %d process(es), AMP %s",
             run.config.method, params, run.data.input_dim, run.device, run.info.world_size,
             run.amp_dtype or "off")
    log.info("Data: %s", run.data.describe())
    log.info("Checkpoints every %d steps and after each epoch in %s; if interrupted, re-run "
             "the same command to resume from the newest one",
             run.config.train.checkpoint_every, run.exp_dir / ckpt.CHECKPOINT_DIR)
    if run.info.is_main:
        save_config(run.config, run.exp_dir / "config.yaml")
        run.writer = _summary_writer(run.exp_dir, run.position.step)
        run.progress = _progress_bar(run.total_steps, run.position.step)
    run.meter = Meter()


def _summary_writer(exp_dir: Path, step: int):
    from torch.utils.tensorboard import SummaryWriter

    # purge_step drops the events an interrupted run logged after its last checkpoint.
    return SummaryWriter(str(exp_dir / "tensorboard"), purge_step=step if step > 0 else None)


def _progress_bar(total: int, initial: int):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)


def close(run: Run) -> None:
    if run.writer is not None:
        run.writer.close()
    if run.progress is not None:
        run.progress.close()


def train_loop(run: Run) -> None:
    while not is_finished(run.position, run.config.train):
        train_epoch(run)
    if run.meter.steps:  # the steps since the last log line
        write_log(run)


def train_epoch(run: Run) -> None:
    """The rest of the current epoch (or up to ``max_steps``), from the data position on."""
    pos, train_cfg = run.position, run.config.train
    epoch, num_batches = pos.epoch, run.data.num_batches(pos.epoch)
    if num_batches <= pos.batch:
        raise SpeechSSLError(f"epoch {epoch + 1} has {num_batches} batches, none to train on "
                             f"from batch {pos.batch}")
    group = []  # the batches of the next step
    for batch in isolated_batches(run.data, epoch, pos.batch):
        group.append(batch)
        if len(group) < run.config.optim.accumulate and pos.batch + len(group) < num_batches:
            continue
        frames = sum(b.num_frames for b in group)
        run.method.on_step(pos.step)
        result = train_step(run, *group)
        pos.step, pos.batch, group = pos.step + 1, pos.batch + len(group), []
        if pos.batch >= num_batches:
            pos.epoch, pos.batch = epoch + 1, 0
        record(run, result, frames)
        if pos.step % train_cfg.checkpoint_every == 0 or pos.batch == 0:
            write_step_checkpoint(run)
        if pos.epoch != epoch or is_finished(pos, train_cfg):
            return
    raise SpeechSSLError(f"the data gave {pos.batch} batches for epoch {epoch + 1}, but "
                         f"said it has {num_batches}")


def isolated_batches(data: Any, epoch: int, start: int) -> Iterator[Any]:
    """``data.batches(epoch, start)``, drawn without touching the global (CPU) RNG.

    The training RNG stream (dropout, masks, negatives) must not depend on when the data
    iterator was made: a DataLoader draws its workers' base seed from the global RNG when
    its iterator is created, at the start of an epoch in one run and mid-epoch in a resumed
    one, which would shift every later random draw."""
    with torch.random.fork_rng(devices=[]):
        batches = iter(data.batches(epoch, start=start))
    while True:
        with torch.random.fork_rng(devices=[]):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _autocast(run: Run):
    if run.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=run.device.type, dtype=run.amp_dtype)


def _no_sync(run: Run, sync: bool):
    """DDP's gradient all-reduce only where ``sync``: with the last batch of a step."""
    if sync or not hasattr(run.module, "no_sync"):
        return contextlib.nullcontext()
    return run.module.no_sync()


def accumulate_gradients(run: Run, batches: tuple[Any, ...]) -> dict[str, torch.Tensor]:
    """Backward of the mean loss of ``batches``, one batch at a time; their mean loss terms
    (detached).  Stops on a non-finite loss before any backward of it."""
    sums: dict[str, torch.Tensor] = {}
    for i, batch in enumerate(batches):
        with _no_sync(run, i == len(batches) - 1):
            with _autocast(run):
                terms = run.module(batch.to(run.device, non_blocking=True))
            detached = {name: value.detach().float() for name, value in terms.items()}
            check_finite(run, detached["loss"], "loss", detached)
            run.scaler.scale(terms["loss"] / len(batches)).backward()
        sums = {name: sums.get(name, 0.0) + value for name, value in detached.items()}
    return {name: value / len(batches) for name, value in sums.items()}


def train_step(run: Run, *batches: Any) -> StepResult:
    """One optimisation step on ``batches`` (``optim.accumulate`` of them, or fewer at the
    end of an epoch): losses, backward, clipping of the global gradient norm, optimiser and
    schedule.  Stops on a non-finite loss (or gradient without fp16 AMP, where the scaler
    skips such steps itself) before anything is updated."""
    run.optimizer.zero_grad(set_to_none=True)
    detached = accumulate_gradients(run, batches)
    run.scaler.unscale_(run.optimizer)
    clip = run.config.optim.grad_clip
    grad_norm = nn.utils.clip_grad_norm_(run.method.parameters(),
                                         clip if clip > 0 else float("inf")).detach()
    if not run.scaler.is_enabled():
        check_finite(run, grad_norm, "gradient norm", {"grad_norm": grad_norm, **detached})
    run.lr = run.optimizer.param_groups[0]["lr"]
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return StepResult(detached, grad_norm)


def check_finite(run: Run, value: torch.Tensor, what: str,
                 terms: dict[str, torch.Tensor]) -> None:
    """Stop every rank if ``value`` is not finite on any, naming the step and the terms."""
    bad = not bool(torch.isfinite(value).all())
    if dist.any_rank(bad, run.device):
        shown = ", ".join(f"{k}={v.float().mean().item():.6g}" for k, v in terms.items())
        newest = ckpt.step_checkpoints(run.exp_dir)
        kept = (f"the last good checkpoint is {newest[-1][1]}" if newest
                else "no checkpoint was written yet")
        raise SpeechSSLError(
            f"non-finite {what} at step {run.position.step + 1} ({shown}"
            f"{'' if bad else ' on this rank; not finite on another'}); {kept}. Lower "
            "optim.lr or optim.grad_clip, raise optim.warmup_steps, or check the data, and "
            "re-run: it resumes from there with the new settings.")


def record(run: Run, result: StepResult, frames: int) -> None:
    """Add a step to the meter; every ``log_every`` steps, a log line and TensorBoard."""
    run.meter.add(result.terms, result.grad_norm, frames)
    if run.progress is not None:
        run.progress.update(1)
    if run.position.step % run.config.train.log_every == 0:
        write_log(run)
        run.meter = Meter()


def write_log(run: Run) -> None:
    """Means over the interval and over ranks; frames/s of all ranks together."""
    m = run.meter
    head = torch.tensor([m.frames, m.steps], dtype=torch.float64, device=m.sums.device)
    sums = dist.all_reduce_sum(torch.cat([head, m.sums.double()]))
    frames, steps, grad_norm, *terms = sums.tolist()
    means = {name: value / steps for name, value in zip(m.names, terms, strict=True)}
    fps = frames / max(time.perf_counter() - m.start, 1e-9)
    step, pos = run.position.step, run.position
    epoch = pos.epoch + (pos.batch > 0)  # 1-based epoch of the step just taken
    if run.writer is not None:
        for name, value in means.items():
            run.writer.add_scalar(f"loss/{name}", value, step)
        run.writer.add_scalar("lr", run.lr, step)
        run.writer.add_scalar("grad_norm", grad_norm / steps, step)
        run.writer.add_scalar("frames_per_second", fps, step)
    others = " ".join(f"{k} {v:.4g}" for k, v in means.items() if k != "loss")
    log.info("step %d/%d epoch %d: loss %.4f%s lr %.3g grad_norm %.3g frames/s %.0f", step,
             run.total_steps, epoch, means["loss"],
             f" ({others})" if others else "", run.lr, grad_norm / steps, fps)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def checkpoint_state(run: Run) -> dict[str, Any]:
    """The state to save; a collective under torchrun (it gathers every rank's RNG)."""
    pos = run.position
    return {"method": run.config.method, "config": run.config.to_dict(),
            "input_dim": int(run.data.input_dim), "model": run.method.state_dict(),
            "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(), "step": pos.step, "epoch": pos.epoch,
            "batch": pos.batch, "world_size": run.info.world_size,
            "rng": dist.gather_objects(_rng_state(run.device)),
            **({"input_features": run.input_features} if run.input_features else {})}


def write_checkpoint(run: Run, path: Path) -> None:
    """Every rank calls this; rank 0 writes."""
    state = checkpoint_state(run)
    if run.info.is_main:
        ckpt.save_checkpoint(state, path)


def write_step_checkpoint(run: Run) -> None:
    path = ckpt.step_checkpoint_path(run.exp_dir, run.position.step)
    write_checkpoint(run, path)
    if run.info.is_main:
        removed = ckpt.prune_checkpoints(run.exp_dir, run.config.train.keep_checkpoints)
        log.info("Wrote %s%s", path, f" (removed {len(removed)} older)" if removed else "")
