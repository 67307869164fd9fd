"""Same-different evaluation of a data dir's features on a word list: writes
``<out-dir>/results.json`` (see :mod:`speechssl.eval.samediff` for the definitions), after
removing an earlier run's."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

from speechssl.cli import kaldi_bool, positive_int, run
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.eval.results import remove_outputs, write_results
from speechssl.eval.samediff import MAX_PAIRS, METHODS, evaluate

log = logging.getLogger("score_samediff")


def build_parser() -> argparse.ArgumentParser:
    """The options, with steps/score_samediff.sh's defaults (tests/test_cli_defaults.py);
    the step resolves --cmvn and --delta-order (from <data-dir>/eval_opts) and passes them."""
    p = argparse.ArgumentParser(prog="score_samediff", description=__doc__)
    p.add_argument("--nj", type=positive_int, default=2, help="processes sharing the pairs")
    p.add_argument("--method", choices=METHODS, default="dtw")
    p.add_argument("--cmvn", type=kaldi_bool, required=True,
                   help="true: subtract the speaker mean (needs cmvn.scp)")
    p.add_argument("--delta-order", type=int, required=True, help="2 gives MFCC 13 -> 39")
    p.add_argument("--max-pairs", type=positive_int, default=MAX_PAIRS,
                   help="pairs scored at most: every same-word pair, a sample of the others")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of that sample")
    p.add_argument("data_dir")
    p.add_argument("word_list")
    p.add_argument("out_dir")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    remove_outputs(args.out_dir)
    transform = FeatureTransform(cmvn=args.cmvn, delta_order=args.delta_order)
    start = time.perf_counter()
    results = evaluate(FeatureLoader(args.data_dir, transform), args.word_list,
                       args.method, args.nj, args.max_pairs, args.sample_seed)
    seconds = time.perf_counter() - start
    results.update(cmvn=args.cmvn, delta_order=args.delta_order, nj=args.nj,
                   seconds=round(seconds, 3))
    out = write_results(args.out_dir, results)
    log.info("%s: %d segments, %d of %d pairs scored (%d same) in %.1f s (%.0f pairs/s)",
             args.method, results["num_segments"], results["num_pairs_scored"],
             results["num_pairs"], results["num_same_pairs"], seconds,
             results["num_pairs_scored"] / max(seconds, 1e-9))
    log.info("AP %.4f [%s] PRB %.4f; different speakers AP %s (random %.4f); wrote %s",
             results["ap"], results["ap_ci"], results["prb"], results["ap_diff_speaker"],
             results["random_ap"], out)
    return 0


if __name__ == "__main__":
    run(main, "score_samediff")
