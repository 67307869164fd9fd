"""Kaldi archives: write ``.ark`` + ``.scp`` pairs atomically, read ``feats.scp``.

The binary format (``key \\0B`` + the object) is written by kaldiio; this module adds
what a step needs around it: scp offsets pointing at the final (absolute) ark path, and
temporary names so an interrupted job leaves no archive that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from speechssl.data.table import PathLike, read_table
from speechssl.errors import InputError, SpeechSSLError

# Kaldi's CompressionMethod kAutomaticMethod (what `copy-feats --compress=true` uses).
KALDI_AUTOMATIC_COMPRESSION = 1
# Binary type tokens of Kaldi's float and double matrices and vectors.
_TOKENS = {(np.dtype(np.float32), 2): b"FM ", (np.dtype(np.float64), 2): b"DM ",
           (np.dtype(np.float32), 1): b"FV ", (np.dtype(np.float64), 1): b"DV "}


def kaldi_binary(array: np.ndarray) -> bytes:
    r"""An uncompressed float/double matrix or vector in Kaldi's binary form, from ``\0B``.

    >>> kaldi_binary(np.zeros((1, 1), np.float32))
    b'\x00BFM \x04\x01\x00\x00\x00\x04\x01\x00\x00\x00\x00\x00\x00\x00'
    """
    token = _TOKENS.get((array.dtype, array.ndim))
    if token is None:
        raise ValueError(f"cannot write a {array.dtype} array with {array.ndim} dimensions")
    sizes = b"".join(b"\x04" + struct.pack("<i", n) for n in array.shape)
    data = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return b"\0B" + token + sizes + data


class ArkScpWriter:
    """Stream matrices/vectors into ``ark_path`` and index them in ``scp_path``.

    Use as a context manager: both files appear under their names only if the block
    finishes without an exception; on any error (a full disk included, which often shows
    only when the files are closed) the temporaries are removed.  The scp lines name
    ``ark_in_scp`` (default ``ark_path``): a step that writes beside a live archive and
    renames on success passes the final path here.
    """

    def __init__(self, ark_path: PathLike, scp_path: PathLike, compress: bool = False,
                 ark_in_scp: PathLike | None = None):
        self.ark_path = Path(ark_path).absolute()
        self.scp_path = Path(scp_path)
        self.ark_in_scp = Path(ark_in_scp).absolute() if ark_in_scp else self.ark_path
        self.compression = KALDI_AUTOMATIC_COMPRESSION if compress else None
        self._ark_tmp = self.ark_path.with_name(self.ark_path.name + ".tmp")
        self._scp_tmp = self.scp_path.with_name(self.scp_path.name + ".tmp")
        self._ark = None
        self._scp = None
        self.count = 0

    def __enter__(self) -> ArkScpWriter:
        self.ark_path.parent.mkdir(parents=True, exist_ok=True)
        self.scp_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._ark = open(self._ark_tmp, "wb")
            self._scp = open(self._scp_tmp, "w", encoding="utf-8")
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, key: str, array: np.ndarray) -> None:
        if not key or any(c.isspace() for c in key):
            raise InputError("archive key is empty or contains whitespace", key=key)
        with _naming(self.ark_path):
            self._ark.write(key.encode("utf-8") + b" ")
            offset = self._ark.tell()
            if self.compression is not None and array.ndim == 2:
                from kaldiio.matio import write_array  # only the compressed form needs kaldiio

                write_array(self._ark, array.astype(np.float32, copy=False),
                            compression_method=self.compression)
            else:
                self._ark.write(kaldi_binary(array))
        with _naming(self.scp_path):
            self._scp.write(f"{key} {self.ark_in_scp}:{offset}\n")
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()  # the block's own exception is the one to report
            return
        ark_renamed = False
        try:
            with _naming(self.ark_path):
                self._ark.close()  # flushes: where a full disk often shows
            with _naming(self.scp_path):
                self._scp.close()
            os.replace(self._ark_tmp, self.ark_path)
            ark_renamed = True
            os.replace(self._scp_tmp, self.scp_path)
        except BaseException:
            self._discard()
            if ark_renamed:  # an archive without its scp must not look finished
                self.ark_path.unlink()
            raise

    def _discard(self) -> None:
        """Close and remove the temporaries, whatever state they are in."""
        for f in (self._ark, self._scp):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        for tmp in (self._ark_tmp, self._scp_tmp):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Say which file a failed write or close was for (on its own, an ENOSPC from write()
    says only "No space left on device")."""
    try:
        yield
    except OSError as e:
        raise SpeechSSLError(f"cannot write {path}: {e.strerror or e}") from e


def read_matrix(rxfilename: str, scp: PathLike | None = None, key: str | None = None,
                ) -> np.ndarray:
    """One object from an rxfilename (``x.ark:123``, optionally ``[a:b]`` ranges)."""
    import kaldiio  # imported here: writing archives should not pay for it

    try:
        return np.asarray(kaldiio.load_mat(rxfilename))
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"cannot read '{rxfilename}': {e}", path=scp, key=key) from None


def iter_scp(scp: PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(key, array)`` in scp order; the scp must be sorted with unique keys."""
    for key, rxfilename in read_table(scp, 2, 2).items():
        yield key, read_matrix(rxfilename, scp, key)
