"""Feature extraction speed: steps/make_fbank.sh at --nj 1 and 2, the NumPy fbank in-process,
raw kaldi-native-fbank and (when on PATH) Kaldi's compute-fbank-feats, on the same audio,
measured in the same run.

The knf loop reads each wav with soundfile and runs kaldi-native-fbank on it from Python
(its fastest input path, no dither), keeping the features in memory: how the step used to
compute.  The NumPy loop is the same loop with speechssl's KaldiFeatures (float64, all
frames at once), how the step computes now; the two take turns on each utterance, so that
both see the same load.  The step adds process start-up, data-dir validation and
splitting, dither, archive writing and merging; the step run on one utterance measures
its fixed costs.  Kaldi's ``compute-fbank-feats --num-mel-bins=80 --dither=0`` writes to
/dev/null; it is not a dependency and is skipped when absent.

The table gives medians over rounds, as hours of audio per second of wall time and per
second of CPU time (the thread's, in-process; all processes', for a step: per core, and
less disturbed by other load on a shared machine), and speed ratios.  Targets: the step
at --nj 1 at least as fast as Kaldi per core (0.25 h/s/core where it was measured),
--nj 2 at least 1.7x --nj 1 on 2 cores.

    python bench/bench_features.py [--hours 0.5] [--rounds 5]    # ~40 s on 2 cores
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ssl"))
from speechssl.features import FbankConfig  # noqa: E402
from speechssl.features.kaldi_compute import KaldiFeatures  # noqa: E402

OUT = ROOT / "bench" / "out" / "features"
UTT_SECONDS = 6.0
CONF = "--sample-frequency=16000\n--num-mel-bins=80\n--dither=1.0\n"
KALDI = "compute-fbank-feats"


def make_corpus(hours: float) -> Path:
    """Speech-length noise utterances (fbank cost does not depend on the content) in
    ``data``, and the first of them alone in ``data_one`` (the step's fixed costs)."""
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(max(1, int(hours * 3600 / UTT_SECONDS))):
        utt = f"spk{i % 20:02d}-utt{i:05d}"
        wav = OUT / "wav" / f"{utt}.wav"
        x = (rng.standard_normal(int(UTT_SECONDS * 16000)) * 2000).astype(np.int16)
        sf.write(wav, x, 16000, subtype="PCM_16")
        lines.append((utt, str(wav)))
    lines.sort()
    write_data_dir(OUT / "data_one", lines[:1])
    (OUT / "fbank.conf").write_text(CONF)
    return write_data_dir(OUT / "data", lines)


def write_data_dir(data: Path, lines: list[tuple[str, str]]) -> Path:
    """wav.scp, utt2spk and spk2utt of ``(utt, wav)`` pairs; the speaker is the id's prefix."""
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in lines))
    (data / "utt2spk").write_text("".join(f"{u} {u[:5]}\n" for u, _ in lines))
    spk2utt: dict[str, list[str]] = {}
    for u, _ in lines:
        spk2utt.setdefault(u[:5], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    return data


def wav_paths(data: Path) -> list[str]:
    return [line.split()[1] for line in (data / "wav.scp").read_text().splitlines()]


def knf_fbank(samples: np.ndarray) -> np.ndarray:
    """kaldi-native-fbank driven from Python as the step used to: ``(T, 80)``."""
    opts = knf.FbankOptions()
    opts.mel_opts.num_bins = 80
    opts.frame_opts.dither = 0.0
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, memoryview(samples))
    fbank.input_finished()
    feats = np.empty((fbank.num_frames_ready, 80), dtype=np.float32)
    for i in range(len(feats)):
        feats[i] = fbank.get_frame(i)
    return feats


def clock() -> np.ndarray:
    return np.array([time.perf_counter(), time.thread_time()])


def in_process(data: Path) -> dict[str, np.ndarray]:
    """(wall, cpu) seconds of the knf and the NumPy loops, taking turns on each utterance
    (which goes first alternates), so that both see the same load.  Each includes the
    reading of the wavs."""
    numpy_fbank = KaldiFeatures(FbankConfig(num_mel_bins=80, dither=0.0))
    spent = {"read": np.zeros(2), "knf": np.zeros(2), "numpy": np.zeros(2)}
    for i, path in enumerate(wav_paths(data)):
        start = clock()
        samples = sf.read(path, dtype="float32")[0] * 32768
        spent["read"] += clock() - start
        order = [("knf", knf_fbank), ("numpy", numpy_fbank)]
        for name, compute in order[::1 if i % 2 else -1]:
            start = clock()
            compute(samples)
            spent[name] += clock() - start
    return {"knf loop (in-process)": spent["read"] + spent["knf"],
            "numpy loop (in-process)": spent["read"] + spent["numpy"]}


def run_step(data: Path, nj: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "ssl"))
    run(["steps/make_fbank.sh", "--nj", str(nj), "--fbank-config", f"{OUT}/fbank.conf",
         str(data), f"{OUT}/log_{data.name}", f"{OUT}/fbank_{data.name}"], env=env)


def run_kaldi(data: Path) -> None:
    run([KALDI, "--num-mel-bins=80", "--dither=0", f"scp:{data}/wav.scp", "ark:/dev/null"])


def run(cmd: list[str], env: dict | None = None) -> None:
    """Run ``cmd`` quietly; on failure, exit with the end of its error output."""
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (code {proc.returncode}):\n{proc.stderr[-2000:]}")


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(run: Callable[[], None]) -> np.ndarray:
    """(wall, cpu) seconds of ``run``, the CPU time of its child processes included."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    run()
    return np.array([time.perf_counter() - wall, cpu_seconds() - cpu])


def measure(data: Path, steps: dict[str, Callable[[], None]], rounds: int) -> dict:
    """Median (wall, cpu) seconds of each contender over ``rounds`` rounds; each round
    runs the in-process loops, then each step, in an order that rotates by round."""
    times: dict[str, list[np.ndarray]] = {}
    for r in range(rounds):
        names = list(steps)
        names = names[r % len(names):] + names[:r % len(names)]
        for name, t in in_process(data).items():
            times.setdefault(name, []).append(t)
        for name in names:
            times.setdefault(name, []).append(timed(steps[name]))
    return {name: tuple(np.median(np.array(t), axis=0)) for name, t in times.items()}


def report(hours: float, results: dict[str, tuple], baselines: dict[str, str]) -> None:
    """The table; ``baselines`` maps a short label to the contender to compare with."""
    head = f"{'what':28s} {'wall s':>7s} {'h/s':>6s} {'cpu s':>7s} {'h/s/core':>8s}"
    print(head + "".join(f" {'x ' + b + ' wall':>11s} {'cpu':>6s}" for b in baselines))
    for name, (wall, cpu) in results.items():
        ratios = "".join(f" {results[b][0] / wall:10.2f}x {results[b][1] / cpu:5.2f}x"
                         for b in baselines.values())
        print(f"{name:28s} {wall:7.2f} {hours / wall:6.3f} {cpu:7.2f} {hours / cpu:8.3f}{ratios}")
    print("(x <baseline>: speed relative to the baseline, by wall time and by CPU time)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=0.5, help="audio to generate")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    args = p.parse_args()
    data = make_corpus(args.hours)
    num_utts = len(wav_paths(data))
    hours = num_utts * UTT_SECONDS / 3600
    steps = {
        "make_fbank.sh --nj 1": lambda: run_step(data, 1),
        "make_fbank.sh --nj 2": lambda: run_step(data, 2),
        "make_fbank.sh, 1 utterance": lambda: run_step(OUT / "data_one", 1),
    }
    baselines = {"knf": "knf loop (in-process)"}
    if shutil.which(KALDI):
        steps[f"{KALDI} (Kaldi)"] = lambda: run_kaldi(data)
        baselines["Kaldi"] = f"{KALDI} (Kaldi)"
    else:
        print(f"{KALDI} is not on PATH: Kaldi itself is not measured")
    run_step(data, 1)  # warm the page cache and Python's bytecode cache
    results = measure(data, steps, args.rounds)
    fixed = results.pop("make_fbank.sh, 1 utterance")[1]
    print(f"audio: {hours:.2f} h in {num_utts} files of {UTT_SECONDS:g} s; "
          f"{args.rounds} rounds, medians; {os.cpu_count()} CPUs")
    report(hours, results, baselines)
    nj1 = results["make_fbank.sh --nj 1"]
    nj2 = results["make_fbank.sh --nj 2"]
    print(f"--nj 1: {hours / nj1[1]:.3f} h/s per core (Kaldi: 0.25 measured elsewhere), "
          f"{hours / (nj1[1] - fixed):.3f} past the {fixed:.2f} s of CPU the step spends on "
          f"one utterance; --nj 2 speed-up over --nj 1: {nj1[0] / nj2[0]:.2f}x "
          f"(target >= 1.7x)")


if __name__ == "__main__":
    main()
