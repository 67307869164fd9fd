"""Take a step's exclusive lock on a dir, or fail at once naming who holds it.

Called by utils/lock_dir.sh, which a step sources: the step's shell opens ``<dir>/.lock``
on a descriptor and passes its number here; this program locks that descriptor
(``flock(2)``, not blocking) and exits.  A flock belongs to the open file, which the
step's shell keeps open, so the lock lasts while the step runs and the kernel releases it
when the step ends, however it ends (``kill -9`` included): no stale lock to clean up.

Python rather than util-linux ``flock(1)``: the same code everywhere (macOS has no
flock(1)), the holder recorded in the lock file, and the refusal as one ERROR line.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.errors import SpeechSSLError


def command_of(pid: int, default: str) -> str:
    """The command line of process ``pid`` where /proc shows it (Linux), else ``default``."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return default
    words = [a.decode(errors="replace") for a in args if a]
    if len(words) > 1 and os.path.basename(words[0]) in ("bash", "sh"):
        words = words[1:]  # "bash steps/x.sh ...": the script is what the user ran
    return " ".join(words) or default


def lock(fd: int, directory: str, owner: str) -> None:
    """Lock the open file ``fd`` (``<directory>/.lock``) and write ``owner`` into it;
    raise a one-line error naming the current holder if another process has it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
        raise SpeechSSLError(
            f"{directory} is in use by another step ({holder}); wait for it to end, or "
            f"use another dir (the lock, {directory}/.lock, is released when it ends)"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{owner}\n".encode())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lock_dir", description=__doc__)
    p.add_argument("--fd", type=int, required=True, help="open descriptor of <dir>/.lock")
    p.add_argument("--pid", type=int, required=True, help="the step's process id")
    p.add_argument("--script", default="?", help="the step's name, if /proc cannot tell")
    p.add_argument("dir")
    args = p.parse_args(argv)
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    owner = (f"pid {args.pid} on {socket.gethostname()} since {since}: "
             f"{command_of(args.pid, args.script)}")
    lock(args.fd, args.dir, owner)
    return 0


if __name__ == "__main__":
    run(main, "lock_dir")
