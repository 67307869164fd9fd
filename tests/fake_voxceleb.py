"""A fake VoxCeleb1, VoxCeleb2, MUSAN and RIRS_NOISES laid out as the real distributions
(/work/shared/CORPORA.md), made from a tiny generated espeak corpus, with the truth the
data preparation must recover (ids, speakers, trials).

VoxCeleb1 speakers sit on both edges of the test range id10270-id10309, YouTube ids hold
``-`` and ``_``, and VoxCeleb2's m4a files are encoded with ffmpeg (only when it is
installed: ``FakeVoxCeleb.voxceleb2`` is None otherwise).
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import synth_audio, write_wav
from speechssl.bin.make_mini_corpus import main as make_mini_corpus

VOX1_TEST = ("id10270", "id10271", "id10309")
VOX1_DEV = ("id10001", "id10269", "id10310")
VOX2_DEV = ("id00012", "id00017", "id09272")
VIDEOS = ("1zcIwh-deo4", "x6uY_mx31kE")      # 11 characters, with - and _
SEGMENTS_PER_VIDEO = 3
GENDERS = {"id10270": "m", "id10271": "f", "id10309": "m", "id10001": "f",
           "id10269": "m", "id10310": "f"}
RIR_IDS = ("mediumroom-Room001-00001", "smallroom-Room001-00001", "smallroom-Room001-00002")
NUM_BABBLE = 8


@dataclass
class FakeVoxCeleb:
    root: Path
    voxceleb1: Path
    voxceleb2: Path | None
    musan: Path
    rirs: Path
    utt2spk: dict[str, dict[str, str]] = field(default_factory=dict)  # set -> utt -> spk
    sources: dict[str, Path] = field(default_factory=dict)  # utt -> the generated wav
    trials: dict[str, list[str]] = field(default_factory=dict)  # list -> Kaldi trial lines
    musan_ids: dict[str, list[str]] = field(default_factory=dict)  # category -> ids


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def _encode_m4a(job: tuple[Path, Path]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(job[0]),
                    "-c:a", "aac", "-b:a", "48k", str(job[1])], check=True)


def _speaker_layout(wavs: list[Path], spk: str, dest: Path, ext: str) -> dict[str, Path]:
    """Put a generated speaker's wavs under dest/<spk>/<ytid>/NNNNN.<ext>;
    ``{utt: generated wav}``."""
    out, jobs = {}, []
    for i, wav in enumerate(wavs[:len(VIDEOS) * SEGMENTS_PER_VIDEO]):
        video, seg = VIDEOS[i // SEGMENTS_PER_VIDEO], f"{i % SEGMENTS_PER_VIDEO + 1:05d}"
        target = dest / spk / video / f"{seg}.{ext}"
        target.parent.mkdir(parents=True, exist_ok=True)
        jobs.append((wav, target))
        out[f"{spk}-{video}-{seg}"] = wav
    if ext == "wav":
        for wav, target in jobs:
            shutil.copy(wav, target)
    else:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(_encode_m4a, jobs))
    return out


def _trial_lines(pairs, label_of) -> tuple[list[str], list[str]]:
    """(VoxCeleb list lines, the Kaldi trial lines they must become)."""
    def name(u):  # id10270-1zcIwh-deo4-00001 -> id10270/1zcIwh-deo4/00001.wav
        return f"{u[:7]}/{u[8:-6]}/{u[-5:]}.wav"
    vox = [f"{int(label_of(a, b))} {name(a)} {name(b)}" for a, b in pairs]
    kaldi = [f"{a} {b} {'target' if label_of(a, b) else 'nontarget'}" for a, b in pairs]
    return vox, kaldi


def _write_voxceleb1(fake: FakeVoxCeleb, speakers: dict[str, list[Path]]) -> None:
    root = fake.voxceleb1
    for spk in VOX1_TEST + VOX1_DEV:
        utts = _speaker_layout(speakers[spk], spk, root / "wav", "wav")
        fake.sources.update(utts)
        which = "voxceleb1_test" if spk in VOX1_TEST else "voxceleb1_dev"
        fake.utt2spk.setdefault(which, {}).update({u: spk for u in utts})
    meta = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    meta += [f"{s}\tCeleb_{s}\t{GENDERS[s]}\tNowhere\t{'test' if s in VOX1_TEST else 'dev'}"
             for s in sorted(VOX1_TEST + VOX1_DEV)]
    (root / "vox1_meta.csv").write_text("\n".join(meta) + "\n")
    test = fake.utt2spk["voxceleb1_test"]
    everything = {**test, **fake.utt2spk["voxceleb1_dev"]}
    lists = {
        "veri_test2.txt": (list(itertools.combinations(sorted(test), 2))[::3], test),
        "list_test_all2.txt": (list(itertools.combinations(sorted(everything), 2))[::7],
                               everything),
        "list_test_hard2.txt": (list(itertools.combinations(sorted(everything), 2))[1::9],
                                everything),
    }
    for file, (pairs, spk_of) in lists.items():
        vox, kaldi = _trial_lines(pairs, lambda a, b, s=spk_of: s[a] == s[b])
        (root / file).write_text("\n".join(vox) + "\n")
        fake.trials[file] = kaldi


def _write_musan(fake: FakeVoxCeleb, babble: list[Path]) -> None:
    musan = fake.musan
    rng = np.random.default_rng(3)
    sources = {"music": ("fma", "jamendo"), "noise": ("free-sound", "sound-bible"),
               "speech": ("librivox", "us-gov")}
    ids: dict[str, list[str]] = {c: [] for c in sources}
    for category, names in sources.items():
        for source in names:
            (musan / category / source).mkdir(parents=True, exist_ok=True)
    for i, wav in enumerate(babble[:NUM_BABBLE]):
        source = sources["speech"][i % 2]
        ids["speech"].append(f"speech-{source}-{i:04d}")
        shutil.copy(wav, musan / "speech" / source / f"{ids['speech'][-1]}.wav")
    for i in range(3):
        source = sources["music"][i % 2]
        ids["music"].append(f"music-{source}-{i:04d}")
        write_wav(musan / "music" / source / f"{ids['music'][-1]}.wav",
                  synth_audio(100 + i, 4.0 + i))
        source = sources["noise"][i % 2]
        ids["noise"].append(f"noise-{source}-{i:04d}")
        seconds = 0.3 if i == 0 else 3.0  # shorter than a training view: repeated
        noise = rng.standard_normal(int(seconds * 16000)) * 3000
        write_wav(musan / "noise" / source / f"{ids['noise'][-1]}.wav", noise.astype(np.int16))
    (musan / "README").write_text("fake MUSAN\n")
    (musan / "music" / "fma" / "ANNOTATIONS").write_text("music-fma-0000 x\n")
    fake.musan_ids = {c: sorted(v) for c, v in ids.items()}


def _write_rirs(fake: FakeVoxCeleb) -> None:
    rng = np.random.default_rng(4)
    for rir_id in RIR_IDS:
        room, room_id, number = rir_id.split("-")
        rel = f"simulated_rirs/{room}/{room_id}/{room_id}-{number}.wav"
        t = np.arange(4000) / 16000
        rir = rng.standard_normal(t.size) * np.exp(-t / 0.05) * 0.3
        rir[80] = 1.0  # the direct path, 5 ms in
        (fake.rirs / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(fake.rirs / rel, rir.astype(np.float32), 16000, subtype="FLOAT")
        with open(fake.rirs / "simulated_rirs" / room / "rir_list", "a") as f:
            f.write(f"--rir-id {rir_id} --room-id {room}-{room_id} RIRS_NOISES/{rel}\n")


def make_fake_voxceleb(root: Path) -> FakeVoxCeleb:
    """Everything under ``root``: voxceleb1/, voxceleb2/ (with ffmpeg), musan/, RIRS_NOISES/."""
    make_mini_corpus(["--preset", "tiny", "--seed", "11", "--nj", "2", "--num-speakers", "12",
                      "--utts-per-speaker", str(len(VIDEOS) * SEGMENTS_PER_VIDEO),
                      str(root / "espeak" / "wav"), str(root / "espeak" / "data")])
    generated = sorted(p for p in (root / "espeak" / "wav").iterdir())
    wavs = [sorted(d.glob("*.wav")) for d in generated]
    fake = FakeVoxCeleb(root, root / "voxceleb1", root / "voxceleb2" if have_ffmpeg() else None,
                        root / "musan", root / "RIRS_NOISES")
    speakers = dict(zip(VOX1_TEST + VOX1_DEV + VOX2_DEV, wavs, strict=False))
    _write_voxceleb1(fake, speakers)
    if fake.voxceleb2 is not None:
        for spk in VOX2_DEV:
            utts = _speaker_layout(speakers[spk], spk, fake.voxceleb2 / "dev" / "aac", "m4a")
            fake.sources.update(utts)
            fake.utt2spk.setdefault("voxceleb2_dev", {}).update({u: spk for u in utts})
    _write_musan(fake, [w for d in wavs[9:] for w in d])
    _write_rirs(fake)
    return fake
