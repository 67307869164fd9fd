"""Typed configs from plain data (YAML): one dataclass per component, defaults in one place.

:func:`from_dict` builds a dataclass from a mapping, recursing into nested dataclasses.  A
key the dataclass does not have is an error that names where it is and lists the valid
keys; a value of the wrong type is an error too.  Nothing is silently dropped.

>>> from dataclasses import dataclass
>>> @dataclass
... class Optim:
...     lr: float = 1e-3
...     betas: tuple[float, float] = (0.9, 0.999)
>>> from_dict(Optim, {"lr": 2e-4}, "optim")
Optim(lr=0.0002, betas=(0.9, 0.999))
>>> from_dict(Optim, {"lr": 1, "beta": 0.5}, "optim")
Traceback (most recent call last):
...
speechssl.errors.InputError: unknown key 'optim.beta'; valid keys: betas, lr
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from speechssl.errors import InputError


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats and
    lists for tuples (YAML has neither distinction)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _convert(value, option, where)
            except InputError as e:
                errors.append(e)
        raise InputError(f"'{where}' = {value!r} is not a {tp}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise InputError(f"'{where}' must be a mapping of {_type_name(tp)} keys")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise InputError(f"'{where}' = {value!r} must be a list")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise InputError(f"'{where}' must have {len(args)} elements, got {len(value)}")
            return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in
                         enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        out = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, Mapping):
            raise InputError(f"'{where}' must be a mapping")
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise InputError(f"'{where}' = {value!r} must be true or false")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise InputError(f"'{where}' = {value!r} must be a {_type_name(tp)}")
    return value


def from_dict(cls: type, data: Mapping[str, Any] | None, where: str = "config") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"unknown key '{where}.{unknown[0]}'; valid keys: "
                         f"{', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    values = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise InputError(f"'{where}': {e}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as plain data (tuples as lists), for YAML and checkpoints."""
    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [plain(v) for v in x]
        return x
    return plain(dataclasses.asdict(config))


def read_yaml(path: str | os.PathLike) -> Any:
    """The parsed content of a YAML config file; a missing file or bad YAML is an
    InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such config file", path=path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {e}", path=path) from None
