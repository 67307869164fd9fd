"""Run a command as parallel jobs: the program behind utils/run_local.sh and run_slurm.sh.

    python -m speechssl.bin.run_jobs --backend local|slurm [options] \\
        [JOB=START:END] <log-file> <command> [<arg>...]

The interface is that of Kaldi's run.pl / slurm.pl; see :mod:`speechssl.jobs` and
``--help``.  Exit status: 0 if every job succeeded; 1 if any failed (after the line
``<prog>: k / n failed, log is in ...``) or the command line is wrong; 128+N if the runner
was stopped by signal N, after killing the jobs it had started.  A runner killed outright
(``kill -9``) takes its jobs with it too: local jobs kill themselves and a Slurm job is
cancelled (see :mod:`speechssl.jobs`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from speechssl import jobs
from speechssl.cli import run


def prog_name(argv: Sequence[str]) -> str:
    """The wrapper's name for messages (run_local.sh / run_slurm.sh), found before parsing."""
    backend = "local"
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            backend = argv[i + 1]
        elif arg.startswith("--backend="):
            backend = arg.partition("=")[2]
    return jobs.PROGS.get(backend, "run_jobs")


def wants_help(argv: Sequence[str]) -> bool:
    """True if --help/-h comes among the leading options (not inside the job's command)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] in ("--help", "-h"):
            return True
        i += 1 if "=" in argv[i] else 2
    return False


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog_name(argv)
    if wants_help(argv):
        print(jobs.USAGE.format(prog=prog), file=sys.stderr)
        return 0
    request = jobs.parse_request(argv)
    with jobs.signals_raise():
        try:
            codes = jobs.run(request)
        except jobs.Interrupted as e:
            print(f"{prog}: stopped by signal {e.signum}; its jobs were killed", file=sys.stderr)
            return 128 + e.signum
    summary = jobs.failure_summary(prog, request, codes)
    if summary is not None:
        print(summary, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main, prog_name(sys.argv[1:]))
