"""A failed evaluation leaves no result behind (issue 18, data safety): each step first
removes the previous run's outputs and writes results.json last, so a good run followed by
a failing one into the same dir leaves nothing for utils/gather_results.sh to show as
current; and a NaN embedding is refused naming the table and the utterance.

The data dirs are small synthetic ones (3 speakers, a few utterances), so every step runs
in seconds without the mini recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, sh
from speechssl.data.ark import ArkScpWriter
from speechssl.data.table import write_table
from speechssl.eval.results import find_results

SPEAKERS, UTTS, DIM = 3, 4, 4
WORDS = ("apple", "house", "river")


def utt_ids(prefix: str = "u") -> list[str]:
    return [f"s{s}-{prefix}{u}" for s in range(SPEAKERS) for u in range(UTTS)]


def data_dir(path: Path, name: str, rows: dict[str, np.ndarray]) -> Path:
    """``feats.scp`` (matrices) or ``embedding.scp`` (vectors) with utt2spk and spk2utt;
    the speaker is the utterance id before '-'."""
    path.mkdir(parents=True)
    with ArkScpWriter(path / "data.ark", path / name) as w:
        for utt in sorted(rows):
            w.write(utt, rows[utt].astype(np.float32))
    utt2spk = {u: u.split("-")[0] for u in rows}
    write_table(path / "utt2spk", utt2spk)
    write_table(path / "spk2utt", {s: sorted(u for u in rows if utt2spk[u] == s)
                                   for s in set(utt2spk.values())})
    (path / "frame_shift").write_text("0.01\n")
    return path


def speaker_vectors(seed: int, utts: list[str]) -> dict[str, np.ndarray]:
    """One vector per utterance around its speaker's centre: speakers are separable."""
    rng = np.random.default_rng(seed)
    return {u: 5 * np.eye(DIM)[int(u[1])] + rng.standard_normal(DIM) for u in utts}


def word_frames(seed: int, utts: list[str]) -> dict[str, np.ndarray]:
    """(60, DIM) per utterance: the three words of 20 frames each, each word a pattern of
    its own plus noise, so the same word in two utterances is alike."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((len(WORDS), 20, DIM))
    return {u: np.concatenate(list(base)) + 0.3 * rng.standard_normal((60, DIM)) for u in utts}


def word_list(path: Path, utts: list[str]) -> Path:
    """samediff_words: ``<word>_<spk>_<utt>_<start>-<end> <utt> <start> <end>``."""
    lines = [f"{w}_{u.split('-')[0]}_{u}_{20 * i:06d}-{20 * i + 20:06d} {u} {20 * i} {20 * i + 20}"
             for u in utts for i, w in enumerate(WORDS)]
    path.write_text("\n".join(sorted(lines)) + "\n")
    return path


def step(command: str, check: bool = True):
    return sh(f"{ROOT}/steps/{command}", cwd=ROOT, check=check)


def assert_no_result(out: Path, exp: Path, proc, *others: str) -> None:
    """The failed run left neither results.json nor the previous run's other outputs, and
    the results table does not list its column."""
    assert proc.returncode != 0, proc.stderr
    for name in ("results.json", *others):
        assert not (out / name).exists(), f"{out / name} survived a failed run"
    assert out.name not in {r.column for r in find_results(exp)}


# ------------------------------------------------------------------ speaker verification

@pytest.fixture(name="sv")
def sv_fixture(tmp_path):
    utts = utt_ids()
    data = data_dir(tmp_path / "test_emb", "embedding.scp", speaker_vectors(0, utts))
    pairs = [(a, b) for a in utts[::2] for b in utts[1::2]]
    trials = tmp_path / "trials"
    trials.write_text("".join(f"{a} {b} {'target' if a[:2] == b[:2] else 'nontarget'}\n"
                              for a, b in pairs))
    return tmp_path, data, trials


def test_score_sv_failing_after_a_good_run_leaves_no_results(sv):
    tmp, data, trials = sv
    exp = tmp / "exp"
    out, other = exp / "emb" / "eval" / "sv_cosine", exp / "emb" / "eval" / "sv_cosine_dev"
    for d in (out, other):
        step(f"score_sv.sh {data} {trials} {d}")
    assert {"results.json", "scores", "det.png"} <= {p.name for p in out.iterdir()}
    bad = tmp / "bad_trials"
    bad.write_text(trials.read_text() + "nobody-1 s0-u0 target\n")
    proc = step(f"score_sv.sh {data} {bad} {out}", check=False)
    assert "nobody-1" in proc.stderr, proc.stderr
    assert_no_result(out, exp, proc, "scores", "det.png")
    # a failure in the step's own checks, before Python runs, clears them as well
    step(f"score_sv.sh {data} {trials} {out}")
    proc = step(f"score_sv.sh {data} {tmp / 'no_such_trials'} {out}", check=False)
    assert_no_result(out, exp, proc, "scores", "det.png")
    table = sh(f"utils/gather_results.sh --charts false {exp} {tmp / 'table'}", cwd=ROOT)
    assert "sv_cosine_dev" in table.stdout and "[sv_cosine]" not in table.stdout, table.stdout


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_score_sv_refuses_a_non_finite_embedding_naming_table_and_key(sv, value):
    tmp, data, trials = sv
    vectors = speaker_vectors(0, utt_ids())
    vectors["s1-u2"][1] = value
    bad = data_dir(tmp / "bad_emb", "embedding.scp", vectors)
    proc = step(f"score_sv.sh {bad} {trials} {tmp / 'out'}", check=False)
    assert proc.returncode != 0
    assert f"{bad / 'embedding.scp'}: key 's1-u2': embedding ({bad / 'data.ark'}:" \
           in proc.stderr, proc.stderr
    assert "contains NaN or infinite values" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ same-different

def test_score_samediff_failing_after_a_good_run_leaves_no_results(tmp_path):
    utts = utt_ids()[:6]
    data = data_dir(tmp_path / "test_feats", "feats.scp", word_frames(1, utts))
    words = word_list(tmp_path / "words", utts)
    exp = tmp_path / "exp"
    out = exp / "feats" / "eval" / "samediff_dtw"
    step(f"score_samediff.sh --nj 1 {data} {words} {out}")
    assert (out / "results.json").is_file() and (out / "config").is_file()
    past_end = tmp_path / "past_end"
    past_end.write_text(words.read_text() + "apple_s0_x s0-u0 50 70\n")
    proc = step(f"score_samediff.sh --nj 1 {data} {past_end} {out}", check=False)
    assert "runs past the end" in proc.stderr + (out / "log/score_samediff.log").read_text()
    assert_no_result(out, exp, proc)
    step(f"score_samediff.sh --nj 1 {data} {words} {out}")
    proc = step(f"score_samediff.sh --nj 1 {data} {tmp_path / 'no_list'} {out}", check=False)
    assert_no_result(out, exp, proc, "config")


# ------------------------------------------------------------------ probes

def test_train_probe_failing_after_a_good_run_leaves_no_results(tmp_path):
    train = data_dir(tmp_path / "train", "embedding.scp", speaker_vectors(2, utt_ids("a")))
    test_vectors = speaker_vectors(3, utt_ids("b"))
    test = data_dir(tmp_path / "test", "embedding.scp", test_vectors)
    exp = tmp_path / "exp"
    out = exp / "emb" / "eval" / "probe_speaker"
    probe = "train_probe.sh --task speaker --epochs 2"
    step(f"{probe} {train} {test} {out}")
    assert {"results.json", "probe.pt", "per_class.txt", "config"} <= \
        {p.name for p in out.iterdir()}
    test_vectors["s2-b1"][0] = np.nan
    bad = data_dir(tmp_path / "test_nan", "embedding.scp", test_vectors)
    proc = step(f"{probe} {train} {bad} {out}", check=False)
    log = (out / "log" / "train_probe.log").read_text()
    assert f"{bad / 'embedding.scp'}: key 's2-b1': embedding (" in log, log
    assert_no_result(out, exp, proc, "probe.pt", "per_class.txt")
    step(f"{probe} {train} {test} {out}")
    proc = step(f"{probe} {train} {tmp_path / 'no_such_dir'} {out}", check=False)
    assert_no_result(out, exp, proc, "probe.pt", "per_class.txt", "config")


# ------------------------------------------------------------------ acoustic word embeddings

TINY_AWE = {"model": {"enc_layers": 1, "enc_hidden": 8, "dec_layers": 1, "dec_hidden": 8,
                      "embed_dim": 4},
            "data": {"min_word_frames": 10, "max_frames": 30},
            "train": {"ae_epochs": 1, "ae_batch_size": 8, "cae_epochs": 1,
                      "cae_batch_size": 8}}


def test_train_awe_failing_after_a_good_run_leaves_no_results_but_keeps_seeds(tmp_path):
    utts = utt_ids()[:6]
    data = data_dir(tmp_path / "feats", "feats.scp", word_frames(4, utts))
    (data / "words.ctm").write_text("".join(
        f"{u} 1 {0.2 * i:.2f} 0.20 {w}\n" for u in utts for i, w in enumerate(WORDS)))
    words = word_list(tmp_path / "words", utts)
    config = tmp_path / "awe.yaml"
    config.write_text(yaml.safe_dump(TINY_AWE))
    exp = tmp_path / "exp"
    out = exp / "feats" / "eval" / "awe"
    awe = f"train_awe.sh --nj 1 --seeds 0 --device cpu {config} {data} {data}"
    step(f"{awe} {words} {out}")
    assert (out / "results.json").is_file() and (out / "config.yaml").is_file()
    seed_result = (out / "seed0" / "results.json").read_text()
    unknown = tmp_path / "unknown_utt"
    unknown.write_text(words.read_text() + "apple_s9_x s9-u9 0 20\n")
    proc = step(f"{awe} {unknown} {out}", check=False)
    assert_no_result(out, exp, proc, "config.yaml")
    # the finished seed is kept, and reused by a run with its inputs
    assert (out / "seed0" / "results.json").read_text() == seed_result
    step(f"{awe} {words} {out}")
    assert "seed 0 already finished" in (out / "log" / "train.1.log").read_text()
    assert json.loads((out / "results.json").read_text())["per_seed"][0]["ap"] == \
        json.loads(seed_result)["ap"]
    proc = step(f"{awe} {tmp_path / 'no_list'} {out}", check=False)
    assert_no_result(out, exp, proc, "config.yaml")
