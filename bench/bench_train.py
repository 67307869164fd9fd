"""Training speed of each method through the full data pipeline, against the bare
forward + backward + update of the same network on in-memory batches, in the same run.

For each method of egs/mini (its mini config), the trainer's own step (``train_step``) runs
on batches straight from ``TrainingData`` (feature loading, crops, DTW-aligned pairs or
augmented wav views with on-the-fly fbank, DataLoader workers as configured), then again
on the same batches replayed from memory.  The ratio of the two speeds is what the data
pipeline costs; target: >= 0.9.  Start-up (pair alignment, first batch) is reported apart.

    python bench/bench_train.py [--methods apc,cpc,capc,cae,vicreg] [--steps 40]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import time
from pathlib import Path

import torch

from speechssl.train import trainer
from speechssl.train.config import load_config
from speechssl.train.distributed import DistInfo

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "train"
RECIPE = ROOT / "egs" / "mini"
WARMUP_STEPS = 3


def prepare_corpus() -> Path:
    """The default mini corpus with MFCC + CMVN for train (kept between runs)."""
    data = OUT / "data"
    if (data / "train_mfcc" / "cmvn.scp").is_file():
        return data
    env = dict(os.environ, PYTHONPATH=str(ROOT / "ssl"))
    commands = [
        f"python -m speechssl.bin.make_mini_corpus --preset default --nj 2 {OUT}/wav {data}",
        f"utils/copy_data_dir.sh {data}/train {data}/train_mfcc",
        f"steps/make_mfcc.sh --nj 2 --mfcc-config {RECIPE}/conf/mfcc.conf {data}/train_mfcc",
        f"steps/compute_cmvn_stats.sh {data}/train_mfcc",
    ]
    for command in commands:
        subprocess.run(["bash", "-c", f". ./path.sh && {command}"], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return data


def timed_steps(run, batches) -> tuple[float, int]:
    """Seconds and real input frames of one train_step per batch."""
    frames, start = 0, time.perf_counter()
    for batch in batches:
        trainer.train_step(run, batch)
        frames += batch.num_frames
    return time.perf_counter() - start, frames


def bench_method(method: str, data: Path, steps: int) -> dict[str, float]:
    config = load_config(RECIPE / "conf" / f"{method}.yaml")
    data_dir = data / ("train" if config.data.source == "wav" else "train_mfcc")
    start = time.perf_counter()
    run = trainer.build_run(config, data_dir, OUT / "exp" / method, torch.device("cpu"),
                            DistInfo(), None, None)
    batches = trainer.isolated_batches(run.data, 0, 0)
    timed_steps(run, itertools.islice(batches, WARMUP_STEPS))
    setup = time.perf_counter() - start
    kept = []

    def keep(it):
        for batch in it:
            kept.append(batch)
            yield batch

    pipe_s, frames = timed_steps(run, keep(itertools.islice(batches, steps)))
    batches.close()  # stop this method's DataLoader workers before the next one forks
    bare_s, _ = timed_steps(run, kept)
    return {"setup_s": setup, "steps": len(kept), "pipeline_fps": frames / pipe_s,
            "bare_fps": frames / bare_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="apc,cpc,capc,cae,vicreg")
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    data = prepare_corpus()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"{'method':8s} {'setup s':>8s} {'steps':>6s} {'pipeline frames/s':>18s} "
          f"{'bare frames/s':>14s} {'ratio':>6s}")
    for method in args.methods.split(","):
        steps = args.steps * 5 if method == "cae" else args.steps  # CAE steps are tiny
        r = bench_method(method, data, steps)
        print(f"{method:8s} {r['setup_s']:8.1f} {r['steps']:6d} {r['pipeline_fps']:18.0f} "
              f"{r['bare_fps']:14.0f} {r['pipeline_fps'] / r['bare_fps']:6.2f}")


if __name__ == "__main__":
    main()
