"""Memory use of this process, for the records of steps that must fit a machine's memory
(``training.json`` of train_hybrid, ``results.json`` of train_probe)."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's peak resident memory: /proc's VmHWM where there is one, as a child's
    ru_maxrss starts at its parent's peak on Linux (fork then exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0   # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux
