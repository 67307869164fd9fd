"""Data dirs of the CPC phone and speaker classification protocol on LibriSpeech
train-clean-100 (see speechssl.corpus.cpc_protocol): the utterances of train_split.txt and
test_split.txt, each with phone_ali (one class per 10 ms frame) from
converted_aligned_phones.txt.

e.g.: python -m speechssl.bin.import_cpc_protocol /data/cpc_labels data/train_clean_100 \\
          data/cpc_train data/cpc_test
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from speechssl.cli import run
from speechssl.corpus.cpc_protocol import NUM_CLASSES, import_protocol


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="import_cpc_protocol", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-classes", type=int, default=NUM_CLASSES,
                   help=f"labels must be 0 .. N-1 (default: {NUM_CLASSES})")
    p.add_argument("labels_dir", type=Path,
                   help="folder with converted_aligned_phones.txt, train_split.txt, "
                        "test_split.txt")
    p.add_argument("corpus_dir", type=Path, help="data dir of train-clean-100")
    p.add_argument("train_dir", type=Path, help="output: the train split")
    p.add_argument("test_dir", type=Path, help="output: the test split")
    args = p.parse_args(argv)
    import_protocol(args.labels_dir, args.corpus_dir, args.train_dir, args.test_dir,
                    args.num_classes)
    return 0


if __name__ == "__main__":
    run(main, "import_cpc_protocol")
