"""Feature extraction speed: steps/make_fbank.sh at --nj 1 and 2 against raw
kaldi-native-fbank on the same audio, measured in the same run.

The reference reads each wav with soundfile and runs kaldi-native-fbank on it in one
Python loop (its fastest input path, no dither), keeping the features in memory: the
least any fbank step can do.  The step
adds process start-up, data-dir validation and splitting, dither, archive writing (Kaldi
compression) and merging.  Targets: at most 10% over the reference at --nj 1, at least
1.7x speed-up from --nj 2 on 2 cores.

    python bench/bench_features.py [--hours 2.0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "features"
UTT_SECONDS = 6.0
CONF = "--sample-frequency=16000\n--num-mel-bins=80\n--dither=1.0\n"


def make_corpus(hours: float) -> Path:
    """Speech-length noise utterances (fbank cost does not depend on the content)."""
    data = OUT / "data"
    shutil.rmtree(OUT, ignore_errors=True)
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(int(hours * 3600 / UTT_SECONDS)):
        utt = f"spk{i % 20:02d}-utt{i:05d}"
        wav = OUT / "wav" / f"{utt}.wav"
        wav.parent.mkdir(exist_ok=True)
        x = (rng.standard_normal(int(UTT_SECONDS * 16000)) * 2000).astype(np.int16)
        sf.write(wav, x, 16000, subtype="PCM_16")
        lines.append((utt, str(wav)))
    lines.sort()
    (data / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in lines))
    (data / "utt2spk").write_text("".join(f"{u} {u[:5]}\n" for u, _ in lines))
    spk2utt: dict[str, list[str]] = {}
    for u, _ in lines:
        spk2utt.setdefault(u[:5], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    (OUT / "fbank.conf").write_text(CONF)
    return data


def reference(data: Path) -> float:
    opts = knf.FbankOptions()
    opts.mel_opts.num_bins = 80
    opts.frame_opts.dither = 0.0
    start = time.perf_counter()
    for line in (data / "wav.scp").read_text().splitlines():
        samples, rate = sf.read(line.split()[1], dtype="float32")
        fbank = knf.OnlineFbank(opts)
        fbank.accept_waveform(rate, memoryview(samples * 32768))
        fbank.input_finished()
        feats = np.empty((fbank.num_frames_ready, 80), dtype=np.float32)
        for i in range(len(feats)):
            feats[i] = fbank.get_frame(i)
    return time.perf_counter() - start


def run_step(data: Path, nj: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "ssl"))
    cmd = (f"steps/make_fbank.sh --nj {nj} --fbank-config {OUT}/fbank.conf "
           f"{data} {OUT}/log {OUT}/fbank")
    start = time.perf_counter()
    subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=2.0)
    args = p.parse_args()
    data = make_corpus(args.hours)
    hours = len((data / "wav.scp").read_text().splitlines()) * UTT_SECONDS / 3600
    run_step(data, 1)  # warm the page cache and Python's bytecode cache
    ref = min(reference(data) for _ in range(3))
    nj1 = min(run_step(data, 1) for _ in range(3))
    nj2 = min(run_step(data, 2) for _ in range(3))
    print(f"audio: {hours:.2f} h in {len((data / 'wav.scp').read_text().splitlines())} files")
    print(f"{'what':34s} {'seconds':>8s} {'hours audio/s':>14s} {'vs reference':>13s}")
    for name, t in [("raw kaldi-native-fbank (reference)", ref),
                    ("make_fbank.sh --nj 1", nj1), ("make_fbank.sh --nj 2", nj2)]:
        print(f"{name:34s} {t:8.2f} {hours / t:14.3f} {t / ref:12.3f}x")
    print(f"overhead of the step at --nj 1: {100 * (nj1 / ref - 1):+.1f}% "
          f"(target <= +10%); --nj 2 speed-up over --nj 1: {nj1 / nj2:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
