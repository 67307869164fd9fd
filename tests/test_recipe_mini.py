"""egs/mini/run.sh end to end on the tiny preset, as a user runs it (stages 0-1), and a
re-run of the feature stage is safe and reproducible."""

from __future__ import annotations

import kaldiio
import numpy as np

from conftest import sh
from recipe_fixtures import mini_recipe_fixture  # noqa: F401
from speechssl.data.validate import Requirements, validate_data_dir

SETS = ("train", "dev", "test")


def test_stage_0_and_1_give_validated_dirs_with_everything(mini_recipe):
    recipe = mini_recipe
    for x in SETS:
        d = validate_data_dir(recipe / "data" / x)
        assert {"words.ctm", "phones.ctm", "utt2lang", "spk2gender"} <= {
            p.name for p in d.path.iterdir()}
        for feat, dim in (("fbank", 80), ("mfcc", 13)):
            fd = validate_data_dir(recipe / "data" / f"{x}_{feat}", Requirements(feats=True))
            assert fd.utts == d.utts and fd.has("cmvn.scp") and fd.has("words.ctm")
            feats = kaldiio.load_scp(str(fd.path / "feats.scp"))
            durs = fd.table("utt2dur")
            for utt in fd.utts[:5]:
                frames = feats[utt].shape[0]
                assert feats[utt].shape[1] == dim
                assert abs(frames - float(durs[utt]) * 100) <= 3, (utt, frames, durs[utt])
    assert (recipe / "data" / "test" / "trials").is_file()
    for x in ("dev", "test"):
        assert (recipe / "data" / x / "samediff_words").stat().st_size > 0


def test_rerunning_the_feature_stage_is_safe_and_identical(mini_recipe):
    recipe = mini_recipe
    scp = recipe / "data" / "dev_fbank" / "feats.scp"
    before = {k: v.copy() for k, v in kaldiio.load_scp(str(scp)).items()}
    sh("./run.sh --preset tiny --nj 2 --stage 1 --stop-stage 1", cwd=recipe)
    after = kaldiio.load_scp(str(scp))
    assert sorted(before) == sorted(after)
    for utt, mat in before.items():
        np.testing.assert_array_equal(mat, after[utt], err_msg=utt)


def test_unknown_recipe_option_is_an_error(mini_recipe):
    recipe = mini_recipe
    proc = sh("./run.sh --presett tiny", cwd=recipe, check=False)
    assert proc.returncode == 1 and "invalid option --presett" in proc.stderr


def _speaker_dir(path, utts_of: dict[str, int], features: bool = False):
    path.mkdir(parents=True)
    utts = sorted(f"{spk}-{i:03d}" for spk, n in utts_of.items() for i in range(n))
    lines = {"utt2spk": [f"{u} {u.split('-')[0]}" for u in utts],
             "wav.scp": [f"{u} /nowhere/{u}.wav" for u in utts],
             "text": [f"{u} a word" for u in utts]}
    if features:
        lines["feats.scp"] = [f"{u} /nowhere/feats.ark:{i}" for i, u in enumerate(utts)]
    for name, rows in lines.items():
        (path / name).write_text("\n".join(rows) + "\n")
    spk2utt = {}
    for u in utts:
        spk2utt.setdefault(u.split("-")[0], []).append(u)
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    return path


def test_evaluation_subsets_are_chosen_once_and_shared_by_the_feature_dirs(tmp_path, root):
    data = tmp_path / "data"
    _speaker_dir(data / "train", {"s1": 30, "s2": 26})
    # The feature dir lacks one utterance (it failed): chosen on train, it still gets the
    # others, and no other utterance takes its place.
    fbank = _speaker_dir(data / "train_fbank", {"s1": 30, "s2": 26}, features=True)
    for name in ("utt2spk", "wav.scp", "text", "feats.scp"):
        lines = (fbank / name).read_text().splitlines()
        (fbank / name).write_text("".join(f"{x}\n" for x in lines if not x.startswith("s1-000")))
    (fbank / "spk2utt").write_text((fbank / "spk2utt").read_text().replace(" s1-000", ""))
    proc = sh(f"local/mini/make_eval_subsets.sh {data}/train {data}/train_eval "
              f"{data}/train_heldout {data}/train_fbank", cwd=root / "egs" / "mini")
    assert f"1 utterance(s) of {data}/train_eval are not in {data}/train_fbank" in proc.stderr
    sets = {x: validate_data_dir(data / x, Requirements(wav=False)).utts
            for x in ("train_eval", "train_heldout", "train_eval_fbank", "train_heldout_fbank")}
    per_spk = {x: {s: sum(u.startswith(s) for u in us) for s in ("s1", "s2")}
               for x, us in sets.items()}
    assert per_spk["train_eval"] == {"s1": 20, "s2": 20}
    assert per_spk["train_heldout"] == {"s1": 5, "s2": 5}
    assert not set(sets["train_eval"]) & set(sets["train_heldout"])
    assert "s1-000" in sets["train_eval"]
    assert sets["train_eval_fbank"] == [u for u in sets["train_eval"] if u != "s1-000"]
    assert sets["train_heldout_fbank"] == sets["train_heldout"]


def test_evaluation_subsets_of_small_speakers_hold_one_out(tmp_path, root):
    data = tmp_path / "data"
    _speaker_dir(data / "train", {"s1": 5, "s2": 9})
    sh(f"local/mini/make_eval_subsets.sh {data}/train {data}/ev {data}/ho",
       cwd=root / "egs" / "mini")
    count = {x: validate_data_dir(data / x, Requirements(wav=False)).spk2utt()
             for x in ("ev", "ho")}
    assert {s: len(u) for s, u in count["ev"].items()} == {"s1": 4, "s2": 4}
    assert {s: len(u) for s, u in count["ho"].items()} == {"s1": 1, "s2": 1}
    _speaker_dir(data / "one", {"s1": 1, "s2": 9})
    proc = sh(f"local/mini/make_eval_subsets.sh {data}/one {data}/ev1 {data}/ho1",
              cwd=root / "egs" / "mini", check=False)
    assert proc.returncode == 1 and "has 1 utterance(s): need 2" in proc.stderr
