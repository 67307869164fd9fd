"""The results table: one row per feature set, one column per evaluation, the best value
of each column marked according to whether higher or lower is better."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from conftest import sh
from speechssl.errors import InputError
from speechssl.eval.results import ResultsTable, find_results, write_table


def put(exp: Path, row: str, column: str, **values) -> Path:
    path = exp / row / "eval" / column / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    return path


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    put(exp, "mfcc", "samediff_dtw", task="samediff_dtw", ap=0.55)
    put(exp, "fbank", "samediff_dtw", task="samediff_dtw", ap=0.76)
    put(exp, "cpc", "samediff_dtw", task="samediff_dtw", ap=0.82)
    put(exp, "mfcc", "sv_cosine", task="sv_cosine", eer=10.66)
    put(exp, "fbank", "sv_cosine", task="sv_cosine", eer=17.18)
    put(exp, "cpc", "awe", task="awe", ap_mean=0.4, ap_std=0.02)
    put(exp, "mfcc", "samediff_dtw_dev", task="samediff_dtw", ap=0.5)
    # a seed's own results below an evaluation are not a row or column of their own
    seed = exp / "cpc" / "eval" / "awe" / "seed0" / "results.json"
    seed.parent.mkdir(parents=True)
    seed.write_text(json.dumps({"task": "awe", "ap_mean": 0.9}))
    (exp / "cpc" / "checkpoints").mkdir()
    return exp


def test_table_rows_columns_and_best(exp: Path):
    table = ResultsTable.build(find_results(exp), rows=["fbank", "mfcc"])
    assert table.rows == ["fbank", "mfcc", "cpc"]
    # columns follow the task order (same-different, AWE, SV), then their names
    assert table.columns == ["samediff_dtw", "samediff_dtw_dev", "awe", "sv_cosine"]
    assert table.best("samediff_dtw") == "cpc"
    assert table.best("sv_cosine") == "mfcc"       # lower EER wins
    lines = table.markdown().splitlines()
    assert lines[0].startswith("| features | same-different AP (DTW) ↑ |")
    assert "[samediff_dtw_dev]" in lines[0] and "SV EER % (cosine) ↓" in lines[0]
    assert lines[2] == "| fbank | 0.760 | - | - | 17.18 |"
    assert lines[3] == "| mfcc | 0.550 | **0.500** | - | **10.66** |"
    assert lines[4] == "| cpc | **0.820** | - | **0.400 ± 0.020** | - |"


def test_cells_whose_interval_overlaps_the_best_are_bold(tmp_path: Path):
    exp = tmp_path / "exp"
    put(exp, "fbank", "sv_cosine", task="sv_cosine", eer=17.2, eer_ci=[12.0, 22.5])
    put(exp, "mfcc", "sv_cosine", task="sv_cosine", eer=11.0, eer_ci=[7.5, 15.25])
    put(exp, "apc", "sv_cosine", task="sv_cosine", eer=16.0, eer_ci=[15.25, 18.0])
    put(exp, "cpc", "sv_cosine", task="sv_cosine", eer=25.0, eer_ci=[20.0, 30.0])
    put(exp, "cae", "sv_cosine", task="sv_cosine", eer=13.0)   # no interval: never tied
    table = ResultsTable.build(find_results(exp), rows=["fbank", "mfcc", "apc", "cpc"])
    assert table.best("sv_cosine") == "mfcc"
    assert table.bold("sv_cosine") == {"fbank", "mfcc", "apc"}   # apc touches at 15.25
    lines = table.markdown().splitlines()[2:]
    assert lines == ["| fbank | **17.20 [12.00, 22.50]** |", "| mfcc | **11.00 [7.50, 15.25]** |",
                     "| apc | **16.00 [15.25, 18.00]** |", "| cpc | 25.00 [20.00, 30.00] |",
                     "| cae | 13.00 |"]
    assert table.to_json()["tasks"]["sv_cosine"]["not_separable_from_best"] == ["apc", "fbank"]


def test_written_files(exp: Path, tmp_path: Path):
    out = tmp_path / "table"
    table = ResultsTable.build(find_results(exp), columns=["sv_cosine"])
    assert table.columns[0] == "sv_cosine"
    write_table(table, out)
    data = json.loads((out / "results.json").read_text())
    assert data["results"]["cpc"]["samediff_dtw"]["ap"] == 0.82
    assert data["tasks"]["sv_cosine"] == {"task": "sv_cosine", "metric": "eer",
                                          "higher_is_better": False, "best": "mfcc",
                                          "not_separable_from_best": []}
    assert (out / "results.md").read_text() == table.markdown()
    for column in table.columns:
        image = matplotlib.image.imread(out / f"{column}.png")
        assert image.shape[0] > 50 and image.shape[1] > 50
    assert not list(out.glob(".*"))


def test_bad_results(tmp_path: Path):
    exp = tmp_path / "exp"
    bad = put(exp, "mfcc", "x", ap=0.5)
    with pytest.raises(InputError, match="task None") as e:
        find_results(exp)
    assert str(bad) in str(e.value)
    put(exp, "mfcc", "x", task="samediff_dtw", ap=float("nan"))
    with pytest.raises(InputError, match="finite number under 'ap'"):
        find_results(exp)
    bad.write_text("{not json")
    with pytest.raises(InputError, match="cannot read results"):
        find_results(exp)
    bad.write_text(json.dumps({"task": "samediff_dtw", "ap": 0.5}))
    put(exp, "fbank", "x", task="sv_cosine", eer=3.0)
    with pytest.raises(InputError, match="column 'x' mixes tasks"):
        ResultsTable.build(find_results(exp))
    with pytest.raises(InputError, match="no such experiment directory"):
        find_results(tmp_path / "nowhere")


def test_gather_results_script(exp: Path, tmp_path: Path):
    out = tmp_path / "table"
    res = sh(f"utils/gather_results.sh --rows 'mfcc fbank' --charts false {exp} {out}")
    assert res.stdout.splitlines()[2].startswith("| mfcc | 0.550 |")
    assert (out / "results.md").is_file() and not list(out.glob("*.png"))
    res = sh(f"utils/gather_results.sh {tmp_path / 'table'} {out}", check=False)
    assert res.returncode == 1 and "no results" in res.stderr
