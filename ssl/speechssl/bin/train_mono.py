"""Train a monophone GMM-HMM from a flat start, as Kaldi's steps/train_mono.sh: equal
alignment, 40 passes of EM with realignment on Kaldi's schedule, Gaussians grown to
--totgauss (see :mod:`speechssl.asr.gmm`).  Writes into <exp-dir>: final.mdl (Kaldi text
format), tree, ali.JOB.gz (the last realignment's, split JOB's utterances), num_jobs,
phones.txt, cmvn_opts, delta_opts and feature_opts (how the features were read, for
align_si and decoding).  The outputs are written to a hidden staging dir and moved into
place only when training succeeded; the average log-likelihood per frame of every pass
goes to the log."""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from speechssl.asr import gmm
from speechssl.asr.lang import Lang
from speechssl.asr.model_io import write_alignments, write_model, write_tree
from speechssl.cli import kaldi_bool, positive_int, run
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

log = logging.getLogger("train_mono")


def build_parser() -> argparse.ArgumentParser:
    """Options with steps/train_mono.sh's defaults (tests/test_cli_defaults.py)."""
    d = gmm.MonoConfig()
    p = argparse.ArgumentParser(prog="train_mono", description=__doc__)
    p.add_argument("--nj", type=positive_int, default=4, help="jobs: <data>/split<nj>/JOB")
    p.add_argument("--cmvn", type=kaldi_bool, required=True, help="speaker CMVN (means)")
    p.add_argument("--delta-order", type=int, required=True, help="2: add-deltas' default")
    p.add_argument("--num-iters", type=positive_int, default=d.num_iters)
    p.add_argument("--max-iter-inc", type=positive_int, default=d.max_iter_inc)
    p.add_argument("--totgauss", type=positive_int, default=d.totgauss)
    p.add_argument("--realign-iters", default=" ".join(map(str, d.realign_iters)))
    p.add_argument("--boost-silence", type=float, default=d.boost_silence)
    p.add_argument("--careful", type=kaldi_bool, default=d.careful)
    p.add_argument("--power", type=float, default=d.power)
    p.add_argument("--max-fail-fraction", type=float, default=d.max_fail_fraction,
                   help="fail when more of the utterances than this fail to align")
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("exp_dir")
    return p


def config_of(args: argparse.Namespace, p: argparse.ArgumentParser) -> gmm.MonoConfig:
    try:
        realign = tuple(int(x) for x in args.realign_iters.split())
    except ValueError:
        p.error(f"--realign-iters must be integers, got '{args.realign_iters}'")
    if not 0 <= args.max_fail_fraction <= 1 or args.boost_silence <= 0:
        p.error("--max-fail-fraction must be in [0, 1] and --boost-silence positive")
    return gmm.MonoConfig(num_iters=args.num_iters, max_iter_inc=args.max_iter_inc,
                          totgauss=args.totgauss, realign_iters=realign,
                          boost_silence=args.boost_silence, careful=args.careful,
                          power=args.power, max_fail_fraction=args.max_fail_fraction)


def split_dirs(data_dir: str, nj: int) -> list[Path]:
    """<data>/split<nj>/1..nj (utils/split_data.sh's output)."""
    parts = [Path(data_dir) / f"split{nj}" / str(j) for j in range(1, nj + 1)]
    for part in parts:
        if not (part / "feats.scp").is_file():
            raise InputError(f"no split {nj} of the data dir (run utils/split_data.sh "
                             f"{data_dir} {nj})", path=part / "feats.scp")
    return parts


def feature_opts_lines(transform: FeatureTransform) -> dict[str, str]:
    """How the features were read: ours (feature_opts, eval_opts' format) and Kaldi's
    (cmvn_opts for apply-cmvn, delta_opts for add-deltas)."""
    ours = f"--cmvn={str(transform.cmvn).lower()}\n--delta-order={transform.delta_order}\n"
    return {"feature_opts": ours,
            "cmvn_opts": "--norm-vars=false\n" if transform.cmvn else "",
            "delta_opts": f"--delta-order={transform.delta_order}\n"}


def write_outputs(out: Path, model: gmm.Model, alignments: Sequence[dict], lang: Lang,
                  transform: FeatureTransform) -> None:
    """The model dir's files into ``out`` (a staging dir)."""
    write_model(out / "final.mdl", model.tm, model.am)
    write_tree(out / "tree", model.tree)
    for job, ali in enumerate(alignments, start=1):
        write_alignments(out / f"ali.{job}.gz", ali)
    files = {"num_jobs": f"{len(alignments)}\n", **feature_opts_lines(transform)}
    for name, text in files.items():
        with atomic_write(out / name) as f:
            f.write(text)
    shutil.copy(lang.path / "phones.txt", out / "phones.txt")


def publish(staging: Path, dest: Path) -> None:
    """Move the staged files into ``dest``, final.mdl last (it marks a finished dir)."""
    names = sorted(p.name for p in staging.iterdir())
    for name in [n for n in names if n != "final.mdl"] + ["final.mdl"]:
        (staging / name).replace(dest / name)
    staging.rmdir()


def load_runner(parts: list[Path], lang: Lang, transform: FeatureTransform, model,
                dim: int | None = None) -> gmm.JobRunner:
    loaders = [lambda j=j, part=part: gmm.Job.load(j, part, lang, transform, model.tm,
                                                   model.tree, dim)
               for j, part in enumerate(parts, start=1)]
    return gmm.JobRunner(loaders)


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    cfg = config_of(args, p)
    lang = Lang.load(args.lang_dir)
    transform = FeatureTransform(cmvn=args.cmvn, delta_order=args.delta_order)
    parts = split_dirs(args.data_dir, args.nj)
    first = FeatureLoader(parts[0], transform)
    init = [first[u] for u in first.utterances()[:cfg.init_utts]]
    model = gmm.Model(*gmm.init_mono(lang, init))
    log.info("gmm-init-mono: %d pdfs of dimension %d from %d utterances of %s",
             model.am.num_pdfs, model.am.dim, len(init), parts[0])
    start = time.time()
    runner = load_runner(parts, lang, transform, model)
    try:
        summaries = runner.call("summary")
        gmm.report_oov(summaries, lang)
        gmm.train_mono(runner, model, cfg, lang)
        alignments = runner.call("alignments")
    finally:
        runner.close()
    out = Path(args.exp_dir)
    staging = out / ".train_mono.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write_outputs(staging, model, alignments, lang, transform)
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("trained %d pdfs, %d Gaussians in %.1f s: %s/final.mdl", model.am.num_pdfs,
             model.am.num_gauss, time.time() - start, out)
    return 0


if __name__ == "__main__":
    run(main, "train_mono")
