"""egs/xitsonga on a fake ZeroSpeech 2015 Xitsonga set laid out as the real one
(tests/fake_awe_corpora.py): one set of all speakers, utterances cut at the gaps of an
alignment without silence lines, UTD pairs turned into utterance pair lists that CAPC trains
on, CPC, extraction, DTW same-different results, CAE-RNN embeddings and the results
table; bad input gives errors that say where."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from conftest import sh
from corpus_fixtures import tiny_corpus_fixture  # noqa: F401
from fake_awe_corpora import STEPS, copy_recipe, make_fake_xitsonga
from speechssl.bin.prepare_awe_corpus import main as prepare_awe_corpus
from speechssl.corpus.utd_pairs import utd_pair_list
from speechssl.data.ctm import read_ctm
from speechssl.data.table import read_table
from speechssl.data.validate import Requirements, validate_data_dir
from speechssl.errors import InputError
from speechssl.eval.samediff import read_word_list

METHODS = ("cpc", "capc")      # a frame-level method and a pair method (on UTD pairs)


def frame(ms: int) -> int:
    return (ms + 5) // 10


@pytest.fixture(scope="module")
def fake(tiny_corpus, tmp_path_factory):
    return make_fake_xitsonga(tiny_corpus, tmp_path_factory.mktemp("fake_xitsonga"))


@pytest.fixture(scope="module")
def utd(fake):
    """Discovered pairs in recording frames: every pair of tokens of a word, plus a pair
    with a term in the leading pause and a pair of overlapping terms (both left out)."""
    tokens: dict[str, list[tuple[str, int, int]]] = {}
    for r in fake.regions:
        for word, start, end in r.words:
            tokens.setdefault(word, []).append((r.rec, frame(start), frame(end)))
    lines = [f"PT{n} {a[0]} nch {a[1]} {a[2]} {b[0]} nch {b[1]} {b[2]}\n"
             for n, toks in enumerate(tokens.values()) for i, a in enumerate(toks)
             for b in toks[i + 1:]]
    first = fake.regions[0]
    lines.append(f"PT98 {first.rec} nch 0 {frame(first.start_ms) - 2} {first.rec} nch "
                 f"{frame(first.start_ms)} {frame(first.end_ms)}\n")
    lines.append(f"PT99 {first.rec} nch 5 30 {first.rec} nch 20 40\n")
    path = fake.alignments.parent / "xitsonga.pairs"
    path.write_text("".join(lines))
    return path, len(lines) - 2


@pytest.fixture(scope="module")
def recipe(fake, utd, tmp_path_factory):
    recipe = copy_recipe("xitsonga", tmp_path_factory.mktemp("egs_xitsonga"))
    sh(f"./run.sh --xitsonga {fake.root} --alignments {fake.alignments} --utd-pairs {utd[0]} "
       f"--nj 1 --methods '{' '.join(METHODS)}'", cwd=recipe)
    return recipe


def test_one_set_of_all_speakers_cut_at_the_gaps(recipe, fake):
    data = validate_data_dir(recipe / "data" / "xitsonga").path
    utt2spk = read_table(data / "utt2spk")
    assert set(utt2spk.values()) == set(fake.speakers.values())
    ctm = read_ctm(data / "words.ctm")
    found = set()
    for utt, value in read_table(data / "segments").items():
        rec, start, end = value.split()
        start_ms, end_ms = round(float(start) * 1000), round(float(end) * 1000)
        spk, index = rec.split("_")[2:]
        assert utt.startswith(f"{spk}_nchlt-tso-{index}_") and utt2spk[utt] == spk
        words = tuple((e.token, start_ms + round(e.start * 1000), start_ms + round(e.end * 1000))
                      for e in ctm[utt])
        found.add((rec, words, end_ms))
    assert found == {(r.rec, r.words, min(r.end_ms + 25, fake.durations_ms[r.rec]))
                     for r in fake.regions}
    # The left-out word line splits its file's speech in two.
    assert Counter(r.rec for r in fake.regions)["nchlt_tso_001f_0007"] >= 2
    assert "nchlt_tso_099m_0001" not in read_table(data / "wav.scp")   # no alignments


def test_utd_pairs_become_pairs_of_utterance_frames(recipe, fake, utd):
    data = recipe / "data" / "xitsonga"
    utt_of = {}
    for utt, value in read_table(data / "segments").items():
        rec, start, _ = value.split()
        utt_of[rec, round(float(start) * 1000)] = utt
    expected = []
    for r in fake.regions:   # in the fixture's order: word types, then token pairs
        for word, start, end in r.words:
            expected.append((word, utt_of[r.rec, r.start_ms], frame(start) - frame(r.start_ms),
                             frame(end) - frame(r.start_ms)))
    by_word: dict[str, list] = {}
    for word, *term in expected:
        by_word.setdefault(word, []).append(" ".join(map(str, term)))
    pairs = [f"{a} {b}" for terms in by_word.values() for i, a in enumerate(terms)
             for b in terms[i + 1:]]
    lines = (data / "utd_pairs").read_text().splitlines()
    assert lines == pairs and len(lines) == utd[1]
    log = (recipe / "exp" / "capc" / "log" / "train.log").read_text()
    assert f"{len(lines)} pairs" in log and f"step {STEPS}" in log


def test_utd_terms_move_into_the_utterance_they_overlap_most(tmp_path):
    path = tmp_path / "pairs"
    path.write_text("PT1 r1 nch 95 130 r1 nch 150 170\n"     # 95-100 in u1, 100-130 in u2
                    "PT2 r1 nch 10 20 r1 nch 160 200\n"      # the first term in no utterance
                    "PT3 r1 nch 100 120 r1 nch 110 150\n"    # overlapping terms
                    "PT4 r2 nch 0 10 r1 nch 100 110\n")      # r2 is another set's
    spans = {"r1": [("u1", 50, 100), ("u2", 100, 180)]}
    pairs, dropped = utd_pair_list(path, spans)
    assert pairs == [(("u2", 0, 30), ("u2", 50, 70))]
    assert dropped == Counter({"pairs with a term in no utterance": 1,
                               "pairs of overlapping terms": 1})
    path.write_text("PT1 r1 nch 95 130 r1 nch 150\n")
    with pytest.raises(InputError, match=rf"{path}:1: expected 9 fields"):
        utd_pair_list(path, spans)


def test_cpc_trains_and_every_feature_set_is_scored(recipe):
    assert f"step {STEPS}" in (recipe / "exp" / "cpc" / "log" / "train.log").read_text()
    num_words = len(read_word_list(recipe / "data" / "xitsonga" / "samediff_words"))
    for f, dim in (("mfcc", 39), ("fbank", 80), ("cpc", 32), ("capc", 32)):
        if f in METHODS:
            validate_data_dir(recipe / "data" / f"xitsonga_{f}", Requirements(feats=True))
        r = json.loads((recipe / "exp" / f / "eval" / "samediff_dtw" / "results.json")
                       .read_text())
        assert r["num_segments"] == num_words and r["feature_dim"] == dim, (f, r)
        assert 0 <= r["ap"] <= 1
    mfcc = json.loads((recipe / "exp/mfcc/eval/samediff_dtw/results.json").read_text())
    assert mfcc["ap"] > 3 * mfcc["random_ap"]


def test_acoustic_word_embeddings_and_the_results_table(recipe):
    for f in ("mfcc", "fbank", *METHODS):
        r = json.loads((recipe / "exp" / f / "eval" / "awe" / "results.json").read_text())
        assert r["task"] == "awe" and len(r["seeds"]) == 5 and 0 <= r["ap_mean"] <= 1, r
    table = (recipe / "exp" / "results" / "results.md").read_text()
    assert all(f"{row} |" in table for row in ("mfcc", "fbank", *METHODS)), table


def test_help_lists_the_options_and_stages(recipe):
    proc = sh("./run.sh --help", cwd=recipe)
    for option in ("--xitsonga", "--alignments", "--utd-pairs", "--stage", "--stop-stage",
                   "--nj", "--methods"):
        assert option in proc.stderr
    assert all(f"\n  {n}  " in proc.stderr for n in range(7))


def prepare(root, alignments, out):
    return prepare_awe_corpus(["--corpus", "xitsonga", str(root), str(alignments), str(out)])


def test_a_missing_root_is_named(recipe, tmp_path):
    proc = sh(f"./run.sh --xitsonga {tmp_path}/nowhere --stop-stage 0", cwd=recipe,
              check=False)
    assert proc.returncode == 1 and f"no such directory: {tmp_path}/nowhere" in proc.stderr
    assert "the Xitsonga wavs, nchlt_tso_*.wav; set --xitsonga" in proc.stderr


def test_the_data_script_names_its_corpora(recipe, fake, tmp_path):
    proc = sh(f"local/awe/prepare_data.sh --corpus timit {fake.root} {fake.alignments} "
              f"{tmp_path}/data", cwd=recipe, check=False)
    assert proc.returncode == 1
    assert "--corpus must be buckeye or xitsonga, got 'timit'" in proc.stderr


def test_the_original_nchlt_layout_is_not_the_zerospeech_one(fake, tmp_path):
    root = tmp_path / "nchlt_tso" / "audio"   # NCHLT keeps a folder per speaker
    for wav in fake.root.glob("*.wav"):
        (root / wav.stem.split("_")[2]).mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, root / wav.stem.split("_")[2] / wav.name)
    with pytest.raises(InputError, match=r"not the xitsonga layout: expected wav files like "
                       rf"{root}/nchlt_tso_001m_0007.wav, .* holds: 001f/ 002m/"):
        prepare(root, fake.alignments, tmp_path / "data")


def test_a_missing_wav_is_counted(fake, tmp_path):
    root = tmp_path / "xitsonga_wavs"
    shutil.copytree(fake.root, root)
    for wav in sorted(root.glob("nchlt_tso_003*.wav")):
        wav.unlink()
    with pytest.raises(InputError, match=r"5 of 40 recordings .* have no wav file, e\.g\. "
                       rf"{root}/nchlt_tso_003"):
        prepare(root, fake.alignments, tmp_path / "data")


def test_an_alignment_line_that_does_not_parse_is_named(fake, tmp_path):
    lines = fake.alignments.read_text().splitlines(keepends=True)
    wrd = tmp_path / "xitsonga.wrd"
    wrd.write_text("".join(lines[:2]) + "nchlt_tso_001f_0007 0.5 ndlela\n" + "".join(lines[2:]))
    with pytest.raises(InputError, match=rf"{wrd}:3: expected 4 fields"):
        prepare(fake.root, wrd, tmp_path / "data")
