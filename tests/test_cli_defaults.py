"""One owner for every step option's default: the configuration block of steps/*.sh.

Where a step passes one of its options to a ``python -m speechssl.bin.<X>`` option of the
same name, the entry point's argparse default must be the step's default (in bash's
spelling: true/false, empty for None), or the option must be required (the step always
passes it, e.g. --cmvn, which the step resolves from the data dir's eval_opts).
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from conftest import ROOT

STEPS = sorted((ROOT / "steps").glob("*.sh"))
ENTRY_POINT = re.compile(r"python -m speechssl\.bin\.(\w+)")
ASSIGNMENT = re.compile(r"^([a-z_][a-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s#]*)")


def bash_defaults(script: Path) -> dict[str, str]:
    """The ``name=value`` lines of the step's configuration block, quotes removed.

    >>> sorted(bash_defaults(ROOT / "steps" / "score_samediff.sh"))[:2]
    ['cmd', 'cmvn']
    """
    text = script.read_text()
    if "# Begin configuration section." not in text:
        return {}
    block = text.split("# Begin configuration section.", 1)[1]
    block = block.split("# End configuration section.", 1)[0]
    found = (ASSIGNMENT.match(line) for line in block.splitlines())
    return {m[1]: m[2].strip("\"'") for m in found if m}


def as_bash(value: object) -> str:
    """An argparse default as the step would write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shared_options(script: Path):
    """(entry point, option, argparse action, bash default) for the step's options that
    its entry points take under the same name."""
    defaults = bash_defaults(script)
    for module in sorted(set(ENTRY_POINT.findall(script.read_text()))):
        parser = importlib.import_module(f"speechssl.bin.{module}").build_parser()
        assert isinstance(parser, argparse.ArgumentParser)
        for name, value in defaults.items():
            option = "--" + name.replace("_", "-")
            action = parser._option_string_actions.get(option)
            if action is not None:
                yield module, option, action, value


@pytest.mark.parametrize("script", [s for s in STEPS if ENTRY_POINT.search(s.read_text())],
                         ids=lambda s: s.name)
def test_step_and_entry_point_defaults_agree(script):
    for module, option, action, bash in shared_options(script):
        if action.required:
            continue
        assert as_bash(action.default) == bash, (
            f"{script.name}: {option} defaults to '{bash}' but speechssl.bin.{module} "
            f"to '{as_bash(action.default)}': make them agree (the step owns the default) "
            "or make the entry point's option required")


def test_the_check_sees_the_options_that_disagreed_before():
    """Guard against a parser that finds nothing: the known shared options are compared."""
    seen = {(s.name, opt): (a.required, a.default, bash)
            for s in STEPS for _, opt, a, bash in shared_options(s)}
    assert seen[("score_samediff.sh", "--nj")] == (False, 2, "2")
    assert seen[("score_samediff.sh", "--cmvn")][:1] == (True,)
    assert seen[("train_probe.sh", "--device")] == (False, "auto", "auto")
    assert seen[("extract_ssl.sh", "--device")] == (False, "auto", "auto")
    assert seen[("train_awe.sh", "--device")] == (False, "auto", "auto")
    assert seen[("train_ssl.sh", "--device")] == (False, "auto", "auto")
    assert seen[("train_awe.sh", "--norm-vars")][:1] == (True,)
    assert len(seen) >= 25, sorted(seen)
