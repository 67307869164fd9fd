"""Run one command as N parallel jobs, with the interface of Kaldi's ``run.pl``/``slurm.pl``.

Step scripts call ``$cmd JOB=1:$nj exp/x/log/foo.JOB.log prog args...`` and ``cmd.sh`` decides
where the jobs run: ``utils/run_local.sh`` (this machine) or ``utils/run_slurm.sh`` (a Slurm
cluster).  Both wrappers call ``python -m speechssl.bin.run_jobs --backend local|slurm``.

What a job runs, and how its log looks, is the same for both backends (:func:`job_script`):

* The job variable (``JOB`` in ``JOB=1:4``; any name works, e.g. ``SPLIT=1:4``) is replaced
  as a plain substring of the log path and of every argument, as run.pl does.
* The arguments are joined into one bash command line the way run.pl joins them: an argument
  without whitespace is used verbatim (so a pipe or redirection escaped in the calling
  script, ``\\|`` or ``'2>&1'``, acts in the job's shell) and one with whitespace is quoted
  (so ``"ark:gunzip -c x.gz |"`` stays one argument).  A command given as a single argument
  is used as the command line itself, so
  ``run_local.sh JOB=1:2 log/a.JOB.log "echo JOB | cat > out.JOB"`` runs a pipeline.
* The line runs under ``bash -o pipefail -c``: a failure anywhere in a pipe fails the job.
* The log holds ``# <command>``, ``# Started at <date>``, ``#``, the job's stdout and stderr
  (ended with a newline if the job left none), ``# Accounting: time=<s> threads=<n>`` and
  ``# Ended (code <n>) at <date>, elapsed time <s> seconds``.

The local backend starts at most ``--max-jobs-run`` jobs at once (default: all of them, as
run.pl does), each in its own process group, so that SIGINT/SIGTERM/SIGHUP to the runner
kills every job and everything the jobs started.  The Slurm backend submits one array job
(``sbatch --parsable --wait --array=START-END%MAX``) whose script is written to
``<log dir>/q/<name>.sh``; each task writes its exit code to ``q/<name>.<id>.status``, and
those files, not sbatch's exit status, decide which jobs failed.

Jobs die with their runner even when it cannot clean up (``kill -9`` of a step's process
group): a local job's watcher kills the job's group (:func:`job_script`), and a detached
:class:`SlurmReaper` cancels the Slurm job (``q/<name>.cancel.log`` says when it did).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speechssl.errors import InputError, SpeechSSLError
from speechssl.fileio import atomic_write

logger = logging.getLogger(__name__)

BACKENDS = ("local", "slurm")
PROGS = {"local": "run_local.sh", "slurm": "run_slurm.sh"}

USAGE = """\
Usage: {prog} [options] [JOB=START:END] <log-file> <command> [<arg>...]
 e.g.: {prog} --max-jobs-run 4 JOB=1:8 exp/x/log/fbank.JOB.log \\
           python -m speechssl.bin.compute_feats --kind fbank data/train/split8/JOB \\
           exp/x/raw_fbank.JOB.ark exp/x/raw_fbank.JOB.scp
Runs the command once per job id (or once, without JOB=...), replacing the job variable
(JOB here; any name works) in the log file and in every argument.  Arguments are joined
into one bash command line as Kaldi's run.pl joins them; a command given as one quoted
argument is run as it is, so "prog JOB | sort > out.JOB" works.  Exits 1 if any job failed.
Options:
  --max-jobs-run N   run at most N jobs at once (default: all at once, like run.pl)
  --num-threads N    threads per job (slurm: --cpus-per-task; logged by both backends)
  --mem X            memory per job, e.g. 4G (slurm: --mem; ignored locally)
  --gpu N            GPUs per job (slurm: --gres=gpu:N; ignored locally)
  --time T           time limit per job, e.g. 4:00:00 (slurm: --time; ignored locally)
Slurm: extra sbatch options come from the environment variable SLURM_EXTRA_ARGS,
e.g. SLURM_EXTRA_ARGS="--partition=gpu --account=me"."""

_JOB_RANGE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_KILL_GRACE_S = 10.0


class Interrupted(BaseException):
    """Raised in the runner when it receives a signal, after which running jobs are killed.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way (the
    logging module has one around every write) can swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


@dataclass(frozen=True)
class JobRange:
    """The job ids to run; ``var`` is None for the single-job form (no ``JOB=`` argument)."""

    var: str | None
    start: int
    end: int

    @property
    def ids(self) -> range:
        return range(self.start, self.end + 1)


@dataclass(frozen=True)
class Resources:
    """What each job needs; the local backend uses only max_jobs_run and num_threads."""

    max_jobs_run: int | None = None
    num_threads: int = 1
    mem: str | None = None
    gpu: int = 0
    time: str | None = None


@dataclass(frozen=True)
class Request:
    """A parsed command line of run_local.sh / run_slurm.sh."""

    backend: str
    resources: Resources
    jobs: JobRange
    log_pattern: str
    args: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """One job: its id, its log file and its bash command line, the job variable replaced."""

    job_id: int
    log: str
    command: str


def parse_job_range(arg: str) -> JobRange | None:
    """Parse ``JOB=1:4`` (or ``JOB=3``, one job); None if ``arg`` is not of the form NAME=...

    Anything of the form NAME=... must be a valid range, so that a typo such as ``JOB=a:b``
    is reported rather than taken for the log file.  Job ids start at 1, as split_data.sh
    numbers its splits, so ``JOB=1:0`` (a step run with ``--nj 0``) is an error, not zero jobs.

    >>> parse_job_range("SPLIT=2:5")
    JobRange(var='SPLIT', start=2, end=5)
    >>> parse_job_range("exp/x/log/a.log") is None
    True
    """
    m = _JOB_RANGE.fullmatch(arg)
    if m is None:
        return None
    var, spec = m.groups()
    bounds = re.fullmatch(r"(-?\d+)(?::(-?\d+))?", spec)
    start = int(bounds.group(1)) if bounds else 0
    end = int(bounds.group(2) or start) if bounds else 0
    if not 1 <= start <= end:
        raise InputError(f"invalid job range '{arg}': need {var}=START:END, 1 <= START <= END")
    return JobRange(var, start, end)


def join_command(args: Sequence[str]) -> str:
    """Join arguments into one bash command line, the way Kaldi's run.pl does.

    Words without whitespace stay as they are, so escaped shell syntax (``\\|``) works; words
    with whitespace (or empty ones) are quoted.  A single argument is the command line itself.

    >>> join_command(["echo", "a  b", "|", "wc", "-c"])
    "echo 'a  b' | wc -c"
    >>> join_command(["echo 1 | cat > out.1"])
    'echo 1 | cat > out.1'
    """
    if len(args) == 1:
        return args[0]
    return " ".join(shlex.quote(a) if not a or re.search(r"\s", a) else a for a in args)


def substitute(text: str, var: str | None, job_id: int) -> str:
    """Replace every occurrence of the job variable, as a substring (run.pl's ``s/JOB/1/g``).

    >>> substitute("exp/log/a.JOB.log", "JOB", 3)
    'exp/log/a.3.log'
    """
    return text if var is None else text.replace(var, str(job_id))


def expand_jobs(request: Request) -> list[Job]:
    """The jobs of a request, with the job variable replaced in the log path and arguments."""
    var = request.jobs.var
    return [
        Job(
            job_id,
            substitute(request.log_pattern, var, job_id),
            join_command([substitute(a, var, job_id) for a in request.args]),
        )
        for job_id in request.jobs.ids
    ]


_OPTIONS = ("--backend", "--max-jobs-run", "--num-threads", "--mem", "--gpu", "--time")
_INT_MINIMUM = {"--max-jobs-run": 1, "--num-threads": 1, "--gpu": 0}


def _option_value(name: str, value: str) -> int | str:
    """Check one option's value: counts become ints, other values must not be empty."""
    if name == "--backend" and value not in BACKENDS:
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, not '{value}'")
    minimum = _INT_MINIMUM.get(name)
    if minimum is None:
        if not value:
            raise InputError(f"option {name} needs a non-empty value")
        return value
    if not re.fullmatch(r"\d+", value) or int(value) < minimum:
        raise InputError(f"option {name} needs an integer >= {minimum}, not '{value}'")
    return int(value)


def split_options(argv: Sequence[str]) -> tuple[dict[str, int | str], list[str]]:
    """Take the leading ``--name value`` / ``--name=value`` options; return them and the rest.

    Unknown options are errors rather than ignored (run.pl ignores them), so a typo in
    cmd.sh is caught at the first job.
    """
    options: dict[str, int | str] = {}
    rest = list(argv)
    while rest and rest[0].startswith("--"):
        name, eq, value = rest.pop(0).partition("=")
        if name not in _OPTIONS:
            raise InputError(f"unknown option '{name}' (known: {', '.join(_OPTIONS)})")
        if not eq:
            if not rest:
                raise InputError(f"option {name} needs a value")
            value = rest.pop(0)
        options[name] = _option_value(name, value)
    return options, rest


def parse_request(argv: Sequence[str]) -> Request:
    """Parse ``[options] [JOB=START:END] <log> <command>...`` into a :class:`Request`."""
    options, rest = split_options(argv)
    job_range = parse_job_range(rest[0]) if rest else None
    if job_range is not None:
        rest = rest[1:]
    if len(rest) < 2:
        raise InputError("expected a log file and a command; run with --help for usage")
    job_range = job_range or JobRange(None, 1, 1)
    log_pattern, args = rest[0], rest[1:]
    if len(job_range.ids) > 1 and job_range.var not in log_pattern:
        raise InputError(
            f"{len(job_range.ids)} jobs would share one log file '{log_pattern}': "
            f"put {job_range.var} in its name"
        )
    resources = Resources(
        max_jobs_run=options.get("--max-jobs-run"),
        num_threads=options.get("--num-threads", 1),
        mem=options.get("--mem"),
        gpu=options.get("--gpu", 0),
        time=options.get("--time"),
    )
    backend = str(options.get("--backend", "local"))
    return Request(backend, resources, job_range, log_pattern, args)


_JOB_SCRIPT = r"""{watch}log={log}
cmd={cmd}
mkdir -p -- "$(dirname -- "$log")" || exit 1
start=$(date +%s)
printf '# %s\n# Started at %s\n' "$cmd" "$(date)" > "$log" || exit 1
{host}printf '#\n' >> "$log"
bash -o pipefail -c "$cmd" < /dev/null >> "$log" 2>&1
code=$?
{unwatch}end=$(date +%s)
if [ -n "$(tail -c 1 "$log")" ]; then echo >> "$log"; fi
printf '# Accounting: time=%d threads=%d\n' $((end - start)) {threads} >> "$log"
printf '# Ended (code %d) at %s, elapsed time %d seconds\n' \
  "$code" "$(date)" $((end - start)) >> "$log"
{status}exit "$code"
"""

# Started first by a local job (see job_script).  ``$$`` is the job's bash, the leader of
# its process group.  The watcher keeps no log or terminal open, and the job's command does
# not inherit the pipe's read end.
_WATCH = r"""( read -r -u {fd} _; kill -KILL -- -$$ ) < /dev/null > /dev/null 2>&1 &
watcher=$!
exec {fd}<&-
"""
# Once the command has ended: stop the watcher and reap it, so none outlives its job.
_UNWATCH = """kill "$watcher" 2> /dev/null; wait "$watcher"
"""


def job_script(
    job: Job, threads: int, status_file: Path | None = None, watch_fd: int | None = None
) -> str:
    """The bash code that runs one job and writes its log (shared by both backends).

    With ``status_file`` (Slurm), the exit code is also written there, atomically, because
    a scheduler's own exit status cannot tell which array task failed; the log then also
    names the node the job ran on.

    With ``watch_fd`` (local; the job must lead its own process group), a background watcher
    blocks reading that fd, the read end of a pipe whose write end only the runner holds.
    Reading EOF means the runner is gone, even by SIGKILL, when it could not kill the jobs
    itself; the watcher then kills the job's whole process group.  (PR_SET_PDEATHSIG would
    reach only the job's bash, not what it started, and is Linux-only.)
    """
    host = status = watch = unwatch = ""
    if watch_fd is not None:
        watch, unwatch = _WATCH.format(fd=watch_fd), _UNWATCH
    if status_file is not None:
        host = 'printf \'# Running on %s\\n\' "$(hostname)" >> "$log"\n'
        tmp = shlex.quote(f"{status_file}.tmp")
        final = shlex.quote(str(status_file))
        status = f"printf '%d\\n' \"$code\" > {tmp} && mv -f {tmp} {final}\n"
    return _JOB_SCRIPT.format(
        log=shlex.quote(job.log),
        cmd=shlex.quote(job.command),
        threads=threads,
        host=host,
        status=status,
        watch=watch,
        unwatch=unwatch,
    )


def make_log_dirs(jobs: Sequence[Job]) -> None:
    """Create the log directories up front, so an unwritable one is one clear error."""
    for log_dir in sorted({os.path.dirname(job.log) or "." for job in jobs}):
        try:
            os.makedirs(log_dir, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create log directory: {e.strerror}", path=log_dir) from e


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While active, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` in the main thread.

    A signal that is ignored on entry (``nohup``, a background job of a script) stays
    ignored, so the runner does not die where its caller asked it not to.
    """

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold off SIGINT/SIGTERM/SIGHUP while cleaning up, so a second Ctrl-C cannot cut the
    killing of the jobs short; a signal that came meanwhile is delivered afterwards."""
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _exit_code(returncode: int) -> int:
    """Popen's -N (killed by signal N) as bash reports it: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _start_local(job: Job, threads: int, done: queue.Queue, watch_fd: int) -> subprocess.Popen:
    """Start one job in a new session; a watcher thread reports (id, code) on ``done``.

    The job gets ``watch_fd`` (see :func:`job_script`) and no other descriptor of the runner.
    """
    proc = subprocess.Popen(
        ["bash", "-c", job_script(job, threads, watch_fd=watch_fd)],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        pass_fds=(watch_fd,),
    )

    def watch() -> None:
        done.put((job.job_id, _exit_code(proc.wait())))

    threading.Thread(target=watch, daemon=True).start()
    return proc


def _kill_groups(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM each job's process group, wait a little, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
        if sig == signal.SIGTERM:
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_KILL_GRACE_S / max(len(procs), 1))


def run_local(jobs: Sequence[Job], resources: Resources) -> dict[int, int]:
    """Run the jobs on this machine, at most ``max_jobs_run`` at once; map job id -> code.

    If anything interrupts the loop (a signal raising :class:`Interrupted`), the running jobs
    are killed, process group and all, before the exception goes on.  If the runner is
    killed outright, the jobs' watchers kill them (see :func:`job_script`).
    """
    limit = resources.max_jobs_run or len(jobs)
    pending = list(reversed(jobs))
    running: dict[int, subprocess.Popen] = {}
    done: queue.Queue = queue.Queue()
    codes: dict[int, int] = {}
    # Both ends are close-on-exec: only the jobs get the read end (pass_fds), and no child
    # gets the write end, so it closes exactly when this process ends.
    watch_read, watch_write = os.pipe()
    try:
        while pending or running:
            while pending and len(running) < limit:
                job = pending.pop()
                running[job.job_id] = _start_local(job, resources.num_threads, done, watch_read)
            job_id, code = done.get()
            del running[job_id]
            codes[job_id] = code
    finally:
        with signals_blocked():
            _kill_groups(list(running.values()))
        os.close(watch_read)
        os.close(watch_write)
    return codes


def slurm_job_name(log_pattern: str, var: str | None) -> str:
    """A name for the array job and its files: the log name without the job variable.

    >>> slurm_job_name("exp/x/log/make_fbank.JOB.log", "JOB")
    'make_fbank'
    """
    name = os.path.basename(log_pattern).removesuffix(".log")
    if var is not None:
        name = name.replace(f".{var}", "").replace(var, "")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("._-")
    return name or "job"


def slurm_script(jobs: Sequence[Job], threads: int, status: dict[int, Path]) -> str:
    """The array job's batch script: task ``$SLURM_ARRAY_TASK_ID`` runs the job with that id.

    It starts in the submitting directory and sources its ``path.sh`` if there is one, as
    Kaldi's queue.pl does, so a job sees the same environment as a local one even where
    the cluster does not export the caller's environment.
    """
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by run_slurm.sh (speechssl.jobs): array task N runs job N.",
        f"cd {shlex.quote(os.getcwd())} || exit 1",
        "if [ -f path.sh ]; then . ./path.sh; fi",
        'case "${SLURM_ARRAY_TASK_ID:-}" in',
    ]
    for job in jobs:
        lines += [f"{job.job_id})", job_script(job, threads, status[job.job_id]).rstrip(), ";;"]
    lines += [
        "*) echo \"$0: no job with id '${SLURM_ARRAY_TASK_ID:-}' in this script\" >&2; exit 1;;",
        "esac",
    ]
    return "\n".join(lines) + "\n"


def sbatch_command(
    sbatch: str, script: Path, name: str, job_range: JobRange, resources: Resources
) -> list[str]:
    """The sbatch command line: one array job, waited for, resources mapped to Slurm's."""
    array = f"{job_range.start}-{job_range.end}"
    if resources.max_jobs_run:
        array += f"%{resources.max_jobs_run}"
    cmd = [sbatch, "--parsable", "--wait", f"--array={array}", f"--job-name={name}"]
    cmd += [f"--output={script.parent}/{name}.%a.out", f"--cpus-per-task={resources.num_threads}"]
    if resources.mem:
        cmd.append(f"--mem={resources.mem}")
    if resources.gpu:
        cmd.append(f"--gres=gpu:{resources.gpu}")
    if resources.time:
        cmd.append(f"--time={resources.time}")
    cmd += shlex.split(os.environ.get("SLURM_EXTRA_ARGS", ""))
    return [*cmd, str(script)]


def _cancel(slurm_id: str) -> None:
    """Cancel a submitted array job after the runner was interrupted."""
    scancel = shutil.which("scancel")
    if not slurm_id or scancel is None:
        logger.warning("could not cancel Slurm job '%s': do it with scancel", slurm_id)
        return
    subprocess.run([scancel, slurm_id], check=False)


# The reaper's bash code; $1 is its log, $2 the runner's name.  The first line is the job
# id (EOF: nothing was submitted); then "done" means the runner saw the job end or cancelled
# it, and EOF without it means the runner died first.
_REAPER = r"""read -r id || exit 0
read -r msg
[ "$msg" = "done" ] && exit 0
exec >> "$1" 2>&1
echo "$(date): $2 died while Slurm job $id was running; cancelling it"
exec scancel "$id"
"""


class SlurmReaper:
    """Cancels the Slurm job if the runner dies without saying the job is over.

    sbatch leaves the job running when it is killed, and a runner killed by SIGKILL cannot
    run scancel; so a small bash process in its own session (out of reach of a kill of the
    step's process group) holds the read end of a pipe whose write end only the runner has
    (close-on-exec), and runs scancel if the pipe ends before the runner wrote "done".
    """

    def __init__(self, log: Path):
        read_end, self._write_end = os.pipe()
        self._watching = False
        try:
            self._proc = subprocess.Popen(
                ["bash", "-c", _REAPER, "slurm-reaper", str(log), PROGS["slurm"]],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # a caller reading our stderr must not wait for it
                start_new_session=True,
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    def _send(self, line: str) -> None:
        with contextlib.suppress(OSError):  # the reaper is gone (killed): nothing to tell
            os.write(self._write_end, f"{line}\n".encode())

    def watch(self, slurm_id: str) -> None:
        """Cancel this job if the runner dies before :meth:`release`."""
        self._send(slurm_id)
        self._watching = True

    def release(self) -> None:
        """The job has ended or was cancelled: let the reaper exit without cancelling."""
        if self._watching:
            self._send("done")
        os.close(self._write_end)
        self._proc.wait()


def submit_and_wait(cmd: Sequence[str], cancel_log: Path) -> str:
    """Run ``sbatch --parsable --wait``; return the Slurm job id once all tasks have ended.

    sbatch prints the id as soon as it has submitted, then waits; the id is logged (for
    squeue/sacct), and an interrupt cancels the job, as does the death of the runner (a
    :class:`SlurmReaper`, which logs to ``cancel_log``).  No id means the submission itself
    failed (sbatch has said why on stderr).
    """
    reaper = SlurmReaper(cancel_log)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    slurm_id = ""
    try:
        slurm_id = proc.stdout.readline().strip().split(";")[0]
        if slurm_id:
            reaper.watch(slurm_id)
            logger.info("submitted Slurm job %s, script %s; waiting for it", slurm_id, cmd[-1])
        proc.stdout.read()
        code = proc.wait()
    except Interrupted:
        with signals_blocked():
            _cancel(slurm_id)
            reaper.release()
            proc.terminate()
            proc.wait()
        raise
    reaper.release()
    if not slurm_id:
        raise SpeechSSLError(f"sbatch failed (exit status {code}): {shlex.join(cmd)}")
    return slurm_id


def read_status(path: Path) -> int | None:
    """A task's exit code from its status file; None if the task never wrote one."""
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def run_slurm(jobs: Sequence[Job], request: Request) -> dict[int, int | None]:
    """Run the jobs as one Slurm array job; map job id -> exit code (None: no status)."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SpeechSSLError(
            "sbatch not found on PATH: run_slurm.sh needs a Slurm client; "
            "on a machine without Slurm set train_cmd=run_local.sh in cmd.sh"
        )
    name = slurm_job_name(request.log_pattern, request.jobs.var)
    qdir = Path(os.path.dirname(jobs[0].log) or ".") / "q"
    qdir.mkdir(parents=True, exist_ok=True)
    status = {job.job_id: qdir / f"{name}.{job.job_id}.status" for job in jobs}
    for path in status.values():
        path.unlink(missing_ok=True)  # a stale status from an earlier run must not count
    script = qdir / f"{name}.sh"
    with atomic_write(script) as f:
        f.write(slurm_script(jobs, request.resources.num_threads, status))
    cmd = sbatch_command(sbatch, script, name, request.jobs, request.resources)
    submit_and_wait(cmd, qdir / f"{name}.cancel.log")
    codes = {job_id: read_status(path) for job_id, path in status.items()}
    for job_id in sorted(i for i, code in codes.items() if code is None):
        logger.warning(
            "job %d wrote no exit status (killed by Slurm?): see %s",
            job_id,
            qdir / f"{name}.{job_id}.out",
        )
    return codes


def run(request: Request) -> dict[int, int | None]:
    """Run a request on its backend; map job id -> exit code (None: unknown, a failure)."""
    jobs = expand_jobs(request)
    make_log_dirs(jobs)
    if request.backend == "slurm":
        return run_slurm(jobs, request)
    return run_local(jobs, request.resources)


# How many failed jobs' error lines the summary quotes, and how much of each log it reads.
ERRORS_QUOTED = 3
_LOG_TAIL_BYTES = 64 * 1024
_LINE_MAX = 300


def failure_summary(prog: str, request: Request, codes: dict[int, int | None]) -> str | None:
    """run.pl's closing line when jobs failed (None if all succeeded), and the error of each
    of the first few failed jobs, so the cause shows without opening a log.

    It names the failed job's log if one failed, else the log pattern with the job variable.
    """
    failed = [job_id for job_id in request.jobs.ids if codes.get(job_id) != 0]
    if not failed:
        return None
    log = request.log_pattern
    if len(failed) == 1:
        log = substitute(log, request.jobs.var, failed[0])
    lines = [f"{prog}: {len(failed)} / {len(request.jobs.ids)} failed, log is in {log}"]
    for job_id in failed[:ERRORS_QUOTED]:
        job_log = substitute(request.log_pattern, request.jobs.var, job_id)
        error = last_error(job_log)
        if error is not None:
            lines.append(f"{prog}: {job_log}: {error}")
    return "\n".join(lines)


def last_error(log: str | os.PathLike) -> str | None:
    """The line of a job's log that most likely says why it failed: the last ``ERROR`` line
    (Kaldi's and our ``ERROR (prog[file:line]) message``), else the job's last line of
    output (a traceback's last line, bash's "command not found").  None if the job wrote
    nothing or there is no log (a Slurm task that never started)."""
    try:
        with open(log, "rb") as f:
            start = max(0, os.fstat(f.fileno()).st_size - _LOG_TAIL_BYTES)
            f.seek(start)
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return None
    if start == 0 and "#" in lines:  # the header ends with "#" (a command may span lines)
        lines = lines[lines.index("#") + 1:]
    output = [line for line in lines if line and not line.startswith("#")]
    errors = [line for line in output if line.startswith("ERROR")]
    line = (errors or output or [None])[-1]
    if line is not None and len(line) > _LINE_MAX:
        line = line[:_LINE_MAX] + " ..."
    return line
