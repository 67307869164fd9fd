"""The streamed phone probe (--stream): what it reads equals what the in-memory probe holds
(frames, labels, standardisation statistics, predictions), its accuracy matches, --stream
auto's choice from the feature headers, and bad input still fails with the same errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import sh
from recipe_fixtures import mini_recipe_fixture  # noqa: F401
from speechssl.data.ark import ArkScpWriter
from speechssl.data.feature_loader import FeatureTransform
from speechssl.errors import InputError
from speechssl.eval.probe import (
    Moments,
    Probe,
    ProbeConfig,
    Tally,
    predict,
    standardisation,
    tally_streamed,
    train_probe,
)
from speechssl.eval.probe_data import feature_size, header_rows, phone_frames, phone_set
from test_probe import clusters, write_dir
from test_probe import train_probe as train_probe_main


def results_of(exp: Path) -> dict:
    return json.loads((exp / "results.json").read_text())


def overlapping(seed: int, num_utts: int, prefix: str = "u") -> tuple[dict, dict]:
    """Frames of 4 classes around centres 2 apart in 6-d with unit noise: a linear probe
    reaches ~80%, not 100%, so that two trainings can disagree.  Lengths vary (20-79)."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * np.eye(4, 6)
    feats, ali = {}, {}
    for u in range(num_utts):
        labels = rng.integers(0, 4, rng.integers(20, 80))
        utt = f"s{u % 3}-{prefix}{u:03d}"
        feats[utt] = centres[labels] + rng.standard_normal((len(labels), 6))
        ali[utt] = labels
    return feats, ali


def ctm_dir(path: Path) -> Path:
    """A data dir labelled by a CTM with a gap (unlabelled frames), a large mean (as MFCC
    c0) and a constant dimension (its std is floored)."""
    rng = np.random.default_rng(7)
    feats = {}
    for utt, n in (("s0-c1", 30), ("s1-c2", 25), ("s1-c3", 40)):
        x = rng.standard_normal((n, 3))
        x[:, 0] = 50 + 0.01 * x[:, 0]
        x[:, 2] = 1.5
        feats[utt] = x
    data = write_dir(path, feats)
    (data / "phones.ctm").write_text(
        "s0-c1 1 0.00 0.10 a\ns0-c1 1 0.10 0.05 b\ns0-c1 1 0.20 0.12 c\n"   # gap .15-.20
        "s1-c2 1 0.00 0.12 b\ns1-c2 1 0.12 0.14 a\n"
        "s1-c3 1 0.00 0.20 c\ns1-c3 1 0.20 0.215 a\n")
    return data


# ------------------------------------------------------------------ exact agreement

@pytest.mark.parametrize("kind", ["phone_ali", "ctm"])
def test_streamed_frames_labels_and_stats_equal_the_in_memory_ones(tmp_path, kind):
    if kind == "ctm":
        data = ctm_dir(tmp_path / "d")
    else:
        feats, ali = clusters(3, 7)
        # a frame without a label (cut and counted) in 3 utterances, a label more in 2
        ali = {u: a[:-1] if i % 2 else [*a, 1] if i % 3 == 0 else a
               for i, (u, a) in enumerate(ali.items())}
        data = write_dir(tmp_path / "d", feats, phone_ali={**ali, "zz-x": [9, 9]})
    held = phone_set(data, FeatureTransform())
    moments = Moments()
    frames = phone_frames(data, FeatureTransform(), moments.add)
    assert frames.utts == held.utts and frames.vocab == held.vocab
    assert frames.counts == held.counts and frames.source == held.source
    assert frames.num_examples == len(held.x) and frames.dim == held.x.shape[1]
    if kind == "ctm":
        assert held.counts["unlabelled_frames"] > 0 and held.vocab == ["a", "b", "c"]
    else:
        assert held.counts["trimmed_frames"] == 3 and "9" not in held.vocab
    np.testing.assert_array_equal(frames.label_counts(), np.bincount(held.label_ids))
    # every buffer size, one holding everything and ones splitting utterances
    for size in (10 ** 6, 17, 1):
        parts = list(zip(*((x.copy(), y.copy(), u.copy())
                           for x, y, u in frames.buffers(range(frames.num_utts), size)),
                         strict=True))
        assert max(len(y) for y in parts[1]) == min(size, len(held.x))
        np.testing.assert_array_equal(np.concatenate(parts[0]), held.x)
        np.testing.assert_array_equal(np.concatenate(parts[1]), held.label_ids)
        np.testing.assert_array_equal(np.concatenate(parts[2]), held.example_utt)
    # the statistics of the streaming pass are numpy's over the concatenated frames
    mean, std = moments.standardisation()
    np.testing.assert_allclose(mean, held.x.mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(std, np.maximum(held.x.std(axis=0, dtype=np.float64), 1e-5),
                               rtol=1e-5)
    ref_mean, ref_std = standardisation(held.x)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6)
    np.testing.assert_allclose(std, ref_std, rtol=1e-5)


def test_a_probe_predicts_the_same_whichever_path_reads_the_frames(tmp_path):
    feats, ali = overlapping(1, 20)
    data = write_dir(tmp_path / "d", feats, phone_ali=ali)
    held = phone_set(data, FeatureTransform())
    frames = phone_frames(data, FeatureTransform())
    y = held.label_ids
    probe, _ = train_probe(held.x, y, 4, ProbeConfig(epochs=2, lr=1e-2, batch_size=64))
    rows = np.arange(4)
    in_memory = Tally(4, 4, held.num_utts)
    in_memory.add(y, predict(probe, held.x), held.example_utt)
    for size in (10 ** 6, 100):
        streamed = tally_streamed(probe, frames, rows, Tally(4, 4, frames.num_utts), size)
        np.testing.assert_array_equal(streamed.confusion, in_memory.confusion)
        np.testing.assert_array_equal(streamed.correct, in_memory.correct)
        np.testing.assert_array_equal(streamed.total, in_memory.total)
    assert in_memory.num_examples == len(y) and 0 < in_memory.accuracy() < 100


def test_probe_classifies_standardised_inputs():
    probe = Probe(np.array([1.0, 2.0]), np.array([2.0, 4.0]), 3)
    x = torch.tensor([[3.0, 6.0], [1.0, 2.0]])
    torch.testing.assert_close(probe(x), probe.classify(torch.tensor([[1.0, 1.0], [0, 0]])))
    torch.testing.assert_close(probe.standardise_(x.clone()), probe.standardise(x))


# ------------------------------------------------------------------ training

def test_streamed_probe_matches_the_in_memory_accuracy(tmp_path):
    for name, seed in (("train", 1), ("test", 2)):
        feats, ali = overlapping(seed, 60, name)
        write_dir(tmp_path / name, feats, phone_ali=ali)
    common = ["--task", "phone", "--batch-size", "64", "--seed", "3",
              str(tmp_path / "train"), str(tmp_path / "test")]
    train_probe_main([*common[:-2], "--stream", "false", *common[-2:], str(tmp_path / "mem")])
    # buffers of 500 frames: ~6 buffers per epoch, utterances split between them
    train_probe_main([*common[:-2], "--stream", "true", "--buffer-frames", "500",
                      *common[-2:], str(tmp_path / "str")])
    mem, streamed = results_of(tmp_path / "mem"), results_of(tmp_path / "str")
    assert (mem["streamed"], streamed["streamed"]) == (False, True)
    assert streamed["buffer_frames"] == 500 and mem["buffer_frames"] is None
    assert 70 < mem["accuracy"] < 95, mem   # neither trivial nor chance
    assert abs(streamed["accuracy"] - mem["accuracy"]) <= 1.0, (mem, streamed)
    assert abs(streamed["train_accuracy"] - mem["train_accuracy"]) <= 1.0
    same = ("num_train", "num_test", "num_classes", "majority_baseline", "num_train_utts",
            "num_test_utts", "dim", "input", "bootstrap", "train_trimmed_frames")
    assert {k: streamed[k] for k in same} == {k: mem[k] for k in same}
    assert streamed["accuracy_ci"][0] <= streamed["accuracy"] <= streamed["accuracy_ci"][1]
    assert streamed["peak_rss_mb"] > 0 and mem["peak_rss_mb"] > 0
    table = (tmp_path / "str" / "per_class.txt").read_text().splitlines()
    assert [x.split()[:3] for x in table[1:]] == [
        x.split()[:3] for x in (tmp_path / "mem" / "per_class.txt").read_text().splitlines()[1:]]


def test_stream_auto_decides_from_the_feature_headers(tmp_path):
    feats, ali = clusters(4, 9)
    write_dir(tmp_path / "train", feats, phone_ali=ali)
    write_dir(tmp_path / "test", {f"t{u}": x for u, x in feats.items()},
              phone_ali={f"t{u}": a for u, a in ali.items()})
    args = ["--task", "phone", "--epochs", "3", str(tmp_path / "train"), str(tmp_path / "test")]
    # 450 frames x 6 dims x 4 bytes = 0.010 MB
    train_probe_main(["--max-memory-mb", "0.001", *args, str(tmp_path / "tiny")])
    train_probe_main(["--max-memory-mb", "0.02", *args, str(tmp_path / "fits")])
    assert results_of(tmp_path / "tiny")["streamed"] is True
    assert results_of(tmp_path / "fits")["streamed"] is False
    # the speaker probe holds one vector per utterance whatever the limit
    train_probe_main(["--max-memory-mb", "0.001", "--epochs", "3", "--task", "speaker",
                      *speaker_split(tmp_path, feats), str(tmp_path / "spk")])
    assert results_of(tmp_path / "spk")["streamed"] is False


def speaker_split(tmp_path: Path, feats: dict) -> list[str]:
    """Held-out utterances of the same speakers: the first two of each speaker train."""
    train, test = {}, {}
    for u, x in sorted(feats.items()):
        (train if sum(v.split("-")[0] == u.split("-")[0] for v in train) < 2 else test)[u] = x
    write_dir(tmp_path / "spk_train", train)
    write_dir(tmp_path / "spk_test", test)
    return [str(tmp_path / "spk_train"), str(tmp_path / "spk_test")]


@pytest.mark.parametrize("compress", [False, True])
def test_feature_size_reads_frame_counts_from_headers(tmp_path, compress):
    data = tmp_path / "d"
    data.mkdir()
    lengths = {"s0-a": 7, "s0-b": 300, "s1-c": 1}
    with ArkScpWriter(data / "f.ark", data / "feats.scp", compress=compress) as w:
        for utt, n in lengths.items():
            w.write(utt, np.random.default_rng(n).standard_normal((n, 5)).astype(np.float32))
    (data / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in lengths))
    scp = dict(line.split() for line in (data / "feats.scp").read_text().splitlines())
    assert {u: header_rows(r) for u, r in scp.items()} == lengths
    assert header_rows(f"{scp['s0-a']}[0:3]") is None and header_rows("cat x.ark |") is None
    assert feature_size(data, FeatureTransform()) == (308, 5)
    assert feature_size(data, FeatureTransform(delta_order=2)) == (308, 15)
    # utt2num_frames, where there is one, is what the loader checks against: it is used
    (data / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, n in lengths.items()))
    assert feature_size(data, FeatureTransform()) == (308, 5)


# ------------------------------------------------------------------ bad input

def stream(argv: list[str]) -> int:
    return train_probe_main(["--stream", "true", "--epochs", "2", *argv])


def test_streamed_bad_input_gives_the_same_errors(tmp_path):
    data = write_dir(tmp_path / "d", {"s0-u1": np.zeros((5, 2)), "s0-u2": np.zeros((9, 2))},
                     phone_ali={"s0-u1": [1] * 5, "s0-u2": [1] * 6})
    ok = write_dir(tmp_path / "ok", {"s1-u3": np.ones((3, 2))}, phone_ali={"s1-u3": [1] * 3})
    for train, test in ((data, ok), (ok, data)):
        with pytest.raises(InputError, match=r"phone_ali:2: key 's0-u2': 6 frame labels for 9 "):
            stream(["--task", "phone", str(train), str(test), str(tmp_path / "e")])
    write_dir(tmp_path / "b", {"s0-u4": np.zeros((3, 4))}, phone_ali={"s0-u4": [1, 1, 1]})
    with pytest.raises(InputError, match="dimension 2, test vectors .* 4"):
        stream(["--task", "phone", str(ok), str(tmp_path / "b"), str(tmp_path / "e")])
    nan = np.zeros((3, 2))
    nan[1, 1] = math.nan
    write_dir(tmp_path / "n", {"s0-u5": nan}, phone_ali={"s0-u5": [1, 1, 1]})
    with pytest.raises(InputError, match=r"n/feats.scp: key 's0-u5': .*NaN"):
        stream(["--task", "phone", str(ok), str(tmp_path / "n"), str(tmp_path / "e")])
    feats, ali = clusters(5, 21)
    write_dir(tmp_path / "two", feats, phone_ali=dict(list(ali.items())[2:]))   # 2 of 21
    with pytest.raises(InputError, match=r"2 of 21 utterances .* have no labels .*s0-u000"):
        stream(["--task", "phone", str(ok), str(tmp_path / "two"), str(tmp_path / "e")])
    with pytest.raises(InputError, match="no frame labels: need phone_ali"):
        stream(["--task", "phone", str(ok), str(write_dir(tmp_path / "x", {"s2-u": nan})),
                str(tmp_path / "e")])
    assert not (tmp_path / "e" / "results.json").exists()


def test_stream_options_are_checked(tmp_path, capsys):
    for argv, message in ((["--stream", "true", "--task", "speaker"], "applies to --task phone"),
                          (["--buffer-frames", "0", "--task", "phone"], "at least 1"),
                          (["--max-memory-mb", "0", "--task", "phone"], "must be positive")):
        with pytest.raises(SystemExit):
            train_probe_main([*argv, "a", "b", str(tmp_path / "e")])
        assert message in capsys.readouterr().err


# ------------------------------------------------------------------ the step

def test_step_streams_the_phone_probe(mini_recipe):
    r = mini_recipe
    sh("steps/train_probe.sh --task phone --stream true --buffer-frames 3000 --epochs 3 "
       "data/train_mfcc data/test_mfcc exp/probe/phone_stream", cwd=r)
    res = results_of(r / "exp/probe/phone_stream")
    frames = sum(int(x.split()[1]) for x in (r / "data/test_mfcc/utt2num_frames").open())
    assert res["streamed"] is True and res["buffer_frames"] == 3000
    assert res["num_test"] == frames and res["dim"] == 39 and res["epochs"] == 3
    assert res["accuracy"] > res["majority_baseline"], res
    assert "stream=true" in (r / "exp/probe/phone_stream/config").read_text()
    # the bar on the tiny corpus: within 1 point of the in-memory probe (same seed)
    sh("steps/train_probe.sh --task phone --stream false --epochs 3 "
       "data/train_mfcc data/test_mfcc exp/probe/phone_memory", cwd=r)
    memory = results_of(r / "exp/probe/phone_memory")
    assert memory["streamed"] is False
    assert abs(res["accuracy"] - memory["accuracy"]) <= 1.0, (res, memory)
    bad = sh("steps/train_probe.sh --task phone --stream maybe data/train_mfcc data/test_mfcc "
             "exp/x", cwd=r, check=False)
    assert bad.returncode == 1 and "--stream must be auto, true or false" in bad.stderr
