"""Same-different AP of two feature sets on one word list, and the 95% interval of their
difference from a *paired* speaker bootstrap: both are scored on the same pairs in the same
speaker draws, so what the two share (which speakers and words are hard) cancels, and a
difference can be told apart even where the two intervals overlap.

    python bench/paired_samediff.py egs/mini/data/test_mfcc egs/mini/data/test_fbank \\
        egs/mini/data/test/samediff_words

Each data dir is read as its eval_opts says (as steps/score_samediff.sh does).  Not a test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.eval import bootstrap, samediff


def eval_transform(data_dir: Path) -> FeatureTransform:
    """The data dir's eval_opts (``--cmvn=true``, ``--delta-order=2``), else none."""
    opts = {}
    path = data_dir / "eval_opts"
    if path.is_file():
        for line in path.read_text().split():
            key, _, value = line.lstrip("-").partition("=")
            opts[key] = value
    return FeatureTransform(cmvn=opts.get("cmvn") == "true",
                            delta_order=int(opts.get("delta-order", 0)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("word_list", type=Path)
    p.add_argument("--method", choices=samediff.METHODS, default="dtw")
    p.add_argument("--max-pairs", type=int, default=samediff.MAX_PAIRS)
    p.add_argument("--nj", type=int, default=2)
    args = p.parse_args()
    segments = samediff.read_word_list(args.word_list)
    sample = samediff.sample_pairs(segments, args.max_pairs)
    index, weight = (None, None) if sample is None else (sample.index, sample.weight)
    same_word, same_spk, spk_i, spk_j = samediff.pair_labels(segments, index)
    num_speakers = len({s.speaker for s in segments})
    draws = bootstrap.speaker_draws(num_speakers)
    dists = []
    for data_dir in (args.first, args.second):
        loader = FeatureLoader(data_dir, eval_transform(data_dir))
        feats = samediff.cut_segments(loader, segments, args.word_list)
        dists.append(samediff.pairwise_distances(feats, args.method, args.nj, index))
    for name, keep in (("all pairs", np.ones_like(same_word)),
                       ("different speakers", ~same_spk)):
        w = None if weight is None else weight[keep]
        values = [samediff.average_precision(d[keep], same_word[keep], w) for d in dists]
        draw_values = [samediff.ap_draws(d[keep], same_word[keep], spk_i[keep], spk_j[keep],
                                         draws, w) for d in dists]
        diff = bootstrap.interval_of_draws(draw_values[1] - draw_values[0], num_speakers)
        print(f"{name}: AP {args.first.name} {values[0]:.3f}, {args.second.name} "
              f"{values[1]:.3f}; difference {values[1] - values[0]:+.3f}, paired 95% "
              f"interval {diff['ci']} ({num_speakers} speakers, "
              f"{diff['bootstrap']['num_draws']} draws)")

if __name__ == "__main__":
    main()
