"""Kaldi data dirs: validation (each bad input names file, line or key), fix, split, subset,
and the utils/ wrappers around them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import sh
from speechssl.data.datadir import DataDir
from speechssl.data.edit import (
    fix_data_dir,
    split_data_dir,
    split_points,
    spread_per_speaker,
    write_subset,
)
from speechssl.data.table import read_table, write_table
from speechssl.data.validate import Requirements, validate_data_dir
from speechssl.errors import InputError


def test_valid_dir_passes_and_wrapper_says_so(data_dir):
    d = validate_data_dir(data_dir)
    assert len(d.utts) == 9 and len(d.spk2utt()) == 3
    out = sh(f"utils/validate_data_dir.sh {data_dir}", cwd=Path(__file__).parent.parent)
    assert "Successfully validated" in out.stderr


def _replace_line(path: Path, lineno: int, new: str | None) -> None:
    lines = path.read_text().splitlines(keepends=True)
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    path.write_text("".join(lines))


def _swap_lines(path: Path, a: int, b: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]
    path.write_text("".join(lines))


# (description, how to break the dir, text the error must contain)
BAD_DIRS = [
    ("unsorted utt2spk", lambda d: _swap_lines(d / "utt2spk", 2, 3),
     ["utt2spk:3", "spk0-utt1", "not sorted"]),
    ("duplicate key", lambda d: _replace_line(d / "text", 2, "spk0-utt0 again\n"),
     ["text:2", "spk0-utt0", "duplicate"]),
    ("wav.scp ids differ", lambda d: _replace_line(d / "wav.scp", 4, None),
     ["wav.scp", "1 utterances missing", "spk1-utt0"]),
    ("utt2spk ids differ from text", lambda d: _replace_line(d / "text", 9, "zzz x\n"),
     ["text", "spk2-utt2", "zzz"]),
    ("utt2spk with 3 fields", lambda d: _replace_line(d / "utt2spk", 1, "spk0-utt0 spk0 x\n"),
     ["utt2spk:1", "at most 2 fields"]),
    ("speaker order", lambda d: _replace_line(d / "utt2spk", 1, "spk0-utt0 spk9\n"),
     ["utt2spk:2", "sorted by speaker"]),
    ("spk2utt mismatch", lambda d: _replace_line(d / "spk2utt", 1, "spk0 spk0-utt0\n"),
     ["spk2utt", "spk0", "does not match"]),
    ("missing utt2spk", lambda d: (d / "utt2spk").unlink(), ["utt2spk", "missing"]),
    ("empty line", lambda d: _replace_line(d / "text", 3, "\n"), ["text:3", "empty line"]),
]


@pytest.mark.parametrize("name,breaker,needles", BAD_DIRS, ids=[b[0] for b in BAD_DIRS])
def test_bad_data_dir_is_reported_precisely(data_dir, root, name, breaker, needles):
    breaker(data_dir)
    with pytest.raises(InputError) as err:
        validate_data_dir(data_dir)
    for needle in needles:
        assert needle in str(err.value), f"{name}: '{needle}' not in '{err.value}'"
    proc = sh(f"utils/validate_data_dir.sh {data_dir}", cwd=root, check=False)
    assert proc.returncode == 1 and "ERROR (validate_data_dir" in proc.stderr
    assert needles[0] in proc.stderr


def _segments_dir(data_dir: Path, line: str) -> Path:
    utts = list(read_table(data_dir / "utt2spk"))
    rec = read_table(data_dir / "wav.scp")[utts[0]]
    write_table(data_dir / "wav.scp", {"rec1": rec})
    segs = {u: f"rec1 {0.1 * i:.2f} {0.1 * i + 0.1:.2f}" for i, u in enumerate(utts)}
    write_table(data_dir / "segments", segs)
    _replace_line(data_dir / "segments", 2, line)
    return data_dir


@pytest.mark.parametrize("line,needle", [
    ("spk0-utt1 rec1 0.5\n", "segments:2: key 'spk0-utt1': expected at least 4 fields"),
    ("spk0-utt1 rec1 abc 0.3\n", "segments:2: key 'spk0-utt1': start and end must be numbers"),
    ("spk0-utt1 rec1 0.4 0.3\n", "segments:2: key 'spk0-utt1': need 0 <= start < end"),
    ("spk0-utt1 rec9 0.1 0.3\n", "recordings of segments are not in wav.scp (rec9)"),
])
def test_malformed_segments_line(data_dir, line, needle):
    _segments_dir(data_dir, line)
    with pytest.raises(InputError, match=r".*") as err:
        validate_data_dir(data_dir)
    assert needle in str(err.value)


def test_requirements(data_dir):
    (data_dir / "text").unlink()
    with pytest.raises(InputError, match="text: required file is missing"):
        validate_data_dir(data_dir)
    validate_data_dir(data_dir, Requirements(text=False))


def test_number_tables_are_checked(data_dir):
    write_table(data_dir / "utt2dur", {u: "1.0" for u in DataDir(data_dir).utts})
    _replace_line(data_dir / "utt2dur", 5, "spk1-utt1 nan\n")
    with pytest.raises(InputError, match="utt2dur:5: key 'spk1-utt1': utt2dur value out of"):
        validate_data_dir(data_dir)


def test_fix_data_dir_sorts_filters_and_backs_up(data_dir, root):
    _swap_lines(data_dir / "utt2spk", 1, 9)
    _replace_line(data_dir / "text", 4, None)          # spk1-utt0 loses its text
    _replace_line(data_dir / "wav.scp", 9, None)       # spk2-utt2 loses its audio
    (data_dir / "utt2lang").write_text("spk0-utt0 en\nspk0-utt0 en\n")  # exact duplicate
    sh(f"utils/fix_data_dir.sh {data_dir}", cwd=root)
    d = validate_data_dir(data_dir)
    assert d.utts == ["spk0-utt0"]  # only utterance present in utt2lang
    assert (data_dir / ".backup" / "utt2spk").read_text().startswith("spk2-utt2")


def test_fix_data_dir_refuses_conflicting_duplicates(data_dir):
    (data_dir / "utt2lang").write_text("spk0-utt0 en\nspk0-utt0 de\n")
    with pytest.raises(InputError, match="utt2lang:2: key 'spk0-utt0': key repeated"):
        fix_data_dir(data_dir)


def test_split_points_balance():
    assert split_points([1, 1, 1, 1], 2) == [0, 2, 4]
    assert split_points([10, 1, 1, 1], 2) == [0, 1, 4]
    assert split_points([1, 1, 1], 3) == [0, 1, 2, 3]
    for weights in ([5, 1, 1, 1, 1, 1, 9], [1] * 7, [3, 3, 3, 1, 1, 1, 1]):
        for n in range(1, len(weights) + 1):
            b = split_points(weights, n)
            assert len(b) == n + 1, (weights, n, b)
            assert all(x < y for x, y in zip(b, b[1:], strict=False)), (weights, n, b)
    with pytest.raises(InputError, match="cannot split 2 items into 3"):
        split_points([1, 1], 3)


def test_split_keeps_speakers_whole_and_covers_everything(data_dir, root):
    out = sh(f"utils/split_data.sh {data_dir} 2", cwd=root).stdout.strip()
    assert out == str(data_dir / "split2")
    seen = []
    for part in sorted(p for p in Path(out).iterdir() if p.is_dir()):  # not .source_hash
        d = validate_data_dir(part)
        seen += d.utts
        assert set(d.table("wav.scp")) == set(d.utts)
    assert sorted(seen) == DataDir(data_dir).utts
    spk_parts = [set(DataDir(p).utt2spk.values()) for p in Path(out).iterdir() if p.is_dir()]
    assert not spk_parts[0] & spk_parts[1]
    proc = sh(f"utils/split_data.sh {data_dir} 4", cwd=root, check=False)
    assert proc.returncode == 1 and "only 3 speakers" in proc.stderr


def test_split_per_utt(data_dir):
    parts = split_data_dir(data_dir, 9, per_utt=True)
    assert [len(DataDir(p).utts) for p in parts] == [1] * 9


def test_subset_forms(data_dir, root, tmp_path):
    sh(f"utils/subset_data_dir.sh --first {data_dir} 2 {tmp_path}/first", cwd=root)
    assert DataDir(tmp_path / "first").utts == ["spk0-utt0", "spk0-utt1"]
    sh(f"utils/subset_data_dir.sh {data_dir} 3 {tmp_path}/even", cwd=root)
    assert DataDir(tmp_path / "even").utts == ["spk0-utt0", "spk1-utt0", "spk2-utt0"]
    sh(f"utils/subset_data_dir.sh --per-spk {data_dir} 2 {tmp_path}/per", cwd=root)
    assert validate_data_dir(tmp_path / "per").utts == [
        f"spk{s}-utt{u}" for s in range(3) for u in range(2)]
    (tmp_path / "spk").write_text("spk1\n")
    sh(f"utils/subset_data_dir.sh --spk-list {tmp_path}/spk {data_dir} {tmp_path}/s1", cwd=root)
    assert validate_data_dir(tmp_path / "s1").utts == ["spk1-utt0", "spk1-utt1", "spk1-utt2"]
    (tmp_path / "utts").write_text("nope\n")
    proc = sh(f"utils/subset_data_dir.sh --utt-list {tmp_path}/utts {data_dir} {tmp_path}/x",
              cwd=root, check=False)
    assert proc.returncode == 1 and "1 listed utterances are not in the data dir" in proc.stderr


def test_write_subset_carries_frame_shift(data_dir, tmp_path):
    (data_dir / "frame_shift").write_text("0.01\n")
    write_subset(DataDir(data_dir), tmp_path / "sub", ["spk2-utt1"])
    assert (tmp_path / "sub" / "frame_shift").read_text() == "0.01\n"


def test_write_subset_keeps_alignments_and_embeddings_of_its_utterances(data_dir, tmp_path):
    (data_dir / "words.ctm").write_text("spk0-utt0 1 0.0 0.5 a\nspk2-utt1 1 0.0 0.3 b\n"
                                        "spk2-utt1 1 0.3 0.2 c\n")
    (data_dir / "phone_ali").write_text("spk2-utt1 1 1 2\nspk1-utt0 3 3\n")
    (data_dir / "embedding.scp").write_text(
        "".join(f"spk{s}-utt{u} e.ark:{s * 3 + u}\n" for s in range(3) for u in range(3)))
    write_subset(DataDir(data_dir), tmp_path / "sub", ["spk2-utt1", "spk1-utt0"])
    sub = tmp_path / "sub"
    assert (sub / "words.ctm").read_text() == "spk2-utt1 1 0.0 0.3 b\nspk2-utt1 1 0.3 0.2 c\n"
    assert (sub / "phone_ali").read_text() == "spk2-utt1 1 1 2\nspk1-utt0 3 3\n"
    assert (sub / "embedding.scp").read_text() == "spk1-utt0 e.ark:3\nspk2-utt1 e.ark:7\n"


def test_filter_scp_and_spk2utt(data_dir, root, tmp_path):
    (tmp_path / "ids").write_text("spk0-utt1\nspk2-utt0\n")
    out = sh(f"utils/filter_scp.sh {tmp_path}/ids {data_dir}/utt2spk", cwd=root).stdout
    assert out == "spk0-utt1 spk0\nspk2-utt0 spk2\n"
    out = sh(f"utils/filter_scp.sh --exclude -f 2 {tmp_path}/ids {data_dir}/utt2spk",
             cwd=root).stdout
    assert len(out.splitlines()) == 9
    out = sh(f"utils/utt2spk_to_spk2utt.sh < {data_dir}/utt2spk", cwd=root).stdout
    assert out == (data_dir / "spk2utt").read_text()


def test_copy_data_dir_keeps_plain_files_not_folders(data_dir, root, tmp_path):
    (data_dir / "words.ctm").write_text("spk0-utt0 1 0.000 0.100 hello\n")
    (data_dir / "split2").mkdir()
    sh(f"utils/copy_data_dir.sh {data_dir} {tmp_path}/copy", cwd=root)
    d = validate_data_dir(tmp_path / "copy")
    assert d.utts == DataDir(data_dir).utts
    assert (tmp_path / "copy" / "words.ctm").read_text().startswith("spk0-utt0 1")
    assert not (tmp_path / "copy" / "split2").exists()


@pytest.mark.parametrize("num_utts", range(1, 12))
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_spread_per_speaker_matches_kaldi_awk(num_utts, n):
    # Kaldi's subset_data_dir.sh --per-spk, transcribed from its awk program (1-based fields)
    fields = ["spk"] + [f"u{i}" for i in range(num_utts)]
    nf, skip = len(fields), 1
    while n * (skip + 1) <= nf - 1:
        skip += 1
    x, expected = 2, []
    while x <= nf and x <= n * skip + 1:
        expected.append(fields[x - 1])
        x += skip
    assert spread_per_speaker(fields[1:], n) == expected
