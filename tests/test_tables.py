"""Tables, CTM, trials and ark/scp writing: formats Kaldi's own tools read."""

from __future__ import annotations

import numpy as np
import pytest

from speechssl.data.ark import ArkScpWriter, iter_scp
from speechssl.data.ctm import CtmEntry, read_ctm, write_ctm
from speechssl.data.table import read_table, write_table
from speechssl.data.trials import Trial, check_trials_cover, read_trials, write_trials
from speechssl.errors import InputError


def test_write_table_sorts_in_c_order(tmp_path):
    write_table(tmp_path / "t", {"b": "2", "B": "1", "a_": ["x", "y"], "a": ""})
    assert (tmp_path / "t").read_text() == "B 1\na\na_ x y\nb 2\n"
    with pytest.raises(InputError, match="key 'a b': key is empty or contains whitespace"):
        write_table(tmp_path / "u", {"a b": "1"})
    assert not (tmp_path / "u").exists()


def test_read_table_keeps_rest_of_line(tmp_path):
    (tmp_path / "wav.scp").write_text("r1 sox  a.wav -t wav - |\nr2 b.wav\n")
    assert read_table(tmp_path / "wav.scp") == {"r1": "sox  a.wav -t wav - |", "r2": "b.wav"}


def test_ctm_round_trip_and_errors(tmp_path):
    entries = [CtmEntry("r1", "1", 0.5, 0.25, "world"), CtmEntry("r1", "1", 0.0, 0.5, "hello"),
               CtmEntry("r0", "A", 0.0, 1.0, "<sil>", 0.9)]
    write_ctm(tmp_path / "x.ctm", entries)
    assert (tmp_path / "x.ctm").read_text().splitlines()[0] == "r0 A 0.000 1.000 <sil> 0.900"
    back = read_ctm(tmp_path / "x.ctm")
    assert [e.token for e in back["r1"]] == ["hello", "world"] and back["r1"][1].end == 0.75
    (tmp_path / "bad.ctm").write_text("r1 1 0.0 0.5 a\nr1 1 zero 0.5 b\n")
    with pytest.raises(InputError, match=r"bad.ctm:2: key 'r1': start, duration"):
        read_ctm(tmp_path / "bad.ctm")


def test_trials_round_trip_and_errors(tmp_path):
    trials = [Trial("a", "b", True), Trial("a", "c", False)]
    write_trials(tmp_path / "trials", trials)
    assert (tmp_path / "trials").read_text() == "a b target\na c nontarget\n"
    assert read_trials(tmp_path / "trials") == trials
    with pytest.raises(InputError, match=r"2 ids in the trials .* \(e.g. b, c\)"):
        check_trials_cover(trials, {"a"}, tmp_path / "trials")
    (tmp_path / "bad").write_text("a b target\na c maybe\n")
    with pytest.raises(InputError, match=r"bad:2: key 'a': label must be target or nontarget"):
        read_trials(tmp_path / "bad")


@pytest.mark.parametrize("compress", [False, True])
def test_ark_scp_round_trips_through_kaldiio_and_kaldi_native_io(tmp_path, compress):
    knio = pytest.importorskip("kaldi_native_io")
    import kaldiio
    rng = np.random.default_rng(0)
    arrays = {"u1": rng.standard_normal((7, 3)).astype(np.float32),
              "u2": rng.standard_normal((20, 3)).astype(np.float32)}
    with ArkScpWriter(tmp_path / "f.ark", tmp_path / "f.scp", compress=compress) as w:
        for k, v in arrays.items():
            w.write(k, v)
    tol = 0.05 if compress else 0.0
    scp = tmp_path / "f.scp"
    assert str(tmp_path / "f.ark") in scp.read_text()  # absolute path
    for key, mat in iter_scp(scp):
        np.testing.assert_allclose(mat, arrays[key], atol=tol, err_msg=key)
    for key, mat in kaldiio.load_scp(str(scp)).items():
        np.testing.assert_allclose(mat, arrays[key], atol=tol, err_msg=key)
    reader = knio.RandomAccessFloatMatrixReader(f"scp:{scp}")
    for key, mat in arrays.items():
        np.testing.assert_allclose(np.array(reader[key], copy=True), mat, atol=tol, err_msg=key)
    reader.close()


def test_interrupted_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), ArkScpWriter(tmp_path / "f.ark", tmp_path / "f.scp") as w:
        w.write("u1", np.zeros((2, 2), dtype=np.float32))
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_nan_features_are_refused_naming_file_and_key(tmp_path):
    from speechssl.data.feature_loader import FeatureLoader
    from speechssl.errors import InputError as Err
    d = tmp_path / "d"
    bad = np.ones((4, 2), dtype=np.float32)
    bad[2, 1] = np.nan
    with ArkScpWriter(d / "f.ark", d / "feats.scp") as w:
        w.write("u1", np.ones((3, 2), dtype=np.float32))
        w.write("u2", bad)
    write_table(d / "utt2spk", {"u1": "s", "u2": "s"})
    loader = FeatureLoader(d)
    assert loader["u1"].shape == (3, 2)
    with pytest.raises(Err, match=r"feats.scp: key 'u2': features contain NaN"):
        loader["u2"]
