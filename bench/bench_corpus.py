"""Corpus generation speed: seconds of audio made per second of wall time.

Reference: 1.0 (real time).  Each preset is generated with and without augmentation
into a temporary directory with ``--nj`` workers.

    python bench/bench_corpus.py [--nj 2] [--presets tiny,default]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from speechssl.corpus.synth.generate import generate_corpus
from speechssl.corpus.synth.presets import get_preset


def measure(preset: str, augment: bool, nj: int, seed: int) -> tuple[float, float]:
    """(seconds of audio, seconds of wall time) of one generation."""
    config = get_preset(preset, augment=augment)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = generate_corpus(config, seed, nj, Path(tmp) / "wav", Path(tmp) / "data")
        wall = time.perf_counter() - start
    audio = sum(v for k, v in summary.items() if k.endswith("_seconds"))
    return audio, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nj", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--presets", default="tiny,default")
    args = p.parse_args()
    measure("tiny", False, args.nj, args.seed)  # warm-up: starts the worker server
    print(f"{'preset':<8} {'augment':<8} {'audio s':>9} {'wall s':>8} {'x real time':>12}"
          f" {'vs ref 1.0':>10}")
    for preset in args.presets.split(","):
        for augment in (False, True):
            audio, wall = measure(preset, augment, args.nj, args.seed)
            ratio = audio / wall
            print(f"{preset:<8} {str(augment).lower():<8} {audio:9.0f} {wall:8.1f} "
                  f"{ratio:12.1f} {ratio / 1.0:9.1f}x", flush=True)


if __name__ == "__main__":
    main()
