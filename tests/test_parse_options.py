"""utils/parse_options.sh follows Kaldi's rules: only declared variables are options,
booleans stay booleans, --config is sourced first, parsing stops at the first non-option."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A step script in miniature: defaults, then parse_options.sh, then print what it got.
CALLER = """\
#!/usr/bin/env bash
set -euo pipefail
stage=0
nj=4
use_gpu=false
foo_bar=x
help_message="Usage: caller.sh [options] <in> <out>"
. {root}/utils/parse_options.sh
echo "stage=$stage nj=$nj use_gpu=$use_gpu foo_bar=$foo_bar"
for arg in "$@"; do echo "arg=[$arg]"; done
"""

DEFAULTS = "stage=0 nj=4 use_gpu=false foo_bar=x"

# (case id, arguments, expected stdout lines)
GOOD = [
    ("defaults", [], [DEFAULTS]),
    ("space-value", ["--nj", "8"], ["stage=0 nj=8 use_gpu=false foo_bar=x"]),
    ("dash-to-underscore", ["--foo-bar", "y"], ["stage=0 nj=4 use_gpu=false foo_bar=y"]),
    ("equals-value", ["--foo-bar=y"], ["stage=0 nj=4 use_gpu=false foo_bar=y"]),
    ("value-with-equals", ["--foo-bar=a=b"], ["stage=0 nj=4 use_gpu=false foo_bar=a=b"]),
    ("empty-value", ["--foo-bar="], ["stage=0 nj=4 use_gpu=false foo_bar="]),
    ("boolean", ["--use-gpu", "true"], ["stage=0 nj=4 use_gpu=true foo_bar=x"]),
    (
        "positional-kept",
        ["--stage", "2", "in dir", "out", "--nj"],
        ["stage=2 nj=4 use_gpu=false foo_bar=x", "arg=[in dir]", "arg=[out]", "arg=[--nj]"],
    ),
    ("stops-at-non-option", ["a", "--nj", "3"], [DEFAULTS, "arg=[a]", "arg=[--nj]", "arg=[3]"]),
    ("single-dash-is-positional", ["-5"], [DEFAULTS, "arg=[-5]"]),
    (
        "terminator",
        ["--nj", "2", "--", "--stage", "x"],
        [
            "stage=0 nj=2 use_gpu=false foo_bar=x",
            "arg=[--stage]",
            "arg=[x]",
        ],
    ),
    (
        "value-starting-with-dashes",
        ["--foo-bar", "--beam 10", "z"],
        [
            "stage=0 nj=4 use_gpu=false foo_bar=--beam 10",
            "arg=[z]",
        ],
    ),
]

# (case id, arguments, text stderr must contain)
BAD = [
    ("not-a-boolean", ["--use-gpu", "maybe"], 'expected "true" or "false": --use-gpu maybe'),
    ("unknown-option", ["--bogus", "1"], "invalid option --bogus"),
    ("unknown-with-equals", ["--bogus=1"], "invalid option --bogus"),
    ("not-a-name", ["--foo.bar", "1"], "invalid option --foo.bar"),
    ("internal-name", ["--_po-i", "1"], "invalid option --_po-i"),
    ("missing-value", ["--stage", "1", "--nj"], "option --nj needs a value"),
    ("missing-config", ["--config", "no/such.conf"], "cannot read config file 'no/such.conf'"),
]


def run_caller(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess:
    caller = tmp_path / "caller.sh"
    caller.write_text(CALLER.format(root=ROOT))
    return subprocess.run(
        ["bash", str(caller), *args], cwd=tmp_path, capture_output=True, text=True
    )


@pytest.mark.parametrize("args, expected", [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_options_are_applied(tmp_path, args, expected):
    proc = run_caller(tmp_path, args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected


@pytest.mark.parametrize("args, message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_options_fail_naming_the_caller(tmp_path, args, message):
    proc = run_caller(tmp_path, args)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"{tmp_path / 'caller.sh'}: ")
    assert message in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--nj", "2", "--help", "--bogus"]])
def test_help_prints_help_message_and_exits_0(tmp_path, args):
    proc = run_caller(tmp_path, args)
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert proc.stderr == "Usage: caller.sh [options] <in> <out>\n"


# (case id, arguments after writing conf = "nj=8\nstage=3\n", expected stdout lines)
CONFIG = [
    ("config-sets", ["--config", "conf"], ["stage=3 nj=8 use_gpu=false foo_bar=x"]),
    (
        "later-option-wins",
        ["--config", "conf", "--nj", "9"],
        ["stage=3 nj=9 use_gpu=false foo_bar=x"],
    ),
    (
        "earlier-option-wins-too",
        ["--nj", "9", "--config=conf"],
        [
            "stage=3 nj=9 use_gpu=false foo_bar=x",
        ],
    ),
    (
        "config-after-positional-is-positional",
        ["a", "--config", "conf"],
        [
            DEFAULTS,
            "arg=[a]",
            "arg=[--config]",
            "arg=[conf]",
        ],
    ),
]


@pytest.mark.parametrize("args, expected", [c[1:] for c in CONFIG], ids=[c[0] for c in CONFIG])
def test_config_is_sourced_before_other_options(tmp_path, args, expected):
    (tmp_path / "conf").write_text("nj=8\nstage=3\n")
    proc = run_caller(tmp_path, args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected


def test_empty_cmd_is_an_error(tmp_path):
    caller = tmp_path / "caller.sh"
    caller.write_text(f"set -euo pipefail\ncmd=run_local.sh\n. {ROOT}/utils/parse_options.sh\n")
    proc = subprocess.run(["bash", str(caller), "--cmd", ""], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "empty argument to the --cmd option" in proc.stderr


def test_leaves_no_internal_variables(tmp_path):
    caller = tmp_path / "caller.sh"
    caller.write_text(
        f"set -euo pipefail\nnj=1\n. {ROOT}/utils/parse_options.sh\ncompgen -v _po_ || echo none\n"
    )
    proc = subprocess.run(["bash", str(caller), "--nj", "2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "none\n"
