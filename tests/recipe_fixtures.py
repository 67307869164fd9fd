"""A session-wide copy of egs/mini run through stages 0-1 on the tiny preset.

Import ``mini_recipe_fixture`` into a test module and request ``mini_recipe``: a folder
laid out like egs/mini (run.sh, cmd.sh, conf/, and links to this checkout's path.sh,
steps, utils and local) holding data/{train,dev,test} and their _fbank and _mfcc copies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import ROOT, sh


def copy_recipe(dest: Path) -> Path:
    for name in ("run.sh", "cmd.sh", "conf"):
        src = ROOT / "egs" / "mini" / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    for name in ("path.sh", "steps", "utils", "local"):
        (dest / name).symlink_to(ROOT / name)
    return dest


@pytest.fixture(scope="session", name="mini_recipe")
def mini_recipe_fixture(tmp_path_factory) -> Path:
    recipe = copy_recipe(tmp_path_factory.mktemp("mini"))
    sh("./run.sh --preset tiny --nj 2 --stop-stage 1", cwd=recipe)
    return recipe
