"""The one data-dir writer every importer uses: all or nothing, spk2utt derived."""

from __future__ import annotations

import pytest

from conftest import synth_audio, write_wav
from speechssl.data.audio import audio_header
from speechssl.data.table import read_table
from speechssl.data.validate import Requirements, validate_data_dir
from speechssl.data.write import Recording, recording_tables, staged_dir, write_tables
from speechssl.errors import InputError


def test_a_staged_dir_replaces_the_old_one_only_when_complete(tmp_path):
    dest = tmp_path / "data" / "train"
    with staged_dir(dest) as tmp:
        write_tables(tmp, {"utt2spk": {"a-1": "a", "b-1": "b", "a-2": "a"},
                           "text": {"a-1": "x", "a-2": "y", "b-1": "z"}})
    assert read_table(dest / "spk2utt") == {"a": "a-1 a-2", "b": "b-1"}
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    with pytest.raises(RuntimeError), staged_dir(dest) as tmp:
        write_tables(tmp, {"utt2spk": {"c-1": "c"}})
        raise RuntimeError("killed half-way")
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["train"]   # no leftovers


def test_leftovers_of_a_killed_run_are_cleared(tmp_path):
    dest = tmp_path / "train"
    (tmp_path / ".train.tmp").mkdir()
    (tmp_path / ".train.tmp" / "utt2spk").write_text("stale stale\n")
    with staged_dir(dest) as tmp:
        write_tables(tmp, {"utt2spk": {"a-1": "a"}})
    assert sorted(p.name for p in dest.iterdir()) == ["spk2utt", "utt2spk"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]


def test_spk2utt_is_never_written_by_hand(tmp_path):
    for tables in ({"utt2spk": {"a": "a"}, "spk2utt": {"a": "a"}}, {"text": {"a": "x"}},
                   {"utt2spk": {"a": "a"}, "utt2speaker": {"a": "a"}}):
        with pytest.raises(ValueError):
            write_tables(tmp_path, tables)


def test_recordings_get_durations_from_their_headers(tmp_path):
    recs = [Recording(f"s{i}-u", f"s{i}",
                      write_wav(tmp_path / f"{i}.wav", synth_audio(i, 0.5 + i / 4)))
            for i in range(3)]
    with staged_dir(tmp_path / "d") as tmp:
        write_tables(tmp, recording_tables(recs, 16000, nj=2))
    assert read_table(tmp_path / "d" / "utt2dur") == {"s0-u": "0.500", "s1-u": "0.750",
                                                      "s2-u": "1.000"}
    validate_data_dir(tmp_path / "d", Requirements(text=False))
    write_wav(tmp_path / "8k.wav", synth_audio(0, 0.5), rate=8000)
    with pytest.raises(InputError, match=r"8k.wav: key 'x': expected non-empty 16000 Hz "
                                         r"audio, got 8000 samples at 8000 Hz"):
        recording_tables([Recording("x", "x", tmp_path / "8k.wav")], 16000)
    assert not (tmp_path / ".e.tmp").exists()


def test_an_unreadable_header_names_the_file_and_key(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    with pytest.raises(InputError, match=r"bad.wav: key 'k': cannot read the audio header"):
        audio_header(tmp_path / "bad.wav", key="k")
    header = audio_header(write_wav(tmp_path / "ok.flac", synth_audio(0, 0.25), fmt="FLAC"))
    assert (header.sample_rate, header.frames, header.channels) == (16000, 4000, 1)
    with pytest.raises(InputError, match="expected non-empty 8000 Hz mono audio"):
        header.require(8000, mono=True)
