"""FeatureExtractor against kaldi-native-fbank run directly, bad input, and dither.

The comparisons with knf run for both backends: "knf" must give knf's output, and the
default "numpy" (float64) must be within 5e-3 of it: knf's float32 rounding moves bins far
below their frame's peak by up to ~1e-3 on these signals.  tests/test_features_vectorised.py
compares the NumPy backend with knf option by option.
"""

from __future__ import annotations

import zlib

import kaldi_native_fbank as knf
import numpy as np
import pytest

from speechssl.errors import InputError
from speechssl.features import FbankConfig, FeatureExtractor, MfccConfig, load_feature_config
from speechssl.features.extractor import DITHER_TABLE_SIZE, dither_noise, dither_rng

RATE = 16000
TOLERANCE = {"numpy": 5e-3, "knf": 1e-5}


def speechlike(num_samples: int, seed: int = 0) -> np.ndarray:
    """Two chirps, a tone and noise at int16 scale, rounded to integers like a wav file."""
    t = np.arange(num_samples) / RATE
    rng = np.random.default_rng(seed)
    x = (3000 * np.sin(2 * np.pi * (150 + 900 * t) * t)
         + 1500 * np.sin(2 * np.pi * (2500 - 600 * t) * t)
         + 800 * np.sin(2 * np.pi * 440 * t) + 50 * rng.standard_normal(num_samples))
    return np.clip(np.round(x), -32768, 32767)


def run_knf(online, samples: np.ndarray) -> np.ndarray:
    """The plain kaldi-native-fbank loop, as its own tests use it."""
    online.accept_waveform(RATE, samples.astype(np.float32).tolist())
    online.input_finished()
    return np.array([online.get_frame(i) for i in range(online.num_frames_ready)])


def assert_close(got: np.ndarray, want: np.ndarray, atol: float) -> None:
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    diff = np.abs(got.astype(np.float64) - want)
    idx = np.unravel_index(diff.argmax(), diff.shape) if diff.size else None
    assert diff.max() <= atol, f"max diff {diff.max():.3e} at (frame, dim) {idx} > {atol}"


@pytest.fixture(params=sorted(TOLERANCE))
def backend(request) -> str:
    return request.param


def test_fbank_80_matches_knf(backend):
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    x = speechlike(23456)
    ex = FeatureExtractor(FbankConfig(num_mel_bins=80, dither=0.0), backend=backend)
    got = ex.compute(x, "u1")
    assert got.dtype == np.float32 and got.shape == (145, 80)
    assert_close(got, run_knf(knf.OnlineFbank(opts), x), atol=TOLERANCE[backend])


def test_mfcc_13_matches_knf(backend):
    opts = knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    opts.num_ceps = 13
    x = speechlike(16000, seed=1)
    ex = FeatureExtractor(MfccConfig(dither=0.0), backend=backend)
    got = ex.compute(x, "u1")
    assert (ex.kind, ex.dim, got.shape) == ("mfcc", 13, (98, 13))
    assert_close(got, run_knf(knf.OnlineMfcc(opts), x), atol=TOLERANCE[backend])


def test_snip_edges_false_matches_knf(backend):
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = 40
    x = speechlike(12345, seed=2)
    config = FbankConfig(num_mel_bins=40, dither=0.0, snip_edges=False)
    got = FeatureExtractor(config, backend=backend).compute(x, "u1")
    assert got.shape[0] == (12345 + 80) // 160
    assert_close(got, run_knf(knf.OnlineFbank(opts), x), atol=TOLERANCE[backend])


def test_conf_file_from_disk_matches_knf(tmp_path, backend):
    conf = tmp_path / "fbank.conf"
    conf.write_text("# like egs/*/conf/fbank.conf\n--sample-frequency=8000\n--num-mel-bins=40\n"
                    "--dither=0\n--use-energy=true\n--low-freq=40\n--high-freq=-200\n"
                    "--window-type=hamming\n--frame-length=20\n")
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 8000
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hamming"
    opts.frame_opts.frame_length_ms = 20
    opts.mel_opts.num_bins = 40
    opts.mel_opts.low_freq = 40
    opts.mel_opts.high_freq = -200
    opts.use_energy = True
    x = speechlike(8000, seed=3) * 0.5
    ex = FeatureExtractor(load_feature_config("fbank", conf), backend=backend)
    online = knf.OnlineFbank(opts)
    online.accept_waveform(8000, x.astype(np.float32).tolist())
    online.input_finished()
    want = np.array([online.get_frame(i) for i in range(online.num_frames_ready)])
    assert ex.dim == 41
    assert_close(ex.compute(x, "u1", sample_rate=8000), want, atol=TOLERANCE[backend])


def test_wav_file_int16(tmp_path):
    sf = pytest.importorskip("soundfile")
    x = speechlike(8000, seed=4).astype(np.int16)
    sf.write(tmp_path / "a.wav", x, RATE, subtype="PCM_16")
    samples, rate = sf.read(tmp_path / "a.wav", dtype="int16")
    ex = FeatureExtractor(FbankConfig(dither=0.0))
    assert np.array_equal(ex.compute(samples, "a", sample_rate=rate), ex.compute(x, "a"))


@pytest.mark.parametrize("samples, rate, message", [
    (np.zeros(16000), 8000, "sample rate"),
    (np.zeros(0), None, "too short"),
    (np.zeros(399), None, "too short"),
    (np.r_[np.zeros(500), np.nan, np.zeros(500)], None, "NaN"),
    (np.r_[np.zeros(500), np.inf], None, "NaN or infinite"),
    (np.zeros((2, 800)), None, "1-D"),
])
def test_bad_audio_names_the_utterance(samples, rate, message):
    ex = FeatureExtractor(FbankConfig())
    with pytest.raises(InputError, match=message) as e:
        ex.compute(samples, "spk1-utt7", sample_rate=rate)
    assert e.value.key == "spk1-utt7"


def test_short_audio_without_snip_edges():
    ex = FeatureExtractor(FbankConfig(snip_edges=False, dither=0.0))
    assert ex.compute(np.ones(80), "u").shape == (1, 23), "80 samples make one frame"
    with pytest.raises(InputError, match="too short"):
        ex.compute(np.ones(79), "u")


def test_dither_rng_is_seeded_by_crc32_of_utt_id():
    """Pins the stable seed: a re-run (any process, any job split) draws the same noise."""
    utt = "spk1-ütt1"
    want = np.random.default_rng([3, zlib.crc32(utt.encode())]).standard_normal(5)
    assert np.array_equal(dither_rng(3, utt).standard_normal(5), want)


def test_dither_is_reproducible_per_utterance():
    x = speechlike(8000)
    cfg = FbankConfig(dither=1.0)
    a = FeatureExtractor(cfg, seed=0).compute(x, "utt1")
    assert np.array_equal(a, FeatureExtractor(cfg, seed=0).compute(x, "utt1"))
    assert not np.array_equal(a, FeatureExtractor(cfg, seed=0).compute(x, "utt2"))
    assert not np.array_equal(a, FeatureExtractor(cfg, seed=1).compute(x, "utt1"))
    clean = FeatureExtractor(FbankConfig(dither=0.0)).compute(x, "utt1")
    assert not np.array_equal(a, clean), "dither changes the features"


def test_dither_is_gaussian_noise_on_the_waveform(backend):
    """The documented equivalence: knf(dither 0) of wave + dither * N(0, 1) noise."""
    x = speechlike(8000)
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    noisy = x.astype(np.float32) + np.float32(2.0) * dither_noise(5, "u9", x.size)
    want = run_knf(knf.OnlineFbank(opts), noisy)
    ex = FeatureExtractor(FbankConfig(dither=2.0), seed=5, backend=backend)
    assert_close(ex.compute(x, "u9"), want, TOLERANCE[backend])


def test_dither_fills_digital_silence():
    """Why Kaldi dithers: exact zeros would give log(eps) in every bin."""
    feats = FeatureExtractor(FbankConfig(dither=1.0)).compute(np.zeros(4000), "sil")
    assert feats.min() > np.log(np.finfo(np.float32).eps) + 1.0


def test_dither_noise_is_standard_normal_and_wraps_around():
    a = dither_noise(0, "utt-a", 200_000)
    b = dither_noise(0, "utt-b", 200_000)
    assert a.dtype == np.float32 and abs(a.mean()) < 0.01 and abs(a.std() - 1) < 0.01
    assert not np.array_equal(a, b), "utterances start at different places"
    np.testing.assert_array_equal(a, dither_noise(0, "utt-a", 200_000))
    long = dither_noise(1, "utt-c", DITHER_TABLE_SIZE + 1000)  # longer than the table
    assert long.size == DITHER_TABLE_SIZE + 1000
    np.testing.assert_array_equal(long[:1000], long[DITHER_TABLE_SIZE:])
