"""Guards of the steps against silently wrong or corrupted outputs (issue 15): a split is
re-made when its sources' contents change, whatever their modification times; a system
error (full disk, unwritable folder) ends a program with one line, not a traceback; and a
second step on a dir that a running step holds fails at once, naming the holder."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
from pathlib import Path

import kaldiio
import pytest

from conftest import ROOT, recipe_env, sh, synth_audio, write_wav
from speechssl import cli, fileio
from speechssl.bin import copy_data_dir
from speechssl.data.edit import SPLIT_HASH_FILE, split_data_dir
from speechssl.data.table import read_table

FBANK_CONF = "--sample-frequency=16000\n--num-mel-bins=40\n--dither=0\n--snip-edges=false\n"


def _repoint_keeping_mtime(data: Path, utt: str, wav: Path) -> None:
    """Point ``utt`` of wav.scp at ``wav`` and give wav.scp back its old times, as an edit
    within the same second, ``cp -p`` or ``touch -r`` would."""
    scp = data / "wav.scp"
    st = scp.stat()
    lines = [f"{utt} {wav}" if line.split()[0] == utt else line
             for line in scp.read_text().splitlines()]
    scp.write_text("\n".join(lines) + "\n")
    os.utime(scp, ns=(st.st_atime_ns, st.st_mtime_ns))


# ---- 1. split freshness by content ------------------------------------------------------

def test_unchanged_split_is_reused_untouched(data_dir):
    parts = split_data_dir(data_dir, 2)
    before = {p: p.stat().st_mtime_ns for p in (data_dir / "split2").rglob("*")}
    assert (data_dir / "split2" / SPLIT_HASH_FILE).is_file()
    assert split_data_dir(data_dir, 2) == parts
    after = {p: p.stat().st_mtime_ns for p in (data_dir / "split2").rglob("*")}
    assert after == before


def test_split_follows_an_edit_that_keeps_the_mtime_order(data_dir, tmp_path):
    split_data_dir(data_dir, 9, per_utt=True)
    new_wav = write_wav(tmp_path / "longer.wav", synth_audio(99, 1.5))
    _repoint_keeping_mtime(data_dir, "spk0-utt0", new_wav)
    part = split_data_dir(data_dir, 9, per_utt=True)[0]
    assert (part / "wav.scp").read_text() == f"spk0-utt0 {new_wav}\n"


def test_split_drops_a_table_gone_from_the_source(data_dir):
    split_data_dir(data_dir, 2)
    (data_dir / "text").unlink()
    for part in split_data_dir(data_dir, 2):
        assert not (part / "text").exists(), part


def test_make_fbank_after_a_same_mtime_edit_uses_the_new_audio(data_dir, root, tmp_path):
    conf = tmp_path / "fbank.conf"
    conf.write_text(FBANK_CONF)
    make = f"steps/make_fbank.sh --nj 2 --fbank-config {conf} {data_dir}"
    sh(make, cwd=root)
    assert read_table(data_dir / "utt2num_frames")["spk0-utt0"] == "60"  # 0.6 s
    new_wav = write_wav(tmp_path / "longer.wav", synth_audio(99, 1.5))
    _repoint_keeping_mtime(data_dir, "spk0-utt0", new_wav)
    sh(make, cwd=root)
    # snip-edges=false: (24000 + 80) // 160 frames of the new 1.5 s recording
    assert read_table(data_dir / "utt2num_frames")["spk0-utt0"] == "150"
    assert kaldiio.load_scp(str(data_dir / "feats.scp"))["spk0-utt0"].shape == (150, 40)


# ---- 3. system errors: one line, no traceback ------------------------------------------

@pytest.fixture
def restore_logging():
    """cli.run points the root logger at this test's stderr: put the handlers back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_os_error_is_one_error_line(capsys, restore_logging):
    def main(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "exp/x/raw.1.ark")

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, "prog")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR (prog[") and err.count("\n") == 1, err
    assert err.endswith("exp/x/raw.1.ark: No space left on device; free some space on that "
                        "disk or choose another output dir\n")


def test_full_disk_in_atomic_write_names_the_file_and_leaves_no_tmp(
        data_dir, tmp_path, monkeypatch, capsys, restore_logging):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    dest = tmp_path / "copy"
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda argv: copy_data_dir.main([str(data_dir), str(dest)]), "copy_data_dir")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{dest}/" in err and "No space left on device" in err, err
    assert [p.name for p in dest.iterdir()] == []


def test_unwritable_output_of_an_entry_point_is_one_line(data_dir, tmp_path):
    # As root (these tests' usual user) a chmod 500 folder stays writable: a regular file
    # where the output folder should be fails the same way, with a path and a reason.
    (tmp_path / "afile").write_text("")
    proc = subprocess.run(
        [".venv/bin/python", "-m", "speechssl.bin.copy_data_dir", str(data_dir),
         str(tmp_path / "afile" / "dest")],
        cwd=ROOT, env=recipe_env(), capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("ERROR (copy_data_dir[")
    assert str(tmp_path / "afile") in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_stdout_on_a_full_disk_is_one_line(data_dir, root):
    proc = sh(f"python -m speechssl.bin.utt2spk_to_spk2utt {data_dir}/utt2spk > /dev/full",
              cwd=root, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR (utt2spk_to_spk2utt[") and proc.stderr.count("\n") == 1
    assert "No space left on device" in proc.stderr, proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_cmvn_step_on_a_full_disk_leaves_no_tmp(data_dir, root, tmp_path):
    conf = tmp_path / "fbank.conf"
    conf.write_text(FBANK_CONF)
    sh(f"steps/make_fbank.sh --nj 1 --fbank-config {conf} {data_dir}", cwd=root)
    (data_dir / "cmvn.scp.tmp").symlink_to("/dev/full")  # the copy into the data dir fails
    proc = sh(f"steps/compute_cmvn_stats.sh {data_dir}", cwd=root, check=False)
    assert proc.returncode == 1 and "No space left on device" in proc.stderr, proc.stderr
    assert not os.path.lexists(data_dir / "cmvn.scp.tmp")
    assert not (data_dir / "cmvn.scp").exists()


# ---- 4. one step at a time per dir ------------------------------------------------------

HOLDER = """set -euo pipefail
. "$SPEECHSSL_ROOT/path.sh"
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$1"
echo locked
read -r _ || true  # until the test closes our stdin
"""


@pytest.fixture
def hold_lock(tmp_path):
    """Start a step-like shell that takes the lock on a dir and waits on its stdin."""
    script = tmp_path / "holder.sh"
    script.write_text(HOLDER)
    env = {**recipe_env(), "SPEECHSSL_ROOT": str(ROOT)}
    holders = []

    def hold(folder: Path) -> subprocess.Popen:
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(["bash", str(script), str(folder)], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        holders.append(proc)
        assert proc.stdout.readline() == "locked\n"
        return proc

    yield hold
    for proc in holders:
        proc.kill()
        proc.wait()


def _step(name: str, base: Path, data: Path) -> tuple[str, Path]:
    """A command line of ``name`` and the dir it locks; inputs just good enough to get to
    the lock."""
    conf = base / "fbank.conf"
    conf.write_text(FBANK_CONF)
    (base / "model.yaml").write_text("")
    (base / "exp").mkdir(exist_ok=True)
    (base / "exp" / "final.pt").write_bytes(b"")
    return {
        "make_fbank": (f"steps/make_fbank.sh --nj 2 --fbank-config {conf} {data}", data),
        "compute_cmvn_stats": (f"steps/compute_cmvn_stats.sh {data}", data),
        "train_ssl": (f"steps/train_ssl.sh {base}/model.yaml {data} {base}/exp", base / "exp"),
        "extract_ssl": (f"steps/extract_ssl.sh {base}/exp {data} {base}/dest", base / "dest"),
        # An evaluation's earlier results must survive a second one refused by the lock.
        "score_sv": (f"steps/score_sv.sh {data} {base}/trials {base}/sv", base / "sv"),
        "score_samediff": (f"steps/score_samediff.sh {data} {base}/words {base}/sd",
                           base / "sd"),
    }[name]


@pytest.mark.parametrize("step", ["make_fbank", "compute_cmvn_stats", "train_ssl",
                                  "extract_ssl", "score_sv", "score_samediff"])
def test_second_step_on_a_locked_dir_fails_at_once(data_dir, root, tmp_path, hold_lock,
                                                   step):
    command, locked = _step(step, tmp_path, data_dir)
    holder = hold_lock(locked)
    if step.startswith("score"):
        (locked / "results.json").write_text("{}\n")
    before = sorted(p.name for p in locked.iterdir())
    proc = subprocess.run(["bash", "-c", command], cwd=root, env=recipe_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert (f"{locked} is in use by another step (pid {holder.pid} on " in proc.stderr
            and "holder.sh" in proc.stderr), proc.stderr
    assert sorted(p.name for p in locked.iterdir()) == before  # nothing touched


def test_step_runs_once_the_holder_has_ended(data_dir, root, tmp_path, hold_lock):
    command, locked = _step("make_fbank", tmp_path, data_dir)
    holder = hold_lock(locked)
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
    sh(command, cwd=root)
    assert (data_dir / "feats.scp").is_file()
    assert "pid " in (data_dir / ".lock").read_text()  # the new holder recorded itself


def test_lock_of_a_killed_step_is_free(tmp_path, hold_lock):
    holder = hold_lock(tmp_path / "d")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    proc = sh(f'. utils/lock_dir.sh {tmp_path}/d && echo got it', cwd=ROOT)
    assert proc.stdout == "got it\n"


def test_jobs_do_not_inherit_the_lock(tmp_path, root):
    # The step's shell holds <dir>/.lock open; the runner's jobs must not, or a job left
    # behind would keep the dir locked.
    folder = tmp_path / "d"
    folder.mkdir()
    list_fds = 'for fd in /proc/$$/fd/*; do readlink "$fd" || true; done'
    proc = sh(f". utils/lock_dir.sh {folder}; {list_fds}; "
              f"run_local.sh {tmp_path}/fds.log '{list_fds}'", cwd=root)
    lock = str(folder / ".lock")
    assert lock in proc.stdout.splitlines()  # the step's shell: the test is not vacuous
    job_fds = (tmp_path / "fds.log").read_text().splitlines()
    assert lock not in job_fds, job_fds
