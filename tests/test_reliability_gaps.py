"""Issue 15's reliability gaps: NaN features and stats refused by every reader, feats.scp
entries checked against utt2num_frames, config values checked for their range, and config
errors shown on the console by steps/train_ssl.sh before the job starts."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, sh
from speechssl.bin import compute_cmvn_stats
from speechssl.data.ark import ArkScpWriter
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.data.table import write_table
from speechssl.errors import InputError
from speechssl.models import METHODS
from speechssl.models.cae_rnn import CAERNNConfig
from speechssl.models.encoders import TDNNConfig, ThinResNetConfig
from speechssl.train.config import (
    AugmentConfig,
    DataConfig,
    NoiseSource,
    OptimConfig,
    TrainConfig,
    load_config,
)
from speechssl.typed_config import RANGE, check_ranges, from_dict


def frames(num: int, seed: int, dim: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num, dim)).astype(np.float32)


def feature_dir(path: Path, mats: dict[str, np.ndarray]) -> Path:
    """A data dir of ``mats`` (utterance ids ``<spk>-<n>``) with utt2num_frames."""
    with ArkScpWriter(path / "data" / "feats.ark", path / "feats.scp") as writer:
        for utt, mat in sorted(mats.items()):
            writer.write(utt, mat)
    utt2spk = {utt: utt.split("-")[0] for utt in mats}
    write_table(path / "utt2spk", utt2spk)
    spk2utt: dict[str, list[str]] = {}
    for utt, spk in sorted(utt2spk.items()):
        spk2utt.setdefault(spk, []).append(utt)
    write_table(path / "spk2utt", {spk: " ".join(utts) for spk, utts in spk2utt.items()})
    write_table(path / "utt2num_frames", {utt: str(len(m)) for utt, m in mats.items()})
    return path


def with_bad_value(mat: np.ndarray, value: float, at=(3, 1)) -> np.ndarray:
    mat = mat.copy()
    mat[at] = value
    return mat


# ---------------------------------------------------------------- non-finite features


def test_cmvn_step_fails_on_nan_naming_the_utterance_and_feats_scp(tmp_path):
    data = feature_dir(tmp_path / "d", {"a-1": frames(8, 1),
                                        "a-2": with_bad_value(frames(9, 2), np.nan)})
    proc = sh(f"steps/compute_cmvn_stats.sh {data}", cwd=ROOT, check=False)
    assert proc.returncode != 0, proc.stderr
    log = (data / "log" / "cmvn_d.log").read_text()
    assert f"{data}/feats.scp: key 'a-2': features contain NaN" in log, log
    assert "frame 3, dim 1" in log
    assert not (data / "cmvn.scp").exists()


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_cmvn_stats_refuse_infinite_features(tmp_path, value):
    data = feature_dir(tmp_path / "d", {"a-1": with_bad_value(frames(8, 1), value)})
    with pytest.raises(InputError, match=r"feats.scp: key 'a-1': features contain NaN or inf"):
        compute_cmvn_stats.main([str(data), str(tmp_path / "c.ark"), str(tmp_path / "c.scp")])
    assert not (tmp_path / "c.scp").exists()


def test_samediff_step_refuses_nan_cmvn_stats(tmp_path):
    """NaN stats of a speaker (as an older compute_cmvn_stats, or Kaldi's, wrote them) made
    every utterance of the speaker NaN after CMVN, and the step reported an AP anyway."""
    data = feature_dir(tmp_path / "d", {"a-1": frames(20, 1), "a-2": frames(20, 2)})
    stats = np.zeros((2, 4))
    stats[0] = [np.nan, 0.0, 0.0, 40.0]
    with ArkScpWriter(data / "data" / "cmvn.ark", data / "cmvn.scp") as writer:
        writer.write("a", stats)
    words = tmp_path / "words"
    words.write_text("".join(f"hello_a_{u}_000000-000010 {u} 0 10\n" for u in ("a-1", "a-2")))
    proc = sh(f"steps/score_samediff.sh --cmvn true {data} {words} {tmp_path / 'sd'}",
              cwd=ROOT, check=False)
    assert proc.returncode != 0, proc.stderr
    log = (tmp_path / "sd" / "log" / "score_samediff.log").read_text()
    assert f"{data}/cmvn.scp: key 'a': CMVN stats contain NaN" in log, log
    assert not (tmp_path / "sd" / "results.json").exists()


# ---------------------------------------------------------------- frame counts


def test_entry_with_another_utterances_offset_is_refused(tmp_path):
    data = feature_dir(tmp_path / "d", {"a-1": frames(10, 1), "a-2": frames(7, 2)})
    scp = (data / "feats.scp").read_text().splitlines()
    offset_of_first = scp[0].split()[1]
    (data / "feats.scp").write_text(f"{scp[0]}\na-2 {offset_of_first}\n")
    message = r"feats.scp: key 'a-2': .* holds 10 frames, utt2num_frames says 7"
    with pytest.raises(InputError, match=message):
        FeatureLoader(data, FeatureTransform())["a-2"]
    with pytest.raises(InputError, match=message):
        compute_cmvn_stats.main([str(data), str(tmp_path / "c.ark"), str(tmp_path / "c.scp")])


def test_without_utt2num_frames_nothing_is_compared(tmp_path):
    data = feature_dir(tmp_path / "d", {"a-1": frames(10, 1)})
    (data / "utt2num_frames").unlink()
    assert FeatureLoader(data)["a-1"].shape == (10, 3)


# ---------------------------------------------------------------- config ranges

@pytest.mark.parametrize("text,message", [
    ("method: apc\ndata: {max_batch_size: -1}\n", "data.max_batch_size: must be > 0, got -1"),
    ("method: apc\ndata: {max_batch_size: 0}\n", "data.max_batch_size: must be > 0, got 0"),
    ("method: apc\noptim: {lr: 0}\n", "optim.lr: must be > 0, got 0.0"),
    ("method: apc\noptim: {lr: .nan}\n", "optim.lr: must be > 0, got nan"),
    ("method: apc\noptim: {betas: [0.9, 1]}\n", "optim.betas[1]: must be in [0, 1), got 1.0"),
    ("method: apc\ndata: {augment: {noise_prob: 1.5}}\n",
     "data.augment.noise_prob: must be in [0, 1], got 1.5"),
    ("method: apc\ntrain: {keep_checkpoints: 0}\n", "train.keep_checkpoints: must be > 0"),
    ("method: apc\nmodel: {dropout: 1.0}\n", "model.dropout: must be in [0, 1), got 1.0"),
    ("method: cpc\nmodel: {num_negatives: -3}\n", "model.num_negatives: must be > 0, got -3"),
    ("method: vicreg\nmodel: {resnet: {channels: [8, 0, 8, 8]}}\n",
     "model.resnet.channels[1]: must be > 0, got 0"),
    ("method: apc\ndata: {max_batch_size: true}\n",
     "data.max_batch_size' = True must be a int"),
    ("method: apc\noptim: {lr: 1e-3}\n",
     "optim.lr' = '1e-3' must be a float, not a string (YAML reads 1e-3 as a string: "
     "write 1.0e-3)"),
])
def test_out_of_range_values_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_config(path)
    assert f"{path}: " in str(e.value) and message in str(e.value), str(e.value)


CONFIG_CLASSES = [DataConfig, AugmentConfig, NoiseSource, OptimConfig, TrainConfig,
                  ThinResNetConfig, TDNNConfig, CAERNNConfig,
                  *(cls.Config for cls in METHODS.values())]


def _numbers(tp) -> bool:
    """int or float, alone or as the elements of a list or tuple."""
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    return tp in (int, float) or (typing.get_origin(tp) in (list, tuple)
                                  and bool(args) and set(args) <= {int, float})


# Number fields whose __post_init__ checks them, as their range depends on each other.
CHECKED_ELSEWHERE = {"NoiseSource.count"}  # 1 <= low <= high


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_number_field_declares_its_range(cls):
    hints = typing.get_type_hints(cls)
    unchecked = [f.name for f in dataclasses.fields(cls)
                 if _numbers(hints[f.name]) and RANGE not in f.metadata
                 and f"{cls.__name__}.{f.name}" not in CHECKED_ELSEWHERE]
    assert not unchecked, f"{cls.__name__}: no bounded(...) range for {unchecked}"
    if cls is not NoiseSource:  # it has no defaults to check
        check_ranges(cls())


def test_union_errors_say_why_no_option_fits():
    @dataclasses.dataclass
    class WithOptional:
        size: int | None = None

    with pytest.raises(InputError, match=r"is not a .*\('x.size' = 'big' must be a int"):
        from_dict(WithOptional, {"size": "big"}, "x")


# ---------------------------------------------------------------- the step, before its job

BAD_CONFIGS = [
    ("method: apc\ndata: {max_batch_sise: 8}\n", "", "unknown key '{config}: data.max_batch_sise'"),
    ("method: apc\noptim: {lr: 1e-3}\n", "", "optim.lr' = '1e-3' must be a float"),
    ("method: apc\ndata: {max_batch_size: 8\n", "", "{config}: not valid YAML"),
    ("method: apc\n", "trian.seed=1", "--override 'trian.seed=1': no config section 'trian'"),
    ("method: apc\ndata: {max_batch_size: -1}\n", "",
     "{config}: data.max_batch_size: must be > 0, got -1"),
]


@pytest.mark.parametrize("text,overrides,message", BAD_CONFIGS,
                         ids=["unknown-key", "string-lr", "bad-yaml", "bad-override", "range"])
def test_train_step_shows_config_errors_on_the_console(tmp_path, text, overrides, message):
    data = feature_dir(tmp_path / "d", {"a-1": frames(10, 1)})
    config, exp = tmp_path / "x.yaml", tmp_path / "exp"
    config.write_text(text)
    proc = sh(f"steps/train_ssl.sh --overrides '{overrides}' {config} {data} {exp}",
              cwd=ROOT, check=False)
    assert proc.returncode != 0
    assert message.format(config=config) in proc.stderr, proc.stderr
    assert not (exp / "log" / "train.log").exists(), "the job should not have started"
