"""Kaldi archives: write ``.ark`` + ``.scp`` pairs atomically, read ``feats.scp``.

The binary format (``key \\0B`` + the object) is written by kaldiio; this module adds
what a step needs around it: scp offsets pointing at the final (absolute) ark path, and
temporary names so an interrupted job leaves no archive that looks complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import kaldiio
import numpy as np
from kaldiio.matio import write_array

from speechssl.data.table import PathLike, read_table
from speechssl.errors import InputError

# Kaldi's CompressionMethod kAutomaticMethod (what `copy-feats --compress=true` uses).
KALDI_AUTOMATIC_COMPRESSION = 1


class ArkScpWriter:
    """Stream matrices/vectors into ``ark_path`` and index them in ``scp_path``.

    Use as a context manager: both files appear under their names only if the block
    finishes without an exception.
    """

    def __init__(self, ark_path: PathLike, scp_path: PathLike, compress: bool = False):
        self.ark_path = Path(ark_path).absolute()
        self.scp_path = Path(scp_path)
        self.compression = KALDI_AUTOMATIC_COMPRESSION if compress else None
        self._ark_tmp = self.ark_path.with_name(self.ark_path.name + ".tmp")
        self._scp_tmp = self.scp_path.with_name(self.scp_path.name + ".tmp")
        self._ark = None
        self._scp = None
        self.count = 0

    def __enter__(self) -> ArkScpWriter:
        self.ark_path.parent.mkdir(parents=True, exist_ok=True)
        self.scp_path.parent.mkdir(parents=True, exist_ok=True)
        self._ark = open(self._ark_tmp, "wb")
        self._scp = open(self._scp_tmp, "w", encoding="utf-8")
        return self

    def write(self, key: str, array: np.ndarray) -> None:
        if not key or any(c.isspace() for c in key):
            raise InputError("archive key is empty or contains whitespace", key=key)
        self._ark.write(key.encode("utf-8") + b" ")
        offset = self._ark.tell()
        compression = self.compression if array.ndim == 2 else None
        write_array(self._ark, array, compression_method=compression)
        self._scp.write(f"{key} {self.ark_path}:{offset}\n")
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._ark.close()
        self._scp.close()
        if exc_type is None:
            os.replace(self._ark_tmp, self.ark_path)
            os.replace(self._scp_tmp, self.scp_path)
        else:
            for tmp in (self._ark_tmp, self._scp_tmp):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()


def read_matrix(rxfilename: str, scp: PathLike | None = None, key: str | None = None,
                ) -> np.ndarray:
    """One object from an rxfilename (``x.ark:123``, optionally ``[a:b]`` ranges)."""
    try:
        return np.asarray(kaldiio.load_mat(rxfilename))
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"cannot read '{rxfilename}': {e}", path=scp, key=key) from None


def iter_scp(scp: PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(key, array)`` in scp order; the scp must be sorted with unique keys."""
    for key, rxfilename in read_table(scp, 2, 2).items():
        yield key, read_matrix(rxfilename, scp, key)
