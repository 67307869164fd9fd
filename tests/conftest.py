"""Shared test fixtures: the repository root, a shell environment like a recipe's, and a
tiny data dir of synthetic audio (several speakers, harmonic tones in noise)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def _put_ffmpeg_on_path(folder: Path) -> str:
    """The VoxCeleb2 tests encode and decode m4a with ``ffmpeg`` from PATH, as the recipe
    does.  Where the machine has none, use the static build that imageio-ffmpeg (a dev
    dependency, so `make env` installs it) ships, linked as ``ffmpeg`` into ``folder``,
    which goes first on PATH: every machine then runs the same tests.  Says what is used."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return "none: the VoxCeleb2 tests are skipped (`make env` installs imageio-ffmpeg)"
    (folder / "ffmpeg").symlink_to(exe)
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ['PATH']}"
    return f"{exe} (from imageio-ffmpeg)"


_FFMPEG_DIR = pytest.StashKey[Path]()
_FFMPEG_USED = pytest.StashKey[str]()


def pytest_configure(config):
    # Before the test modules are imported: their skip marks look for ffmpeg.
    folder = config.stash[_FFMPEG_DIR] = Path(tempfile.mkdtemp(prefix="speechssl-ffmpeg-"))
    config.stash[_FFMPEG_USED] = _put_ffmpeg_on_path(folder)


def pytest_report_header(config):
    return f"ffmpeg: {config.stash[_FFMPEG_USED]}"


def pytest_unconfigure(config):
    shutil.rmtree(config.stash[_FFMPEG_DIR], ignore_errors=True)


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
