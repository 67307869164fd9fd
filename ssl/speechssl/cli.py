"""Shared plumbing for the ``python -m speechssl.bin.<step>`` entry points.

Logging follows Kaldi's shape, ``LOG (prog[file:line]) message``, so logs from our steps
read like logs from Kaldi's binaries.  Known errors (:class:`SpeechSSLError`) and errors
of the system (:class:`OSError`: a full disk, a folder without write permission) end the
program with one ``ERROR`` line and exit status 1; anything else keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence

from speechssl.errors import SpeechSSLError

_LEVEL_NAMES = {"DEBUG": "VLOG", "INFO": "LOG", "WARNING": "WARNING", "ERROR": "ERROR"}


class _KaldiFormatter(logging.Formatter):
    def __init__(self, prog: str):
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_NAMES.get(record.levelname, record.levelname)
        where = f"{os.path.basename(record.pathname)}:{record.lineno}"
        return f"{level} ({self.prog}[{where}]) {record.getMessage()}"


def setup_logging(prog: str, verbose: int = 0) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KaldiFormatter(prog))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 0 else logging.INFO)


# What to do about the system errors a step meets in its output folders.
_OS_ERROR_HINTS = {
    errno.ENOSPC: "free some space on that disk or choose another output dir",
    errno.EDQUOT: "free some space (disk quota) or choose another output dir",
    errno.EACCES: "check its permissions or choose another output dir",
    errno.EPERM: "check its permissions or choose another output dir",
    errno.EROFS: "choose another output dir",
}


def os_error_message(e: OSError) -> str:
    """One line for a system error: the path (if known), the reason, what to do.

    >>> os_error_message(OSError(errno.EACCES, "Permission denied", "exp/x"))
    'exp/x: Permission denied; check its permissions or choose another output dir'
    """
    where = f"{e.filename}: " if e.filename is not None else ""
    what = e.strerror or str(e)
    hint = _OS_ERROR_HINTS.get(e.errno)
    return where + what + (f"; {hint}" if hint else "")


def run(main: Callable[[Sequence[str] | None], int | None], prog: str) -> None:
    """Run ``main(argv)`` and exit with its status; a SpeechSSLError or an OSError exits 1
    with one line (a traceback of a full disk would bury its one useful line)."""
    setup_logging(prog)
    try:
        status = main(None)
        _flush_stdout()
    except SpeechSSLError as e:
        logging.getLogger(prog).error("%s", e)
        sys.exit(1)
    except OSError as e:
        logging.getLogger(prog).error("%s", os_error_message(e))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(status or 0)


def _flush_stdout() -> None:
    """Flush what ``main`` printed while an error can still be reported (``> out`` on a full
    disk), rather than at exit, where Python prints it as "Exception ignored"."""
    try:
        sys.stdout.flush()
    except OSError as e:
        # What is left in the buffer would fail again at exit: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if e.filename is None:
            e.filename = "<stdout>"
        raise


# --- argparse types and options shared by the entry points --------------------------------

def kaldi_bool(value: str) -> bool:
    """Kaldi's boolean option values, ``true`` or ``false`` (the steps' bash variables)."""
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")
    return value == "true"


def positive_int(value: str) -> int:
    """An integer of at least 1 (``--nj``, ``--job``)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{value}'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{value}'")
    return n


DEVICES = ("auto", "cpu", "cuda")


def add_device_option(p: argparse.ArgumentParser, what: str = "where to run") -> None:
    """``--device auto|cpu|cuda``, default auto: CUDA if this machine has it, else the CPU
    (the steps' ``device=auto``)."""
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help=f"{what}; auto: cuda if available, else cpu (default: auto)")
