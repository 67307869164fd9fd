"""Shared test fixtures: the repository root, a shell environment like a recipe's, and a
tiny data dir of synthetic audio (several speakers, harmonic tones in noise)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def recipe_env() -> dict[str, str]:
    """The environment path.sh gives a recipe (venv, PYTHONPATH, utils on PATH, LC_ALL=C)."""
    env = dict(os.environ)
    venv_bin = ROOT / ".venv" / "bin"
    env["PATH"] = f"{ROOT / 'utils'}:{venv_bin}:{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT / "ssl")
    env["LC_ALL"] = "C"
    return env


def sh(command: str, cwd: Path | None = None, check: bool = True,
       ) -> subprocess.CompletedProcess:
    """Run a bash command line as a recipe would; output captured as text."""
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=recipe_env(),
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed ({proc.returncode}): {command}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def synth_audio(seed: int, seconds: float, rate: int = 16000) -> np.ndarray:
    """A voiced-speech-like int16 signal: a harmonic tone with a moving pitch, in noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 100 + 50 * rng.random() + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(3 * t) ** 2)
    x = 0.3 * x / np.max(np.abs(x)) + 0.01 * rng.standard_normal(t.size)
    return np.round(x * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, fmt: str = "WAV") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, format=fmt, subtype="PCM_16")
    return path


def make_data_dir(base: Path, num_speakers: int = 3, utts_per_speaker: int = 3,
                  rate: int = 16000) -> Path:
    """A valid data dir (wav.scp, utt2spk, spk2utt, text) with absolute wav paths."""
    data = base / "data" / "train"
    data.mkdir(parents=True)
    wav_scp, utt2spk, text = [], [], []
    for s in range(num_speakers):
        for u in range(utts_per_speaker):
            spk, utt = f"spk{s}", f"spk{s}-utt{u}"
            wav = write_wav(base / "wav" / f"{utt}.wav",
                            synth_audio(10 * s + u, 0.6 + 0.1 * u, rate), rate)
            wav_scp.append(f"{utt} {wav}\n")
            utt2spk.append(f"{utt} {spk}\n")
            text.append(f"{utt} hello world {u}\n")
    (data / "wav.scp").write_text("".join(wav_scp))
    (data / "utt2spk").write_text("".join(utt2spk))
    (data / "text").write_text("".join(text))
    spk2utt = {}
    for line in utt2spk:
        utt, spk = line.split()
        spk2utt.setdefault(spk, []).append(utt)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in spk2utt.items()))
    return data


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path)
