"""steps/make_fbank.sh, make_mfcc.sh and compute_cmvn_stats.sh end to end: Kaldi's
outputs, values equal to kaldi-native-fbank's direct output, archives readable by kaldiio
and kaldi-native-io, the 95% rule, and no finished-looking output after a failure."""

from __future__ import annotations

from pathlib import Path

import kaldi_native_fbank as knf
import kaldiio
import numpy as np
import pytest
import soundfile as sf

from conftest import sh
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.data.table import read_table, write_table
from speechssl.data.validate import Requirements, validate_data_dir

FBANK_CONF = "--sample-frequency=16000\n--num-mel-bins=40\n--dither=0\n--snip-edges=false\n"
MFCC_CONF = "--num-ceps=13\n--use-energy=false\n--dither=0\n--high-freq=-400\n"


def _knf_direct(kind: str, wav: str) -> np.ndarray:
    """The reference: kaldi-native-fbank called directly on the int16 samples."""
    samples, rate = sf.read(wav, dtype="int16")
    if kind == "fbank":
        opts = knf.FbankOptions()
        opts.mel_opts.num_bins = 40
        opts.frame_opts.snip_edges = False
        comp = knf.OnlineFbank
    else:
        opts = knf.MfccOptions()
        opts.num_ceps, opts.use_energy, opts.mel_opts.high_freq = 13, False, -400
        comp = knf.OnlineMfcc
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = rate
    c = comp(opts)
    c.accept_waveform(rate, samples.astype(np.float32).tolist())
    c.input_finished()
    return np.array([c.get_frame(i) for i in range(c.num_frames_ready)])


def _make(kind: str, data: Path, root: Path, conf: str, nj: int = 2, extra: str = "",
          check: bool = True):
    conf_path = data.parent / f"{kind}.conf"
    conf_path.write_text(conf)
    return sh(f"steps/make_{kind}.sh --nj {nj} --{kind}-config {conf_path} {extra} "
              f"{data} {data.parent}/log {data.parent}/feats", cwd=root, check=check)


@pytest.mark.parametrize("kind,conf", [("fbank", FBANK_CONF), ("mfcc", MFCC_CONF)])
def test_features_match_kaldi_native_fbank(data_dir, root, kind, conf):
    _make(kind, data_dir, root, conf, extra="--compress false")
    d = validate_data_dir(data_dir, Requirements(feats=True))
    wavs = d.table("wav.scp")
    feats = kaldiio.load_scp(str(data_dir / "feats.scp"))
    for utt in d.utts:
        ref = _knf_direct(kind, wavs[utt])
        ours = feats[utt]
        assert ours.shape == ref.shape, (utt, ours.shape, ref.shape)
        diff = np.abs(ours - ref)
        where = np.unravel_index(diff.argmax(), diff.shape)
        assert diff.max() < 1e-4, f"{utt}: max diff {diff.max()} at {where}"
    num_frames = read_table(data_dir / "utt2num_frames")
    assert {u: int(n) for u, n in num_frames.items()} == {u: feats[u].shape[0] for u in d.utts}
    assert float((data_dir / "frame_shift").read_text()) == 0.01
    durs = read_table(data_dir / "utt2dur")
    assert float(durs["spk0-utt1"]) == pytest.approx(0.7, abs=1e-4)
    for line in (data_dir / "feats.scp").read_text().splitlines():
        ark = line.split()[1].rsplit(":", 1)[0]
        assert Path(ark).is_absolute() and Path(ark).name.startswith(f"raw_{kind}_train.")
    logs = sorted((data_dir.parent / "log").glob(f"make_{kind}_train.*.log"))
    assert len(logs) == 2 and "# Ended (code 0)" in logs[0].read_text()
    assert (data_dir / "conf" / f"{kind}.conf").read_text() == conf


def test_compressed_features_and_cmvn_round_trip(data_dir, root):
    knio = pytest.importorskip("kaldi_native_io")
    _make("fbank", data_dir, root, FBANK_CONF, extra="--compress true")
    sh(f"steps/compute_cmvn_stats.sh {data_dir} {data_dir.parent}/log {data_dir.parent}/cmvn",
       cwd=root)
    d = validate_data_dir(data_dir, Requirements(feats=True))
    ours = kaldiio.load_scp(str(data_dir / "feats.scp"))
    reader = knio.SequentialFloatMatrixReader(f"scp:{data_dir / 'feats.scp'}")
    for key, mat in reader:
        ref = _knf_direct("fbank", d.table("wav.scp")[key])
        np.testing.assert_allclose(np.array(mat, copy=True), ours[key], rtol=1e-6)
        assert np.abs(ours[key] - ref).max() < 0.05, key  # Kaldi compression error bound
    reader.close()
    cmvn = knio.RandomAccessDoubleMatrixReader(f"scp:{data_dir / 'cmvn.scp'}")
    for spk, utts in d.spk2utt().items():
        frames = np.concatenate([ours[u] for u in utts]).astype(np.float64)
        stats = np.array(cmvn[spk], copy=True)
        assert stats.shape == (2, 41)
        np.testing.assert_allclose(stats[0, :-1], frames.sum(0), rtol=1e-6)
        np.testing.assert_allclose(stats[1, :-1], (frames ** 2).sum(0), rtol=1e-6)
        assert stats[0, -1] == len(frames) and stats[1, -1] == 0
    cmvn.close()
    loader = FeatureLoader(data_dir, FeatureTransform(cmvn=True, norm_vars=True, delta_order=2))
    spk0 = np.concatenate([loader[u] for u in d.spk2utt()["spk0"]])
    assert spk0.shape[1] == 120
    np.testing.assert_allclose(spk0[:, :40].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(spk0[:, :40].std(0), 1, atol=1e-3)


def test_dither_is_reproducible(data_dir, root, tmp_path):
    conf = FBANK_CONF.replace("--dither=0", "--dither=1.0")
    _make("fbank", data_dir, root, conf, extra="--compress false")
    first = kaldiio.load_scp(str(data_dir / "feats.scp"))
    first = {k: first[k].copy() for k in first}
    _make("fbank", data_dir, root, conf, nj=3, extra="--compress false")
    again = kaldiio.load_scp(str(data_dir / "feats.scp"))
    for utt, mat in first.items():
        np.testing.assert_array_equal(mat, again[utt], err_msg=utt)
    ref = _knf_direct("fbank", DataDir(data_dir).table("wav.scp")["spk0-utt0"])
    assert 0 < np.abs(first["spk0-utt0"] - ref).max()


def _break_audio(data_dir: Path, count: int) -> list[str]:
    wav_scp = read_table(data_dir / "wav.scp")
    broken = list(wav_scp)[:count]
    for utt in broken:
        wav_scp[utt] = "/nonexistent/" + utt + ".wav"
    write_table(data_dir / "wav.scp", wav_scp)
    return broken


def test_too_many_failures_fail_the_step_and_name_them(data_dir, root):
    broken = _break_audio(data_dir, 1)  # 1 of 9 = 11% > 5%
    proc = _make("fbank", data_dir, root, FBANK_CONF, check=False)
    assert proc.returncode == 1
    assert "only 8 of 9 utterances" in proc.stderr and broken[0] in proc.stderr
    log = (data_dir.parent / "log" / "make_fbank_train.1.log").read_text()
    assert f"skipping {broken[0]}" in log and "does not exist" in log


def test_few_failures_are_reported_not_fatal(tmp_path, root):
    from conftest import make_data_dir
    data_dir = make_data_dir(tmp_path, num_speakers=7, utts_per_speaker=3)
    broken = _break_audio(data_dir, 1)  # 1 of 21 < 5%
    proc = _make("fbank", data_dir, root, FBANK_CONF)
    assert "skipped 1 of 21 utterances" in proc.stderr and broken[0] in proc.stderr
    assert len(read_table(data_dir / "feats.scp")) == 20


def test_bad_config_and_unknown_option_fail_before_any_job(data_dir, root):
    proc = _make("fbank", data_dir, root, FBANK_CONF + "--num-mel-binz=3\n", check=False)
    assert proc.returncode != 0 and "fbank.conf:5" in proc.stderr
    assert "num-mel-binz" in proc.stderr and "make_fbank_train" not in proc.stderr
    assert not (data_dir / "feats.scp").exists()
    proc = sh(f"steps/make_fbank.sh --bogus-option 1 {data_dir}", cwd=root, check=False)
    assert proc.returncode == 1 and "--bogus-option" in proc.stderr


def test_interrupted_step_leaves_no_feats_scp(data_dir, root):
    """A job that dies (here: the ark directory is not writable) must not leave a
    feats.scp, nor a complete-looking archive."""
    feats = data_dir.parent / "feats"
    feats.mkdir()
    (feats / "raw_fbank_train.2.ark.new.tmp").mkdir()  # job 2 cannot open its output
    proc = _make("fbank", data_dir, root, FBANK_CONF, check=False)
    assert proc.returncode != 0 and "1 / 2 failed" in proc.stderr
    assert not (data_dir / "feats.scp").exists()
    assert not (feats / "raw_fbank_train.2.ark").exists()
    assert sorted(p.name for p in feats.iterdir()) == ["raw_fbank_train.2.ark.new.tmp"]
