"""Same-word token pairs: CTM times to frames, filters, pair counts, pair lists and errors."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from speechssl.data.datadir import DataDir
from speechssl.data.pairs import (
    Token,
    is_word,
    load_pairs,
    read_pair_list,
    same_word_pairs,
    time_to_frame,
)
from speechssl.errors import InputError

FRAMES = {"spk1-a": 300, "spk1-b": 200, "spk2-c": 250}
CTM = """\
spk1-a 1 0.000 0.100 <sil>
spk1-a 1 0.100 0.600 window
spk1-a 1 0.700 0.400 garden
spk1-a 1 1.100 0.300 short
spk1-a 1 1.400 0.600 cat
spk1-b 1 0.000 0.555 window
spk1-b 1 0.555 0.600 lonely
spk1-b 1 1.300 0.600 garden
spk2-c 1 0.105 0.600 window
spk2-c 1 0.800 0.600 [noise]
spk2-c 1 2.300 0.600 garden
other-utt 1 0.000 0.600 window
"""


def make_dir(tmp_path: Path, ctm: str = CTM, segments: str | None = None) -> DataDir:
    d = tmp_path / "data"
    d.mkdir()
    utts = sorted(FRAMES)
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    (d / "frame_shift").write_text("0.01\n")
    (d / "words.ctm").write_text(ctm)
    if segments:
        (d / "segments").write_text(segments)
    return DataDir(d)


def test_time_to_frame_rounds_half_up():
    assert [time_to_frame(t, 0.01) for t in (0.0, 0.004, 0.005, 0.015, 0.125, 0.1249)] == [
        0, 0, 1, 2, 13, 12]
    assert time_to_frame(1.0, 0.025) == 40


def test_non_words_are_recognised():
    assert not any(is_word(t) for t in ("<sil>", "<unk>", "[laughter]", "SIL", "sp"))
    assert all(is_word(t) for t in ("window", "x", "<window", "bücherei"))


def test_ctm_tokens_frames_filters_and_counts(tmp_path):
    ps = load_pairs(make_dir(tmp_path), FRAMES, "words.ctm", min_frames=50, min_chars=5)
    assert [t.key for t in ps.tokens] == ["window_spk1-a_000010-000070",
                                          "window_spk1-b_000000-000056",
                                          "window_spk2-c_000011-000071"]
    assert ps.skipped == {
        "non-word entries (silence, noise)": 2,
        "tokens shorter than 50 frames": 2,               # garden (40), short (30)
        "tokens of fewer than 5 characters": 1,           # cat
        "entries of utterances not in the data dir": 1,   # other-utt
        "entries past the end of the features": 1,        # spk2-c's garden at 2.3-2.9 s
        "tokens that are the only one of their word": 2,  # lonely, spk1-b's garden
    }
    assert ps.pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert ps.describe().startswith("3 pairs of 3 tokens, 1 word types; skipped: ")


def test_ctm_pairs_are_all_same_word_combinations(tmp_path):
    data = make_dir(tmp_path)
    ps = load_pairs(data, FRAMES, "words.ctm", min_frames=30, min_chars=5)
    words = [t.word for t in ps.tokens]
    got = {tuple(sorted(p)) for p in ps.pairs.tolist()}
    expected = {(i, j) for i, j in combinations(range(len(words)), 2) if words[i] == words[j]}
    assert got == expected and len(ps.pairs) == len(expected)
    directed = ps.directed()
    assert len(directed) == 2 * len(ps.pairs)
    assert {tuple(p) for p in directed.tolist()} == got | {(j, i) for i, j in got}
    for t in ps.tokens:
        assert t.num_frames >= 30 and len(t.word) >= 5 and is_word(t.word)


def test_ctm_tokens_exact_frames_and_skips(tmp_path):
    ps = load_pairs(make_dir(tmp_path), FRAMES, "words.ctm", min_frames=30, min_chars=5)
    assert [(t.utt, t.start, t.end, t.word) for t in ps.tokens] == [
        ("spk1-a", 10, 70, "window"),    # 0.1-0.7 s
        ("spk1-a", 70, 110, "garden"),   # 0.7-1.1 s
        ("spk1-b", 0, 56, "window"),     # 0-0.555 s: 55.5 rounds up
        ("spk1-b", 130, 190, "garden"),
        ("spk2-c", 11, 71, "window"),    # 0.105-0.705 s
    ]
    assert ps.skipped == {
        "non-word entries (silence, noise)": 2,
        "tokens of fewer than 5 characters": 1,
        "entries of utterances not in the data dir": 1,
        "entries past the end of the features": 1,
        "tokens that are the only one of their word": 2,  # short, lonely
    }
    assert sorted(ps.pairs.tolist()) == [[0, 2], [0, 4], [1, 3], [2, 4]]


def test_ctm_end_within_tolerance_is_clipped(tmp_path):
    ctm = "spk1-b 1 0.000 0.500 window\nspk1-b 1 1.500 0.520 window\n"
    ps = load_pairs(make_dir(tmp_path, ctm), FRAMES, min_frames=10, min_chars=1)
    assert [(t.start, t.end) for t in ps.tokens] == [(0, 50), (150, 200)]  # 202 -> 200


def test_ctm_by_recording_with_segments(tmp_path):
    segments = "spk1-a rec1 10.0 13.0\nspk1-b rec1 20.0 22.0\nspk2-c rec2 0.0 2.5\n"
    ctm = "rec1 1 10.5 0.6 window\nrec1 1 20.2 0.6 window\nrec2 1 3.0 0.5 window\n"
    ps = load_pairs(make_dir(tmp_path, ctm, segments), FRAMES, min_frames=10, min_chars=1)
    assert [(t.utt, t.start, t.end) for t in ps.tokens] == [("spk1-a", 50, 110),
                                                           ("spk1-b", 20, 80)]
    assert ps.skipped["entries of utterances not in the data dir"] == 1
    assert ps.pairs.tolist() == [[0, 1]]


def test_max_pairs_per_type_is_a_seeded_subset():
    tokens = [Token(f"u{i}", 0, 60, "window") for i in range(6)]
    tokens += [Token(f"v{i}", 0, 60, "garden") for i in range(3)]
    full = {tuple(p) for p in same_word_pairs(tokens).tolist()}
    assert len(full) == 15 + 3
    capped = same_word_pairs(tokens, max_pairs_per_type=4, seed=1)
    assert len(capped) == 4 + 3 and {tuple(p) for p in capped.tolist()} <= full
    np.testing.assert_array_equal(capped, same_word_pairs(tokens, 4, seed=1))
    others = [same_word_pairs(tokens, 4, seed=s) for s in range(2, 8)]
    assert any(not np.array_equal(capped, o) for o in others)


def test_pair_list_is_read(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("# utt start end utt start end\n"
                    "spk1-a 10 70 spk2-c 11 71\n\nspk1-a 10 70 spk1-b 0 56\n")
    tokens, pairs = read_pair_list(path, FRAMES)
    assert [(t.utt, t.start, t.end) for t in tokens] == [
        ("spk1-a", 10, 70), ("spk2-c", 11, 71), ("spk1-b", 0, 56)]
    assert pairs.tolist() == [[0, 1], [0, 2]]
    assert tokens[0].key == "spk1-a_000010-000070"
    ps = load_pairs(make_dir(tmp_path), FRAMES, str(path))
    assert len(ps.pairs) == 2 and ps.tokens == tokens


@pytest.mark.parametrize("line,message", [
    ("spk1-a 10 70 spk2-c 11", "expected 6 fields"),
    ("spk1-a 10 70 nobody 11 71", "key 'nobody': utterance is not in the data dir"),
    ("spk1-a 10 x spk2-c 11 71", "must be frame numbers"),
    ("spk1-a 70 70 spk2-c 11 71", "need 0 <= start < end <= 300"),
    ("spk1-b 10 201 spk2-c 11 71", "need 0 <= start < end <= 200"),
    ("spk1-a 10 70 spk1-a 10 70", "paired with itself"),
])
def test_pair_list_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "pairs.txt"
    path.write_text(f"spk1-a 10 70 spk2-c 11 71\n{line}\n")
    with pytest.raises(InputError, match=message) as err:
        read_pair_list(path, FRAMES)
    assert str(err.value).startswith(f"{path}:2: ")


def test_missing_or_empty_pair_list(tmp_path):
    with pytest.raises(InputError, match="no such pair list"):
        read_pair_list(tmp_path / "nope.txt", FRAMES)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="no pairs"):
        read_pair_list(tmp_path / "empty.txt", FRAMES)
