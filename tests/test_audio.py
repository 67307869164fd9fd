"""Audio from wav.scp: files of any format soundfile reads, `cmd |` pipes, segments, and
clear errors for missing, corrupt, empty or wrong-rate audio."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import synth_audio, write_wav
from speechssl.data.audio import AudioReader, wav_header_frames
from speechssl.data.table import write_table
from speechssl.errors import InputError


def _dir(tmp_path, wav_scp: dict[str, str], segments: dict[str, str] | None = None):
    d = tmp_path / "d"
    d.mkdir(exist_ok=True)
    utts = list(segments or wav_scp)
    write_table(d / "wav.scp", wav_scp)
    write_table(d / "utt2spk", {u: "s" for u in utts})
    if segments:
        write_table(d / "segments", segments)
    return d


def test_files_pipes_and_flac_give_the_same_samples(tmp_path):
    x = synth_audio(0, 0.5)
    wav = write_wav(tmp_path / "a.wav", x)
    flac = write_wav(tmp_path / "a.flac", x, fmt="FLAC")
    d = _dir(tmp_path, {"a": str(wav), "b": str(flac), "c": f"cat {wav} |"})
    reader = AudioReader(d)
    for utt in "abc":
        samples, rate = reader.read(utt)
        assert rate == 16000
        np.testing.assert_array_equal(np.round(samples * 32768).astype(np.int16), x,
                                      err_msg=f"utterance {utt}")


def test_segments_cut_like_kaldi(tmp_path):
    x = synth_audio(1, 2.0)
    wav = write_wav(tmp_path / "r.wav", x)
    d = _dir(tmp_path, {"rec": str(wav)},
             {"rec-a": "rec 0.10 0.35", "rec-b": "rec 1.5 2.3"})  # b overshoots by 0.3 s
    reader = AudioReader(d)
    a, _ = reader.read("rec-a")
    np.testing.assert_array_equal(np.round(a * 32768), x[1600:5600])
    b, _ = reader.read("rec-b")
    assert b.size == x.size - 24000


def test_segment_far_past_the_end_is_an_error(tmp_path):
    wav = write_wav(tmp_path / "r.wav", synth_audio(1, 1.0))
    d = _dir(tmp_path, {"rec": str(wav)}, {"rec-a": "rec 0.5 3.0"})
    with pytest.raises(InputError, match=r"segments: key 'rec-a': segment 0.5-3.0 s is beyond"):
        AudioReader(d).read("rec-a")


def test_wrong_sample_rate_is_an_error_unless_resampling_is_asked(tmp_path):
    wav = write_wav(tmp_path / "a.wav", synth_audio(2, 1.0, 8000), rate=8000)
    d = _dir(tmp_path, {"a": str(wav)})
    with pytest.raises(InputError, match=r"wav.scp: key 'a': sample rate is 8000 Hz, "
                                         r"expected 16000"):
        AudioReader(d).read("a")
    samples, rate = AudioReader(d, resample=True).read("a")
    assert rate == 16000 and samples.size == 16000


@pytest.mark.parametrize("kind,needle", [
    ("missing", "audio file '{path}' does not exist"),
    ("corrupt", "cannot read audio '{path}'"),
    ("empty", "audio is empty"),
    ("pipe", "command 'exit 3' failed with exit code 3"),
    ("stereo", "has 2 channels"),
])
def test_bad_audio_names_file_and_key(tmp_path, kind, needle):
    path = tmp_path / f"{kind}.wav"
    if kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    elif kind == "empty":
        write_wav(path, np.zeros(0, dtype=np.int16))
    elif kind == "stereo":
        write_wav(path, np.zeros((100, 2), dtype=np.int16))
    entry = "exit 3 |" if kind == "pipe" else str(path)
    d = _dir(tmp_path, {"u1": entry})
    with pytest.raises(InputError) as err:
        AudioReader(d).read("u1")
    message = str(err.value)
    assert str(d / "wav.scp") in message and "key 'u1'" in message, message
    assert needle.format(path=path) in message, message


def test_truncated_wav_is_read_with_a_warning_naming_key_and_path(tmp_path, caplog):
    x = synth_audio(3, 1.0)
    wav = write_wav(tmp_path / "cut.wav", x)
    wav.write_bytes(wav.read_bytes()[:-2 * 6000])  # as a copy cut short: 6000 samples lost
    d = _dir(tmp_path, {"a": str(wav), "b": f"cat {wav} |"})
    reader = AudioReader(d)
    for utt, source in (("a", str(wav)), ("b", f"cat {wav}")):
        caplog.clear()
        samples, _ = reader.read(utt)
        np.testing.assert_array_equal(np.round(samples * 32768), x[:10000], err_msg=utt)
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1, warnings
        assert f"WaveData: {d / 'wav.scp'}: key '{utt}': '{source}' is truncated: its " \
               "header says 16000 samples, the file holds 10000" in warnings[0], warnings


def test_whole_and_streamed_wavs_give_no_truncation_warning(tmp_path, caplog):
    x = synth_audio(4, 0.5)
    whole = write_wav(tmp_path / "whole.wav", x)
    with open(whole, "rb") as f:
        assert wav_header_frames(f) == x.size
    streamed = tmp_path / "streamed.wav"  # a pipe's header: data size 0xFFFFFFFF
    data = whole.read_bytes()
    at = data.index(b"data") + 4
    streamed.write_bytes(data[:at] + b"\xff\xff\xff\xff" + data[at + 4:])
    with open(streamed, "rb") as f:
        assert wav_header_frames(f) is None
    flac = write_wav(tmp_path / "a.flac", x, fmt="FLAC")
    with open(flac, "rb") as f:
        assert wav_header_frames(f) is None
    d = _dir(tmp_path, {"a": str(whole), "b": f"cat {whole} |", "c": str(flac)})
    for utt in "abc":
        AudioReader(d).read(utt)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
