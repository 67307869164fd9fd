"""The NumPy fbank/MFCC (features/kaldi_compute.py) against kaldi-native-fbank called directly.

About the tolerance.  Kaldi and knf compute in float32; we compute in float64.  In a loud
bin the two agree to ~1e-5, but in a bin far below its frame's peak (the lowest bins, which
pre-emphasis cuts, or the top of a band-limited recording) knf's float32 rounding moves
the log energy: by up to ~1.5e-3 in bins 60-80 dB down, and ~1.5e-2 in bins 100 dB down,
where we agree with a long-double computation to 1e-6 (test_deep_bins_match_long_double).
So over the non-silent frames (log energy > 0) the mean difference is held to 1e-4, the
largest to 1e-2 in fbank bins within 80 dB of their frame's peak (and in every MFCC
coefficient) and to 5e-2 in deeper bins.  MFCC differences are compared before the lifter:
the lifter multiplies cepstrum i, and knf's rounding in it, by up to 12 (Q=22).  Silent
frames (exact zeros, no dither) are compared at 1e-4: both give log(float32 eps) there.
Frames in between (energy in (0, 1]) are not compared.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import pytest
import scipy.fft
import soundfile as sf

from corpus_fixtures import tiny_corpus_fixture  # noqa: F401
from speechssl.features import FbankConfig, FeatureExtractor, MfccConfig, load_feature_config
from speechssl.features.extractor import dither_noise
from speechssl.features.kaldi_compute import (
    FRAMES_PER_BLOCK,
    KaldiFeatures,
    feature_window,
    frame_signal,
    kaldi_mel_banks,
    lifter_coeffs,
)
from speechssl.features.options import FLOAT32_EPS

ROOT = Path(__file__).resolve().parent.parent
MEAN_TOL, MAX_TOL, DEEP_TOL, SILENT_TOL = 1e-4, 1e-2, 5e-2, 1e-4
DEEP_NEPERS = 80.0 * np.log(10.0) / 10.0  # 80 dB below the frame's loudest mel bin
LOG_EPS = float(np.log(np.float32(FLOAT32_EPS)))


def speechlike(num_samples: int, seed: int = 0, rate: float = 16000.0) -> np.ndarray:
    """Two chirps, a tone and noise at int16 scale, rounded like wav samples."""
    t = np.arange(num_samples) / rate
    rng = np.random.default_rng(seed)
    x = (3000 * np.sin(2 * np.pi * (150 + 900 * t) * t)
         + 1500 * np.sin(2 * np.pi * (2500 - 600 * t) * t)
         + 800 * np.sin(2 * np.pi * (440 + 40 * seed) * t) + 50 * rng.standard_normal(num_samples))
    return np.clip(np.round(x), -32768, 32767).astype(np.float32)


def knf_features(config: FbankConfig | MfccConfig, wave: np.ndarray) -> np.ndarray:
    """kaldi-native-fbank run directly (dither 0), as its own tests use it: ``(T, D)``."""
    online = (knf.OnlineFbank if config.kind == "fbank" else knf.OnlineMfcc)(config.to_knf())
    online.accept_waveform(config.sample_frequency, wave.astype(np.float32).tolist())
    online.input_finished()
    frames = [online.get_frame(i) for i in range(online.num_frames_ready)]
    return np.array(frames, dtype=np.float32).reshape(len(frames), config.dim)


def frame_energy(config: FbankConfig | MfccConfig, wave: np.ndarray) -> np.ndarray:
    """Each frame's raw energy, after DC removal: ``(T,)``."""
    frames = frame_signal(wave.astype(np.float64), config)
    frames = frames - frames.mean(axis=1, keepdims=True)
    return (frames * frames).sum(axis=1)


def differences(config: FbankConfig | MfccConfig, got: np.ndarray,
                want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|got - want|`` ``(T, D)`` (MFCC before the lifter, linear fbank in log) and which
    bins lie more than 80 dB below their frame's loudest mel bin ``(T, D)``."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    if config.kind == "mfcc":
        scale = lifter_coeffs(config.num_ceps, config.cepstral_lifter)
        if config.htk_compat:  # C1..C(n-1), then the energy or C0
            scale = np.r_[scale[1:], 1.0]
        return np.abs(got - want) / scale, np.zeros(got.shape, dtype=bool)
    if not config.use_log_fbank:  # relative difference of the mel energies
        got, want = (np.log(np.maximum(a, FLOAT32_EPS)) for a in (got, want))
    mel = want
    if config.use_energy:
        mel = want[:, :-1] if config.htk_compat else want[:, 1:]
    peak = mel.max(axis=1, keepdims=True) if mel.size else mel[:, :1]
    return np.abs(got - want), want < peak - DEEP_NEPERS


def check(config, wave: np.ndarray, what: str, got: np.ndarray | None = None) -> float:
    """Assert ours (or ``got``) matches knf on ``wave``; returns the mean on loud frames."""
    want = knf_features(config, wave)
    got = KaldiFeatures(config)(wave) if got is None else got
    assert got.shape == want.shape and got.dtype == np.float32, (
        f"{what}: shape {got.shape} {got.dtype}, knf {want.shape}")
    diff, deep = differences(config, got, want)  # (T, D)
    energy = frame_energy(config, wave)[:, None]  # (T, 1)
    loud = energy > 1.0  # log energy > 0
    for name, bins, tol in (("loud", loud & ~deep, MAX_TOL), ("deep", loud & deep, DEEP_TOL),
                            ("silent", energy == 0, SILENT_TOL)):
        worst = np.where(bins, diff, 0.0)
        if worst.size:
            idx = np.unravel_index(worst.argmax(), worst.shape)
            assert worst.max() <= tol, (f"{what}, {name} bins: max diff {worst.max():.2e} "
                                        f"at (frame, dim) {idx} > {tol}")
    mean = diff[loud[:, 0]].mean() if loud.any() else 0.0
    assert mean < MEAN_TOL, f"{what}: mean diff {mean:.2e} over loud frames > {MEAN_TOL}"
    return mean


@pytest.fixture(scope="module")
def speech(tiny_corpus) -> list[np.ndarray]:
    """Six espeak utterances of the tiny corpus (real pauses: exact zeros), int16 scale."""
    wavs = sorted((tiny_corpus / "wav").rglob("*.wav"))[::7]
    return [sf.read(w, dtype="int16")[0].astype(np.float32) for w in wavs]


def recipe_config(kind: str, **changes):
    """The config of egs/mini/conf/<kind>.conf (the recipes share it), dither off."""
    config = load_feature_config(kind, ROOT / "egs" / "mini" / "conf" / f"{kind}.conf")
    return dataclasses.replace(config, dither=0.0, **changes)


OPTION_TABLE = [
    ("fbank", {}),  # Kaldi's defaults
    ("mfcc", {}),
    ("fbank-recipe", {}),
    ("mfcc-recipe", {}),
    ("fbank", {"use_energy": True}),
    ("fbank", {"use_energy": True, "raw_energy": False}),
    ("fbank", {"use_energy": True, "energy_floor": 2.0, "htk_compat": True}),
    ("fbank", {"snip_edges": False, "num_mel_bins": 40}),
    ("mfcc", {"snip_edges": False}),
    ("fbank", {"low_freq": 64.0, "high_freq": 7000.0, "num_mel_bins": 64}),
    ("fbank", {"low_freq": 0.0, "high_freq": -200.0}),
    ("fbank", {"window_type": "hamming"}),
    ("fbank", {"window_type": "hanning"}),
    ("fbank", {"window_type": "rectangular"}),
    ("fbank", {"window_type": "blackman", "blackman_coeff": 0.4}),
    ("fbank", {"window_type": "sine"}),
    ("fbank", {"use_power": False}),
    ("fbank", {"use_log_fbank": False}),
    ("fbank", {"round_to_power_of_two": False}),
    ("fbank", {"preemphasis_coefficient": 0.0, "remove_dc_offset": False}),
    ("fbank", {"frame_length_ms": 20.0, "frame_shift_ms": 12.5}),
    ("mfcc", {"htk_compat": True}),
    ("mfcc", {"htk_compat": True, "use_energy": False}),
    ("mfcc", {"num_ceps": 20, "cepstral_lifter": 0.0}),
    ("mfcc", {"use_energy": True, "raw_energy": False, "energy_floor": 1.0}),
    ("mfcc", {"num_mel_bins": 40, "num_ceps": 40, "low_freq": 100.0, "high_freq": -400.0}),
]


def make_config(kind: str, changes: dict):
    if kind.endswith("-recipe"):
        return recipe_config(kind.split("-")[0], **changes)
    return (FbankConfig if kind == "fbank" else MfccConfig)(dither=0.0, **changes)


@pytest.mark.parametrize("kind, changes", OPTION_TABLE,
                         ids=[f"{k}-{'-'.join(map(str, c.values())) or 'default'}"
                              for k, c in OPTION_TABLE])
def test_options_match_knf_on_speech(speech, kind, changes):
    config = make_config(kind, changes)
    for i, wave in enumerate(speech):
        check(config, wave, f"utterance {i}")


@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
def test_8khz_with_negative_high_freq(kind):
    config = make_config(kind, {"sample_frequency": 8000.0, "high_freq": -400.0,
                                "num_mel_bins": 23})
    check(config, speechlike(12000, seed=1, rate=8000.0) * 0.5, "8 kHz")


@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
@pytest.mark.parametrize("name, wave", [
    ("silence", np.zeros(8000, dtype=np.float32)),
    ("clipped", np.clip(speechlike(8000, seed=2) * 20, -32768, 32767)),
    ("dc offset", speechlike(8000, seed=3) + 3000),
    ("quiet", np.round(speechlike(8000, seed=4) * 0.002)),
    ("block edges", speechlike(400 + 160 * FRAMES_PER_BLOCK, seed=5)),  # 129 frames
])
def test_signals_match_knf(kind, name, wave):
    for snip_edges in (True, False):
        check(make_config(kind, {"use_energy": True, "snip_edges": snip_edges}), wave,
              f"{name}, snip_edges={snip_edges}")


def test_silence_is_log_eps():
    """Digital silence without dither: every bin and the energy floor at log(float eps)."""
    feats = KaldiFeatures(FbankConfig(dither=0.0, use_energy=True))(np.zeros(1600))
    assert feats.shape == (8, 24) and np.all(feats == np.float32(LOG_EPS))
    floored = KaldiFeatures(FbankConfig(dither=0.0, use_energy=True, energy_floor=1.0))(
        np.zeros(1600))
    assert np.all(floored[:, 0] == 0.0), "the energy floor, log(1)"


def test_dc_offset_is_removed_exactly():
    """With remove_dc_offset a constant offset cancels.  In float64 it does, even under a
    faint signal where knf's float32 does not (up to 0.3 off at +10000): ours on x + 10000
    equal knf on x."""
    x = np.round(speechlike(8000, seed=6) * 0.02)
    for config in (FbankConfig(dither=0.0, num_mel_bins=80), MfccConfig(dither=0.0)):
        check(config, x, "dc 10000 over a faint signal",
              got=KaldiFeatures(config)(x + 10000))


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("num_samples", [0, 1, 79, 80, 239, 240, 399, 400, 401, 559, 560])
def test_very_short_utterances(snip_edges, num_samples):
    """Fewer samples than a frame: 0 frames with snip_edges, else round(n / shift) frames
    of the reflected signal, as knf (and Kaldi) make them."""
    for kind in ("fbank", "mfcc"):
        config = make_config(kind, {"snip_edges": snip_edges, "use_energy": True})
        wave = speechlike(num_samples, seed=7)
        got = KaldiFeatures(config)(wave)
        assert got.shape[0] == config.num_frames(num_samples), f"{num_samples} samples"
        check(config, wave, f"{kind}, {num_samples} samples", got=got)


@pytest.mark.parametrize("config", [FbankConfig(num_mel_bins=80), MfccConfig()],
                         ids=["fbank", "mfcc"])
def test_extractor_dither_path(speech, config):
    """The extractor dithers the waveform as before, then runs the NumPy backend: equal to
    KaldiFeatures of the dithered waveform exactly, and to the knf backend within the
    tolerance."""
    numpy_ex = FeatureExtractor(config, seed=3)
    knf_ex = FeatureExtractor(config, seed=3, backend="knf")
    for i, wave in enumerate(speech[:3]):
        got = numpy_ex.compute(wave, f"utt{i}")
        dithered = wave + np.float32(config.dither) * dither_noise(3, f"utt{i}", wave.size)
        assert np.array_equal(got, KaldiFeatures(config)(dithered))
        check(config, dithered, f"dithered utterance {i}", got=got)
        assert got.shape == knf_ex.compute(wave, f"utt{i}").shape


def test_extractor_default_backend_is_numpy():
    ex = FeatureExtractor(FbankConfig(dither=0.0))
    assert ex.backend == "numpy"
    x = speechlike(4000, seed=8)
    check(ex.config, x, "extractor", got=ex.compute(x, "u"))
    with pytest.raises(ValueError, match="unknown feature backend"):
        FeatureExtractor(FbankConfig(), backend="torch")


def test_float32_is_close_too():
    """The float32 variant (not the default) stays within the tolerance on speech."""
    config = FbankConfig(dither=0.0, num_mel_bins=80)
    x = speechlike(16000, seed=9)
    check(config, x, "float32", got=KaldiFeatures(config, dtype=np.float32)(x))


def long_double_fbank(config: FbankConfig, wave: np.ndarray) -> np.ndarray:
    """Kaldi's log-mel fbank computed plainly in long double: ``(T, M)``."""
    frames = frame_signal(wave.astype(np.longdouble), config)  # (T, L)
    frames = frames - frames.mean(axis=1, keepdims=True)
    c = np.longdouble(config.preemphasis_coefficient)
    emphasised = np.concatenate([frames[:, :1] * (1 - c), frames[:, 1:] - c * frames[:, :-1]],
                                axis=1) * feature_window(config).astype(np.longdouble)
    spectrum = scipy.fft.rfft(emphasised, n=config.padded_window_size, axis=1)
    power = spectrum.real ** 2 + spectrum.imag ** 2  # (T, K + 1)
    mel = power @ kaldi_mel_banks(config).astype(np.longdouble)
    return np.log(np.maximum(mel, FLOAT32_EPS)).astype(np.float64)


def test_deep_bins_match_long_double(speech):
    """Where knf's float32 drifts (up to 1.5e-2 in bins ~100 dB below the peak), ours
    is exact: within float32 rounding (~1e-6) of a long-double computation, in every bin."""
    config = recipe_config("fbank")
    for i, wave in enumerate(speech):
        want = long_double_fbank(config, wave)
        got = KaldiFeatures(config)(wave)
        loud = frame_energy(config, wave) > 1.0
        diff = np.where(loud[:, None], np.abs(got - want), 0.0)
        idx = np.unravel_index(diff.argmax(), diff.shape)
        assert diff.max() < 1e-5, f"utterance {i}: max diff {diff.max():.2e} at {idx}"
