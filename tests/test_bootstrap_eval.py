"""Speaker-level bootstrap intervals (speechssl.eval.bootstrap) of speaker verification,
the probes and ASR: the fast weighted forms equal the brute-force one (copy each drawn
speaker's items, compute the plain metric, take the percentiles), intervals narrow as
speakers are added, and each CLI's results.json carries them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechssl.bin import score_sv, score_wer
from speechssl.data.feature_loader import FeatureTransform
from speechssl.data.trials import Trial
from speechssl.errors import InputError
from speechssl.eval import bootstrap as bs
from speechssl.eval.metrics import compute_eer, compute_min_dcf
from speechssl.eval.probe import accuracy_interval
from speechssl.eval.probe_data import example_speakers, phone_set
from speechssl.eval.sv import enrollment_speakers
from test_probe import clusters, train_probe, write_dir
from test_stale_and_bad_input import data_dir, utt_ids

# bootstrap() rounds its interval to 6 decimals
ROUNDING = 1e-6


def brute_force_interval(items: list, speaker: np.ndarray, num_speakers: int, metric,
                         ) -> tuple[tuple[float, float], int]:
    """The interval of ``metric`` over the items of each draw copied speaker by speaker, and
    the number of draws where it is undefined (None)."""
    values = []
    for drawn in bs.speaker_indices(num_speakers, bs.NUM_DRAWS, bs.SEED):
        value = metric(bs.resample_items(items, speaker, drawn))
        if value is not None:
            values.append(value)
    return bs.percentile_interval(np.array(values)), bs.NUM_DRAWS - len(values)


def assert_same_interval(got: dict, want: tuple[tuple[float, float], int]) -> None:
    interval, undefined = want
    np.testing.assert_allclose(got["ci"], interval, rtol=0, atol=ROUNDING)
    assert got["bootstrap"]["num_undefined"] == undefined


def width(ci: list[float]) -> float:
    return ci[1] - ci[0]


# ------------------------------------------------------------------ bootstrap.py

def test_speaker_draws_count_the_drawn_indices_and_sum_to_the_speakers():
    draws = bs.speaker_draws(7, num_draws=50, seed=3)
    assert draws.shape == (50, 7) and (draws.sum(axis=1) == 7).all()
    indices = bs.speaker_indices(7, num_draws=50, seed=3)
    np.testing.assert_array_equal(draws, [np.bincount(row, minlength=7) for row in indices])


def test_equal_seeds_give_equal_draws():
    np.testing.assert_array_equal(bs.speaker_draws(9, seed=5), bs.speaker_draws(9, seed=5))
    assert not np.array_equal(bs.speaker_draws(9, seed=5), bs.speaker_draws(9, seed=6))


def test_weighted_ratio_equals_the_ratio_of_the_copied_items():
    rng = np.random.default_rng(0)
    speaker = rng.integers(0, 5, 40)
    num, den = rng.integers(0, 4, 40), rng.integers(1, 9, 40)
    ratio = bs.weighted_ratio(num, den, speaker, 5)
    for weights, drawn in zip(bs.speaker_draws(5, 20, 1), bs.speaker_indices(5, 20, 1),
                              strict=True):
        items = bs.resample_items(list(zip(num, den, strict=True)), speaker, drawn)
        want = sum(n for n, _ in items) / sum(d for _, d in items)
        assert ratio(weights) == pytest.approx(want, rel=1e-12)


def test_weighted_ratio_of_no_items_is_undefined():
    ratio = bs.weighted_ratio(np.ones(2), np.ones(2), np.array([0, 0]), 2)
    assert ratio(np.array([0, 2])) is None and ratio(np.array([2, 0])) == 1.0


# ------------------------------------------------------------------ speaker verification

def sv_trials(num_speakers: int, seed: int, targets: int = 12, nontargets: int = 30,
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores, target flags and enrollment speakers of synthetic trials: each speaker's
    targets score around a level of its own (speakers differ), nontargets around 0;
    rounded to 0.1 so that targets and nontargets tie."""
    rng = np.random.default_rng(seed)
    scores, is_target, speakers = [], [], []
    for s in range(num_speakers):
        level = rng.normal(2.0, 1.0)
        scores += [*rng.normal(level, 1.0, targets), *rng.normal(0.0, 1.0, nontargets)]
        is_target += [True] * targets + [False] * nontargets
        speakers += [f"spk{s:02d}"] * (targets + nontargets)
    return np.round(scores, 1), np.array(is_target), speakers


def sv_metric(key: str):
    """A metric of score_sv.METRICS on copied (score, is_target) items; None without
    targets or nontargets."""
    def metric(items: list) -> float | None:
        target = [x for x, t in items if t]
        nontarget = [x for x, t in items if not t]
        if not target or not nontarget:
            return None
        return {"eer": lambda: compute_eer(target, nontarget)[0],
                "min_dcf_0.01": lambda: compute_min_dcf(target, nontarget, 0.01)[0],
                "min_dcf_0.001": lambda: compute_min_dcf(target, nontarget, 0.001)[0]}[key]()
    return metric


def test_sv_intervals_equal_brute_force():
    scores, is_target, speakers = sv_trials(5, seed=0)
    # two speakers without targets: some draws have none, and are left out
    is_target[np.isin(speakers, ["spk00", "spk01"])] = False
    got = score_sv.speaker_intervals(scores, is_target, speakers)
    names, speaker = bs.speaker_index(speakers)
    items = list(zip(scores, is_target, strict=True))
    for key in score_sv.METRICS:
        want = brute_force_interval(items, speaker, len(names), sv_metric(key))
        assert_same_interval(got[key], want)
    assert got["eer"]["bootstrap"]["num_undefined"] > 0


# ------------------------------------------------------------------ probes

def correctness(num_speakers: int, seed: int, per_speaker: int = 30,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Right/wrong per example around an accuracy of each speaker's own."""
    rng = np.random.default_rng(seed)
    speaker = np.repeat(np.arange(num_speakers), per_speaker)
    accuracy = rng.uniform(0.3, 0.9, num_speakers)
    return rng.random(len(speaker)) < accuracy[speaker], speaker


def mean_percent(items: list) -> float | None:
    return 100.0 * float(np.mean(items)) if items else None


def test_accuracy_interval_equals_brute_force():
    correct, speaker = correctness(5, seed=2)
    got = accuracy_interval(correct, speaker, 5)
    assert_same_interval(got, brute_force_interval(list(correct), speaker, 5, mean_percent))


def test_phone_probe_frames_take_their_utterances_speaker(tmp_path):
    feats, ali = clusters(3, 5, frames=7)
    data = write_dir(tmp_path / "test", feats, phone_ali=ali)
    names, speaker = example_speakers(phone_set(data, FeatureTransform()))
    utts = sorted(feats)
    assert names == ["s0", "s1", "s2"]
    np.testing.assert_array_equal(speaker, np.repeat([int(u[1]) for u in utts], 7))


# ------------------------------------------------------------------ ASR

def utterance_counts(num_speakers: int, seed: int, per_speaker: int = 6,
                     ) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """score_texts' (correct, sub, ins, del) of synthetic utterances, an error rate of each
    speaker's own, and utt2spk."""
    rng = np.random.default_rng(seed)
    per_utt, utt2spk = {}, {}
    for s in range(num_speakers):
        rate = rng.uniform(0.05, 0.4)
        for u in range(per_speaker):
            words = int(rng.integers(3, 15))
            sub, dels = rng.binomial(words, rate / 2, 2)
            dels = min(dels, words - sub)
            utt = f"spk{s:02d}-{u}"
            per_utt[utt] = (words - sub - dels, sub, int(rng.binomial(3, rate)), dels)
            utt2spk[utt] = f"spk{s:02d}"
    return per_utt, utt2spk


def word_error_rate(items: list) -> float | None:
    words = sum(c + s + d for c, s, _, d in items)
    return 100.0 * sum(s + i + d for _, s, i, d in items) / words if words else None


def test_wer_interval_equals_brute_force():
    per_utt, utt2spk = utterance_counts(5, seed=4)
    got = score_wer.error_rate_interval(per_utt, utt2spk, Path("data"))
    _, speaker = bs.speaker_index([utt2spk[u] for u in per_utt])
    want = brute_force_interval(list(per_utt.values()), speaker, 5, word_error_rate)
    assert_same_interval(got, want)


# ------------------------------------------------------------------ more speakers

def mean_width(interval_of, num_speakers: int, seeds: range) -> float:
    """The mean interval width over test sets drawn from one generating distribution (one
    set of 4 speakers alone can happen to be alike)."""
    return float(np.mean([width(interval_of(num_speakers, seed)) for seed in seeds]))


@pytest.mark.parametrize("interval_of", [
    lambda n, seed: score_sv.speaker_intervals(*sv_trials(n, seed))["eer"]["ci"],
    lambda n, seed: accuracy_interval(*correctness(n, seed), n)["ci"],
    lambda n, seed: score_wer.error_rate_interval(*utterance_counts(n, seed), Path("d"))["ci"],
], ids=["eer", "accuracy", "wer"])
def test_intervals_narrow_as_speakers_are_added(interval_of):
    few, many = mean_width(interval_of, 4, range(10)), mean_width(interval_of, 40, range(2))
    # about 1/sqrt(speakers) in theory (a third here); less for EER, whose 4-speaker
    # intervals are too narrow (few distinct draws, EER steps of whole trials)
    assert many < 0.7 * few, (few, many)


# ------------------------------------------------------------------ results.json of the CLIs

def assert_interval_around(res: dict, key: str, num_speakers: int) -> None:
    low, high = res[f"{key}_ci"]
    assert low <= res[key] <= high, res
    assert res["bootstrap"]["num_speakers"] == num_speakers
    assert res["bootstrap"]["num_draws"] == bs.NUM_DRAWS


def test_score_sv_results_have_intervals(tmp_path):
    utts = utt_ids()   # 3 speakers of 4 utterances
    rng = np.random.default_rng(8)
    vectors = {u: np.eye(4)[int(u[1])] + 0.6 * rng.standard_normal(4) for u in utts}
    data = data_dir(tmp_path / "emb", "embedding.scp", vectors)
    trials = tmp_path / "trials"
    trials.write_text("".join(f"{a} {b} {'target' if a[:2] == b[:2] else 'nontarget'}\n"
                              for a in utts for b in utts if a < b))
    assert score_sv.main([str(data), str(trials), str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["eer"] > 0, res
    for key in score_sv.METRICS:
        assert_interval_around(res, key, 3)


@pytest.mark.parametrize("task", ["phone", "speaker"])
def test_train_probe_results_have_an_interval(tmp_path, task):
    train_feats, train_ali = clusters(1, 12, frames=20, shuffle=True)
    test_feats, test_ali = clusters(2, 12, "t", frames=20, shuffle=True)
    train = write_dir(tmp_path / "train", train_feats, phone_ali=train_ali)
    test = write_dir(tmp_path / "test", test_feats, phone_ali=test_ali)
    train_probe(["--task", task, "--epochs", "2", str(train), str(test), str(tmp_path / "exp")])
    res = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert 0 < res["accuracy"] < 100, res
    assert_interval_around(res, "accuracy", 3)


def write_decode(root: Path) -> tuple[Path, Path, Path]:
    """A data dir (text, utt2spk, phones.ctm), a lang dir and a decode dir with the word and
    phone hypotheses of LM weights 1 and 2, by hand: the scoring's inputs without a
    decoder."""
    data, lang, decode = root / "data", root / "lang", root / "decode"
    for d in (data, lang / "phones", decode / "scoring"):
        d.mkdir(parents=True)
    refs = {f"s{s}-u{u}": ["a", "b", "c", "a"][: 2 + (s + u) % 3] for s in range(3)
            for u in range(3)}
    (data / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in refs.items()))
    (data / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in refs))
    (data / "phones.ctm").write_text("".join(
        f"{u} 1 {0.1 * i:.2f} 0.10 {w}_S\n" for u, ws in refs.items() for i, w in enumerate(ws)))
    (lang / "words.txt").write_text("<eps> 0\na 1\nb 2\nc 3\n")
    (lang / "phones.txt").write_text("<eps> 0\nsil 1\na_S 2\nb_S 3\nc_S 4\n")
    (lang / "phones" / "silence.csl").write_text("1\n")
    ids = {"a": "1", "b": "2", "c": "3"}
    # weight 1: the first word of speaker s0's utterances wrong; weight 2: of s0's and s1's
    for lmwt, wrong in ((1, ("s0",)), (2, ("s0", "s1"))):
        hyps = {u: ["c" if u[:2] in wrong and i == 0 else w for i, w in enumerate(ws)]
                for u, ws in refs.items()}
        (decode / "scoring" / f"{lmwt}.tra").write_text("".join(
            f"{u} {' '.join(ids[w] for w in ws)}\n" for u, ws in hyps.items()))
    (decode / "scoring" / "1.phn").write_text("".join(
        f"{u} {' '.join(ws[1:] if u[:2] == 's2' else ws)}\n" for u, ws in refs.items()))
    return data, lang, decode


def test_score_wer_results_have_intervals(tmp_path):
    data, lang, decode = write_decode(tmp_path)
    assert score_wer.main([str(data), str(lang), str(decode)]) == 0
    res = json.loads((decode / "results.json").read_text())
    assert res["lmwt"] == 1 and res["wer"] > 0 and res["per"] > 0, res
    assert_interval_around(res, "wer", 3)
    low, high = res["per_ci"]
    assert low <= res["per"] <= high


def test_items_without_a_speaker_are_an_error():
    trials = [Trial("a", "b", True), Trial("c", "a", False)]
    with pytest.raises(InputError, match="1 enrollment utterances of the trials have no"):
        enrollment_speakers(trials, {"a": "s1", "b": "s1"}, "utt2spk")
    with pytest.raises(InputError, match="1 scored utterances have no speaker"):
        score_wer.error_rate_interval({"u1": (1, 0, 0, 0), "u2": (0, 1, 0, 0)}, {"u1": "s"},
                                      Path("data"))
