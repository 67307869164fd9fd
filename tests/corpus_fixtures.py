"""Session fixtures for the embedded corpus: the tiny preset, generated once per session.

Import them into a test module with ``from corpus_fixtures import tiny_corpus_fixture``;
the fixture is then requested as ``tiny_corpus`` (the function names differ from the fixture
names so that the import is not shadowed by the test arguments).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from speechssl.bin.make_mini_corpus import main as make_mini_corpus

TINY_SEED = 7


def generate(root: Path, *options: str) -> Path:
    """Run make_mini_corpus on the tiny preset into ``root/wav`` and ``root/data``."""
    make_mini_corpus(["--preset", "tiny", "--seed", str(TINY_SEED), *options,
                      str(root / "wav"), str(root / "data")])
    return root


@pytest.fixture(scope="session", name="tiny_corpus")
def tiny_corpus_fixture(tmp_path_factory) -> Path:
    """The clean tiny corpus made with two workers: ``<root>/wav``, ``<root>/data``."""
    return generate(tmp_path_factory.mktemp("tiny_corpus"), "--nj", "2")


@pytest.fixture(scope="session", name="tiny_corpus_augmented")
def tiny_corpus_augmented_fixture(tmp_path_factory) -> Path:
    """The same corpus with --augment (same seed, so same texts and alignments)."""
    return generate(tmp_path_factory.mktemp("tiny_corpus_aug"), "--nj", "2", "--augment")
