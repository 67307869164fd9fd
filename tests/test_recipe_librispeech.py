"""egs/librispeech end to end on a fake LibriSpeech laid out as the real one
(tests/fake_librispeech.py): stage 0 data dirs and the CPC protocol import checked against
the fake corpus's own truth, features that line up with the frame labels, APC and CPC
trained for a few steps (configs shrunk), their representations, phone and speaker
probes writing results.json, and the hybrid ASR (a fake published lexicon and tgsmall
LM made from the tiny corpus's dict and transcripts; test-clean made of dev-clean's second
chapters).  Bad input fails naming what was expected where."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import ROOT, sh
from corpus_fixtures import tiny_corpus_fixture  # noqa: F401
from fake_librispeech import FakeLibriSpeech, fake_librispeech_fixture  # noqa: F401
from speechssl.corpus.cpc_protocol import import_protocol
from speechssl.corpus.librispeech import prepare
from speechssl.corpus.librispeech_dict import prepare_dict
from speechssl.data.audio import AudioReader
from speechssl.data.table import read_table
from speechssl.data.validate import Requirements, validate_data_dir
from speechssl.errors import InputError

RECIPE = ROOT / "egs" / "librispeech"
METHODS = ("apc", "cpc")
FEATURES = ("mfcc", "fbank", *METHODS)
STEPS = 10
SHRINK = {
    "apc": {"model": {"hidden": 32}, "data": {"batch_frames": 2000, "crop_frames": 400}},
    "cpc": {"model": {"enc_hidden": 32, "c_dim": 32},
            "data": {"batch_frames": 2000, "crop_frames": 400}},
}


def copy_recipe(dest: Path) -> Path:
    for name in ("run.sh", "cmd.sh", "conf"):
        src = RECIPE / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    for name in ("path.sh", "steps", "utils", "local"):
        (dest / name).symlink_to(ROOT / name)
    return dest


def shrink_configs(recipe: Path) -> None:
    for method, changes in SHRINK.items():
        path = recipe / "conf" / f"{method}.yaml"
        conf = yaml.safe_load(path.read_text())
        for section, values in changes.items():
            conf[section].update(values)
        conf["data"]["num_workers"] = 0
        conf["train"].update(max_steps=STEPS, checkpoint_every=STEPS, log_every=1)
        path.write_text(yaml.safe_dump(conf))


def with_test_clean(fake: FakeLibriSpeech, dest: Path) -> Path:
    """``dest/LibriSpeech``: the fake corpus (linked, so the .flac paths resolve to the
    same files) plus a test-clean of dev-clean's second chapters, for the ASR stages."""
    root = dest / "LibriSpeech"
    root.mkdir(parents=True)
    for name in ("SPEAKERS.TXT", "train-clean-100", "dev-clean"):
        (root / name).symlink_to(fake.root / name)
    for reader in sorted({u.reader for u in fake.subset("dev-clean").values()}):
        chapter = sorted((fake.root / "dev-clean" / reader).iterdir())[1]
        (root / "test-clean" / reader).mkdir(parents=True)
        (root / "test-clean" / reader / chapter.name).symlink_to(chapter)
    return root


def utts_of_test_clean(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "test-clean").glob("*/*/*.flac"))


def fake_lm_dir(fake: FakeLibriSpeech, tiny: Path, dest: Path) -> Path:
    """openslr.org/11's files as the recipe reads them, made from the tiny corpus:
    librispeech-lexicon.txt (its dict's words upper-cased, as the fake transcripts, the
    phones renamed to letters and a stress digit, tab-separated as published) and
    lm_tgsmall.arpa.gz, a trigram of the fake corpus's transcripts (all of them: the real
    LM's vocabulary covers the test sets' words too)."""
    dest.mkdir()
    entries = [line.split() for line in
               (tiny / "data" / "local" / "dict" / "lexicon.txt").read_text().splitlines()]
    entries = [(w.upper(), phones) for w, *phones in entries if not w.startswith("<")]
    # 8 base phones with 3 stress digits each (AA0 .. HH2), grouped as the real ones are.
    names = {p: f"{chr(65 + i % 8) * 2}{i // 8 % 3}"
             for i, p in enumerate(sorted({p for _, ps in entries for p in ps}))}
    (dest / "librispeech-lexicon.txt").write_text("".join(
        f"{w}\t{' '.join(names[p] for p in ps)}\n" for w, ps in entries))
    work = dest.parent / "lm_work"   # the vocabulary as a dict dir's lexicon.txt
    work.mkdir()
    shutil.copy(dest / "librispeech-lexicon.txt", work / "lexicon.txt")
    (work / "text").write_text("".join(f"{u.utt} {u.text}\n"
                                       for u in sorted(fake.utts.values(), key=lambda u: u.utt)))
    sh(f"utils/make_ngram_lm.sh --order 3 --oov '<UNK>' {work}/text {work} "
       f"{dest}/lm_tgsmall.arpa.gz", cwd=ROOT)
    return dest


@pytest.fixture(scope="module")
def corpus_root(fake_librispeech, tmp_path_factory) -> Path:
    return with_test_clean(fake_librispeech, tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def recipe(fake_librispeech, tiny_corpus, corpus_root, tmp_path_factory) -> Path:
    """The recipe run through every stage on the fake corpus; the tiny data need the
    permissive alignment failure fraction of egs/mini's tiny preset."""
    recipe = copy_recipe(tmp_path_factory.mktemp("librispeech"))
    shrink_configs(recipe)
    lm_dir = fake_lm_dir(fake_librispeech, tiny_corpus, recipe / "lm")
    sh(f"./run.sh --librispeech {corpus_root} --cpc-labels {fake_librispeech.cpc_labels} "
       f"--nj 1 --lm-dir {lm_dir} --lmwt-range 8:12:4 --max-fail-fraction 0.5 "
       # DNNs of 30 utterances are nearly flat: a narrow search keeps the test short
       "--decode-opts '--beam 8 --max-active 500'", cwd=recipe)
    return recipe


def results_of(recipe: Path, features: str, task: str) -> dict:
    return json.loads((recipe / "exp" / features / "eval" / task / "results.json").read_text())


def read_ali(path: Path) -> dict[str, list[int]]:
    return {u: [int(x) for x in v.split()] for u, v in read_table(path).items()}


# --- stage 0: data dirs and the protocol --------------------------------------------------

@pytest.mark.parametrize("subset", ["train-clean-100", "dev-clean"])
def test_data_dirs_hold_the_corpus_with_readers_as_speakers(recipe, fake_librispeech, subset):
    truth = fake_librispeech.subset(subset)
    d = validate_data_dir(recipe / "data" / subset.replace("-", "_"))
    assert d.utts == sorted(truth)
    assert d.table("wav.scp") == {u: str(t.flac) for u, t in truth.items()}
    assert d.table("text") == {u: t.text for u, t in truth.items()}
    assert d.utt2spk == {u: t.reader for u, t in truth.items()}
    assert d.table("spk2gender") == {t.reader: t.gender for t in truth.values()}
    for utt, dur in d.table("utt2dur").items():
        assert float(dur) == pytest.approx(truth[utt].samples / 16000, abs=1e-9), utt


def test_wav_scp_reads_the_flac_files_directly(recipe, fake_librispeech, tiny_corpus):
    reader = AudioReader(recipe / "data" / "dev_clean")
    sources = {}
    for x in ("train", "dev", "test"):
        sources.update(read_table(tiny_corpus / "data" / x / "wav.scp"))
    for utt, truth in fake_librispeech.subset("dev-clean").items():
        samples, rate = reader.read(utt)
        expected, _ = sf.read(sources[truth.source], dtype="float32")
        assert rate == 16000
        np.testing.assert_array_equal(samples, expected, err_msg=utt)


def test_protocol_sets_are_the_split_lists_with_their_frame_labels(recipe, fake_librispeech):
    fake = fake_librispeech
    for name, split in (("cpc_train", fake.train_split), ("cpc_test", fake.test_split)):
        d = validate_data_dir(recipe / "data" / name)
        assert d.utts == sorted(split)
        assert read_ali(d.path / "phone_ali") == {u: fake.labels[u] for u in sorted(split)}
        assert d.table("wav.scp") == {u: str(fake.utts[u].flac) for u in sorted(split)}
    train = validate_data_dir(recipe / "data" / "cpc_train")
    test = validate_data_dir(recipe / "data" / "cpc_test")
    assert set(train.utt2spk.values()) == set(test.utt2spk.values())  # same readers


def test_rerunning_stage_0_rewrites_identical_files(recipe, fake_librispeech, corpus_root):
    dirs = [recipe / "data" / x for x in ("train_clean_100", "dev_clean", "cpc_test")]
    before = {f: f.read_bytes() for d in dirs for f in sorted(d.iterdir())}
    sh(f"./run.sh --librispeech {corpus_root} "
       f"--cpc-labels {fake_librispeech.cpc_labels} --stop-stage 0", cwd=recipe)
    assert {f: f.read_bytes() for d in dirs for f in sorted(d.iterdir())} == before


# --- stages 1-3: features and representations ---------------------------------------------

@pytest.mark.parametrize("feat,dim", [("fbank", 80), ("mfcc", 13)])
def test_features_line_up_with_the_frame_labels(recipe, feat, dim):
    for x in ("cpc_train", "cpc_test"):
        d = validate_data_dir(recipe / "data" / f"{x}_{feat}", Requirements(feats=True))
        assert d.has("cmvn.scp")
        labels = read_ali(d.path / "phone_ali")
        assert d.utts == sorted(labels)
        for utt, mat in kaldiio.load_scp(str(d.path / "feats.scp")).items():
            assert mat.shape == (len(labels[utt]), dim), (utt, mat.shape)


@pytest.mark.parametrize("method,source", [("apc", "fbank"), ("cpc", "mfcc")])
def test_each_method_is_trained_and_gives_one_vector_per_frame(recipe, method, source):
    assert (recipe / "exp" / method / "final.pt").is_file()
    for x in ("cpc_train", "cpc_test"):
        out = validate_data_dir(recipe / "data" / f"{x}_{method}", Requirements(feats=True))
        src = recipe / "data" / f"{x}_{source}"
        assert (out.path / "phone_ali").read_bytes() == (src / "phone_ali").read_bytes()
        frames = {u: int(n) for u, n in read_table(src / "utt2num_frames").items()}
        for utt, mat in kaldiio.load_scp(str(out.path / "feats.scp")).items():
            assert mat.shape[0] == frames[utt] and np.isfinite(mat).all(), utt


# --- stages 4-5: probes -------------------------------------------------------------------

@pytest.mark.parametrize("features", FEATURES)
def test_phone_probe_results(recipe, fake_librispeech, features):
    results = results_of(recipe, features, "probe_phone")
    test_labels = [c for u in fake_librispeech.test_split for c in fake_librispeech.labels[u]]
    assert results["num_test"] == len(test_labels)
    assert results["train_dir"] == f"data/cpc_train_{features}"
    assert 0 <= results["accuracy"] <= 100
    # MFCC: speaker CMVN and deltas (the published 39-d baseline); fbank: CMVN.
    assert (results["cmvn"], results["delta_order"]) == {
        "mfcc": (True, 2), "fbank": (True, 0)}.get(features, (False, 0))
    # the second probe: one hidden layer, on the same frames
    hidden = results_of(recipe, features, "probe_phone_1hidden")
    assert hidden["hidden_dim"] == 768 and hidden["num_test"] == results["num_test"]
    assert hidden["train_dir"] == results["train_dir"]


def test_phone_labels_match_the_audio(recipe):
    # Labels from the generator's alignments: MFCC frames predict them far above chance,
    # which misaligned or shuffled labels would not.
    results = results_of(recipe, "mfcc", "probe_phone")
    assert results["accuracy"] > 2 * results["majority_baseline"], results


@pytest.mark.parametrize("features", FEATURES)
def test_speaker_probe_results(recipe, fake_librispeech, features):
    results = results_of(recipe, features, "probe_speaker")
    readers = {fake_librispeech.utts[u].reader for u in fake_librispeech.test_split}
    assert results["num_classes"] == len(readers) == 6
    assert (results["num_train"], results["num_test"]) == (
        len(fake_librispeech.train_split), len(fake_librispeech.test_split))
    assert 0 <= results["accuracy"] <= 100
    assert results["cmvn"] is False  # speaker CMVN would remove what is measured


def test_one_table_gathers_every_probe(recipe):
    table = (recipe / "exp" / "results" / "results.md").read_text()
    header = table.splitlines()[0]
    assert "phone probe" in header and "speaker probe" in header, header
    assert "phone probe acc. % ↑ [probe_phone_1hidden]" in header, header
    assert "ASR WER % (hybrid DNN)" in header and "ASR WER % (mono GMM)" in header, header
    for features in FEATURES:
        assert re.search(rf"^\| {features} \|", table, re.M), (features, table)


def test_help_lists_the_options_and_stages():
    proc = sh("./run.sh --help", cwd=RECIPE)
    text = proc.stderr
    for option in ("--librispeech", "--cpc-labels", "--stage", "--stop-stage", "--nj",
                   "--download", "--subsets", "--train-set", "--methods", "--device"):
        assert option in text, option
    for option in ("--lm-dir", "--lm", "--lmwt-range", "--max-fail-fraction"):
        assert option in text, option
    assert [int(n) for n in re.findall(r"^  (\d)  ", text, re.M)] == list(range(9))


# --- stages 6-7: hybrid ASR ---------------------------------------------------------------

def test_dict_and_lang_come_from_the_published_lexicon(recipe):
    lexicon = (recipe / "data" / "local" / "dict" / "lexicon.txt").read_text().splitlines()
    assert {"!SIL SIL", "<SPOKEN_NOISE> SPN", "<UNK> SPN"} <= set(lexicon)
    published = (recipe / "lm" / "librispeech-lexicon.txt").read_text().splitlines()
    assert len(lexicon) == len(published) + 3
    assert (recipe / "data" / "lang" / "oov.txt").read_text().split() == ["<UNK>"]
    assert (recipe / "data" / "lang_test_tgsmall" / "G.fst").is_file()


def test_the_mono_gmm_trains_on_the_shortest_utterances(recipe):
    durations = read_table(recipe / "data" / "train_clean_100" / "utt2dur")
    chosen = (recipe / "data" / "local" / "train_2kshort.list").read_text().split()
    assert sorted(chosen) == sorted(durations)  # fewer than 2000: every one
    d = validate_data_dir(recipe / "data" / "train_2kshort_mfcc", Requirements(feats=True))
    assert d.utts == sorted(chosen)
    for f in ("final.mdl", "tree", "num_jobs"):
        assert (recipe / "exp" / "mono_ali" / f).is_file(), f


@pytest.mark.parametrize("features,task,model", [
    ("mfcc", "asr_gmm", "exp/mono/decode_tgsmall_dev_clean"),
    *[(f, "asr", f"exp/{f}/hybrid/decode_tgsmall_dev_clean") for f in FEATURES]])
def test_asr_wer_on_test_clean_at_dev_cleans_best_lm_weight(recipe, fake_librispeech,
                                                          corpus_root, features, task, model):
    results = results_of(recipe, features, task)
    dev = json.loads((recipe / model / "results.json").read_text())
    assert results["task"] == dev["task"] == task
    assert results["num_utts"] == len(utts_of_test_clean(corpus_root)) == 4, results
    assert dev["num_utts"] == len(fake_librispeech.subset("dev-clean")), dev
    assert sorted(dev["wer_by_lmwt"]) == ["12", "8"]
    assert results["lmwt"] == dev["lmwt"] and list(results["wer_by_lmwt"]) == [str(dev["lmwt"])]
    assert results["data_dir"] == f"data/test_clean_{features}"
    assert 0 <= results["wer"] and results["missing_hyps"] == 0, results


def test_prepare_dict_groups_stress_variants_and_adds_silence_words(tmp_path):
    lexicon = tmp_path / "librispeech-lexicon.txt"
    lexicon.write_text("A\tAH0\nA\tEY1\nABANDON\tAH0 B AE1 N D AH0 N\n"
                       "ABBOTT\tAE1 B AH0 T\nAH\tAA1\nAHA\tAA2 HH AA1\n")
    prepare_dict(lexicon, tmp_path / "dict")
    read = (tmp_path / "dict").joinpath
    assert read("nonsilence_phones.txt").read_text().splitlines() == [
        "AA AA1 AA2", "AE AE1", "AH AH0", "B", "D", "EY EY1", "HH", "N", "T"]
    assert read("silence_phones.txt").read_text().split("\n") == ["SIL", "SPN", ""]
    assert read("optional_silence.txt").read_text() == "SIL\n"
    assert read("lexicon.txt").read_text().splitlines() == [
        "!SIL SIL", "<SPOKEN_NOISE> SPN", "<UNK> SPN", "A AH0", "A EY1",
        "ABANDON AH0 B AE1 N D AH0 N", "ABBOTT AE1 B AH0 T", "AH AA1", "AHA AA2 HH AA1"]
    assert read("extra_questions.txt").read_text().splitlines() == [
        "SIL SPN", "AA AE AH B D EY HH N T", "AH0", "AA1 AE1 EY1", "AA2"]


@pytest.mark.parametrize("line,message", [
    ("ABBEY", "key 'ABBEY': expected 'WORD PHONE [PHONE ...]'"),
    ("ABBEY AE1 B 1IY", "key 'ABBEY': phone '1IY' is not letters then an optional stress"),
    ("ABBEY AE1 B IY0\tEY", None),
    ("ABBEY AE1 SIL", "key 'ABBEY': phone 'SIL': SIL is reserved for the silence phones"),
    ("<UNK> AE1", "key '<UNK>': the recipe adds this word itself"),
    ("", "empty line"),
])
def test_a_malformed_lexicon_line_is_named(tmp_path, line, message):
    lexicon = tmp_path / "librispeech-lexicon.txt"
    lexicon.write_text(f"A\tAH0\n{line}\nB\tB IY1\n")
    if message is None:  # a tab among the phones is only a separator
        prepare_dict(lexicon, tmp_path / "dict")
        assert "ABBEY AE1 B IY0 EY" in (tmp_path / "dict" / "lexicon.txt").read_text()
        return
    with pytest.raises(InputError, match=re.escape(f"{lexicon}:2: {message}")):
        prepare_dict(lexicon, tmp_path / "dict")
    assert not (tmp_path / "dict").exists()


def test_asr_without_the_published_files_says_how_to_get_them(tmp_path):
    recipe = copy_recipe(tmp_path)
    for x in ("train_clean_100", "dev_clean", "test_clean"):
        (recipe / "data" / x).mkdir(parents=True)
    proc = sh(f"./run.sh --stage 6 --lm-dir {tmp_path}/lm", cwd=recipe, check=False)
    assert proc.returncode == 1
    assert (f"no {tmp_path}/lm/librispeech-lexicon.txt: run local/librispeech/download_lm.sh"
            in proc.stderr), proc.stderr


def test_download_lm_offline_and_unknown_files_are_clear_errors(tmp_path):
    proc = sh(f"local/librispeech/download_lm.sh --url-base http://127.0.0.1:9 {tmp_path}",
              cwd=RECIPE, check=False)
    assert proc.returncode == 1
    assert ("cannot download http://127.0.0.1:9/librispeech-lexicon.txt (is this machine "
            "offline?)" in proc.stderr), proc.stderr
    assert not (tmp_path / "librispeech-lexicon.txt").exists()
    (tmp_path / "librispeech-lexicon.txt").write_text("A AH0\n")
    proc = sh(f"local/librispeech/download_lm.sh --files librispeech-lexicon.txt {tmp_path}",
              cwd=RECIPE, check=False)
    assert proc.returncode == 1 and "has 6 bytes, expected 5627646" in proc.stderr
    proc = sh(f"local/librispeech/download_lm.sh --files 5-gram.arpa.gz {tmp_path}",
              cwd=RECIPE, check=False)
    assert proc.returncode == 1 and "unknown file '5-gram.arpa.gz'" in proc.stderr


# --- bad input ----------------------------------------------------------------------------

@pytest.fixture
def corpus(fake_librispeech, tmp_path) -> Path:
    """A changeable copy of the fake corpus: ``<tmp>/src/{LibriSpeech,cpc_labels}``."""
    shutil.copytree(fake_librispeech.root.parent, tmp_path / "src")
    return tmp_path / "src" / "LibriSpeech"


def test_a_missing_root_says_what_was_expected(tmp_path):
    recipe = copy_recipe(tmp_path)
    proc = sh(f"./run.sh --librispeech {tmp_path}/nowhere --stop-stage 0", cwd=recipe,
              check=False)
    assert proc.returncode == 1
    assert (f"{tmp_path}/nowhere: no such directory: expected the LibriSpeech/ folder"
            in proc.stderr), proc.stderr


def test_the_parent_folder_is_pointed_at_its_librispeech(corpus, tmp_path):
    with pytest.raises(InputError, match=re.escape(
            f"{corpus.parent}: no LibriSpeech subset here: expected one or more of "
            "train-clean-100, ") + r".* laid out as <subset>/<reader>/<chapter>/"
            r"<reader>-<chapter>\.trans\.txt; did you mean " + re.escape(f"{corpus}?")):
        prepare(corpus.parent, tmp_path / "data")


def test_a_flat_subset_says_which_layout_was_expected(corpus, tmp_path):
    subset = corpus / "dev-clean"
    for f in list(subset.rglob("*.*")):
        f.rename(subset / f.name)
    for d in sorted(subset.glob("*/*")) + sorted(subset.glob("*")):
        if d.is_dir():
            d.rmdir()
    with pytest.raises(InputError, match=re.escape(
            f"{subset}: no <reader>/<chapter>/<reader>-<chapter>.trans.txt under this subset "
            "folder (expected LibriSpeech/<subset>/<reader>/<chapter>/")):
        prepare(corpus, tmp_path / "data")


def test_a_transcript_line_without_audio_names_file_and_line(corpus, tmp_path):
    chapter = corpus / "train-clean-100" / "103" / "1240"
    (chapter / "103-1240-0001.flac").unlink()
    with pytest.raises(InputError, match=re.escape(
            f"{chapter / '103-1240.trans.txt'}:2: key '103-1240-0001': no audio file "
            "103-1240-0001.flac for this transcript line")):
        prepare(corpus, tmp_path / "data")
    assert not (tmp_path / "data" / "train_clean_100").exists()


def test_audio_without_a_transcript_line_is_counted_with_examples(corpus, tmp_path):
    chapter = corpus / "train-clean-100" / "19" / "227"
    shutil.copy(chapter / "19-227-0000.flac", chapter / "19-227-0007.flac")
    with pytest.raises(InputError, match=re.escape(
            f"{chapter}: 1 .flac files have no line in 19-227.trans.txt (19-227-0007)")):
        prepare(corpus, tmp_path / "data")


def test_a_chapter_without_transcripts_is_an_error(corpus, tmp_path):
    chapter = corpus / "dev-clean" / "84" / "121123"
    (chapter / "84-121123.trans.txt").unlink()
    with pytest.raises(InputError, match=re.escape(
            f"{chapter}: chapter folder has 3 .flac files but no 84-121123.trans.txt")):
        prepare(corpus, tmp_path / "data")


def test_a_reader_missing_from_speakers_txt_is_named(corpus, tmp_path):
    speakers = corpus / "SPEAKERS.TXT"
    speakers.write_text("".join(line for line in speakers.read_text().splitlines(True)
                                if not line.startswith("19 ")))
    with pytest.raises(InputError, match=re.escape(
            f"{speakers}: 1 readers have no line (19)")):
        prepare(corpus, tmp_path / "data", ["train-clean-100"])


def _break_alignment_line(path: Path, lineno: int, new_labels: str) -> str:
    lines = path.read_text().split("\n")
    utt = lines[lineno - 1].split()[0]
    lines[lineno - 1] = f"{utt} {new_labels}".strip()
    path.write_text("\n".join(lines))
    return utt


@pytest.mark.parametrize("labels,message", [
    ("0 0 x 3", "label 'x' is not a class 0-40 (one integer per 10 ms frame)"),
    ("0 41 3", "label '41' is not a class 0-40"),
    ("", "expected '<utt> <label> <label> ...', got no labels"),
])
def test_an_alignment_line_that_does_not_parse_names_file_and_line(corpus, tmp_path, labels,
                                                                  message):
    ali = corpus.parent / "cpc_labels" / "converted_aligned_phones.txt"
    utt = _break_alignment_line(ali, 3, labels)
    prepare(corpus, tmp_path / "data", ["train-clean-100"])
    with pytest.raises(InputError, match=re.escape(f"{ali}:3: key '{utt}': {message}")):
        import_protocol(ali.parent, tmp_path / "data/train_clean_100",
                        tmp_path / "data/cpc_train", tmp_path / "data/cpc_test")
    assert not (tmp_path / "data" / "cpc_train").exists()


def test_split_ids_absent_from_the_corpus_are_counted(corpus, tmp_path):
    split = corpus.parent / "cpc_labels" / "test_split.txt"
    split.write_text(split.read_text() + "\n8888-1-0000\n7-7-0007")
    prepare(corpus, tmp_path / "data", ["train-clean-100"])
    with pytest.raises(InputError, match=re.escape(
            f"{split}: 2 of 14 ids are not utterances of {tmp_path / 'data/train_clean_100'} "
            "(7-7-0007 8888-1-0000); the CPC splits are subsets of train-clean-100")):
        import_protocol(split.parent, tmp_path / "data/train_clean_100",
                        tmp_path / "data/cpc_train", tmp_path / "data/cpc_test")


def test_split_ids_without_alignment_are_counted(corpus, tmp_path):
    ali = corpus.parent / "cpc_labels" / "converted_aligned_phones.txt"
    lines = ali.read_text().split("\n")
    dropped = lines.pop(0).split()[0]
    ali.write_text("\n".join(lines))
    prepare(corpus, tmp_path / "data", ["train-clean-100"])
    with pytest.raises(InputError, match=re.escape(
            f"{ali}: 1 ids of the split lists have no line ({dropped})")):
        import_protocol(ali.parent, tmp_path / "data/train_clean_100",
                        tmp_path / "data/cpc_train", tmp_path / "data/cpc_test")


def test_missing_protocol_files_are_named(corpus, tmp_path):
    labels = corpus.parent / "cpc_labels"
    (labels / "test_split.txt").unlink()
    prepare(corpus, tmp_path / "data", ["train-clean-100"])
    with pytest.raises(InputError, match=re.escape(
            f"{labels}: missing test_split.txt: expected the CPC protocol files "
            "converted_aligned_phones.txt, train_split.txt and test_split.txt")):
        import_protocol(labels, tmp_path / "data/train_clean_100",
                        tmp_path / "data/cpc_train", tmp_path / "data/cpc_test")


def test_download_offline_and_unknown_subsets_are_clear_errors(tmp_path):
    # Port 9 on the loopback refuses the connection, as an offline machine would.
    proc = sh(f"local/librispeech/download_and_untar.sh --url-base http://127.0.0.1:9 "
              f"{tmp_path} dev-clean", cwd=RECIPE, check=False)
    assert proc.returncode == 1
    assert ("cannot download http://127.0.0.1:9/dev-clean.tar.gz (is this machine offline?)"
            in proc.stderr), proc.stderr
    assert not (tmp_path / "dev-clean.tar.gz").exists()
    proc = sh(f"local/librispeech/download_and_untar.sh {tmp_path} dev-cleen", cwd=RECIPE,
              check=False)
    assert proc.returncode == 1 and "unknown subset 'dev-cleen'" in proc.stderr
