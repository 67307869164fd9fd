"""<data>/eval_opts, the evaluation protocol of a data dir's features: written by
steps/make_feats.sh and steps/extract_ssl.sh, carried by the data-dir tools, and the
default of the frame-level evaluation steps' --cmvn, --delta-order and --norm-vars.

The recipes used to pass these options from shell functions; the options the steps now
resolve must be exactly those (the mini results must not move)."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, sh
from recipe_fixtures import mini_recipe_fixture  # noqa: F401


def old_frame_opts(kind: str) -> dict[str, str]:
    """egs/*/run.sh's frame_opts (scoring_opts) before eval_opts, as option -> value."""
    return {"mfcc": {"cmvn": "true", "delta-order": "2"},
            "fbank": {"cmvn": "true", "delta-order": "0"}}.get(
        kind, {"cmvn": "false", "delta-order": "0"})


def old_awe_opts(kind: str) -> dict[str, str]:
    """egs/*/run.sh's awe_opts before eval_opts: frame_opts, MFCC and fbank --norm-vars."""
    extra = {"norm-vars": "true"} if kind in ("mfcc", "fbank") else {}
    return {**old_frame_opts(kind), **extra}


def resolved(recipe, data: str) -> dict[str, dict[str, str]]:
    """What score_samediff/train_probe (frame) and train_awe (awe) resolve for ``data``
    without options: the same eval_opt calls, with the same fallbacks, as the steps."""
    out = sh(f". ./path.sh && echo $(eval_opt {data} cmvn false) "
             f"$(eval_opt {data} delta-order 0) $(eval_opt {data} awe-norm-vars false)",
             cwd=recipe).stdout.split()
    frame = {"cmvn": out[0], "delta-order": out[1]}
    awe = {**frame, "norm-vars": out[2]}
    return {"frame": frame, "awe": awe}


def without_false_norm_vars(opts: dict[str, str]) -> dict[str, str]:
    """awe_opts gave no --norm-vars for SSL features: the step's default, false."""
    return {**{"norm-vars": "false"}, **opts}


@pytest.fixture(scope="module", name="ssl_dir")
def ssl_dir_fixture(mini_recipe):
    """Frame-level representations of data/test_fbank by a 2-step APC."""
    sh("steps/train_ssl.sh --device cpu --overrides 'train.max_steps=2 train.checkpoint_every=2 "
       "model.hidden=16 model.num_layers=1' conf/apc.yaml data/train_fbank exp/eval_opts_apc "
       "&& steps/extract_ssl.sh --nj 1 --device cpu exp/eval_opts_apc data/test_fbank "
       "data/test_eval_opts_apc", cwd=mini_recipe)
    return "data/test_eval_opts_apc"


def test_resolved_options_are_the_old_recipe_functions(mini_recipe, ssl_dir):
    sh("utils/subset_data_dir.sh --per-spk data/test_mfcc 1 data/eval_opts_sub_mfcc && "
       "utils/copy_data_dir.sh data/test_fbank data/eval_opts_copy_fbank", cwd=mini_recipe)
    dirs = {"mfcc": ["data/test_mfcc", "data/train_mfcc", "data/eval_opts_sub_mfcc"],
            "fbank": ["data/test_fbank", "data/eval_opts_copy_fbank"],
            "apc": [ssl_dir]}
    for kind, names in dirs.items():
        for data in names:
            got = resolved(mini_recipe, data)
            assert got["frame"] == old_frame_opts(kind), (data, got)
            assert got["awe"] == without_false_norm_vars(old_awe_opts(kind)), (data, got)
    assert (mini_recipe / "data/test_mfcc/eval_opts").read_text() == (
        "--cmvn=true\n--delta-order=2\n--awe-norm-vars=true\n")


def test_no_eval_opts_gives_the_old_step_defaults(mini_recipe, tmp_path):
    assert resolved(mini_recipe, tmp_path)["awe"] == {
        "cmvn": "false", "delta-order": "0", "norm-vars": "false"}


def test_score_samediff_reads_mfcc_with_cmvn_and_deltas_unless_told(mini_recipe):
    r = mini_recipe
    out = r / "exp" / "eval_opts" / "samediff"
    proc = sh(f"steps/score_samediff.sh --nj 1 data/test_mfcc data/test_mfcc/samediff_words "
              f"{out}", cwd=r)
    assert "reading data/test_mfcc with --cmvn true --delta-order 2" in proc.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["cmvn"] is True and res["delta_order"] == 2, res
    assert {"cmvn=true", "delta_order=2"} <= set((out / "config").read_text().split())
    # An option given on the command line wins over eval_opts.
    sh(f"steps/score_samediff.sh --nj 1 --cmvn false data/test_mfcc "
       f"data/test_mfcc/samediff_words {out}", cwd=r)
    res = json.loads((out / "results.json").read_text())
    assert res["cmvn"] is False and res["delta_order"] == 2, res


def test_train_and_test_dirs_read_differently_are_an_error(mini_recipe):
    proc = sh("steps/train_probe.sh --task phone data/train_mfcc data/test_fbank "
              "exp/eval_opts/probe", cwd=mini_recipe, check=False)
    assert proc.returncode != 0
    assert "data/train_mfcc/eval_opts and data/test_fbank/eval_opts differ" in proc.stderr


def test_features_without_eval_opts_get_a_warning(tmp_path):
    (tmp_path / "feats.scp").write_text("u1 /nowhere/x.ark:9\n")
    proc = sh(f". {ROOT}/path.sh; eval_opt {tmp_path} cmvn false")
    assert proc.stdout == "false\n"
    assert f"no {tmp_path}/eval_opts: --cmvn defaults to false" in proc.stderr
    (tmp_path / "eval_opts").write_text("--cmvn=true\n--delta-order=2\n")
    proc = sh(f". {ROOT}/path.sh; eval_opt {tmp_path} delta-order 0")
    assert (proc.stdout, proc.stderr) == ("2\n", "")


def test_check_cmvn_needs_a_boolean_and_the_stats(tmp_path):
    """path.sh's check_cmvn, shared by the steps that read features with --cmvn."""
    assert sh(f". {ROOT}/path.sh; check_cmvn {tmp_path} false").returncode == 0
    bad = sh(f". {ROOT}/path.sh; check_cmvn {tmp_path} yes", check=False)
    assert bad.returncode == 1 and "--cmvn must be true or false, got 'yes'" in bad.stderr
    missing = sh(f". {ROOT}/path.sh; check_cmvn {tmp_path} true", check=False)
    assert missing.returncode == 1 and f"needs {tmp_path}/cmvn.scp" in missing.stderr
    (tmp_path / "cmvn.scp").write_text("spk1 x.ark:5\n")
    assert sh(f". {ROOT}/path.sh; check_cmvn {tmp_path} true").returncode == 0


def test_best_lmwt_reads_score_wers_best_line(tmp_path):
    (tmp_path / "best_wer").write_text(
        f"%WER 1.23 [ 4 / 325, 1 ins, 0 del, 3 sub ] {tmp_path}/wer_11\n")
    assert sh(f". {ROOT}/path.sh; best_lmwt {tmp_path}").stdout == "11\n"
    missing = sh(f". {ROOT}/path.sh; best_lmwt {tmp_path}/none", check=False)
    assert missing.returncode == 1 and "no " in missing.stderr
