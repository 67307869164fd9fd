"""Extraction speed: every method's ``represent`` on padded batches of utterances
(bin/extract_ssl.py's default, ``--batch-frames 20000``) against one utterance at a time
(``--batch-frames 1``), measured in the same run, on one CPU thread as extract_ssl.sh's
jobs run.  Models are built from egs/mini's configs (random weights: the cost does not
depend on them); utterances are random features with the default mini corpus's lengths
(2-6 s).  Also checks that both give the same outputs.

    python bench/bench_extract.py [--utts 200] [--rounds 3]     # ~1 min
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ssl"))
import torch  # noqa: E402

from speechssl.bin.extract_ssl import batches, represent_batch  # noqa: E402
from speechssl.models import method_class  # noqa: E402
from speechssl.train.config import load_config  # noqa: E402

INPUT_DIM = {"apc": 39, "cpc": 39, "capc": 39, "cae": 39, "vicreg": 40}


def run(model, feats: list[np.ndarray], batch_frames: int) -> tuple[float, list]:
    start = time.process_time()
    out = []
    for batch in batches(((str(i), f) for i, f in enumerate(feats)), batch_frames):
        out += represent_batch(model, [f for _, f in batch], None, "cpu")
    return time.process_time() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--utts", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    lengths = rng.integers(200, 600, size=args.utts)
    print(f"{args.utts} utterances, {lengths.sum()} frames; CPU seconds, median of "
          f"{args.rounds} rounds, 1 thread")
    print(f"{'method':8s} {'one by one':>10s} {'batched':>8s} {'speed-up':>8s} {'max |diff|':>10s}")
    for name, dim in INPUT_DIM.items():
        config = load_config(ROOT / "egs" / "mini" / "conf" / f"{name}.yaml")
        torch.manual_seed(0)
        model = method_class(name)(config.model, dim).eval()
        feats = [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths]
        one, many = [], []
        for _ in range(args.rounds):
            t1, a = run(model, feats, 1)
            t2, b = run(model, feats, 20000)
            one.append(t1)
            many.append(t2)
        diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))
        t1, t2 = float(np.median(one)), float(np.median(many))
        print(f"{name:8s} {t1:10.2f} {t2:8.2f} {t1 / t2:7.2f}x {diff:10.1e}")


if __name__ == "__main__":
    main()
