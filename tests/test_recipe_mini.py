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
