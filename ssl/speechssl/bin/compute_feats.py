"""Compute fbank or MFCC features for (a split of) a data dir, as one job of make_fbank.sh.

Matches Kaldi's compute-fbank-feats / compute-mfcc-feats: a vectorised NumPy computation
(speechssl.features.kaldi_compute), tested against kaldi-native-fbank.
An utterance that fails (missing or corrupt audio, wrong rate) is logged and skipped;
the step script counts the skipped ones and applies the 95% rule.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from speechssl.cli import run
from speechssl.data.ark import ArkScpWriter
from speechssl.data.audio import AudioReader
from speechssl.data.table import write_table
from speechssl.errors import InputError
from speechssl.features import FeatureExtractor, load_feature_config
from speechssl.fileio import atomic_write

log = logging.getLogger("compute_feats")

# soundfile returns int16 audio scaled to [-1, 1); Kaldi computes on the integer values.
INT16_SCALE = 32768.0


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/make_feats.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="compute_feats", description=__doc__)
    p.add_argument("--kind", choices=("fbank", "mfcc"), required=True)
    p.add_argument("--config", help="Kaldi option file, e.g. conf/fbank.conf")
    p.add_argument("--compress", action="store_true", help="Kaldi-compressed matrices")
    p.add_argument("--seed", type=int, default=0, help="dither seed (mixed with the utt id)")
    p.add_argument("--allow-resample", action="store_true",
                   help="resample audio at another rate instead of failing")
    p.add_argument("--utt2num-frames", help="write frame counts here")
    p.add_argument("--utt2dur", help="write durations (seconds) here")
    p.add_argument("--frame-shift", help="write the frame shift (seconds) here")
    p.add_argument("--ark-in-scp", metavar="PATH",
                   help="the archive path the scp lines name, if not <ark>: the step writes "
                        "<ark> beside the live archive and renames it to PATH on success")
    p.add_argument("--check-config", action="store_true",
                   help="only read and check the config, then exit")
    p.add_argument("data_dir", nargs="?")
    p.add_argument("ark", nargs="?")
    p.add_argument("scp", nargs="?")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not args.check_config and args.scp is None:
        p.error("need <data-dir> <ark> <scp>")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_feature_config(args.kind, args.config)
    if args.check_config:
        return 0
    extractor = FeatureExtractor(config, seed=args.seed)
    reader = AudioReader(args.data_dir, sample_rate=int(config.sample_frequency),
                         resample=args.allow_resample)
    num_frames, durations, failed = {}, {}, []
    with ArkScpWriter(args.ark, args.scp, compress=args.compress,
                      ark_in_scp=args.ark_in_scp) as writer:
        for utt in reader.utterances():
            try:
                samples, rate = reader.read(utt)
                feats = extractor.compute(samples * INT16_SCALE, utt, sample_rate=rate)
            except InputError as e:
                log.warning("skipping %s: %s", utt, e)
                failed.append(utt)
                continue
            writer.write(utt, feats)
            num_frames[utt] = str(feats.shape[0])
            durations[utt] = f"{samples.size / rate:.4f}"
    total = len(num_frames) + len(failed)
    log.info("Done %d out of %d utterances (%s, dim %d)", len(num_frames), total,
             args.kind, extractor.dim)
    # Even a job where every utterance failed succeeds: the step script applies the
    # 95% rule over all jobs and names the failures.
    if args.utt2num_frames:
        write_table(args.utt2num_frames, num_frames)
    if args.utt2dur:
        write_table(args.utt2dur, durations)
    if args.frame_shift:
        with atomic_write(args.frame_shift) as f:
            f.write(f"{extractor.frame_shift:g}\n")
    return 0


if __name__ == "__main__":
    run(main, "compute_feats")
