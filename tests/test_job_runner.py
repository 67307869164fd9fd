"""utils/run_local.sh and utils/run_slurm.sh: run.pl's interface, logs and failure summary.

The Slurm backend is run against a fake ``sbatch`` that runs each array task in turn and
records its arguments, so the tests need no cluster.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from speechssl import jobs
from speechssl.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
RUN = {"local": str(ROOT / "utils" / "run_local.sh"), "slurm": str(ROOT / "utils" / "run_slurm.sh")}

# Runs the batch script once per array task id, synchronously, like `sbatch --wait`.
# FAKE_SBATCH_SKIP=N leaves task N out (a task Slurm killed); FAKE_SBATCH_REJECT=1 refuses;
# FAKE_SBATCH_HANG=1 submits and then waits forever (to test cancelling).
FAKE_SBATCH = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$(dirname "$0")/sbatch.args"
if [ -n "${FAKE_SBATCH_REJECT:-}" ]; then echo "sbatch: error: invalid partition" >&2; exit 1; fi
array= wait=
for arg in "$@"; do
  case $arg in --array=*) array=${arg#--array=} ;; --wait) wait=1 ;; esac
done
script=${!#}
[ -n "$wait" ] || { echo "fake sbatch: needs --wait" >&2; exit 2; }
range=${array%%\%*}
echo 4242
if [ -n "${FAKE_SBATCH_HANG:-}" ]; then exec sleep 60; fi
rc=0
for ((id = ${range%-*}; id <= ${range#*-}; id++)); do
  [ "$id" = "${FAKE_SBATCH_SKIP:-}" ] && continue
  SLURM_ARRAY_TASK_ID=$id bash "$script" > /dev/null 2>&1 || rc=1
done
exit $rc
"""

FAKE_SCANCEL = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$(dirname "$0")/scancel.args"
"""


def env_for(tmp_path: Path, sbatch: bool = False, **extra: str) -> dict[str, str]:
    """The environment path.sh gives (venv python, PYTHONPATH), plus the fake sbatch."""
    env = {k: v for k, v in os.environ.items() if k != "SLURM_EXTRA_ARGS"}
    path = [str(ROOT / ".venv" / "bin"), env["PATH"]]
    if sbatch:
        bin_dir = tmp_path / "fakebin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "sbatch").write_text(FAKE_SBATCH)
        (bin_dir / "scancel").write_text(FAKE_SCANCEL)
        for tool in "sbatch", "scancel":
            (bin_dir / tool).chmod(0o755)
        path.insert(0, str(bin_dir))
    env.update(PATH=os.pathsep.join(path), PYTHONPATH=str(ROOT / "ssl"), LC_ALL="C", **extra)
    return env


def run_jobs(tmp_path, *args, backend="local", **env_extra) -> subprocess.CompletedProcess:
    env = env_for(tmp_path, sbatch=backend == "slurm", **env_extra)
    return subprocess.run(
        [RUN[backend], *map(str, args)], cwd=tmp_path, env=env, capture_output=True, text=True
    )


LOG_FORMAT = re.compile(
    r"# (?P<cmd>.*)\n"
    r"# Started at \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \S+ \d{4}\n"
    r"(?:# Running on \S+\n)?"
    r"#\n"
    r"(?P<output>(?:.*\n)*?)"
    r"# Accounting: time=\d+ threads=(?P<threads>\d+)\n"
    r"# Ended \(code (?P<code>\d+)\) at .+, elapsed time \d+ seconds\n\Z"
)


def read_log(path: Path) -> dict[str, str]:
    text = path.read_text()
    m = LOG_FORMAT.fullmatch(text)
    assert m is not None, f"{path} is not in run.pl's log format:\n{text}"
    return m.groupdict()


@pytest.mark.parametrize("backend", ["local", "slurm"])
def test_job_variable_replaced_in_log_and_args(tmp_path, backend):
    proc = run_jobs(tmp_path, "JOB=1:3", "exp/log/echo.JOB.log", "echo", "id=JOB", backend=backend)
    assert proc.returncode == 0, proc.stderr
    if backend == "local":
        assert proc.stderr == ""  # quiet on success, like run.pl
    else:
        assert "submitted Slurm job 4242, script exp/log/q/echo.sh" in proc.stderr
        # The reaper was told the job ended: it cancelled nothing.
        assert not (tmp_path / "fakebin" / "scancel.args").exists()
        assert not (tmp_path / "exp/log/q/echo.cancel.log").exists()
    for i in 1, 2, 3:
        log = read_log(tmp_path / f"exp/log/echo.{i}.log")
        assert log == {"cmd": f"echo id={i}", "output": f"id={i}\n", "threads": "1", "code": "0"}


def test_any_variable_name_and_start_are_allowed(tmp_path):
    proc = run_jobs(tmp_path, "SPLIT=2:3", "log/s.SPLIT.log", "echo", "SPLIT-of-JOB")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "log/s.1.log").exists()
    assert read_log(tmp_path / "log/s.3.log")["output"] == "3-of-JOB\n"


def test_single_job_form(tmp_path):
    proc = run_jobs(tmp_path, "--num-threads", "4", "log/one.log", "echo", "JOB")
    assert proc.returncode == 0, proc.stderr
    log = read_log(tmp_path / "log/one.log")
    assert (log["output"], log["threads"], log["code"]) == ("JOB\n", "4", "0")


@pytest.mark.parametrize(
    "args, output",
    [
        (["echo JOB | tr 12 ab > out.JOB"], ""),  # one argument: run as a command line
        (["echo", "JOB", "|", "tr", "12", "ab", ">", "out.JOB"], ""),  # run.pl's \| form
        (["echo", "a  b", "|", "cat"], "a  b\n"),  # an argument with spaces stays one word
        (["printf", "[%s]", "", "x"], "[][x]\n"),  # an empty argument is kept
    ],
    ids=["one-string", "escaped-pipe", "spaces-kept", "empty-arg"],
)
def test_command_is_one_bash_line(tmp_path, args, output):
    proc = run_jobs(tmp_path, "JOB=1:2", "log/p.JOB.log", *args)
    assert proc.returncode == 0, proc.stderr
    assert read_log(tmp_path / "log/p.1.log")["output"] == output
    if "out.JOB" in args[-1]:
        assert [(tmp_path / f"out.{i}").read_text() for i in (1, 2)] == ["a\n", "b\n"]


def test_failures_are_counted_and_logged(tmp_path):
    proc = run_jobs(tmp_path, "JOB=1:3", "log/f.JOB.log", "[ JOB != 2 ] || exit 3")
    assert proc.returncode == 1
    assert proc.stderr == "run_local.sh: 1 / 3 failed, log is in log/f.2.log\n"
    assert [read_log(tmp_path / f"log/f.{i}.log")["code"] for i in (1, 2, 3)] == ["0", "3", "0"]

    proc = run_jobs(tmp_path, "JOB=1:3", "log/g.JOB.log", "[ JOB = 2 ]")
    assert proc.stderr == "run_local.sh: 2 / 3 failed, log is in log/g.JOB.log\n"


def test_failure_summary_quotes_each_failed_jobs_error(tmp_path):
    # Job 2's last ERROR line, though output follows it; job 3 has none: its last line
    # (here a traceback's).  The header and trailer of the log are not the job's output.
    command = (
        "case JOB in 1) true ;; "
        '2) echo "ERROR (prog[a.py:3]) first"; echo "ERROR (prog[a.py:9]) cannot read x.2" >&2;'
        ' echo "LOG (prog[a.py:10]) cleaning up"; exit 1 ;; '
        "3) printf 'Traceback:\\n  File x\\nValueError: bad 3\\n'; exit 2 ;; esac"
    )
    proc = run_jobs(tmp_path, "JOB=1:3", "log/e.JOB.log", command)
    assert proc.returncode == 1
    assert proc.stderr == (
        "run_local.sh: 2 / 3 failed, log is in log/e.JOB.log\n"
        "run_local.sh: log/e.2.log: ERROR (prog[a.py:9]) cannot read x.2\n"
        "run_local.sh: log/e.3.log: ValueError: bad 3\n"
    )


def test_failure_summary_quotes_only_the_first_failed_jobs(tmp_path):
    proc = run_jobs(tmp_path, "JOB=1:5", "log/e.JOB.log", 'echo "ERROR (p[a.py:1]) jJOB"; false')
    quoted = proc.stderr.splitlines()[1:]
    assert quoted == [f"run_local.sh: log/e.{i}.log: ERROR (p[a.py:1]) j{i}" for i in (1, 2, 3)]


def test_failure_inside_a_pipe_fails_the_job(tmp_path):
    proc = run_jobs(tmp_path, "log/pipe.log", "false", "|", "cat")
    assert proc.returncode == 1
    assert read_log(tmp_path / "log/pipe.log")["code"] == "1"


def max_overlap(events: list[str]) -> int:
    running = peak = 0
    for event in events:
        running += 1 if event.startswith("start") else -1
        peak = max(peak, running)
    return peak


def test_max_jobs_run_limits_concurrency(tmp_path):
    # Each job records start and end under a lock; the runner must never have 3 between.
    command = (
        "flock ev.lock -c 'echo start JOB >> events'; sleep 0.2; "
        "flock ev.lock -c 'echo end JOB >> events'"
    )
    proc = run_jobs(tmp_path, "--max-jobs-run", "2", "JOB=1:5", "log/c.JOB.log", command)
    assert proc.returncode == 0, proc.stderr
    events = (tmp_path / "events").read_text().splitlines()
    assert sorted(events) == sorted(f"{e} {i}" for e in ("start", "end") for i in range(1, 6))
    assert max_overlap(events) <= 2


def test_jobs_run_at_once_by_default(tmp_path):
    # A barrier: each job waits (up to 10 s) until all three have started, so the jobs only
    # succeed if the runner starts them together.
    command = (
        "echo JOB >> started; for i in $(seq 100); do "
        "[ $(wc -l < started) -ge 3 ] && exit 0; sleep 0.1; done; exit 1"
    )
    proc = run_jobs(tmp_path, "JOB=1:3", "log/b.JOB.log", command)
    assert proc.returncode == 0, proc.stderr


RANGE_FORM = "need JOB=START:END, 1 <= START <= END"


@pytest.mark.parametrize(
    "args, message",
    [
        (["JOB=3:1", "log/x.JOB.log", "true"], f"invalid job range 'JOB=3:1': {RANGE_FORM}"),
        (["JOB=1:0", "log/x.JOB.log", "true"], f"invalid job range 'JOB=1:0': {RANGE_FORM}"),
        (["JOB=1:-2", "log/x.JOB.log", "true"], f"invalid job range 'JOB=1:-2': {RANGE_FORM}"),
        (["JOB=0:2", "log/x.JOB.log", "true"], f"invalid job range 'JOB=0:2': {RANGE_FORM}"),
        (["JOB=a:b", "log/x.JOB.log", "true"], "invalid job range 'JOB=a:b'"),
        (["JOB=1:", "log/x.JOB.log", "true"], "invalid job range 'JOB=1:'"),
        (["JOB=1:2", "log/x.log", "true"], "2 jobs would share one log file 'log/x.log'"),
        (["--bogus", "1", "log/x.log", "true"], "unknown option '--bogus'"),
        (["--max-jobs-run", "0", "log/x.log", "true"], "--max-jobs-run needs an integer >= 1"),
        (["--gpu", "log/x.log", "true"], "--gpu needs an integer >= 0, not 'log/x.log'"),
        (["JOB=1:2", "log/x.JOB.log"], "expected a log file and a command"),
    ],
    ids=str.split(
        "reversed nj-0 nj-negative start-0 not-numbers no-end one-log unknown max-jobs-0 gpu no-cmd"
    ),
)
def test_bad_command_lines(tmp_path, args, message):
    proc = run_jobs(tmp_path, *args)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR (run_local.sh[")
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no traceback
    assert not (tmp_path / "log").exists()


def test_help(tmp_path):
    proc = run_jobs(tmp_path, "--help")
    assert proc.returncode == 0
    assert proc.stderr.startswith("Usage: run_local.sh [options] [JOB=START:END] <log-file>")


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def is_gone(pid: int) -> bool:
    """Dead or a zombie (a container's init may be slow to reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_kills_all_jobs(tmp_path, sig):
    # Each job starts a background sleep in its process group and records its pid.
    command = "sleep 60 & echo $! > pid.JOB; wait"
    # The runner keeps an ignored signal ignored (nohup); a suite started in the background
    # of a script inherits SIGINT ignored, so give the runner the default disposition.
    runner = subprocess.Popen(
        [RUN["local"], "JOB=1:3", "log/k.JOB.log", command],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL),
    )
    pid_files = [tmp_path / f"pid.{i}" for i in (1, 2, 3)]
    wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pid_files))
    runner.send_signal(sig)
    _, stderr = runner.communicate(timeout=20)
    assert runner.returncode == 128 + sig
    assert f"run_local.sh: stopped by signal {int(sig)}; its jobs were killed" in stderr
    for pid_file in pid_files:
        wait_for(lambda p=pid_file: is_gone(int(p.read_text())), timeout=5)


# ---- jobs die with their step, even on kill -9 of its process group ----


def live_procs(marker: str) -> dict[int, list[str]]:
    """The live (not zombie) processes whose command line contains ``marker``: pid -> argv."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:  # it has just ended
            continue
        pid = int(cmdline.parent.name)
        if any(marker.encode() in arg for arg in argv) and not is_gone(pid):
            found[pid] = [arg.decode(errors="replace") for arg in argv if arg]
    return found


def start_step(tmp_path: Path, backend: str, *args: str, **env: str) -> subprocess.Popen:
    """A step script that calls the runner, in its own process group as a shell job is."""
    step = f'echo "step starts" >&2; {shlex.quote(RUN[backend])} "$@"; echo "step ends" >&2'
    return subprocess.Popen(
        ["bash", "-c", step, "step", *args],
        cwd=tmp_path,
        env=env_for(tmp_path, sbatch=backend == "slurm", **env),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_sigkill_of_the_step_kills_its_jobs(tmp_path):
    # The jobs run a copy of sleep whose name is unique, so that they can be found by name.
    marker = f"sleep_{uuid.uuid4().hex}"
    shutil.copy2(shutil.which("sleep"), tmp_path / marker)
    command = f"./{marker} 60 & ./{marker} 60; wait"  # two processes in each job's group
    step = start_step(tmp_path, "local", "JOB=1:2", "log/k.JOB.log", command)

    def sleeping() -> int:
        return sum(argv[0] == f"./{marker}" for argv in live_procs(marker).values())

    try:
        wait_for(lambda: sleeping() == 4, timeout=30)
        os.killpg(step.pid, signal.SIGKILL)
        step.stderr.close()  # jobs that outlived the step would hold it open
        step.wait(timeout=20)
        deadline = time.monotonic() + 20
        while (left := live_procs(marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"jobs outlived their step: {[argv[-1][:60] for argv in left.values()]}"
    finally:
        for pid in live_procs(marker):  # after a failure, leave nothing running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_finished_jobs_leave_no_watcher(tmp_path):
    # The watcher must not outlive its job, hold the job's log, show in its output or change
    # its exit code; and the job's command must not hold the watcher's pipe.
    marker = uuid.uuid4().hex
    command = f'echo {marker}; for fd in /proc/$$/fd/*; do readlink "$fd"; done; exit JOB'
    proc = run_jobs(tmp_path, "JOB=1:2", "log/w.JOB.log", command)
    assert proc.returncode == 1
    assert proc.stderr.startswith("run_local.sh: 2 / 2 failed, log is in log/w.JOB.log\n")
    assert not live_procs(marker)  # each job reaped its watcher before it ended
    for i in 1, 2:
        log = read_log(tmp_path / f"log/w.{i}.log")
        assert log["code"] == str(i)
        fds = log["output"].splitlines()[1:]
        assert log["output"].startswith(f"{marker}\n")
        assert not [fd for fd in fds if fd.startswith("pipe:")], fds


def test_sigkill_of_the_step_cancels_its_slurm_job(tmp_path):
    step = start_step(tmp_path, "slurm", "JOB=1:2", "log/h.JOB.log", "true", FAKE_SBATCH_HANG="1")
    assert step.stderr.readline() == "step starts\n"
    assert "submitted Slurm job 4242" in step.stderr.readline()
    os.killpg(step.pid, signal.SIGKILL)  # the runner and the waiting sbatch alike
    _, stderr = step.communicate(timeout=20)
    assert "step ends" not in stderr
    scancel_args = tmp_path / "fakebin" / "scancel.args"
    wait_for(lambda: scancel_args.exists() and scancel_args.read_text() == "4242\n", timeout=20)
    note = (tmp_path / "log/q/h.cancel.log").read_text()
    assert "run_slurm.sh died while Slurm job 4242 was running; cancelling it" in note


# ---- Slurm backend, against the fake sbatch ----


def test_slurm_maps_resources_and_writes_script(tmp_path):
    proc = run_jobs(
        tmp_path,
        "--mem", "2G", "--gpu", "1", "--num-threads", "2", "--time", "1:00:00",
        "--max-jobs-run", "2", "JOB=1:3", "exp/log/make_fbank.JOB.log", "echo", "JOB",
        backend="slurm", SLURM_EXTRA_ARGS="--partition=p1 --account='my acct'",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "fakebin" / "sbatch.args").read_text().splitlines()
    qdir = "exp/log/q"
    assert args == [
        "--parsable", "--wait", "--array=1-3%2", "--job-name=make_fbank",
        f"--output={qdir}/make_fbank.%a.out", "--cpus-per-task=2", "--mem=2G", "--gres=gpu:1",
        "--time=1:00:00", "--partition=p1", "--account=my acct", f"{qdir}/make_fbank.sh",
    ]  # fmt: skip
    for i in 1, 2, 3:
        log = read_log(tmp_path / f"exp/log/make_fbank.{i}.log")
        assert (log["output"], log["threads"], log["code"]) == (f"{i}\n", "2", "0")
        assert "# Running on " in (tmp_path / f"exp/log/make_fbank.{i}.log").read_text()
        assert (tmp_path / f"{qdir}/make_fbank.{i}.status").read_text() == "0\n"


def test_slurm_counts_failures_from_status_files(tmp_path):
    proc = run_jobs(tmp_path, "JOB=1:3", "log/f.JOB.log", "exit $((JOB - 1))", backend="slurm")
    assert proc.returncode == 1
    assert proc.stderr.endswith("run_slurm.sh: 2 / 3 failed, log is in log/f.JOB.log\n")
    assert [read_log(tmp_path / f"log/f.{i}.log")["code"] for i in (1, 2, 3)] == ["0", "1", "2"]


def test_slurm_task_without_status_is_a_failure(tmp_path):
    (tmp_path / "log/q").mkdir(parents=True)
    (tmp_path / "log/q/t.2.status").write_text("0\n")  # stale, from an earlier run
    proc = run_jobs(tmp_path, "JOB=1:3", "log/t.JOB.log", "true", backend="slurm",
                    FAKE_SBATCH_SKIP="2")  # fmt: skip
    assert proc.returncode == 1
    assert "job 2 wrote no exit status (killed by Slurm?): see log/q/t.2.out" in proc.stderr
    assert proc.stderr.endswith("run_slurm.sh: 1 / 3 failed, log is in log/t.2.log\n")


def test_slurm_sources_path_sh_in_the_job(tmp_path):
    (tmp_path / "path.sh").write_text("export FROM_PATH_SH=yes\n")
    proc = run_jobs(tmp_path, "log/e.log", 'echo "$FROM_PATH_SH"', backend="slurm")
    assert proc.returncode == 0, proc.stderr
    assert read_log(tmp_path / "log/e.log")["output"] == "yes\n"


def test_slurm_rejected_submission(tmp_path):
    proc = run_jobs(tmp_path, "log/r.log", "true", backend="slurm", FAKE_SBATCH_REJECT="1")
    assert proc.returncode == 1
    assert "sbatch: error: invalid partition" in proc.stderr
    assert "sbatch failed (exit status 1)" in proc.stderr
    assert not (tmp_path / "fakebin" / "scancel.args").exists()  # no id, nothing to cancel


def test_slurm_signal_cancels_the_job(tmp_path):
    runner = subprocess.Popen(
        [RUN["slurm"], "JOB=1:2", "log/h.JOB.log", "true"],
        cwd=tmp_path,
        env=env_for(tmp_path, sbatch=True, FAKE_SBATCH_HANG="1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "submitted Slurm job 4242" in runner.stderr.readline()
    runner.send_signal(signal.SIGTERM)
    _, stderr = runner.communicate(timeout=20)
    assert runner.returncode == 128 + signal.SIGTERM
    assert (tmp_path / "fakebin" / "scancel.args").read_text() == "4242\n"
    assert "run_slurm.sh: stopped by signal 15" in stderr
    assert not (tmp_path / "log/q/h.cancel.log").exists()  # the reaper left it to the runner


def test_slurm_without_sbatch(tmp_path):
    env = env_for(tmp_path)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "sbatch").exists())  # fmt: skip
    proc = subprocess.run(
        [RUN["slurm"], "log/n.log", "true"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "sbatch not found on PATH" in proc.stderr


# ---- the pieces, in-process ----


def test_parse_job_range():
    assert jobs.parse_job_range("JOB=1:4") == jobs.JobRange("JOB", 1, 4)
    assert jobs.parse_job_range("JOB=7") == jobs.JobRange("JOB", 7, 7)
    assert jobs.parse_job_range("exp/a=b/x.log") is None
    for bad in "JOB=3:1", "JOB=1:0", "JOB=1:-2", "JOB=0":
        with pytest.raises(InputError, match="need JOB=START:END, 1 <= START <= END"):
            jobs.parse_job_range(bad)


def test_join_command_matches_run_pl():
    assert jobs.join_command(["copy", "ark:gunzip -c a.gz|", "ark,t:-", "\\|", "wc"]) == (
        "copy 'ark:gunzip -c a.gz|' ark,t:- \\| wc"
    )
    assert jobs.join_command(["echo", "it's a b"]) == "echo 'it'\"'\"'s a b'"


def test_slurm_job_name():
    assert jobs.slurm_job_name("exp/x/log/make_fbank.JOB.log", "JOB") == "make_fbank"
    assert jobs.slurm_job_name("log/JOB.log", "JOB") == "job"
    assert jobs.slurm_job_name("log/train.log", None) == "train"
