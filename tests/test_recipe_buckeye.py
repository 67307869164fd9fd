"""egs/buckeye on a fake Buckeye laid out as the real one (tests/fake_awe_corpora.py), all
stages: data preparation against the construction's truth (utterances cut at every gap, SIL
and SPN), the same-different selection rule, features, a few training steps of APC and the
CAE, extraction, DTW same-different results, CAE-RNN embeddings and the results table; bad
input gives errors that say where."""

from __future__ import annotations

import json
import shutil

import kaldiio
import pytest
import yaml

from conftest import ROOT, sh
from corpus_fixtures import tiny_corpus_fixture  # noqa: F401
from fake_awe_corpora import BUCKEYE_SPEAKERS, STEPS, copy_recipe, make_fake_buckeye
from speechssl.bin.prepare_awe_corpus import main as prepare_awe_corpus
from speechssl.corpus.awe_corpus import Utterance, samediff_words
from speechssl.corpus.wrd import WrdEntry
from speechssl.data.ctm import read_ctm
from speechssl.data.table import read_table
from speechssl.data.validate import Requirements, validate_data_dir
from speechssl.errors import InputError
from speechssl.eval.samediff import read_word_list

SETS = ("devpart1", "devpart2", "zs")
METHODS = ("apc", "cae")      # a frame-level method and a pair method
COLLAR_MS = 25


@pytest.fixture(scope="module")
def fake(tiny_corpus, tmp_path_factory):
    return make_fake_buckeye(tiny_corpus, tmp_path_factory.mktemp("fake_buckeye"))


@pytest.fixture(scope="module")
def recipe(fake, tmp_path_factory):
    recipe = copy_recipe("buckeye", tmp_path_factory.mktemp("egs_buckeye"))
    sh(f"./run.sh --buckeye {fake.root} --alignments {fake.alignments} --nj 1 "
       f"--methods '{' '.join(METHODS)}'", cwd=recipe)
    return recipe


def segments_ms(data) -> dict[str, tuple[str, int, int]]:
    return {utt: (v.split()[0], round(float(v.split()[1]) * 1000),
                  round(float(v.split()[2]) * 1000))
            for utt, v in read_table(data / "segments").items()}


def test_utterances_are_the_speech_regions_of_the_truth(recipe, fake):
    found, expected = {}, {}
    for x in SETS:
        data = validate_data_dir(recipe / "data" / x).path
        text = read_table(data / "text")
        ctm = read_ctm(data / "words.ctm")
        for utt, (rec, start, end) in segments_ms(data).items():
            words = tuple((e.token, start + round(e.start * 1000), start + round(e.end * 1000))
                          for e in ctm[utt])
            assert text[utt].split() == [w[0] for w in words], utt
            found[rec, start] = (end, words, x)
    set_of = {spk: name for name, spks in BUCKEYE_SPEAKERS.items() for spk in spks}
    for r in fake.regions:
        if set_of[fake.speakers[r.rec]] is not None:
            end = min(r.end_ms + COLLAR_MS, fake.durations_ms[r.rec])
            expected[r.rec, r.start_ms] = (end, r.words, set_of[fake.speakers[r.rec]])
    assert found == expected
    labels = {w[0] for _, words, _ in found.values() for w in words}
    assert not labels & {"SIL", "SPN", "<sil>"}
    # The construction has SPN words and gaps without a line: both split utterances.
    assert len(found) > len({rec for rec, _ in found}) * 3


def test_sets_hold_their_speakers_and_recordings(recipe):
    for x in SETS:
        data = recipe / "data" / x
        assert set(read_table(data / "utt2spk").values()) == set(BUCKEYE_SPEAKERS[x])
        for utt, spk in read_table(data / "utt2spk").items():
            assert utt.startswith(f"{spk}_")
        recs = read_table(data / "wav.scp")
        assert all(r[:3] in BUCKEYE_SPEAKERS[x] for r in recs)
        assert all(p.endswith(f"/{r[:3]}/{r}.wav") for r, p in recs.items())


def test_samediff_lists_hold_the_long_words_of_each_set(recipe, fake):
    # From the truth: frames of each word from its region's start, rounded half up, the
    # end within the utterance's features; >= 50 frames and >= 5 characters.
    listed, expected = set(), set()
    for x in SETS:
        data = recipe / "data" / x
        listed |= {(s.utt, s.start, s.end, s.word, s.speaker)
                   for s in read_word_list(data / "samediff_words")}
        utt_of = {(rec, start): utt for utt, (rec, start, _) in segments_ms(data).items()}
        frames = read_table(recipe / "data" / f"{x}_mfcc" / "utt2num_frames")
        for r in fake.regions:
            utt = utt_of.get((r.rec, r.start_ms))
            for word, start, end in r.words if utt else ():
                s = (start - r.start_ms + 5) // 10
                e = min((end - r.start_ms + 5) // 10, int(frames[utt]))
                if e - s >= 50 and len(word) >= 5:
                    expected.add((utt, s, e, word, fake.speakers[r.rec]))
    assert listed == expected and len(listed) > 20


def utterance(words: list[tuple[str, int, int]], num_frames: int = 1000) -> Utterance:
    entries = tuple(WrdEntry("s0101a", s, e, w, i) for i, (w, s, e) in enumerate(words))
    return Utterance("s01_01a_000100-000500", "s0101a", "s01", entries, 0, num_frames)


def test_samediff_rule_is_50_frames_and_5_characters():
    u = utterance([("abcde", 1000, 1500),     # 50 frames, 5 characters: in
                   ("abcdef", 1500, 1990),    # 49 frames: out
                   ("abcdefg", 1990, 2485),   # 2485-1000 -> frame 149 (half up): 50 frames
                   ("abcd", 2485, 3200)])     # 4 characters: out
    assert samediff_words([u], 50, 5) == {
        "abcde_s01_s01_01a_000100-000500_000000-000050": ("s01_01a_000100-000500", 0, 50),
        "abcdefg_s01_s01_01a_000100-000500_000099-000149": ("s01_01a_000100-000500", 99, 149)}
    # 60 frames, but the features end at frame 260: 40 frames are left.
    clipped = utterance([("abcde", 1000, 1500), ("longer", 3200, 3800)], num_frames=260)
    assert list(samediff_words([clipped], 50, 5)) == [
        "abcde_s01_s01_01a_000100-000500_000000-000050"]
    assert len(samediff_words([clipped], 30, 5)) == 2


def test_word_list_keys_give_word_and_speaker(recipe):
    segs = read_word_list(recipe / "data" / "zs" / "samediff_words")
    assert {s.speaker for s in segs} == set(BUCKEYE_SPEAKERS["zs"])
    assert all(s.key.startswith(f"{s.word}_{s.speaker}_{s.utt}_") for s in segs)


def test_features_cover_every_evaluation_word(recipe):
    for x in SETS:
        for feat, dim in (("mfcc", 13), ("fbank", 80)):
            d = validate_data_dir(recipe / "data" / f"{x}_{feat}", Requirements(feats=True))
            assert set(d.table("cmvn.scp")) == set(BUCKEYE_SPEAKERS[x])
            feats = kaldiio.load_scp(str(d.path / "feats.scp"))
            for seg in read_word_list(d.path / "samediff_words"):
                assert feats[seg.utt].shape == (int(d.table("utt2num_frames")[seg.utt]), dim)
                assert seg.end <= feats[seg.utt].shape[0], seg.key


def test_training_and_extraction_give_one_vector_per_frame(recipe):
    for m in METHODS:
        log = (recipe / "exp" / m / "log" / "train.log").read_text()
        assert (recipe / "exp" / m / "final.pt").is_file() and f"step {STEPS}" in log
        for x in SETS:
            out = validate_data_dir(recipe / "data" / f"{x}_{m}", Requirements(feats=True))
            frames = read_table(recipe / "data" / f"{x}_mfcc" / "utt2num_frames")
            for utt, mat in kaldiio.load_scp_sequential(str(out.path / "feats.scp")):
                assert mat.shape[0] == int(frames[utt]), (m, utt)


@pytest.mark.parametrize("features", ["mfcc", "fbank", *METHODS])
def test_same_different_results_for_val_and_test(recipe, features):
    dims = {"mfcc": 39, "fbank": 80, "apc": 32, "cae": 39}
    for x, role in (("devpart2", "val"), ("zs", "test")):
        path = recipe / "exp" / features / "eval" / f"samediff_dtw_{role}" / "results.json"
        r = json.loads(path.read_text())
        num_words = len(read_word_list(recipe / "data" / x / "samediff_words"))
        assert r["task"] == "samediff_dtw" and r["num_segments"] == num_words
        assert r["feature_dim"] == dims[features] and 0 <= r["ap"] <= 1
        if features == "mfcc":   # repeated words of one voice: far above chance
            assert r["ap"] > 3 * r["random_ap"], r
            down = path.parent.parent / f"samediff_downsample_{role}" / "results.json"
            assert json.loads(down.read_text())["task"] == "samediff_downsample"


def test_acoustic_word_embeddings_of_five_seeds_and_the_results_table(recipe):
    for f in ("mfcc", "fbank", *METHODS):
        r = json.loads((recipe / "exp" / f / "eval" / "awe_test" / "results.json").read_text())
        assert r["task"] == "awe" and len(r["seeds"]) == 5 and 0 <= r["ap_mean"] <= 1, r
    table = (recipe / "exp" / "results" / "results.md").read_text()
    for row in ("mfcc", "fbank", *METHODS):
        assert f"| {row} |" in table or f"| **{row}** |" in table, table
    for column in ("samediff_dtw_val", "samediff_dtw_test", "awe_test"):
        assert column in table, table


def test_help_lists_the_options_and_stages(recipe):
    proc = sh("./run.sh --help", cwd=recipe)
    for option in ("--buckeye", "--alignments", "--utd-pairs", "--stage", "--stop-stage",
                   "--nj", "--methods"):
        assert option in proc.stderr
    assert all(f"\n  {n}  " in proc.stderr for n in range(7))


def prepare(root, alignments, out):
    return prepare_awe_corpus(["--corpus", "buckeye", str(root), str(alignments), str(out)])


def test_a_missing_root_is_named(recipe, tmp_path):
    proc = sh(f"./run.sh --buckeye {tmp_path}/nowhere --alignments {tmp_path}/x.wrd "
              "--stop-stage 0", cwd=recipe, check=False)
    assert proc.returncode == 1 and f"no such directory: {tmp_path}/nowhere" in proc.stderr


def test_a_flat_folder_is_not_the_buckeye_layout(fake, tmp_path):
    flat = tmp_path / "english_wavs"        # ZeroSpeech's layout, not Buckeye's
    flat.mkdir()
    for wav in fake.root.glob("*/*.wav"):
        shutil.copy(wav, flat / wav.name)
    with pytest.raises(InputError, match=r"not the buckeye layout: expected wav files like "
                       rf"{flat}/s01/s0101a.wav, found none .* holds: s0101a.wav"):
        prepare(flat, fake.alignments, tmp_path / "data")


def test_a_missing_wav_is_counted_with_examples(fake, tmp_path):
    root = tmp_path / "buckeye"
    shutil.copytree(fake.root, root)
    (root / "s02" / "s0201b.wav").unlink()
    with pytest.raises(InputError, match=r"1 of 12 recordings .* have no wav file, e\.g\. "
                       rf"{root}/s02/s0201b.wav"):
        prepare(root, fake.alignments, tmp_path / "data")


@pytest.mark.parametrize("line, message", [
    ("s0201a 1.0 okay", "expected 4 fields"),
    ("s0201a 1.0 x okay", "start and end must be seconds"),
    ("s0201a 2.0 1.0 okay", "need finite times with start <= end"),
    ("s0201a 1.0 2.0 uh_huh", "contains '_'"),
    ("speaker2 1.0 2.0 okay", "'speaker2' is not a buckeye file name"),
])
def test_an_alignment_line_that_does_not_parse_is_named(fake, tmp_path, line, message):
    lines = fake.alignments.read_text().splitlines(keepends=True)
    wrd = tmp_path / "english.wrd"
    wrd.write_text("".join(lines[:4]) + line + "\n" + "".join(lines[4:]))
    with pytest.raises(InputError, match=rf"{wrd}:5: .*{message}"):
        prepare(fake.root, wrd, tmp_path / "data")


def test_overlapping_entries_are_an_error(fake, tmp_path):
    lines = fake.alignments.read_text().splitlines(keepends=True)
    rec, start, end, _ = lines[1].split()
    wrd = tmp_path / "english.wrd"
    wrd.write_text("".join(lines) + f"{rec} {start} {end} again\n")
    with pytest.raises(InputError, match=rf"{wrd}:{len(lines) + 1}: .*before the entry of "
                       r"line 2 ends"):
        prepare(fake.root, wrd, tmp_path / "data")


def test_a_negative_start_is_clipped_to_zero(fake, tmp_path, caplog):
    # The Buckeye transcriptions have s1603b starting at -1.0 s: the word keeps what exists.
    lines = [x for x in fake.alignments.read_text().splitlines(keepends=True)
             if not x.startswith("s0201a")]
    wrd = tmp_path / "english.wrd"
    wrd.write_text("s0201a -1.000 0.600 yesterday\n" + "".join(lines))
    prepare(fake.root, wrd, tmp_path / "data")
    segments = segments_ms(tmp_path / "data" / "devpart1")
    assert ("s0201a", 0, 625) in segments.values()
    assert "1 entries start before 0 s and were clipped to 0" in caplog.text


def test_alignments_of_the_zerospeech_speakers_only_are_not_enough(fake, tmp_path):
    # ZeroSpeech 2015's english.wrd covers the zs speakers only; training needs devpart1.
    wrd = tmp_path / "english.wrd"
    wrd.write_text("".join(x for x in fake.alignments.read_text().splitlines(keepends=True)
                           if x[:3] in BUCKEYE_SPEAKERS["zs"]))
    with pytest.raises(InputError, match=r"no recordings of set 'devpart1' \(speakers s02 "
                       r".*\): the alignments cover speakers s01 s20 only"):
        prepare(fake.root, wrd, tmp_path / "data")


@pytest.mark.parametrize("name", ["buckeye", "xitsonga"])
def test_configs_are_the_published_ones_on_mfcc_39(name):
    def load(path):
        return yaml.safe_load(path.read_text())

    published = ROOT / "egs" / "mini" / "conf" / "published"
    conf = ROOT / "egs" / name / "conf"
    for m in ("cpc", "capc", "cae", "awe"):
        assert load(conf / f"{m}.yaml") == load(published / f"{m}.yaml"), m
    apc = load(published / "apc.yaml")
    apc["model"]["shift"] = 1                         # van Staden & Kamper's time shift
    apc["data"].update(norm_vars=True, delta_order=2)  # MFCC 39, mean and variance norm
    assert load(conf / "apc.yaml") == apc
    assert load(conf / "cpc.yaml")["data"]["delta_order"] == 2
