"""Probing classifiers: frame labels from CTM and phone_ali, the trim rule, separable and
shuffled synthetic data, bad input, and the three tasks through steps/train_probe.sh."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, sh
from recipe_fixtures import mini_recipe_fixture  # noqa: F401
from speechssl.bin.train_probe import main as train_probe_main
from speechssl.data.ark import ArkScpWriter
from speechssl.data.ctm import CtmEntry
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureTransform
from speechssl.errors import InputError
from speechssl.eval.probe_data import ctm_frame_labels, frame_labels, phone_set

STEP = ROOT / "steps" / "train_probe.sh"


def train_probe(argv: list[str]) -> int:
    """The entry point, as the step calls it: --cmvn and --delta-order are required."""
    return train_probe_main(["--cmvn", "false", "--delta-order", "0", *argv])


def write_dir(path: Path, feats: dict[str, np.ndarray], utt2spk: dict[str, str] | None = None,
              phone_ali: dict[str, list] | None = None, **tables: dict[str, str]) -> Path:
    """A data dir of given feature matrices; speaker = utterance prefix before '-'."""
    path.mkdir(parents=True)
    with ArkScpWriter(path / "feats.ark", path / "feats.scp") as w:
        for utt in sorted(feats):
            w.write(utt, feats[utt].astype(np.float32))
    utt2spk = utt2spk or {u: u.split("-")[0] for u in feats}
    (path / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in sorted(utt2spk)))
    if phone_ali is not None:
        (path / "phone_ali").write_text(
            "".join(f"{u} {' '.join(map(str, ali))}\n" for u, ali in phone_ali.items()))
    for name, table in tables.items():
        (path / name).write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())))
    return path


def clusters(seed: int, num_utts: int, prefix: str = "u", frames: int = 50, classes: int = 4,
             dim: int = 6, shuffle: bool = False) -> tuple[dict, dict]:
    """Frames drawn around one far-apart centre per class (linearly separable), with their
    class as label, or with labels drawn independently of the frames when ``shuffle``."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(classes, dim)
    feats, ali = {}, {}
    for u in range(num_utts):
        labels = rng.integers(0, classes, frames)
        utt = f"s{u % 3}-{prefix}{u:03d}"
        feats[utt] = centres[labels] + rng.standard_normal((frames, dim))
        ali[utt] = rng.integers(0, classes, frames) if shuffle else labels
    return feats, ali


def results_of(exp: Path) -> dict:
    return json.loads((exp / "results.json").read_text())


# ------------------------------------------------------------------ frame labels

def test_ctm_frame_labels_by_hand():
    # shift 10 ms, centres t*0.01 + 0.0125.  a: [0, .05) holds t = 0..3; b: [.05, .12)
    # t = 4..10; c: [.123, .16) t = 11..14 (.1225 lies in a 3 ms gap, 0.5 ms before c);
    # t = 15 (.1625) is 2.5 ms after c's end (<= half a shift: c); t = 16..19 (.1725-.2025)
    # are more than 5 ms from any entry: unlabelled; d: [.21, .30) t = 20..28.
    ctm = [CtmEntry("u", "1", 0.0, 0.05, "a"), CtmEntry("u", "1", 0.05, 0.07, "b"),
           CtmEntry("u", "1", 0.123, 0.037, "c"), CtmEntry("u", "1", 0.21, 0.09, "d")]
    expected = ["a"] * 4 + ["b"] * 7 + ["c"] * 4 + ["c"] + [None] * 4 + ["d"] * 9
    assert ctm_frame_labels(ctm, 0.01) == expected
    # 20 ms shift, centres .0125 + .02t < .2: 10 frames; before a late first entry they are
    # unlabelled, except .0925, 7.5 ms before it (<= 10 ms, half this shift)
    late = [CtmEntry("u", "1", 0.1, 0.1, "x")]
    assert ctm_frame_labels(late, 0.02) == [None] * 4 + ["x"] * 6


def test_frame_labels_from_ctm_use_frame_shift(tmp_path):
    data = write_dir(tmp_path / "d", {"s0-u1": np.zeros((3, 2))})
    (data / "phones.ctm").write_text("s0-u1 1 0.000 0.030 sil\ns0-u1 1 0.030 0.030 k\n")
    (data / "frame_shift").write_text("0.02\n")
    labels = frame_labels(DataDir(data))
    # centres 0.0125, 0.0325, 0.0525 (< 0.06): sil, k, k, as int32 ids
    assert labels.name == "phones.ctm" and list(labels.utts) == ["s0-u1"]
    line, ids = labels.utts["s0-u1"]
    assert line is None and ids.dtype == np.int32 and labels.vocab == ["sil", "k"]
    assert labels.decoded("s0-u1") == ["sil", "k", "k"]


def test_phone_ali_is_preferred_and_trimmed_up_to_two_frames(tmp_path):
    feats = {"s0-u1": np.arange(10.0).reshape(5, 2), "s0-u2": np.ones((4, 2)),
             "s0-u3": np.zeros((6, 2))}
    ali = {"s0-u2": [7, 7, 8, 8, 9, 9],          # 2 labels more: the last two dropped
           "s0-u1": ["a", "a", "b", "b", "b"],   # exact
           "s0-u3": [1, 1, 1, 1, 2]}             # 1 label fewer: the last frame dropped
    data = write_dir(tmp_path / "d", feats, phone_ali=ali)
    (data / "phones.ctm").write_text("s0-u1 1 0 1 never-used\n")
    s = phone_set(data, FeatureTransform())
    assert s.source == "feats.scp frames (phone_ali)"
    assert list(s.labels) == ["a", "a", "b", "b", "b", "7", "7", "8", "8", "1", "1", "1", "1",
                              "2"]
    np.testing.assert_array_equal(s.x[:5], feats["s0-u1"])
    np.testing.assert_array_equal(s.x[9:], feats["s0-u3"][:5])
    assert s.counts["trimmed_frames"] == 1 and s.counts["features_without_labels"] == 0


def test_frame_count_mismatch_over_two_is_an_error(tmp_path):
    data = write_dir(tmp_path / "d", {"s0-u1": np.zeros((5, 2)), "s0-u2": np.zeros((9, 2))},
                     phone_ali={"s0-u1": [1] * 5, "s0-u2": [1] * 6})
    with pytest.raises(InputError, match=r"phone_ali:2: key 's0-u2': 6 frame labels for 9 "):
        phone_set(data, FeatureTransform())


# ------------------------------------------------------------------ learning

def test_separable_data_reach_100_and_shuffled_labels_chance(tmp_path):
    for name, shuffle in (("sep", False), ("shuf", True)):
        train_feats, train_ali = clusters(1, 30, shuffle=shuffle)
        test_feats, test_ali = clusters(2, 30, "t", shuffle=shuffle)
        write_dir(tmp_path / f"{name}_train", train_feats, phone_ali=train_ali)
        write_dir(tmp_path / f"{name}_test", test_feats, phone_ali=test_ali)
        assert train_probe(["--task", "phone", str(tmp_path / f"{name}_train"),
                            str(tmp_path / f"{name}_test"), str(tmp_path / name)]) == 0
    sep, shuf = results_of(tmp_path / "sep"), results_of(tmp_path / "shuf")
    assert sep["accuracy"] == 100.0 and sep["train_accuracy"] == 100.0
    assert sep["num_classes"] == 4 and sep["num_train"] == sep["num_test"] == 1500
    # 1500 test frames of 4 uniform classes: chance 25%, binomial sd 1.1%
    assert abs(shuf["accuracy"] - 25.0) < 5.0, shuf
    table = (tmp_path / "sep" / "per_class.txt").read_text().splitlines()
    assert table[0].startswith("# label") and [x.split()[0] for x in table[1:]] == list("0123")
    assert all(float(x.split()[3]) == 100.0 for x in table[1:])


def test_hidden_layer_is_deterministic_and_saved(tmp_path):
    for name, seed in (("train", 3), ("test", 4)):
        feats, ali = clusters(seed, 12, name)
        write_dir(tmp_path / name, feats, phone_ali=ali)
    outs = []
    for run in ("a", "b"):
        train_probe(["--task", "phone", "--hidden-dim", "8", "--epochs", "5",
                     "--batch-size", "32", "--seed", "5", str(tmp_path / "train"),
                     str(tmp_path / "test"), str(tmp_path / run)])
        outs.append(torch.load(tmp_path / run / "probe.pt", weights_only=True))
    a, b = outs
    assert a["hidden_dim"] == 8 and a["state_dict"]["net.0.weight"].shape == (8, 6)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    res = results_of(tmp_path / "a")
    assert res["hidden_dim"] == 8 and res["epochs"] == 5 and res["accuracy"] > 90
    assert res["accuracy"] == results_of(tmp_path / "b")["accuracy"]


def test_unseen_test_labels_count_as_errors(tmp_path):
    feats, ali = clusters(4, 9)
    write_dir(tmp_path / "train", feats, phone_ali=ali)
    # the same frames as test utterances, with class 3 renamed "9"
    write_dir(tmp_path / "test", {f"t{u}": x for u, x in feats.items()},
              phone_ali={f"t{u}": np.where(a == 3, 9, a) for u, a in ali.items()})
    train_probe(["--task", "phone", str(tmp_path / "train"), str(tmp_path / "test"),
                 str(tmp_path / "exp")])
    res = results_of(tmp_path / "exp")
    num_unseen = int(sum((a == 3).sum() for a in ali.values()))
    assert res["unseen_test_labels"] == num_unseen > 0
    assert res["train_accuracy"] == 100.0
    assert res["accuracy"] == round(100 * (450 - num_unseen) / 450, 2)
    assert f"9 0 {num_unseen} 0.00 unseen-in-training" in (
        tmp_path / "exp" / "per_class.txt").read_text()


# ------------------------------------------------------------------ bad input

def test_missing_labels_are_errors(tmp_path):
    data = write_dir(tmp_path / "d", {"s0-u1": np.zeros((3, 2))})
    with pytest.raises(InputError, match="no frame labels: need phone_ali"):
        train_probe(["--task", "phone", str(data), str(data), str(tmp_path / "e")])
    other = write_dir(tmp_path / "other", {"s1-u1": np.zeros((3, 2))})
    with pytest.raises(InputError, match=r"d: no utt2lang: the language probe needs"):
        train_probe(["--task", "language", str(data), str(other), str(tmp_path / "e")])


def test_unmatched_utterances_are_skipped_and_counted_or_an_error(tmp_path, caplog):
    train_feats, train_ali = clusters(6, 6, "a")
    extra = {"zz-nofeats": [0, 1]}   # labels of an utterance without features: skipped
    write_dir(tmp_path / "ok", train_feats, phone_ali={**train_ali, **extra})
    feats, ali = clusters(5, 21)
    one_missing = dict(list(ali.items())[1:])    # 1 of 21 without labels: < 5%, skipped
    write_dir(tmp_path / "one", feats, phone_ali=one_missing)
    train_probe(["--task", "phone", str(tmp_path / "ok"), str(tmp_path / "one"),
                 str(tmp_path / "exp")])
    res = results_of(tmp_path / "exp")
    assert res["train_labels_without_features"] == 1 and res["test_features_without_labels"] == 1
    assert res["num_test_utts"] == 20 and res["num_test"] == 1000
    assert "zz-nofeats" in caplog.text and "s0-u000" in caplog.text
    write_dir(tmp_path / "two", feats, phone_ali=dict(list(ali.items())[2:]))   # 2 of 21
    with pytest.raises(InputError, match=r"2 of 21 utterances .* have no labels .*s0-u000"):
        train_probe(["--task", "phone", str(tmp_path / "ok"), str(tmp_path / "two"),
                     str(tmp_path / "exp")])


def test_dimension_mismatch_and_nan_are_errors(tmp_path):
    write_dir(tmp_path / "a", {"s0-u1": np.zeros((3, 2))}, phone_ali={"s0-u1": [1, 1, 1]})
    write_dir(tmp_path / "b", {"s0-u2": np.zeros((3, 4))}, phone_ali={"s0-u2": [1, 1, 1]})
    with pytest.raises(InputError, match="dimension 2, test vectors .* 4"):
        train_probe(["--task", "phone", str(tmp_path / "a"), str(tmp_path / "b"),
                     str(tmp_path / "e")])
    nan = np.zeros((3, 2))
    nan[1, 1] = math.nan
    write_dir(tmp_path / "n", {"s0-u3": nan}, phone_ali={"s0-u3": [1, 1, 1]})
    with pytest.raises(InputError, match=r"n/feats.scp: key 's0-u3': .*NaN"):
        train_probe(["--task", "phone", str(tmp_path / "a"), str(tmp_path / "n"),
                     str(tmp_path / "e")])


def test_speaker_and_language_split_rules(tmp_path):
    def utts(spks):
        return {f"{s}-u{i}": np.full((4, 2), float(i)) for s in spks for i in range(2)}

    lang = {u: "en" for u in utts("abcd")}
    write_dir(tmp_path / "train", utts("ab"), utt2lang={u: "en" for u in utts("ab")})
    write_dir(tmp_path / "test", utts("bcd"), utt2lang={u: lang[u] for u in utts("bcd")})
    with pytest.raises(InputError, match=r"2 test speakers do not occur in training \(c d\)"):
        train_probe(["--task", "speaker", str(tmp_path / "train"), str(tmp_path / "test"),
                     str(tmp_path / "e")])
    with pytest.raises(InputError, match=r"1 speakers occur in both .* \(b\)"):
        train_probe(["--task", "language", str(tmp_path / "train"), str(tmp_path / "test"),
                     str(tmp_path / "e")])
    # speakers in common are right for the speaker probe, utterances in common never
    write_dir(tmp_path / "same", utts("b"))
    with pytest.raises(InputError, match=r"2 utterances occur in both .*\(b-u0 b-u1\)"):
        train_probe(["--task", "speaker", str(tmp_path / "train"), str(tmp_path / "same"),
                     str(tmp_path / "e")])


def test_embedding_scp_is_used_as_is(tmp_path):
    rng = np.random.default_rng(0)
    for name, utts in (("train", range(5)), ("test", range(5, 7))):
        data = tmp_path / name
        data.mkdir()
        utt2spk = {f"s{s}-u{i}": f"s{s}" for s in range(3) for i in utts}
        with ArkScpWriter(data / "e.ark", data / "embedding.scp") as w:
            for u, s in sorted(utt2spk.items()):
                w.write(u, (5 * np.eye(3)[int(s[1])] + rng.standard_normal(3)).astype(np.float32))
        (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    train_probe(["--task", "speaker", str(tmp_path / "train"), str(tmp_path / "test"),
                 str(tmp_path / "exp")])
    res = results_of(tmp_path / "exp")
    assert res["input"] == "embedding.scp" and res["dim"] == 3 and res["accuracy"] == 100.0
    assert res["num_train"] == 15 and res["num_test"] == 6 and res["num_classes"] == 3
    with pytest.raises(InputError, match="needs frame-level features"):
        train_probe(["--task", "phone", str(tmp_path / "train"), str(tmp_path / "test"),
                     str(tmp_path / "exp")])


# ------------------------------------------------------------------ the step

def test_three_probes_through_the_step(mini_recipe):
    r = mini_recipe
    # speaker: 4 training and 1 held-out utterance of each training speaker
    sh("awk '{n[$2]++; print $1 > (n[$2] <= 4 ? \"probe_tr\" : \"probe_te\")}' "
       "data/train_mfcc/utt2spk && "
       "utils/subset_data_dir.sh --utt-list probe_tr data/train_mfcc data/probe_spk_train && "
       "utils/subset_data_dir.sh --utt-list probe_te data/train_mfcc data/probe_spk_test",
       cwd=r)
    runs = {"phone": "data/train_mfcc data/test_mfcc",  # eval_opts: CMVN and deltas
            "speaker": "data/probe_spk_train data/probe_spk_test",
            "language": "data/train_mfcc data/test_mfcc"}
    # side by side (the test's time is mostly Python and torch starting up)
    sh("".join(f"steps/train_probe.sh --task {t} {a} exp/probe/{t} 2> log_{t} & "
               for t, a in runs.items()) + "for t in 1 2 3; do wait -n || exit 1; done", cwd=r)
    for task in runs:
        res = results_of(r / "exp" / "probe" / task)
        assert res["task"] == f"probe_{task}"
        # The tiny corpus trains on one speaker per language: its language probe fits them
        # but cannot be expected to generalise to the test speakers.
        score = res["train_accuracy"] if task == "language" else res["accuracy"]
        assert score > res["majority_baseline"], res
        assert 0 <= res["accuracy"] <= 100 and 0 <= res["train_accuracy"] <= 100
        assert res["accuracy_ci"][0] <= res["accuracy"] <= res["accuracy_ci"][1], res
        assert res["unseen_test_labels"] == 0 or task == "phone"
        assert (r / "exp" / "probe" / task / "probe.pt").is_file()
    phone = results_of(r / "exp/probe/phone")
    frames = sum(int(x.split()[1]) for x in (r / "data/test_mfcc/utt2num_frames").open())
    assert phone["num_test"] == frames and phone["dim"] == 39 and phone["features"] == "test_mfcc"
    assert results_of(r / "exp/probe/speaker")["num_test"] == 3     # 3 training speakers
    assert results_of(r / "exp/probe/language")["num_test"] == 20   # 4 test speakers x 5
    assert (r / "exp/probe/phone/per_class.txt").read_text().startswith("# label")
    # The phone probe read MFCC as data/train_mfcc/eval_opts says; the others pool raw ones.
    assert (phone["cmvn"], phone["delta_order"]) == (True, 2)
    speaker = results_of(r / "exp/probe/speaker")
    assert (speaker["cmvn"], speaker["delta_order"]) == (False, 0)


def test_step_rejects_bad_options(mini_recipe):
    bad = sh(f"{STEP} --task tone data/train_mfcc data/test_mfcc exp/x", cwd=mini_recipe,
             check=False)
    assert bad.returncode == 1 and "--task must be phone, speaker or language" in bad.stderr
