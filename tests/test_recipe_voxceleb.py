"""egs/voxceleb on a fake VoxCeleb1/2, MUSAN and RIRS_NOISES laid out as the real ones:
data preparation against the fake corpus's truth (ids, speakers, trials), augmentation
lists, a few VICReg steps with them, `./run.sh --stage 3` (extraction, then cosine
scoring with EER and minDCF), and the errors that bad input gets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import ROOT, sh
from fake_voxceleb import RIR_IDS, VOX1_DEV, VOX1_TEST, have_ffmpeg, make_fake_voxceleb
from speechssl.corpus import voxceleb
from speechssl.data.table import read_table
from speechssl.data.validate import Requirements, validate_data_dir
from speechssl.errors import InputError, SpeechSSLError

STEPS = 4
NEEDS_FFMPEG = pytest.mark.skipif(not have_ffmpeg(), reason="no ffmpeg (neither on PATH nor "
                                  "from imageio-ffmpeg, which `make env` installs): no fake "
                                  "VoxCeleb2 (its m4a files are made and read with it)")
# The recipe's config with a tiny net and batch, so that training takes seconds; the
# augmentation section (MUSAN and RIR lists) is kept.
SHRINK = {"model": {"projector_dims": [64, 64, 64],
                    "resnet": {"channels": [4, 8, 8, 16], "blocks": [1, 1, 1, 1],
                               "embedding_dim": 32}},
          "data": {"view_frames": 60, "batch_size": 4, "num_workers": 0},
          "train": {"max_steps": STEPS, "checkpoint_every": STEPS, "log_every": 1}}


def copy_recipe(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("run.sh", "cmd.sh", "conf"):
        src = ROOT / "egs" / "voxceleb" / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    for name in ("path.sh", "steps", "utils", "local"):
        (dest / name).symlink_to(ROOT / name)
    return dest


def corpus_options(fake) -> str:
    vox2 = f"--voxceleb2 {fake.voxceleb2}" if fake.voxceleb2 else ""
    return f"--voxceleb1 {fake.voxceleb1} {vox2} --musan {fake.musan} --rirs {fake.rirs}"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_voxceleb(tmp_path_factory.mktemp("fake_voxceleb"))


@pytest.fixture(scope="module")
def recipe(fake, tmp_path_factory):
    """The recipe run through stages 0-2 (data, lists, training) on the fake corpora."""
    recipe = copy_recipe(tmp_path_factory.mktemp("voxceleb") / "recipe")
    conf = yaml.safe_load((recipe / "conf" / "vicreg.yaml").read_text())
    for section, values in SHRINK.items():
        conf[section].update(values)
    (recipe / "conf" / "vicreg.yaml").write_text(yaml.safe_dump(conf))
    proc = sh(f"./run.sh {corpus_options(fake)} --nj 2 --stop-stage 2", cwd=recipe)
    (recipe / "stages_0_2.log").write_text(proc.stdout + proc.stderr)
    return recipe


@pytest.fixture(scope="module")
def scored(recipe):
    """``./run.sh --stage 3`` on top: no corpus options, everything from data/ and exp/."""
    proc = sh("./run.sh --stage 3 --nj 2", cwd=recipe)
    return recipe, proc.stdout + proc.stderr


def trial_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# ----------------------------------------------------------------- data preparation

def test_data_dirs_hold_the_corpus_with_speakers_from_the_folders(fake, recipe):
    sets = ["voxceleb1_dev", "voxceleb1_test"] + (["voxceleb2_dev"] if fake.voxceleb2 else [])
    assert sorted(fake.utt2spk) == sorted(sets)
    for x in sets:
        d = validate_data_dir(recipe / "data" / x, Requirements(text=False))
        assert d.utt2spk == dict(sorted(fake.utt2spk[x].items())), x  # ids hold - and _
        assert any("-" in u[8:-6] for u in d.utts) and any("_" in u for u in d.utts)
        for utt, wav in d.table("wav.scp").items():
            info = sf.info(wav)
            assert info.samplerate == 16000 and info.channels == 1
            assert float(d.table("utt2dur")[utt]) == pytest.approx(info.duration, abs=5e-4)
    genders = read_table(recipe / "data" / "voxceleb1_test" / "spk2gender")
    assert genders == {"id10270": "m", "id10271": "f", "id10309": "m"}


def test_o_trials_are_converted_line_for_line(fake, recipe):
    converted = trial_lines(recipe / "data" / "voxceleb1_test" / "trials")
    assert converted == fake.trials["veri_test2.txt"]


def test_e_and_h_trials_only_when_training_on_voxceleb2(fake, recipe):
    log = (recipe / "stages_0_2.log").read_text()
    if fake.voxceleb2 is None:
        assert not (recipe / "data" / "voxceleb1").exists()
        assert "list_test_hard2.txt is there but not used" in log
        return
    data = validate_data_dir(recipe / "data" / "voxceleb1", Requirements(text=False))
    assert set(data.utts) == {*fake.utt2spk["voxceleb1_dev"], *fake.utt2spk["voxceleb1_test"]}
    assert trial_lines(data.path / "trials_e") == fake.trials["list_test_all2.txt"]
    assert trial_lines(data.path / "trials_h") == fake.trials["list_test_hard2.txt"]


@NEEDS_FFMPEG
def test_voxceleb2_is_decoded_once_to_wav_of_the_source_duration(fake, recipe):
    wav_scp = read_table(recipe / "data" / "voxceleb2_dev" / "wav.scp")
    wav_dir = (recipe / "wav" / "voxceleb2").resolve()
    for utt, path in wav_scp.items():
        assert Path(path) == wav_dir / voxceleb.utt_file(utt)
        # AAC adds a frame of priming and padding at most: within 0.1 s of the source.
        assert sf.info(path).duration == pytest.approx(sf.info(fake.sources[utt]).duration,
                                                       abs=0.1)
    before = {p: os.stat(p).st_mtime_ns for p in wav_scp.values()}
    proc = sh(f"local/voxceleb/prepare_voxceleb2.sh --nj 2 {fake.voxceleb2} wav/voxceleb2 data",
              cwd=recipe)
    assert "decoding 0 of 18 m4a files" in proc.stdout + proc.stderr
    assert {p: os.stat(p).st_mtime_ns for p in wav_scp.values()} == before


def test_augmentation_lists(fake, recipe):
    for category, ids in fake.musan_ids.items():
        d = validate_data_dir(recipe / "data" / f"musan_{category}", Requirements(text=False))
        assert d.utts == ids
        assert all(Path(p).parts[-3] == category for p in d.table("wav.scp").values())
    rirs = read_table(recipe / "data" / "rirs" / "wav.scp")
    assert list(rirs) == sorted(RIR_IDS)
    assert all(Path(p).is_file() for p in rirs.values())


def test_training_used_the_lists_and_no_labels(fake, recipe):
    config = yaml.safe_load((recipe / "exp" / "vicreg" / "config.yaml").read_text())
    augment = config["data"]["augment"]
    assert augment["rir_scp"] == "data/rirs/wav.scp"
    assert {n["name"]: (n["snr_db"], n["count"]) for n in augment["noises"]} == {
        "noise": ([0, 15], [1, 1]), "music": ([5, 15], [1, 1]), "babble": ([13, 20], [3, 7])}
    train = "voxceleb2_dev" if fake.voxceleb2 else "voxceleb1_dev"
    assert f"data/{train} exp/vicreg" in (recipe / "stages_0_2.log").read_text()
    assert f"Training done after {STEPS} steps" in (recipe / "exp/vicreg/log/train.log").read_text()


# ----------------------------------------------------------------- stages 3 and 4

def test_stage_3_extracts_then_scores(fake, scored):
    recipe, log = scored
    assert log.index("steps/extract_ssl.sh") < log.index("steps/score_sv.sh")
    lists = {"sv_cosine": ("voxceleb1_test", "trials")}
    if fake.voxceleb2:
        lists |= {"sv_cosine_e": ("voxceleb1", "trials_e"),
                  "sv_cosine_h": ("voxceleb1", "trials_h")}
    for column, (x, trials) in lists.items():
        emb = read_table(recipe / "data" / f"{x}_vicreg" / "embedding.scp")
        assert list(emb) == list(read_table(recipe / "data" / x / "utt2spk"))
        num_trials = len(trial_lines(recipe / "data" / x / trials))
        for features in ("fbank", "vicreg"):
            out = recipe / "exp" / features / "eval" / column
            res = json.loads((out / "results.json").read_text())
            assert res["task"] == "sv_cosine" and res["num_trials"] == num_trials
            assert 0 <= res["eer"] <= 100
            assert 0 <= res["min_dcf_0.01"] <= 1 and 0 <= res["min_dcf_0.001"] <= 1
            assert (out / "det.png").stat().st_size > 0
            assert len(trial_lines(out / "scores")) == num_trials
    table = (recipe / "exp" / "results" / "results.md").read_text().splitlines()
    # O, plus E and H where a (fake) VoxCeleb2 could be made
    assert table[0].count("SV EER % (cosine)") == len(lists)
    assert [line.split(" | ")[0] for line in table[2:]] == ["| fbank", "| vicreg"]


def test_help_lists_the_options_and_stages(tmp_path):
    recipe = copy_recipe(tmp_path / "recipe")
    proc = sh("./run.sh --help", cwd=recipe)
    for option in ("--voxceleb1", "--voxceleb2", "--musan", "--rirs", "--stage", "--stop-stage",
                   "--nj", "--methods", "--vox2-wav", "--device"):
        assert option in proc.stderr
    for stage in range(5):
        assert f"\n  {stage}  " in proc.stderr


# ----------------------------------------------------------------- the VoxCeleb1 split

def linked_root(fake, dest: Path, *names: str) -> Path:
    """A VoxCeleb1 root sharing the fake's audio, with copies of the named text files."""
    dest.mkdir()
    (dest / "wav").symlink_to(fake.voxceleb1 / "wav")
    for name in names:
        shutil.copy(fake.voxceleb1 / name, dest / name)
    return dest


def test_split_by_speaker_range_without_meta_and_by_the_set_column_with_it(fake, tmp_path):
    root = linked_root(fake, tmp_path / "vox1", "veri_test2.txt")
    split = voxceleb.split_voxceleb1(root)
    assert sorted({r.spk for r in split.test}) == list(VOX1_TEST)
    assert sorted({r.spk for r in split.dev}) == list(VOX1_DEV)
    assert "by speaker id" in split.how
    meta = (fake.voxceleb1 / "vox1_meta.csv").read_text()
    (root / "vox1_meta.csv").write_text(meta.replace("id10001\tCeleb_id10001\tf\tNowhere\tdev",
                                                     "id10001\tCeleb_id10001\tf\tNowhere\ttest"))
    split = voxceleb.split_voxceleb1(root)
    assert sorted({r.spk for r in split.test}) == ["id10001", *VOX1_TEST]
    assert "Set column" in split.how


def test_dev_and_test_folders_split_by_folder(fake, tmp_path):
    root = tmp_path / "vox1"
    for which, speakers in (("dev", VOX1_DEV), ("test", VOX1_TEST)):
        (root / which / "wav").mkdir(parents=True)
        for spk in speakers:
            (root / which / "wav" / spk).symlink_to(fake.voxceleb1 / "wav" / spk)
    split = voxceleb.split_voxceleb1(root)
    assert {r.utt: r.spk for r in split.test} == fake.utt2spk["voxceleb1_test"]
    assert {r.utt: r.spk for r in split.dev} == fake.utt2spk["voxceleb1_dev"]


# ----------------------------------------------------------------- bad input

def test_a_missing_root_or_a_wrong_layout_fails_saying_what_was_expected(fake, tmp_path):
    recipe = copy_recipe(tmp_path / "recipe")

    def stage_0(root: Path) -> str:
        proc = sh(f"./run.sh --voxceleb1 {root} --stop-stage 0", cwd=recipe, check=False)
        assert proc.returncode != 0
        return proc.stdout + proc.stderr

    out = stage_0(tmp_path / "nowhere")
    assert "ERROR (prepare_voxceleb[" in out
    assert f"{tmp_path}/nowhere: VoxCeleb1 directory does not exist" in out
    wrong = tmp_path / "flat"
    (wrong / "audio").mkdir(parents=True)
    assert (f"{wrong}: not a VoxCeleb1 layout: expected wav/idNNNNN/<YouTube id>/NNNNN.wav "
            "(or dev/wav/... and test/wav/...) and veri_test2.txt in it") in stage_0(wrong)
    (wrong / "wav" / "speaker1").mkdir(parents=True)
    assert (f"{wrong}/wav/speaker1: unexpected folder: expected speaker folders "
            "idNNNNN/<YouTube id>/NNNNN.wav") in stage_0(wrong)
    assert not (recipe / "data" / "voxceleb1_test").exists()


def test_trials_naming_absent_files_fail_with_a_count_and_examples(fake, tmp_path):
    root = linked_root(fake, tmp_path / "vox1", "vox1_meta.csv")
    lines = (fake.voxceleb1 / "veri_test2.txt").read_text().splitlines()
    lines += ["0 id10270/1zcIwh-deo4/00001.wav id10280/a-b_c/00001.wav",
              "1 id10271/x6uY_mx31kE/00009.wav id10280/a-b_c/00001.wav",
              "0 id10270/1zcIwh-deo4/00001.wav id10001/1zcIwh-deo4/00001.wav"]  # a dev file
    (root / "veri_test2.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        voxceleb.prepare_voxceleb1(root, tmp_path / "data", extended_trials=False)
    assert str(e.value) == (
        f"{root}/veri_test2.txt: 3 of {len(lines)} trials name 3 files that are not among the "
        "18 utterances of VoxCeleb1 test (e.g. id10001/1zcIwh-deo4/00001.wav "
        "id10271/x6uY_mx31kE/00009.wav id10280/a-b_c/00001.wav); is the download complete?")
    assert not (tmp_path / "data").exists()  # nothing written
    (root / "veri_test2.txt").write_text("1 id10270/1zcIwh-deo4/00001.wav\n")
    with pytest.raises(InputError, match=r"veri_test2.txt:1: expected '<1\|0> <enroll wav>"):
        voxceleb.prepare_voxceleb1(root, tmp_path / "data", extended_trials=False)
    (root / "veri_test2.txt").unlink()
    with pytest.raises(InputError, match="no VoxCeleb1-O trial list: expected veri_test2.txt"):
        voxceleb.prepare_voxceleb1(root, tmp_path / "data", extended_trials=False)


def test_meta_without_a_set_column_or_with_unknown_speakers_is_an_error(fake, tmp_path):
    root = linked_root(fake, tmp_path / "vox1", "veri_test2.txt")
    (root / "vox1_meta.csv").write_text("ID,Name,Set\nid10001,X,dev\n")
    with pytest.raises(InputError, match=r"vox1_meta.csv:1: expected a tab-separated header "
                                         "with a 'Set' column"):
        voxceleb.split_voxceleb1(root)
    (root / "vox1_meta.csv").write_text("VoxCeleb1 ID\tGender\tSet\nid10001\tm\n")
    with pytest.raises(InputError, match=r"vox1_meta.csv:2: expected at least 3 tab-separated "
                                         "fields, got 2"):
        voxceleb.split_voxceleb1(root)
    (root / "vox1_meta.csv").write_text("VoxCeleb1 ID\tSet\nid10001\tdev\nid10270\teval\n")
    with pytest.raises(InputError, match=r"vox1_meta.csv:3: key 'id10270': Set must be dev or "
                                         "test, got 'eval'"):
        voxceleb.split_voxceleb1(root)
    (root / "vox1_meta.csv").write_text("VoxCeleb1 ID\tSet\nid10001\tdev\n")
    with pytest.raises(InputError, match=r"5 speakers under wav/ are not in vox1_meta.csv "
                                         r"\(e.g. id10269 id10270 id10271 id10309 id10310\)"):
        voxceleb.split_voxceleb1(root)


def test_voxceleb2_without_ffmpeg_or_in_a_wrong_layout(fake, tmp_path, monkeypatch):
    (tmp_path / "vox2" / "dev" / "aac" / "id00012" / "abc").mkdir(parents=True)
    (tmp_path / "vox2" / "dev" / "aac" / "id00012" / "abc" / "00001.m4a").write_bytes(b"")
    monkeypatch.setattr(voxceleb.shutil, "which", lambda name: None)
    with pytest.raises(SpeechSSLError, match="ffmpeg not found: VoxCeleb2's m4a audio is "
                                             "decoded with it"):
        voxceleb.prepare_voxceleb2(tmp_path / "vox2", tmp_path / "wav", tmp_path / "data")
    with pytest.raises(InputError, match="not a VoxCeleb2 layout: expected dev/aac/id0NNNN/"):
        voxceleb.prepare_voxceleb2(tmp_path / "vox2" / "dev", tmp_path / "wav", tmp_path / "data")


def test_bad_musan_and_rirs_layouts(fake, tmp_path):
    from speechssl.corpus import noises

    (tmp_path / "musan" / "music").mkdir(parents=True)
    with pytest.raises(InputError, match=r"musan: no music wavs: expected MUSAN's "
                                         r"music/<source>/\*.wav"):
        noises.prepare_musan(tmp_path / "musan", tmp_path / "data")
    rirs = tmp_path / "RIRS_NOISES"
    shutil.copytree(fake.rirs, rirs)
    listing = rirs / "simulated_rirs" / "smallroom" / "rir_list"
    good = listing.read_text()
    listing.write_text(good + "--rir-id smallroom-Room009-00001 --room-id smallroom-Room009 "
                       "RIRS_NOISES/simulated_rirs/smallroom/Room009/Room009-00001.wav\n")
    with pytest.raises(InputError, match=r"smallroom/rir_list: 1 of 3 listed files are missing "
                                         r"\(e.g. RIRS_NOISES/simulated_rirs/smallroom/Room009"):
        noises.prepare_rirs(rirs, tmp_path / "data")
    listing.write_text(good + "RIRS_NOISES/x.wav --rir-id\n")
    with pytest.raises(InputError, match=r"smallroom/rir_list:3: expected '--rir-id <id>"):
        noises.prepare_rirs(rirs, tmp_path / "data")
    listing.write_text(good)
    shutil.rmtree(rirs / "simulated_rirs" / "mediumroom")
    with pytest.raises(InputError, match="no simulated_rirs/mediumroom/rir_list: expected"):
        noises.prepare_rirs(rirs, tmp_path / "data")


def test_trial_file_names_become_kaldi_ids_without_splitting_on_dashes():
    assert voxceleb.trial_file_to_utt("id10270/-_a-b_c-d_e/00012.wav", Path("x"), 1) == (
        "id10270--_a-b_c-d_e-00012")
    assert voxceleb.utt_file("id10270--_a-b_c-d_e-00012") == "id10270/-_a-b_c-d_e/00012.wav"
    with pytest.raises(InputError, match=r"x:3: expected files named idNNNNN/<YouTube id>/"):
        voxceleb.trial_file_to_utt("id10270/abc/1.wav", Path("x"), 3)


def test_the_recipe_config_parses_with_the_published_model():
    from speechssl.models import method_class
    from speechssl.train.config import load_config
    from speechssl.typed_config import to_dict

    config = load_config(ROOT / "egs" / "voxceleb" / "conf" / "vicreg.yaml")
    published = load_config(ROOT / "egs" / "mini" / "conf" / "published" / "vicreg.yaml")
    assert to_dict(config.model) == to_dict(method_class("vicreg").Config())
    assert to_dict(config.optim) == to_dict(published.optim)
    assert [n.name for n in config.data.augment.noises] == ["noise", "music", "babble"]
    assert np.isclose(config.data.augment.reverb_prob, 1.0)
