"""Shared plumbing for the ``python -m speechssl.bin.<step>`` entry points.

Logging follows Kaldi's shape, ``LOG (prog[file:line]) message``, so logs from our steps
read like logs from Kaldi's binaries.  Known errors (:class:`SpeechSSLError`) end the
program with one ``ERROR`` line and exit status 1; anything else keeps its traceback.
"""

from __future__ import annotations

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


def run(main: Callable[[Sequence[str] | None], int | None], prog: str) -> None:
    """Run ``main(argv)`` and exit with its status; a SpeechSSLError exits 1 with one line."""
    setup_logging(prog)
    try:
        status = main(None)
    except SpeechSSLError as e:
        logging.getLogger(prog).error("%s", e)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(status or 0)
