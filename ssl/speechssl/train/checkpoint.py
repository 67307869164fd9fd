"""Checkpoints: what a run needs to continue exactly where it stopped, and what extraction
needs to rebuild the model.

A checkpoint is a ``torch.save``'d dict of tensors and plain data only (so it loads with
``weights_only=True``, which never runs code from the file)::

    format      "speechssl-checkpoint"        version   1
    method      the method's name             config    the resolved experiment config (dict)
    input_dim   feature dimension             model     the method's state_dict
    optimizer, scheduler, scaler              their state_dicts (scaler: {} without fp16 AMP)
    step        optimisation steps done
    epoch, batch    the data position: the next batch is batch ``batch`` of epoch ``epoch``
    world_size  processes that trained it     rng       per rank: {"torch": CPU RNG state,
                                                          "cuda": CUDA RNG state or None}
    input_features  optional, for models trained on stored features: how they were computed,
                {"kind": "fbank" or "mfcc", "options": {Kaldi option: value}}
                (:func:`speechssl.train.inputs.recorded_input_features`)

An exp dir holds ``checkpoints/step-<N>.pt`` (the newest ``train.keep_checkpoints`` of
them) and, once training is complete, ``final.pt`` with the same content as the last
checkpoint.  Every file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from speechssl.errors import InputError
from speechssl.fileio import atomic_write

FORMAT = "speechssl-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "method", "config", "input_dim", "model", "optimizer",
            "scheduler", "scaler", "step", "epoch", "batch", "world_size", "rng")
CHECKPOINT_DIR = "checkpoints"
FINAL = "final.pt"
_STEP_NAME = re.compile(r"step-(\d+)\.pt")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` (with ``format`` and ``version`` set) to ``path``, atomically."""
    state = {"format": FORMAT, "version": VERSION, **state}
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks {', '.join(missing)}")
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    method: str | None = None) -> dict[str, Any]:
    """The checkpoint at ``path``, checked: the format tag, the version, the keys, and (if
    given) that it holds a model of ``method``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such checkpoint file", path=path)
    state = load_tensors(path, map_location)
    check_checkpoint(state, path, method)
    return state


def load_tensors(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, never code.

    A failure says which of two things is wrong: the file is damaged (not a complete
    ``torch.save`` archive: random bytes, a truncated copy, an interrupted download), or it
    is intact but pickles other objects, which only ``weights_only=False`` would load.
    torch reports both as the same "weights only load failed" error.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        damage = _archive_damage(path)
        if damage is not None:
            raise InputError(f"not a checkpoint: the file is corrupt or truncated ({damage})",
                             path=path) from None
        if isinstance(e, pickle.UnpicklingError):
            raise InputError("refusing to load: the file holds pickled objects other than "
                             "tensors and plain data, and loading them could run code "
                             f"({_refused_global(e)})", path=path) from None
        raise InputError(f"torch.load failed ({_first_line(e)})", path=path) from None


def _archive_damage(path: Path) -> str | None:
    """What keeps ``path`` from being a complete ``torch.save`` archive (a zip holding
    ``<name>/data.pkl``, a whole pickle), or None if it is one.  Reading data.pkl checks
    its CRC; pickletools only parses the opcodes, it runs nothing."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if not names:
                return "a zip archive without the data.pkl that torch.save writes"
            data = archive.read(min(names, key=len))
    except Exception as e:  # any failure to read it back is damage
        return f"not a complete torch.save archive: {_first_line(e)}"
    try:
        for _ in pickletools.genops(data):
            pass
    except Exception as e:  # a pickle that does not parse is damaged
        return f"its data.pkl does not parse: {_first_line(e)}"
    return None


def _refused_global(error: Exception) -> str:
    """The line of torch's weights_only error that names the refused object."""
    lines = [ln.strip() for ln in str(error).splitlines() if "GLOBAL" in ln.upper()]
    return lines[0] if lines else _first_line(error)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def check_checkpoint(state: Any, path: str | Path, method: str | None = None) -> None:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InputError(f"not a speechssl checkpoint (format tag {found!r}, expected "
                         f"{FORMAT!r})", path=path)
    if state.get("version") != VERSION:
        raise InputError(f"checkpoint format version {state.get('version')!r} is not supported "
                         f"(this speechssl reads version {VERSION})", path=path)
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise InputError(f"checkpoint lacks '{missing[0]}'", path=path)
    if method is not None and state["method"] != method:
        raise InputError(f"checkpoint holds a '{state['method']}' model, but the config's "
                         f"method is '{method}'", path=path)


def step_checkpoint_path(exp_dir: str | Path, step: int) -> Path:
    return Path(exp_dir) / CHECKPOINT_DIR / f"step-{step}.pt"


def step_checkpoints(exp_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the step checkpoints in ``exp_dir``, oldest first."""
    found = []
    directory = Path(exp_dir) / CHECKPOINT_DIR
    if directory.is_dir():
        for path in directory.iterdir():
            match = _STEP_NAME.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def prune_checkpoints(exp_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` step checkpoints; the deleted paths."""
    old = [path for _, path in step_checkpoints(exp_dir)[:-keep]] if keep > 0 else []
    for path in old:
        path.unlink(missing_ok=True)
    return old


def latest_checkpoint(exp_dir: str | Path) -> Path | None:
    """The checkpoint a re-run resumes from: the newest step checkpoint, or ``final.pt``
    when it is at least as new (read from the file names and final.pt's step)."""
    steps = step_checkpoints(exp_dir)
    newest = steps[-1] if steps else None
    final = Path(exp_dir) / FINAL
    if final.is_file():
        final_step = int(load_checkpoint(final)["step"])
        if newest is None or final_step >= newest[0]:
            return final
    return newest[1] if newest else None


def load_for_inference(path: str | Path, device: str | torch.device = "cpu"):
    """``(model, config, input_dim)`` from a checkpoint: the method rebuilt from the
    checkpoint's own config, its weights loaded, in eval mode on ``device``."""
    state = load_checkpoint(path, map_location="cpu")
    model, config = model_from_checkpoint(state, path)
    return model.to(device).eval(), config, int(state["input_dim"])


def model_from_checkpoint(state: dict[str, Any], path: str | Path):
    """``(model, config)`` from a loaded checkpoint: the method rebuilt from its config,
    with its weights (``path`` is for error messages)."""
    from speechssl.models import method_class
    from speechssl.train.config import experiment_config

    config = experiment_config(state["config"], f"{path}: config")
    check_checkpoint(state, path, config.method)
    model = method_class(config.method)(config.model, int(state["input_dim"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise InputError(f"the weights do not fit a '{config.method}' model built from the "
                         f"checkpoint's config: {' '.join(str(e).split())[:300]}",
                         path=path) from None
    return model, config
