"""Per-speaker CMVN statistics in Kaldi's format (compute-cmvn-stats --spk2utt).

Each speaker gets a 2 x (D+1) double matrix: row 0 holds the sum of the frames and the
frame count, row 1 the sum of squares.  Utterances without features are counted.
Features with NaN or infinite values, or with a frame count other than utt2num_frames
says, are an error naming feats.scp and the utterance (Kaldi would write NaN stats that
poison every utterance of the speaker).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np

from speechssl.cli import run
from speechssl.data.ark import ArkScpWriter
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import read_features, utterance_frames
from speechssl.errors import InputError, SpeechSSLError
from speechssl.features import cmvn_stats

log = logging.getLogger("compute_cmvn_stats")


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/compute_cmvn_stats.sh's defaults (tests/test_cli_defaults.py)."""
    p = argparse.ArgumentParser(prog="compute_cmvn_stats", description=__doc__)
    p.add_argument("--per-utt", action="store_true", help="one entry per utterance")
    p.add_argument("data_dir")
    p.add_argument("ark")
    p.add_argument("scp")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    d = DataDir(args.data_dir)
    feats, scp = d.table("feats.scp"), d.path / "feats.scp"
    frames = utterance_frames(d)
    groups = {u: [u] for u in d.utts} if args.per_utt else d.spk2utt()
    missing = [u for u in d.utts if u not in feats]
    if missing:
        log.warning("%d utterances have no features (e.g. %s)", len(missing), missing[0])
    done = 0
    with ArkScpWriter(args.ark, args.scp) as writer:
        for key, utts in groups.items():
            mats = [read_features(feats[u], scp, u, frames.get(u)) for u in utts if u in feats]
            if not mats:
                log.warning("no features for %s; it gets no CMVN stats", key)
                continue
            stats = cmvn_stats(mats)
            if not np.isfinite(stats).all():  # finite features whose squares overflow
                raise InputError("CMVN stats overflow (features too large for float32 "
                                 "sums of squares)", path=scp, key=key)
            writer.write(key, np.asarray(stats, dtype=np.float64))
            done += 1
    log.info("Wrote CMVN stats for %d out of %d %s", done, len(groups),
             "utterances" if args.per_utt else "speakers")
    if done == 0:
        raise SpeechSSLError("no CMVN stats written")
    return 0


if __name__ == "__main__":
    run(main, "compute_cmvn_stats")
