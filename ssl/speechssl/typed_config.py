"""Typed configs from plain data (YAML): one dataclass per component, defaults in one place.

:func:`from_dict` builds a dataclass from a mapping, recursing into nested dataclasses.  A
key the dataclass does not have is an error that names where it is and lists the valid
keys; a value of the wrong type is an error too, and so is a number outside the range a
field declares with :func:`bounded` (sizes, rates, probabilities).  Nothing is silently
dropped.

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
>>> @dataclass
... class Data:
...     max_batch_size: int = bounded(64, gt=0)
>>> from_dict(Data, {"max_batch_size": -1}, "conf/x.yaml: data")
Traceback (most recent call last):
...
speechssl.errors.InputError: conf/x.yaml: data.max_batch_size: must be > 0, got -1
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from speechssl.errors import InputError

RANGE = "range"  # the field metadata key of a Range


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a number field allows (every element's, for a list or tuple field):
    finite, and within the bounds given (``gt`` means >, ``ge`` >=, ...)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def allows(self, x: float) -> bool:
        return (math.isfinite(x) and (self.gt is None or x > self.gt)
                and (self.ge is None or x >= self.ge) and (self.lt is None or x < self.lt)
                and (self.le is None or x <= self.le))

    def describe(self) -> str:
        """E.g. ``must be > 0`` or ``must be in [0, 1)``."""
        low = "(" if self.gt is not None else "[" if self.ge is not None else None
        high = ")" if self.lt is not None else "]" if self.le is not None else None
        lo, hi = _first(self.gt, self.ge), _first(self.lt, self.le)
        if low and high:
            return f"must be in {low}{lo:g}, {hi:g}{high}"
        if low:
            return f"must be {'>' if low == '(' else '>='} {lo:g}"
        if high:
            return f"must be {'<' if high == ')' else '<='} {hi:g}"
        return "must be a finite number"


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def bounded(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            gt: float | None = None, ge: float | None = None, lt: float | None = None,
            le: float | None = None) -> Any:
    """A dataclass field whose value :func:`from_dict` checks against a :class:`Range`,
    e.g. ``dropout: float = bounded(0.1, ge=0, lt=1)``."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={RANGE: Range(gt, ge, lt, le)})


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _check_range(value: Any, spec: Range, where: str) -> None:
    items = enumerate(value) if isinstance(value, list | tuple) else [(None, value)]
    for i, x in items:
        if isinstance(x, int | float) and not isinstance(x, bool) and not spec.allows(x):
            key = where if i is None else f"{where}[{i}]"
            raise InputError(f"{key}: {spec.describe()}, got {x!r}")


def check_ranges(config: Any, where: str = "") -> None:
    """Check every :func:`bounded` field of a dataclass built in code, nested ones too
    (:func:`from_dict` checks what it reads itself)."""
    for f in dataclasses.fields(config):
        value, key = getattr(config, f.name), _join(where, f.name)
        if RANGE in f.metadata:
            _check_range(value, f.metadata[RANGE], key)
        for i, item in enumerate(value if isinstance(value, list | tuple) else [value]):
            if dataclasses.is_dataclass(item) and not isinstance(item, type):
                check_ranges(item, f"{key}[{i}]" if isinstance(value, list | tuple) else key)


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
                errors.append(str(e))
        raise InputError(f"'{where}' = {value!r} is not a {tp} ({'; '.join(errors)})")
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
    if tp in (int, float) and isinstance(value, bool):  # bool is an int to Python, not here
        raise InputError(f"'{where}' = {value!r} must be a {_type_name(tp)}")
    if tp is float and isinstance(value, int):
        return float(value)
    if tp in (int, float) and isinstance(value, str) and _is_number(value):
        if "e" not in value.lower():
            hint = "write it without quotes"
        else:
            hint = ("YAML reads 1e-3 as a string: write 1.0e-3" if tp is float
                    else "write it as a plain integer")
        raise InputError(f"'{where}' = {value!r} must be a {_type_name(tp)}, not a string "
                         f"({hint})")
    if tp is bool and not isinstance(value, bool):
        raise InputError(f"'{where}' = {value!r} must be true or false")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise InputError(f"'{where}' = {value!r} must be a {_type_name(tp)}")
    return value


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def check_sections(raw: Any, sections: Mapping[str, Any] | list[str], where: str) -> None:
    """A config file's top level: a mapping whose keys are all among ``sections``."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping with keys {', '.join(sections)}")
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise InputError(f"{where}: unknown key '{unknown[0]}'; valid keys: "
                         f"{', '.join(sections)}")


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
    for k, v in values.items():
        if RANGE in fields[k].metadata:
            _check_range(v, fields[k].metadata[RANGE], f"{where}.{k}")
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
