"""File output and input plumbing: atomic writes (a step that is interrupted never leaves a
finished-looking file) and parallel reads of many small files (audio headers)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Errors of writing data, which a bare write() or fsync() raises without a file name.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary file next to ``path``; rename it over ``path`` only on success.

    On an exception the temporary file is removed and ``path`` is left as it was; a failed
    write names ``path`` (OSError.filename), which write() and fsync() do not.
    Text mode writes UTF-8 with ``\\n`` line endings whatever the platform.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno in _WRITE_ERRNOS:
            e.filename = str(path)
        raise


def parallel_map(fn: Callable, items: Sequence, nj: int) -> list:
    """``[fn(x) for x in items]`` on ``nj`` threads: for I/O-bound work (file headers,
    subprocesses), where threads overlap the waiting."""
    if nj <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(nj) as pool:
        return list(pool.map(fn, items))
