"""Kaldi option files and the typed fbank/MFCC configs (speechssl.features.options)."""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np
import pytest

from speechssl.errors import InputError
from speechssl.features import FbankConfig, MfccConfig, load_feature_config, read_kaldi_conf

# Kaldi's defaults, from compute-fbank-feats / compute-mfcc-feats --help (Kaldi 5.5).
KALDI_COMMON_DEFAULTS = {
    "sample-frequency": 16000.0, "frame-length": 25.0, "frame-shift": 10.0, "dither": 1.0,
    "preemphasis-coefficient": 0.97, "remove-dc-offset": True, "window-type": "povey",
    "round-to-power-of-two": True, "blackman-coeff": 0.42, "snip-edges": True,
    "num-mel-bins": 23, "low-freq": 20.0, "high-freq": 0.0, "vtln-low": 100.0,
    "vtln-high": -500.0, "energy-floor": 0.0, "raw-energy": True, "htk-compat": False,
}
KALDI_FBANK_DEFAULTS = {**KALDI_COMMON_DEFAULTS, "use-energy": False, "use-log-fbank": True,
                        "use-power": True}
KALDI_MFCC_DEFAULTS = {**KALDI_COMMON_DEFAULTS, "use-energy": True, "num-ceps": 13,
                       "cepstral-lifter": 22.0}


def write(tmp_path, text: str, name: str = "fbank.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("cls, kaldi", [(FbankConfig, KALDI_FBANK_DEFAULTS),
                                        (MfccConfig, KALDI_MFCC_DEFAULTS)])
def test_defaults_are_kaldis(cls, kaldi):
    cfg = cls()
    names = cls.kaldi_names()
    assert set(names) == set(kaldi), "every Kaldi option has exactly one field"
    for name, value in kaldi.items():
        assert getattr(cfg, names[name]) == value, f"--{name}"


def test_read_kaldi_conf_syntax(tmp_path):
    path = write(tmp_path, "# comment\n\n--num-mel-bins=80   # trailing\n  --snip_edges=false\n"
                           "--use-energy\n--window-type = x\n--num-mel-bins=40\n")
    # '--window-type = x' has a space before '=': Kaldi reads the name 'window-type '.
    with pytest.raises(InputError) as e:
        read_kaldi_conf(path)
    assert e.value.line == 6 and str(path) in str(e.value)
    path = write(tmp_path, "# comment\n\n--num-mel-bins=80   # trailing\n  --snip_edges=false\n"
                           "--use-energy\n--num-mel-bins=40\n")
    opts = read_kaldi_conf(path)
    assert opts == {"num-mel-bins": "40", "snip-edges": "false", "use-energy": "true"}
    assert list(opts) == ["num-mel-bins", "snip-edges", "use-energy"]


@pytest.mark.parametrize("line", ["num-mel-bins=80", "--num-mel-bins 80", "-x=1", "--=3"])
def test_malformed_line_names_file_and_line(tmp_path, line):
    path = write(tmp_path, f"--dither=0\n{line}\n")
    with pytest.raises(InputError) as e:
        read_kaldi_conf(path)
    assert (e.value.path, e.value.line) == (str(path), 2), str(e.value)


def test_conf_file_to_config(tmp_path):
    path = write(tmp_path, "--num-mel-bins=80\n--snip-edges=false\n--dither=0.5\n"
                           "--high-freq=-400\n--use-energy=T\n")
    cfg = FbankConfig.from_file(path)
    assert (cfg.num_mel_bins, cfg.snip_edges, cfg.dither, cfg.high_freq) == (80, False, 0.5, -400)
    assert cfg.dim == 81 and cfg.mel_high_freq == 7600.0
    assert load_feature_config("fbank", path) == cfg
    assert load_feature_config("mfcc", None) == MfccConfig()


def test_unknown_option_names_file_line_option(tmp_path):
    path = write(tmp_path, "--num-mel-bins=80\n# x\n--num-mel-bin=40\n")
    with pytest.raises(InputError) as e:
        FbankConfig.from_file(path)
    msg = str(e.value)
    assert (e.value.path, e.value.line, e.value.key) == (str(path), 3, "num-mel-bin"), msg
    assert "--num-mel-bins" in msg, "the message lists the valid options"


def test_mfcc_option_is_unknown_to_fbank(tmp_path):
    with pytest.raises(InputError, match="num-ceps"):
        FbankConfig.from_file(write(tmp_path, "--num-ceps=13\n"))


@pytest.mark.parametrize("text, option", [
    ("--snip-edges=maybe\n", "snip-edges"),
    ("--num-mel-bins=80.0\n", "num-mel-bins"),
    ("--dither=abc\n", "dither"),
    ("--dither=nan\n", "dither"),
    ("--num-mel-bins\n", "num-mel-bins"),
])
def test_bad_value_names_option_and_value(tmp_path, text, option):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        FbankConfig.from_file(path)
    assert e.value.key == option and e.value.line == 1 and str(path) in str(e.value)


@pytest.mark.parametrize("kwargs", [
    {"num_mel_bins": 2}, {"window_type": "kaiser"}, {"high_freq": 9000.0},
    {"low_freq": 4000.0, "high_freq": 3000.0}, {"dither": -1.0}, {"frame_length_ms": 0.05},
])
def test_invalid_values_are_rejected(kwargs):
    with pytest.raises(InputError):
        FbankConfig(**kwargs)


def test_num_ceps_at_most_num_mel_bins(tmp_path):
    path = write(tmp_path, "--num-ceps=30\n", "mfcc.conf")
    with pytest.raises(InputError, match="num-ceps") as e:
        MfccConfig.from_file(path)
    assert str(path) in str(e.value)


def test_unimplemented_kaldi_options_only_at_their_default(tmp_path):
    ok = write(tmp_path, "--allow-downsample=false\n--vtln-warp=1\n--debug-mel=false\n")
    assert FbankConfig.from_file(ok) == FbankConfig()
    bad = write(tmp_path, "--dither=0\n--allow-downsample=true\n", "bad.conf")
    with pytest.raises(InputError, match="not supported") as e:
        FbankConfig.from_file(bad)
    assert e.value.line == 2


def test_unknown_kind():
    with pytest.raises(InputError, match="plp"):
        load_feature_config("plp", None)


@pytest.mark.parametrize("cls", [FbankConfig, MfccConfig])
def test_kaldi_conf_round_trip(tmp_path, cls):
    cfg = cls(num_mel_bins=40, snip_edges=False, dither=0.0, window_type="hamming")
    path = write(tmp_path, cfg.to_kaldi_conf())
    assert cls.from_file(path) == cfg


def test_derived_sizes():
    cfg = FbankConfig(sample_frequency=8000.0, frame_length_ms=25.0, frame_shift_ms=10.0)
    assert (cfg.window_size, cfg.window_shift, cfg.padded_window_size) == (200, 80, 256)
    assert FbankConfig(round_to_power_of_two=False).padded_window_size == 400
    assert FbankConfig().num_frames(399) == 0 and FbankConfig().num_frames(400) == 1
    assert FbankConfig(snip_edges=False).num_frames(1000) == 6  # (1000 + 80) // 160
    assert FbankConfig().frame_shift == 0.01


# Every kaldi-native-fbank field our to_knf() sets.  If a new knf version adds a field, this
# test fails, so that someone decides its value rather than inheriting knf's default.
KNF_FRAME_FIELDS = {"samp_freq", "frame_shift_ms", "frame_length_ms", "dither", "preemph_coeff",
                    "remove_dc_offset", "window_type", "round_to_power_of_two",
                    "blackman_coeff", "snip_edges"}
KNF_MEL_FIELDS = {"num_bins", "low_freq", "high_freq", "vtln_low", "vtln_high", "debug_mel",
                  "htk_mode", "is_librosa", "norm", "use_slaney_mel_scale", "floor_to_int_bin"}


def test_knf_has_no_fields_we_do_not_set():
    fbank, mfcc = knf.FbankOptions().as_dict(), knf.MfccOptions().as_dict()
    assert set(fbank["frame_opts"]) == KNF_FRAME_FIELDS
    assert set(fbank["mel_opts"]) == KNF_MEL_FIELDS
    assert set(fbank) == {"frame_opts", "mel_opts", "use_energy", "energy_floor", "raw_energy",
                          "htk_compat", "use_log_fbank", "use_log_floor", "eps", "use_power"}
    assert set(mfcc) == {"frame_opts", "mel_opts", "num_ceps", "use_energy", "energy_floor",
                         "raw_energy", "cepstral_lifter", "htk_compat"}


def test_to_knf_sets_every_field_from_the_config():
    cfg = FbankConfig(sample_frequency=8000.0, frame_length_ms=20.0, frame_shift_ms=5.0,
                      dither=2.0, preemphasis_coefficient=0.5, remove_dc_offset=False,
                      window_type="blackman", round_to_power_of_two=False, blackman_coeff=0.4,
                      snip_edges=False, num_mel_bins=30, low_freq=60.0, high_freq=3000.0,
                      vtln_low=90.0, vtln_high=-400.0, use_energy=True, energy_floor=1.5,
                      raw_energy=False, htk_compat=True, use_log_fbank=False, use_power=False)
    d = cfg.to_knf().as_dict()
    assert d["frame_opts"] == pytest.approx({
        "samp_freq": 8000.0, "frame_length_ms": 20.0, "frame_shift_ms": 5.0,
        "dither": 0.0, "preemph_coeff": 0.5, "remove_dc_offset": False,
        "window_type": "blackman", "round_to_power_of_two": False, "blackman_coeff": 0.4,
        "snip_edges": False})
    assert d["mel_opts"] == pytest.approx({
        "num_bins": 30, "low_freq": 60.0, "high_freq": 3000.0, "vtln_low": 90.0,
        "vtln_high": -400.0, "debug_mel": False, "htk_mode": False, "is_librosa": False,
        "norm": "", "use_slaney_mel_scale": False, "floor_to_int_bin": False})
    rest = {k: v for k, v in d.items() if k not in ("frame_opts", "mel_opts")}
    assert rest == pytest.approx({
        "use_energy": True, "energy_floor": 1.5, "raw_energy": False, "htk_compat": True,
        "use_log_fbank": False, "use_log_floor": True, "eps": np.finfo(np.float32).eps,
        "use_power": False})
    mfcc = MfccConfig(num_ceps=20, cepstral_lifter=0.0, use_energy=False).to_knf().as_dict()
    assert (mfcc["num_ceps"], mfcc["cepstral_lifter"], mfcc["use_energy"]) == (20, 0.0, False)
    assert mfcc["frame_opts"]["dither"] == 0.0, "knf never dithers: the extractor does"


def htk_mel_banks(num_bins, low, high, rate, fft_size):
    """Kaldi's MelBanks by the book: triangles in HTK mel, 1127 ln(1 + f/700)."""
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    edges = np.linspace(mel(low), mel(high), num_bins + 2)
    bins = mel(np.arange(fft_size // 2) * rate / fft_size)
    weights = np.zeros((num_bins, fft_size // 2))
    for m in range(num_bins):
        left, center, right = edges[m:m + 3]
        for k, b in enumerate(bins):
            if left < b <= center:
                weights[m, k] = (b - left) / (center - left)
            elif center < b < right:
                weights[m, k] = (right - b) / (right - center)
    return weights


@pytest.mark.parametrize("num_bins, low, high", [(23, 20.0, 0.0), (80, 40.0, -400.0)])
def test_knf_mel_banks_are_kaldis_htk_scale(num_bins, low, high):
    """knf's default mel_opts say norm='slaney', use_slaney_mel_scale=True: check that
    what to_knf() asks for gives Kaldi's HTK-scale banks, not librosa's."""
    opts = FbankConfig(num_mel_bins=num_bins, low_freq=low, high_freq=high).to_knf()
    got = np.asarray(knf.MelBanks(opts.mel_opts, opts.frame_opts).get_matrix())[:, :256]
    want = htk_mel_banks(num_bins, low, 8000.0 + high if high <= 0 else high, 16000.0, 512)
    diff = np.abs(got - want)
    idx = np.unravel_index(diff.argmax(), diff.shape)
    assert diff.max() < 1e-4, f"max diff {diff.max():.2e} at {idx}"
