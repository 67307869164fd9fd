"""Errors shown to users as one line, without a traceback.

Every error about bad input names where the problem is: the file, the line and the key,
so that the user can go straight to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


class SpeechSSLError(Exception):
    """Base class: the command-line wrappers print these as ``ERROR (prog) message``."""


class InputError(SpeechSSLError):
    """Bad input, located by file, line (1-based) and key where known.

    >>> str(InputError("duplicate key", path="data/x/utt2spk", line=3, key="u1"))
    "data/x/utt2spk:3: key 'u1': duplicate key"
    """

    def __init__(
        self,
        message: str,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        key: str | None = None,
    ):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        if self.key is not None:
            where += f"key '{self.key}': "
        return where + self.message


EXAMPLES_SHOWN = 5  # ids quoted in an error message about a set of bad ones


def examples(keys: Iterable[str], shown: int = EXAMPLES_SHOWN) -> str:
    """A few of ``keys`` for a message, in C order, with ``...`` when there are more.

    >>> examples(["u3", "u1", "u2"], shown=2)
    'u1 u2 ...'
    """
    keys = sorted(str(k) for k in keys)
    return " ".join(keys[:shown]) + (" ..." if len(keys) > shown else "")
