"""The repository's shape: `import ssl` is still Python's TLS module, path.sh alone makes
`python -m speechssl.bin.<step>` work from a recipe, README starts with the two commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT, sh


def test_import_ssl_is_the_standard_library_from_the_repo_root():
    out = sh(". ./path.sh && python -c 'import ssl, speechssl; "
             "print(ssl.__file__); print(ssl.OPENSSL_VERSION); print(speechssl.__file__)'",
             cwd=ROOT).stdout.splitlines()
    assert "/ssl/" not in out[0].replace(str(ROOT), ""), out[0]
    assert not out[0].startswith(str(ROOT)), out[0]
    assert out[1].startswith("OpenSSL")
    assert out[2] == str(ROOT / "ssl" / "speechssl" / "__init__.py")
    assert not (ROOT / "ssl" / "__init__.py").exists()


def test_path_sh_alone_runs_steps_from_a_recipe(tmp_path):
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "path.sh").symlink_to(ROOT / "path.sh")
    # A clean environment: nothing but what path.sh provides.
    proc = sh(f"cd {recipe} && env -i HOME=$HOME PATH=/usr/bin:/bin bash -c "
              "'. ./path.sh && python -m speechssl.bin.validate_data_dir --help && "
              "echo LC_ALL=$LC_ALL'")
    assert "usage: validate_data_dir" in proc.stdout and "LC_ALL=C" in proc.stdout


def test_readme_starts_with_the_two_commands():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:15])
    assert "make demo" in head and "make test" in head


RECIPES = ("mini", "librispeech", "voxceleb", "buckeye", "xitsonga")


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_links_point_at_the_shared_tools(recipe):
    for name in ("path.sh", "steps", "utils", "local"):
        link = ROOT / "egs" / recipe / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), name
        assert not Path(os.readlink(link)).is_absolute(), f"{link} must be relative"


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_help_lists_its_stages(recipe):
    proc = sh("./run.sh --help", cwd=ROOT / "egs" / recipe, check=False)
    assert "Stages:" in proc.stdout + proc.stderr and "--stage" in proc.stdout + proc.stderr
