"""Align a data dir with a trained GMM-HMM, as Kaldi's steps/align_si.sh: training graphs
from the transcripts through <lang>/L.fst and <src-dir>/tree, gmm-align-compiled with
gmm-boost-silence.  Writes into <ali-dir>: ali.JOB.gz (split JOB's utterances),
num_jobs, and copies of final.mdl, tree, phones.txt and the feature options, staged and
moved into place only on success.  Refuses a model from another lang dir (phones.txt
differs) and features of another dimension than the model's."""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from speechssl.asr import gmm
from speechssl.asr.lang import Lang
from speechssl.asr.model_io import (
    check_phones_compatible,
    read_model,
    read_tree,
    write_alignments,
)
from speechssl.bin.train_mono import load_runner, publish, split_dirs
from speechssl.cli import kaldi_bool, positive_int, run
from speechssl.data.feature_loader import FeatureTransform
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

log = logging.getLogger("align_si")
COPIED = ("final.mdl", "tree", "phones.txt", "feature_opts", "cmvn_opts", "delta_opts")


def build_parser() -> argparse.ArgumentParser:
    """Options with steps/align_si.sh's defaults (tests/test_cli_defaults.py)."""
    d = gmm.AlignOptions()
    p = argparse.ArgumentParser(prog="align_si", description=__doc__)
    p.add_argument("--nj", type=positive_int, default=4, help="jobs: <data>/split<nj>/JOB")
    p.add_argument("--beam", type=float, default=int(d.beam))  # "10" as the step writes it
    p.add_argument("--retry-beam", type=float, default=int(d.retry_beam))
    p.add_argument("--careful", type=kaldi_bool, default=d.careful)
    p.add_argument("--boost-silence", type=float, default=d.boost_silence)
    p.add_argument("--max-fail-fraction", type=float, default=gmm.MonoConfig.max_fail_fraction)
    p.add_argument("data_dir")
    p.add_argument("lang_dir")
    p.add_argument("src_dir")
    p.add_argument("ali_dir")
    return p


def read_feature_opts(src: Path) -> FeatureTransform:
    """The features' reading of the model (<src-dir>/feature_opts, written by
    train_mono)."""
    path = src / "feature_opts"
    if not path.is_file():
        raise InputError("no feature_opts: not a model dir of steps/train_mono.sh", path=path)
    opts = dict(line.lstrip("-").split("=", 1) for line in path.read_text().split())
    try:
        return FeatureTransform(cmvn=opts["cmvn"] == "true",
                                delta_order=int(opts["delta-order"]))
    except (KeyError, ValueError):
        raise InputError("expected --cmvn=true|false and --delta-order=N", path=path) from None


def load_model(src: Path, lang: Lang) -> gmm.Model:
    check_phones_compatible(src / "phones.txt", lang.path / "phones.txt")
    tm, am = read_model(src / "final.mdl")
    tree = read_tree(src / "tree")
    if tree.num_pdfs != tm.num_pdfs:
        raise InputError(f"the tree has {tree.num_pdfs} pdfs, {src}/final.mdl "
                         f"{tm.num_pdfs}: they come from different trainings",
                         path=src / "tree")
    if sorted(tm.topo.phones) != sorted(lang.silence_phones + lang.nonsilence_phones):
        raise InputError(f"the model's phones differ from those of {lang.path}",
                         path=src / "final.mdl")
    return gmm.Model(tm, tree, am)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    src, out = Path(args.src_dir), Path(args.ali_dir)
    lang = Lang.load(args.lang_dir)
    model = load_model(src, lang)
    transform = read_feature_opts(src)
    parts = split_dirs(args.data_dir, args.nj)
    opts = gmm.AlignOptions(beam=args.beam, retry_beam=args.retry_beam,
                            careful=args.careful, boost_silence=args.boost_silence)
    runner = load_runner(parts, lang, transform, model, dim=model.am.dim)
    try:
        gmm.report_oov(runner.call("summary"), lang)
        gmm.align_jobs(runner, model, opts, lang, args.max_fail_fraction)
        alignments = runner.call("alignments")
    finally:
        runner.close()
    staging = out / ".align_si.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for job, ali in enumerate(alignments, start=1):
            write_alignments(staging / f"ali.{job}.gz", ali)
        with atomic_write(staging / "num_jobs") as f:
            f.write(f"{len(alignments)}\n")
        for name in COPIED:
            if (src / name).is_file() and src.resolve() != out.resolve():
                shutil.copy(src / name, staging / name)
        publish_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("aligned %d utterances with %s/final.mdl into %s",
             sum(len(a) for a in alignments), src, out)
    return 0


def publish_dir(staging: Path, out: Path) -> None:
    if not (staging / "final.mdl").exists():   # aligning in place: the model stays
        for p in staging.iterdir():
            p.replace(out / p.name)
        staging.rmdir()
        return
    publish(staging, out)


if __name__ == "__main__":
    run(main, "align_si")
