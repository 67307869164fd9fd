"""Phone probe memory: peak RSS of ``speechssl.bin.train_probe --task phone`` holding its
training frames as one matrix (``--stream false``) against reading them a buffer at a time
(``--stream true``), on the same train/test data dirs, with the accuracies, wall times and
the training set's size.  A third run streams with one buffer holding every training frame:
what streaming itself changes (nothing but the order of the minibatches) apart from what a
small buffer changes (each buffer's frames come from a few utterances).

Each run is a child process (the step's entry point, the data dir's eval_opts as the step
reads them); its peak RSS is its own figure in results.json (``peak_rss_mb``, /proc's
VmHWM), also shown over that of a process that only imports the entry point.  The buffer
defaults to 10,000 frames, about 9% of the egs/mini training set (50 utterances): small
enough that what does not grow with the corpus shows.

Projection to LibriSpeech (CPC's split of train-clean-100: 28 M training frames, about
7 M test frames): the streamed run's peak less its buffer (``buffer_frames x (4 dim +
24)`` bytes: frames, ids, targets), prediction chunk (65,536 frames, twice) and labels (4
bytes a frame) is what does not grow; the in-memory run adds to it three training
matrices (the matrix, and float64 statistics' temporary copy, or the frames and their
concatenation) and the test matrix, scaled by the measured ratio to that model.

    python bench/bench_probe_memory.py          # egs/mini fbank; ~1 min on 2 cores
    python bench/bench_probe_memory.py --pair egs/mini/data/train_eval_mfcc \\
        egs/mini/data/test_mfcc --buffer-frames 10000 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "egs" / "mini" / "data"
LIBRISPEECH_FRAMES = 28_000_000
LIBRISPEECH_TEST = 7_000_000   # CPC's split is about 80/20
LIBRISPEECH_BUFFER = 500_000   # train_probe's --buffer-frames default
PREDICT_BATCH = 65536          # speechssl.eval.probe.PREDICT_BATCH
MIB = 2 ** 20


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT / "ssl"))


def eval_opts(data: Path) -> dict[str, str]:
    """``--cmvn`` and ``--delta-order`` from the data dir's eval_opts (the step's
    defaults for the phone probe), else false and 0."""
    opts = {"cmvn": "false", "delta-order": "0"}
    if (data / "eval_opts").is_file():
        for line in (data / "eval_opts").read_text().split():
            name, _, value = line.lstrip("-").partition("=")
            if name in opts:
                opts[name] = value
    return opts


def import_rss_mb() -> float:
    """Peak RSS of a process that imports the entry point and does nothing."""
    code = ("import speechssl.bin.train_probe, speechssl.memory as m; "
            "print(m.peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], env=env(), check=True, text=True,
                         stdout=subprocess.PIPE)
    return float(out.stdout)


def run_probe(train: Path, test: Path, out: Path, stream: str, buffer_frames: int,
              args) -> dict:
    opts = eval_opts(train)
    cmd = [sys.executable, "-m", "speechssl.bin.train_probe", "--task", "phone",
           "--cmvn", opts["cmvn"], "--delta-order", opts["delta-order"], "--stream", stream,
           "--buffer-frames", str(buffer_frames), "--seed", str(args.seed),
           "--device", "cpu", str(train), str(test), str(out)]
    if args.epochs:
        cmd[-3:-3] = ["--epochs", str(args.epochs)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env(), text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\nfailed (code {proc.returncode}):\n{proc.stdout[-3000:]}")
    results = json.loads((out / "results.json").read_text())
    return {**results, "wall": wall}


def growing_mb(buffer_frames: int, dim: int, train: int, test: int) -> float:
    """What the streamed probe holds that grows with the buffer and the corpus."""
    return (buffer_frames * (4 * dim + 24) + 2 * min(buffer_frames, PREDICT_BATCH) * dim * 4
            + 4 * (train + test)) / MIB


def in_memory_model_mb(dim: int, train: int, test: int) -> float:
    """Three training matrices and the test matrix (see the module docstring)."""
    return (3 * train + test) * dim * 4 / MIB


def bench_pair(train: Path, test: Path, work: Path, base: float, args) -> None:
    mem = run_probe(train, test, work / f"{train.name}_mem", "false", args.buffer_frames, args)
    streamed = run_probe(train, test, work / f"{train.name}_str", "true", args.buffer_frames,
                         args)
    whole = run_probe(train, test, work / f"{train.name}_one", "true", mem["num_train"], args)
    assert not mem["streamed"] and streamed["streamed"] and whole["streamed"]
    dim, n_train, n_test = mem["dim"], mem["num_train"], mem["num_test"]
    matrix = n_train * dim * 4 / MIB
    print(f"\n== {train.name} -> {test.name}: {n_train} training frames x {dim} = "
          f"{matrix:.1f} MB as float32; {n_test} test frames "
          f"({n_test * dim * 4 / MIB:.1f} MB); {mem['epochs']} epochs of batch "
          f"{mem['batch_size']}, seed {mem['seed']}")
    print(f"{'mode':22s} {'buffer':>7s} {'peak RSS MB':>11s} {'over imports':>12s} "
          f"{'accuracy %':>10s} {'train acc %':>11s} {'wall s':>7s}")
    for name, r in (("in memory", mem), ("streamed", streamed),
                    ("streamed, one buffer", whole)):
        buffer = str(r["buffer_frames"]) if r["streamed"] else "-"
        print(f"{name:22s} {buffer:>7s} {r['peak_rss_mb']:11.1f} "
              f"{r['peak_rss_mb'] - base:12.1f} {r['accuracy']:10.2f} "
              f"{r['train_accuracy']:11.2f} {r['wall']:7.1f}")
    over_mem, over_str = mem["peak_rss_mb"] - base, streamed["peak_rss_mb"] - base
    print(f"streamed / in memory: peak RSS {streamed['peak_rss_mb'] / mem['peak_rss_mb']:.2f}"
          f", over the imports {over_str / max(over_mem, 1e-9):.2f}; accuracy "
          f"{streamed['accuracy'] - mem['accuracy']:+.2f} points (one buffer: "
          f"{whole['accuracy'] - mem['accuracy']:+.2f}); wall "
          f"{streamed['wall'] / mem['wall']:.2f}x")
    fixed = streamed["peak_rss_mb"] - growing_mb(args.buffer_frames, dim, n_train, n_test)
    model = in_memory_model_mb(dim, n_train, n_test)
    scale = (mem["peak_rss_mb"] - fixed) / model
    print(f"not growing: {fixed:.1f} MB; in memory: {mem['peak_rss_mb'] - fixed:.1f} MB more, "
          f"{scale:.2f}x the model's {model:.1f} MB (3 training matrices + the test matrix)")
    for d in (256, 768):
        held = fixed + scale * in_memory_model_mb(d, LIBRISPEECH_FRAMES, LIBRISPEECH_TEST)
        stream = fixed + growing_mb(LIBRISPEECH_BUFFER, d, LIBRISPEECH_FRAMES,
                                    LIBRISPEECH_TEST)
        print(f"LibriSpeech, {LIBRISPEECH_FRAMES / 1e6:.0f} M + {LIBRISPEECH_TEST / 1e6:.0f} M "
              f"frames x {d} (training matrix {LIBRISPEECH_FRAMES * d * 4 / 1e9:.1f} GB): "
              f"projected peak RSS in memory {held / 1024:.0f} GiB, streamed (buffer "
              f"{LIBRISPEECH_BUFFER}) {stream / 1024:.2f} GiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", nargs=2, action="append", metavar=("TRAIN", "TEST"), type=Path,
                   help="train and test data dirs (repeatable; default: egs/mini's "
                        "train_eval_fbank and test_fbank)")
    p.add_argument("--buffer-frames", type=int, default=10000)
    p.add_argument("--epochs", type=int, help="default: the phone probe's (20)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    pairs = args.pair or [(DATA / "train_eval_fbank", DATA / "test_fbank")]
    base = import_rss_mb()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; a process that "
          f"only imports train_probe peaks at {base:.1f} MB")
    with tempfile.TemporaryDirectory(prefix="bench_probe_") as work:
        for train, test in pairs:
            bench_pair(train, test, Path(work), base, args)
    print("\nMemory scales as: in memory ~ fixed + (3 x training + test frames) x dim x 4 "
          "bytes; streamed ~ fixed + buffer_frames x (4 dim + 24) bytes + 4 bytes per label "
          "frame (training and test), whatever the number of frames.")


if __name__ == "__main__":
    main()
