"""Train a self-supervised model (steps/train_ssl.sh runs this).

Writes <exp-dir>/config.yaml (the resolved config, every default filled in),
<exp-dir>/checkpoints/step-<N>.pt, TensorBoard events in <exp-dir>/tensorboard and, at the
end, <exp-dir>/final.pt.  Re-running the same command resumes from the newest checkpoint;
on a finished run it does nothing.  Under torchrun (torchrun --standalone
--nproc-per-node N -m speechssl.bin.train_ssl ...) each process trains on its share of
the batches.  With --check-config it only reads and checks the config and the overrides
(steps/train_ssl.sh does so before starting the job, so that a bad config is reported on
the console, not only in the job's log).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import yaml

from speechssl.cli import add_device_option, run
from speechssl.errors import InputError
from speechssl.train.config import ExperimentConfig, experiment_config, load_config


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/train_ssl.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="train_ssl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_option(p, "where to train")
    p.add_argument("--num-threads", type=int, default=None,
                   help="torch threads on CPU (default: torch's, one per core); 1 when "
                        "several trainings share the cores")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set a config value, the value read as YAML, e.g. "
                        "train.max_steps=100 or optim.betas=[0.9,0.98] (repeatable)")
    p.add_argument("--check-config", action="store_true",
                   help="only read and check the config (with the overrides), then exit")
    p.add_argument("config", help="experiment config (YAML)")
    p.add_argument("data_dir", nargs="?", help="Kaldi data dir to train on")
    p.add_argument("exp_dir", nargs="?", help="experiment dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not args.check_config and args.exp_dir is None:
        p.error("need <config> <data-dir> <exp-dir>")
    return args


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set ``section.key=value`` in a plain config dict.

    >>> raw = {"train": {"max_steps": 0}}
    >>> apply_override(raw, "train.max_steps=100"); raw
    {'train': {'max_steps': 100}}
    """
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise InputError(f"--override '{override}': expected KEY=VALUE, e.g. train.seed=1")
    *sections, leaf = key.split(".")
    node = raw
    for i, name in enumerate(sections):
        if not isinstance(node.get(name), dict):
            raise InputError(f"--override '{override}': no config section "
                             f"'{'.'.join(sections[:i + 1])}'")
        node = node[name]
    try:
        node[leaf] = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise InputError(f"--override '{override}': value is not valid YAML: {e}") from None


def resolve_config(path: str, overrides: Sequence[str]) -> ExperimentConfig:
    config = load_config(path)
    if not overrides:
        return config
    raw = config.to_dict()
    for override in overrides:
        apply_override(raw, override)
    return experiment_config(raw, f"{path} (with --override)")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = resolve_config(args.config, args.override)
    if config.data.source == "wav":
        from speechssl.train.inputs import fbank_config

        fbank_config(config)  # data.fbank: Kaldi option names and values
    if args.check_config:
        return 0
    from speechssl.train.trainer import train  # imports torch: after the arguments are checked

    if args.num_threads is not None:
        import torch

        torch.set_num_threads(args.num_threads)
    from speechssl.train.distributed import leave_process_group

    train(config, args.data_dir, args.exp_dir, device=args.device)
    leave_process_group()
    return 0


if __name__ == "__main__":
    run(main, "train_ssl")
