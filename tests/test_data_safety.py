"""Data safety (issue 18): a failed step or fix leaves the data dir as it was, a re-run after
fixing the cause works, a full disk leaves no temporaries, and many failures still get the
95%-rule message instead of a SIGPIPE exit."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from conftest import sh, synth_audio, write_wav
from corpus_fixtures import tiny_corpus_fixture  # noqa: F401  (the tiny_corpus fixture)
from speechssl import fileio
from speechssl.data import edit
from speechssl.data.ark import ArkScpWriter
from speechssl.data.datadir import TABLES, DataDir
from speechssl.data.edit import ALIGNMENT_FILES, fix_data_dir
from speechssl.data.table import read_table, write_table
from speechssl.data.validate import Requirements, validate_data_dir
from speechssl.errors import SpeechSSLError

FBANK_CONF = "--sample-frequency=16000\n--num-mel-bins=40\n--dither=0\n--snip-edges=false\n"
needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(),
                                    reason="needs /dev/full (Linux) for a real ENOSPC")


def _make_fbank(data: Path, root: Path, featdir: Path, nj: object = 1, check: bool = True):
    conf = data.parent / "fbank.conf"
    conf.write_text(FBANK_CONF)
    return sh(f"steps/make_fbank.sh --nj {nj} --fbank-config {conf} {data} "
              f"{data.parent}/log {featdir}", cwd=root, check=check)


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``, except split<N>*: the
    per-job split is a cache the step refreshes before its jobs, as Kaldi's steps do; and
    the step lock .lock, where each run records itself."""
    out: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0].startswith("split") or rel.parts == (".lock",):
            continue
        out[str(rel)] = None if path.is_dir() else path.read_bytes()
    return out


def _load(scp: Path) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in kaldiio.load_scp(str(scp)).items()}


def _assert_same_arrays(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    assert sorted(ours) == sorted(ref)
    for key, mat in ref.items():
        np.testing.assert_array_equal(ours[key], mat, err_msg=key)


# --- utils/fix_data_dir.sh -------------------------------------------------------------

def test_fix_data_dir_filters_features_cmvn_and_alignments(tiny_corpus, root, tmp_path):
    """A featurized dir (frame_shift, feats.scp, cmvn.scp, CTMs) used to crash with
    SameFileError after cutting utt2spk but not the CTMs."""
    data = tmp_path / "test"
    shutil.copytree(tiny_corpus / "data" / "test", data)
    _make_fbank(data, root, tmp_path / "feats", nj=2)
    sh(f"steps/compute_cmvn_stats.sh {data} {tmp_path}/log {tmp_path}/cmvn", cwd=root)
    utts = list(read_table(data / "utt2spk"))
    (data / "phone_ali").write_text("".join(f"{u} 3 3 7 7 7\n" for u in utts))
    fixed = tmp_path / "fixed"
    sh(f"cp -r {data} {fixed}")
    # A stray utterance of a stray speaker (in feats.scp, utt2spk, cmvn.scp and a CTM, but
    # without audio), and an utterance whose features are missing.
    stray, dropped = "zz-s999-0001", utts[3]
    feats = read_table(fixed / "feats.scp")
    feats[stray] = feats.pop(dropped)
    write_table(fixed / "feats.scp", feats)
    some_stats = next(iter(read_table(data / "cmvn.scp").values()))
    for name, line in [("utt2spk", f"{stray} zz-s999\n"), ("spk2utt", f"zz-s999 {stray}\n"),
                       ("cmvn.scp", f"zz-s999 {some_stats}\n"),
                       ("words.ctm", f"{stray} 1 0.000 0.100 stray\n")]:
        with open(fixed / name, "a") as f:
            f.write(line)
    originals = {p.name: p.read_bytes() for p in fixed.iterdir() if p.is_file()}

    sh(f"utils/fix_data_dir.sh {fixed}", cwd=root)

    sh(f"utils/validate_data_dir.sh --need-feats {fixed}", cwd=root)
    d = validate_data_dir(fixed, Requirements(feats=True))
    kept = [u for u in utts if u != dropped]
    assert d.utts == kept
    for name in DataDir(data).present_tables():
        ref = read_table(data / name)
        if TABLES[name].keyed_by in ("utt", "rec"):  # no segments: rec == utt
            ref = {k: ref[k] for k in kept}
        elif name == "spk2utt":
            ref = {s: " ".join(u for u in v.split() if u != dropped) for s, v in ref.items()}
        assert d.table(name) == ref, name
    for name in ALIGNMENT_FILES:
        ref = [ln for ln in (data / name).read_text().splitlines(keepends=True)
               if ln.split()[0] != dropped]
        assert (fixed / name).read_text() == "".join(ref), name
    _assert_same_arrays(_load(fixed / "feats.scp"),
                        {u: m for u, m in _load(data / "feats.scp").items() if u != dropped})
    _assert_same_arrays(_load(fixed / "cmvn.scp"), _load(data / "cmvn.scp"))
    assert (fixed / "frame_shift").read_bytes() == (data / "frame_shift").read_bytes()
    backup = {p.name: p.read_bytes() for p in (fixed / ".backup").iterdir()}
    assert backup == {n: b for n, b in originals.items() if n in backup}
    assert set(backup) >= {"utt2spk", "feats.scp", "cmvn.scp", "words.ctm", "phone_ali"}
    assert not [p for p in fixed.iterdir() if p.name.startswith(".fix_data_dir")]


@pytest.mark.parametrize("target,nth", [("write_table", 3), ("copyfile", 2)])
def test_fix_data_dir_failure_leaves_every_file_as_it_was(data_dir, monkeypatch, target, nth):
    """A full disk on the 3rd new table (or the 2nd backup copy) used to leave some tables
    rewritten, others not, and .backup overwritten."""
    (data_dir / "frame_shift").write_text("0.01\n")
    (data_dir / "words.ctm").write_text("spk0-utt0 1 0.0 0.5 a\nspk1-utt0 1 0.0 0.3 b\n")
    text = read_table(data_dir / "text")
    del text["spk1-utt0"]
    write_table(data_dir / "text", text)
    (data_dir / ".backup").mkdir()
    (data_dir / ".backup" / "utt2spk").write_text("an older backup\n")
    before = _snapshot(data_dir)
    calls = []
    real = edit.write_table if target == "write_table" else shutil.copyfile

    def fail_at_nth(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == nth:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(edit if target == "write_table" else edit.shutil, target, fail_at_nth)
    with pytest.raises(OSError, match="No space left"):
        fix_data_dir(data_dir)
    assert len(calls) == nth
    assert _snapshot(data_dir) == before
    monkeypatch.undo()
    fix_data_dir(data_dir)  # and with space, it goes through
    assert "spk1-utt0" not in validate_data_dir(data_dir).utts
    assert (data_dir / "words.ctm").read_text() == "spk0-utt0 1 0.0 0.5 a\n"


# --- steps/make_feats.sh: a failed run changes nothing ----------------------------------

def _two_utterance_dir(base: Path, wav0: Path, wav1: Path) -> Path:
    data = base / "d"
    data.mkdir(parents=True, exist_ok=True)
    write_table(data / "wav.scp", {"spk0-utt0": str(wav0), "spk0-utt1": str(wav1)})
    write_table(data / "utt2spk", {"spk0-utt0": "spk0", "spk0-utt1": "spk0"})
    write_table(data / "spk2utt", {"spk0": ["spk0-utt0", "spk0-utt1"]})
    return data


def test_failed_make_fbank_changes_nothing_and_rerun_after_fix_works(root, tmp_path):
    """An 8 kHz file under a 16 kHz config: the step used to move the good outputs away,
    leave a partial feats.scp, overwrite the archives the old feats.scp pointed into, and
    then fail its own validation on the re-run."""
    wav = {name: write_wav(tmp_path / "wav" / f"{name}.wav", synth_audio(seed, 0.8, rate), rate)
           for name, seed, rate in [("a", 1, 16000), ("b", 2, 16000), ("b8k", 3, 8000),
                                    ("c", 4, 16000)]}
    data = _two_utterance_dir(tmp_path, wav["a"], wav["b"])
    featdir = tmp_path / "feats"
    _make_fbank(data, root, featdir)
    old = _load(data / "feats.scp")

    _two_utterance_dir(tmp_path, wav["a"], wav["b8k"])
    before, feats_before = _snapshot(data), _snapshot(featdir)
    proc = _make_fbank(data, root, featdir, check=False)
    assert _snapshot(data) == before and _snapshot(featdir) == feats_before
    _assert_same_arrays(_load(data / "feats.scp"), old)
    assert proc.returncode == 1 and "only 1 of 2 utterances" in proc.stderr
    assert "spk0-utt1" in proc.stderr and f"{data} is unchanged" in proc.stderr

    _two_utterance_dir(tmp_path, wav["a"], wav["c"])
    _make_fbank(data, root, featdir)
    fresh = _two_utterance_dir(tmp_path / "fresh", wav["a"], wav["c"])
    _make_fbank(fresh, root, tmp_path / "fresh_feats")
    new = _load(data / "feats.scp")
    _assert_same_arrays(new, _load(fresh / "feats.scp"))
    assert not np.array_equal(new["spk0-utt1"], old["spk0-utt1"])
    assert (data / ".backup" / "feats.scp").read_bytes() == before["feats.scp"]
    assert read_table(data / "utt2num_frames") == {u: str(len(m)) for u, m in new.items()}
    assert sorted(p.name for p in featdir.iterdir()) == ["raw_fbank_d.1.ark",
                                                          "raw_fbank_d.1.scp"]


@pytest.mark.parametrize("nj", ["0", "-2", "10", "two"])
def test_nj_out_of_range_is_one_line_and_changes_nothing(data_dir, root, tmp_path, nj):
    """--nj 0 used to end in an IndexError traceback after the outputs had been moved."""
    featdir = tmp_path / "feats"
    _make_fbank(data_dir, root, featdir, nj=3)
    before, feats_before = _snapshot(data_dir), _snapshot(featdir)
    proc = _make_fbank(data_dir, root, featdir, nj=nj, check=False)
    assert _snapshot(data_dir) == before and _snapshot(featdir) == feats_before
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"--nj must be between 1 and 9 (utterances in {data_dir}), got '{nj}'" in proc.stderr


@pytest.mark.parametrize("n", ["0", "-2"])
def test_split_data_into_no_parts_is_an_error_not_a_traceback(data_dir, root, n):
    proc = sh(f"utils/split_data.sh {data_dir} {n}", cwd=root, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot split into {n} parts: need 1 to 3 (only 3 speakers)" in proc.stderr


def test_stale_feature_tables_do_not_block_make_fbank(data_dir, root, tmp_path):
    """What an older failed run left (a partial, unsorted feats.scp, a cmvn.scp of another
    speaker set) used to fail the re-run's validation."""
    featdir = tmp_path / "feats"
    _make_fbank(data_dir, root, featdir, nj=2)
    expected = _load(data_dir / "feats.scp")
    lines = (data_dir / "feats.scp").read_text().splitlines(keepends=True)
    (data_dir / "feats.scp").write_text("".join([lines[2], lines[0]] + lines[3:]))
    (data_dir / "utt2num_frames").write_text("spk0-utt0 7\n")
    (data_dir / "cmvn.scp").write_text("nobody /x/cmvn.ark:9\n")
    _make_fbank(data_dir, root, featdir, nj=2)
    _assert_same_arrays(_load(data_dir / "feats.scp"), expected)
    validate_data_dir(data_dir, Requirements(feats=True))
    assert not (data_dir / "cmvn.scp").exists()
    assert (data_dir / ".backup" / "cmvn.scp").read_text() == "nobody /x/cmvn.ark:9\n"


def test_stale_cmvn_scp_does_not_block_compute_cmvn_stats(data_dir, root, tmp_path):
    _make_fbank(data_dir, root, tmp_path / "feats", nj=2)
    (data_dir / "cmvn.scp").write_text("nobody /x/cmvn.ark:9\n")
    sh(f"steps/compute_cmvn_stats.sh {data_dir} {tmp_path}/log {tmp_path}/cmvn", cwd=root)
    feats = _load(data_dir / "feats.scp")
    cmvn = _load(data_dir / "cmvn.scp")
    assert sorted(cmvn) == ["spk0", "spk1", "spk2"]
    frames = np.concatenate([feats[u] for u in DataDir(data_dir).spk2utt()["spk1"]])
    np.testing.assert_allclose(cmvn["spk1"][0, :-1], frames.sum(0, dtype=np.float64),
                               rtol=1e-6)
    assert cmvn["spk1"][0, -1] == len(frames)


# --- a full disk -------------------------------------------------------------------------

@needs_dev_full
@pytest.mark.parametrize("frames", [2, 4000], ids=["fails-at-close", "fails-in-write"])
def test_ark_writer_removes_temporaries_on_a_full_disk(tmp_path, frames):
    """The archive's temporary is /dev/full: every write of it fails with ENOSPC, which a
    small archive only sees when it is closed (it used to keep f.ark.tmp and f.scp.tmp)."""
    (tmp_path / "f.ark.tmp").symlink_to("/dev/full")
    with pytest.raises(SpeechSSLError,
                       match=rf"cannot write {tmp_path}/f\.ark: No space left on device"):
        with ArkScpWriter(tmp_path / "f.ark", tmp_path / "f.scp") as writer:
            writer.write("u1", np.ones((frames, 40), np.float32))
    assert sorted(os.listdir(tmp_path)) == []


def test_ark_writer_that_cannot_open_its_scp_leaves_no_archive(tmp_path):
    (tmp_path / "f.scp.tmp").mkdir()
    with pytest.raises(IsADirectoryError):
        with ArkScpWriter(tmp_path / "f.ark", tmp_path / "f.scp"):
            pass
    assert sorted(os.listdir(tmp_path)) == ["f.scp.tmp"]


def test_ark_writer_names_the_final_archive_in_the_scp(tmp_path):
    with ArkScpWriter(tmp_path / "f.ark.new", tmp_path / "f.scp",
                      ark_in_scp=tmp_path / "f.ark") as writer:
        writer.write("u1", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert (tmp_path / "f.scp").read_text().startswith(f"u1 {tmp_path}/f.ark:")
    os.replace(tmp_path / "f.ark.new", tmp_path / "f.ark")
    np.testing.assert_array_equal(_load(tmp_path / "f.scp")["u1"],
                                  np.arange(6, dtype=np.float32).reshape(2, 3))


def test_atomic_write_removes_its_temporary_on_enospc(tmp_path, monkeypatch):
    """A guard (atomic_write already cleaned up): ENOSPC at fsync leaves nothing behind."""
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OSError, match="No space"), fileio.atomic_write(tmp_path / "t") as f:
        f.write("x\n")
    assert os.listdir(tmp_path) == []


@needs_dev_full
def test_make_fbank_on_a_full_disk_names_the_file_and_changes_nothing(data_dir, root,
                                                                      tmp_path):
    featdir = tmp_path / "feats"
    featdir.mkdir()
    (featdir / "raw_fbank_train.1.ark.new.tmp").symlink_to("/dev/full")
    before = _snapshot(data_dir)
    proc = _make_fbank(data_dir, root, featdir, nj=1, check=False)
    assert proc.returncode == 1
    assert (f"cannot write {featdir}/raw_fbank_train.1.ark.new: No space left on device"
            in proc.stderr), proc.stderr
    assert f"{data_dir} is unchanged" in proc.stderr
    assert os.listdir(featdir) == [] and _snapshot(data_dir) == before


# --- many failures: no SIGPIPE -----------------------------------------------------------

def test_many_failed_utterances_still_get_the_95_percent_message(root, tmp_path):
    """With 10,001 failures, `filter_scp.sh | head -n 10` died of SIGPIPE under pipefail
    and the step exited before saying why."""
    data = tmp_path / "many"
    data.mkdir()
    utts = [f"spk0-{i:05d}" for i in range(10001)]
    write_table(data / "wav.scp", {u: f"/nonexistent/{u}.wav" for u in utts})
    write_table(data / "utt2spk", {u: "spk0" for u in utts})
    write_table(data / "spk2utt", {"spk0": utts})
    proc = _make_fbank(data, root, tmp_path / "feats", check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "only 0 of 10001 utterances" in proc.stderr
    assert f"failed (first 10): {' '.join(utts[:10])} ;" in proc.stderr
    assert not (data / "feats.scp").exists()


def test_mini_eval_subsets_survive_many_speakers(root, tmp_path):
    """egs/mini stage 3's `awk | sort -n | head -n 1` exited 141 on 100,000 speakers (the
    minimum is now taken in local/mini/make_eval_subsets.sh)."""
    script = root / "local" / "mini" / "make_eval_subsets.sh"
    line = next(ln.strip() for ln in script.read_text().splitlines()
                if ln.strip().startswith("min_utts="))
    spk2utt = tmp_path / "data" / "train" / "spk2utt"
    spk2utt.parent.mkdir(parents=True)
    spk2utt.write_text("".join(f"s{i:06d}{' u' * (4 + i % 7)}\n" for i in range(100_000)))
    src = "data/train"
    assert sh(f"set -euo pipefail; src={src}; {line}; echo $min_utts",
              cwd=tmp_path).stdout == "4\n"
