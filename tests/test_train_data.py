"""The training data pipeline on the tiny corpus: batch contents checked against
FeatureLoader, DTW and the audio; determinism across workers, resume and ranks."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from conftest import ROOT, sh
from corpus_fixtures import tiny_corpus_fixture  # noqa: F401
from speechssl.data.ark import ArkScpWriter
from speechssl.data.audio import AudioReader
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.dtw import align_to, cosine_cost, dtw_path
from speechssl.errors import InputError
from speechssl.features import FbankConfig, FeatureExtractor
from speechssl.features.torch_fbank import TorchFbank
from speechssl.train.config import (
    AugmentConfig,
    DataConfig,
    ExperimentConfig,
    OptimConfig,
    TrainConfig,
)
from speechssl.train.data import (
    TrainingData,
    bucket_batches,
    feature_frames,
    input_dim,
    utterance_inputs,
)

FRAMES = dict(crop_frames=120, batch_frames=500, max_batch_size=3)
PAIRS = dict(min_word_frames=30, min_word_chars=5, batch_frames=300)
NO_AUGMENT = AugmentConfig(noise_prob=0.0, reverb_prob=0.0, bandpass_prob=0.0, gain_prob=0.0)
FULL_AUGMENT = AugmentConfig(noise_prob=1.0, reverb_prob=1.0, bandpass_prob=1.0, gain_prob=1.0)
WAV_VIEWS = dict(source="wav", view_frames=50, batch_size=3,
                 fbank={"num-mel-bins": 40, "dither": 1.0})
FEAT_VIEWS = dict(view_frames=60, batch_size=4)
KINDS = {"frames": FRAMES, "pairs": PAIRS, "views": WAV_VIEWS}


def config(seed: int = 0, **data) -> ExperimentConfig:
    data.setdefault("num_workers", 0)
    return ExperimentConfig("test", None, DataConfig(**data), OptimConfig(),
                            TrainConfig(seed=seed))


@pytest.fixture(scope="module")
def feats_dir(tiny_corpus, tmp_path_factory) -> Path:
    """The tiny corpus's train set with 80-bin fbank and CMVN stats, made by the steps."""
    d = tmp_path_factory.mktemp("train_data") / "train"
    shutil.copytree(tiny_corpus / "data" / "train", d)
    sh(f"steps/make_fbank.sh --nj 1 --fbank-config egs/mini/conf/fbank.conf {d} "
       f"{d}/log {d}/fbank", cwd=ROOT)
    sh(f"steps/compute_cmvn_stats.sh {d}", cwd=ROOT)
    return d


def loader(feats_dir: Path) -> FeatureLoader:
    return FeatureLoader(feats_dir, FeatureTransform(cmvn=True))


def assert_same_batch(a, b, where: str = "") -> None:
    assert type(a) is type(b), where
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            assert x.shape == y.shape and torch.equal(x, y), f"{where} {f.name} differs"
        else:
            assert x == y, f"{where} {f.name} differs"


def signature(batch) -> tuple:
    """What identifies a batch: its keys and a checksum of its first tensor."""
    first = getattr(batch, dataclasses.fields(batch)[0].name)
    return tuple(batch.keys), round(float(first.double().abs().sum()), 3)


def find_offset(full: np.ndarray, crop: np.ndarray) -> int:
    """The offset o with full[o:o+len(crop)] == crop; fails if there is none."""
    n = len(crop)
    hits = [o for o in range(len(full) - n + 1) if np.array_equal(full[o:o + n], crop)]
    assert hits, "crop is no window of the utterance's features"
    return hits[0]


# ----------------------------------------------------------------- frames

def test_frames_respect_limits_and_are_feature_loader_crops(feats_dir):
    data = TrainingData(config(**FRAMES), feats_dir, "frames")
    features, utt2spk = loader(feats_dir), DataDir(feats_dir).utt2spk
    speakers = sorted(set(utt2spk.values()))
    seen = []
    for batch in data.batches(0):
        b, t, dim = batch.feats.shape
        assert b * t <= 500 and b <= 3 and dim == data.input_dim == 80
        assert int(batch.lengths.max()) == t and int(batch.lengths.max()) <= 120
        for i, utt in enumerate(batch.keys):
            n = int(batch.lengths[i])
            full = features[utt]
            assert n == min(120, len(full))
            crop = batch.feats[i, :n].numpy()
            find_offset(full, crop)
            assert torch.all(batch.feats[i, n:] == 0)
            assert int(batch.speakers[i]) == speakers.index(utt2spk[utt])
        seen += batch.keys
    assert sorted(seen) == sorted(utt2spk), "every utterance once per epoch"
    assert data.num_speakers == len(speakers)


def test_short_utterances_are_skipped_and_counted(feats_dir):
    frames = {u: int(n) for u, n in DataDir(feats_dir).table("utt2num_frames").items()}
    short = sum(n < 250 for n in frames.values())
    assert 0 < short < len(frames)
    data = TrainingData(config(min_frames=250, **FRAMES), feats_dir, "frames")
    assert f"skipped {short} ({short} shorter than 250 frames)" in data.describe()
    keys = {k for batch in data.batches(0) for k in batch.keys}
    assert keys == {u for u, n in frames.items() if n >= 250}


def test_bucketing_cuts_by_padded_frames():
    lengths = np.array([10, 50, 20, 40, 30, 45])
    batches = bucket_batches(lengths, 100, 8)
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))
    for b in batches:
        assert len(b) * lengths[b].max() <= 100
    assert [b.tolist() for b in bucket_batches(lengths, 1000, 2)] == [[1, 5], [3, 4], [2, 0]]


# ----------------------------------------------------------------- determinism

@pytest.mark.parametrize("kind", ["frames", "views"])
def test_same_batches_with_and_without_workers(feats_dir, kind):
    serial = list(TrainingData(config(3, **KINDS[kind]), feats_dir, kind).batches(1))
    workers = TrainingData(config(3, num_workers=2, **KINDS[kind]), feats_dir, kind)
    parallel = list(workers.batches(1))
    assert len(serial) == len(parallel) == workers.num_batches(1) > 2
    for i, (a, b) in enumerate(zip(serial, parallel, strict=True)):
        assert_same_batch(a, b, f"batch {i}")


@pytest.mark.parametrize("kind", ["frames", "pairs", "views"])
def test_resume_gives_the_tail_and_epochs_differ(feats_dir, kind):
    data = TrainingData(config(5, **KINDS[kind]), feats_dir, kind)
    full = list(data.batches(2))
    again = TrainingData(config(5, **KINDS[kind]), feats_dir, kind)  # a new process
    tail = list(again.batches(2, start=3))
    assert len(tail) == len(full) - 3 > 0
    for i, (a, b) in enumerate(zip(full[3:], tail, strict=True)):
        assert_same_batch(a, b, f"batch {i + 3}")
    other = [signature(b) for b in data.batches(3)]
    assert other != [signature(b) for b in full]
    reseeded = [signature(b) for b in TrainingData(config(6, **KINDS[kind]), feats_dir,
                                                   kind).batches(2)]
    assert reseeded != [signature(b) for b in full]


@pytest.mark.parametrize("kind", ["frames", "pairs"])
def test_ranks_split_the_epoch(feats_dir, kind):
    whole = [signature(b) for b in TrainingData(config(**KINDS[kind]), feats_dir,
                                                kind).batches(0)]
    ranks = [TrainingData(config(**KINDS[kind]), feats_dir, kind, rank=r, world_size=2)
             for r in (0, 1)]
    parts = [[signature(b) for b in r.batches(0)] for r in ranks]
    per_rank = len(whole) // 2
    assert len(parts[0]) == len(parts[1]) == per_rank == ranks[1].num_batches(0) > 0
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(whole[:2 * per_rank])


# ----------------------------------------------------------------- pairs

def parse_token(key: str) -> tuple[str, str, int, int]:
    word, utt, span = key.rsplit("_", 2)
    start, end = span.split("-")
    return word, utt, int(start), int(end)


def test_pairs_are_same_word_tokens_with_dtw_aligned_targets(feats_dir):
    data = TrainingData(config(**PAIRS), feats_dir, "pairs")
    features = loader(feats_dir)
    directed = set()
    for batch in data.batches(0):
        assert batch.x.shape == batch.y.shape and batch.x.shape[2] == 80
        for i, key in enumerate(batch.keys):
            xk, yk = key.split("~")
            (xw, xu, xs, xe), (yw, yu, ys, ye) = parse_token(xk), parse_token(yk)
            assert xw == yw and len(xw) >= 5 and xe - xs >= 30 and ye - ys >= 30
            x, y = features[xu][xs:xe], features[yu][ys:ye]
            n = int(batch.lengths[i])
            assert n == len(x) and torch.all(batch.x[i, n:] == 0)
            np.testing.assert_array_equal(batch.x[i, :n].numpy(), x)
            align = align_to(len(x), dtw_path(cosine_cost(x, y)))
            np.testing.assert_array_equal(batch.y[i, :n].numpy(), y[align], err_msg=key)
            directed.add((xk, yk))
    assert directed and all((y, x) in directed for x, y in directed), "both directions"
    assert "pairs (" in data.describe() and "aligned in" in data.describe()


def test_pairs_from_a_pair_list(feats_dir, tmp_path):
    utts = DataDir(feats_dir).utts
    path = tmp_path / "pairs.txt"
    path.write_text(f"{utts[0]} 10 60 {utts[5]} 20 90\n{utts[1]} 0 40 {utts[2]} 5 35\n")
    data = TrainingData(config(pairs=str(path), batch_frames=1000), feats_dir, "pairs")
    keys = sorted(k for b in data.batches(0) for k in b.keys)
    assert keys == sorted([f"{utts[0]}_000010-000060~{utts[5]}_000020-000090",
                           f"{utts[5]}_000020-000090~{utts[0]}_000010-000060",
                           f"{utts[1]}_000000-000040~{utts[2]}_000005-000035",
                           f"{utts[2]}_000005-000035~{utts[1]}_000000-000040"])
    path.write_text(f"{utts[0]} 10 60 {utts[5]} 20 90\n{utts[1]} 0 40 {utts[2]} 35 5\n")
    with pytest.raises(InputError, match=f"{path}:2: key '{utts[2]}': need 0 <= start"):
        TrainingData(config(pairs=str(path)), feats_dir, "pairs")


# ----------------------------------------------------------------- views

def frames_at_every_sample(samples: np.ndarray, fbank: TorchFbank) -> np.ndarray:
    """``(N - L + 1, D)``: row s is the fbank frame of ``samples[s:s+L]`` (dither 0)."""
    size = fbank.config.window_size
    windows = (torch.from_numpy(samples) * 32768.0).unfold(0, size, 1)  # (N - L + 1, L)
    return fbank(windows.contiguous(), dither=0.0)[:, 0].numpy()


def locate_view(view: np.ndarray, frames: np.ndarray, shift: int) -> int:
    """The sample where ``view`` starts in the utterance, checked for all its frames."""
    for s in np.flatnonzero(np.abs(frames - view[0]).max(axis=1) < 1e-3):
        rows = s + shift * np.arange(len(view))
        if rows[-1] < len(frames) and np.abs(frames[rows] - view).max() < 1e-3:
            return int(s)
    raise AssertionError("view is not a crop of the utterance's audio")


def test_wav_views_are_two_crops_of_the_same_utterance(feats_dir):
    plain = dict(WAV_VIEWS, fbank={"num-mel-bins": 40, "dither": 0.0}, cmvn=False,
                 augment=NO_AUGMENT)
    data = TrainingData(config(**plain), feats_dir, "views")
    batch = next(iter(data.batches(0)))
    assert batch.view_a.shape == batch.view_b.shape == (3, 50, 40)
    assert batch.lengths.tolist() == [50, 50, 50] and data.input_dim == 40
    reader = AudioReader(feats_dir)
    fbank = TorchFbank(FbankConfig(num_mel_bins=40, dither=0.0))
    for i, utt in enumerate(batch.keys[:2]):
        frames = frames_at_every_sample(reader.read(utt)[0], fbank)
        start_a = locate_view(batch.view_a[i].numpy(), frames, 160)
        start_b = locate_view(batch.view_b[i].numpy(), frames, 160)
        assert start_a != start_b


def test_wav_views_are_augmented_independently_and_deterministically(feats_dir):
    augmented = dict(WAV_VIEWS, augment=FULL_AUGMENT, cmvn=False,
                     fbank={"num-mel-bins": 40, "dither": 0.0})
    plain = dict(augmented, augment=NO_AUGMENT)
    a = next(iter(TrainingData(config(**augmented), feats_dir, "views").batches(0)))
    b = next(iter(TrainingData(config(**augmented), feats_dir, "views").batches(0)))
    clean = next(iter(TrainingData(config(**plain), feats_dir, "views").batches(0)))
    assert_same_batch(a, b)
    assert a.keys == clean.keys
    # The same crop (drawn before augmenting), so view a differs only by augmentation.
    assert not torch.allclose(a.view_a, clean.view_a, atol=1e-2)
    assert not torch.allclose(a.view_a, a.view_b, atol=1e-2)
    assert torch.isfinite(a.view_a).all() and torch.isfinite(a.view_b).all()


def test_wav_views_normalise_per_view(feats_dir):
    data = TrainingData(config(**dict(WAV_VIEWS, norm_vars=True)), feats_dir, "views")
    batch = next(iter(data.batches(0)))
    mean, std = batch.view_a.mean(dim=1), batch.view_a.std(dim=1, unbiased=False)
    assert mean.abs().max() < 1e-4 and (std - 1).abs().max() < 1e-3


def test_feature_views_are_two_crops_of_the_stored_features(feats_dir):
    data = TrainingData(config(**FEAT_VIEWS), feats_dir, "views")
    features = loader(feats_dir)
    batches = list(data.batches(0))
    assert len(batches) == data.num_batches(0) == len(DataDir(feats_dir).utt2spk) // 4
    for batch in batches:
        assert batch.view_a.shape == (4, 60, 80)
        for i, utt in enumerate(batch.keys):
            find_offset(features[utt], batch.view_a[i].numpy())
            find_offset(features[utt], batch.view_b[i].numpy())
    assert any(not torch.equal(b.view_a, b.view_b) for b in batches)


def test_views_skip_short_utterances(feats_dir):
    data = TrainingData(config(**dict(WAV_VIEWS, view_frames=250)), feats_dir, "views")
    durations = {u: float(d) for u, d in DataDir(feats_dir).table("utt2dur").items()}
    # 250 frames of 25 ms every 10 ms span 2.515 s; the step adds 0.01 s of margin.
    short = sum(d < 2.515 + 0.01 for d in durations.values())
    assert 0 < short and f"skipped {short} ({short} shorter than one view" in data.describe()


# ----------------------------------------------------------------- extraction inputs

def test_utterance_inputs_from_features(feats_dir):
    cfg = config(delta_order=2)
    stored = dict(kaldiio.load_scp(str(feats_dir / "feats.scp")))
    features = FeatureLoader(feats_dir, FeatureTransform(cmvn=True, delta_order=2))
    got = list(utterance_inputs(cfg, feats_dir))
    assert [u for u, _ in got] == DataDir(feats_dir).utts
    for utt, x in got:
        assert x.shape == (stored[utt].shape[0], 240) and x.dtype == np.float32
        np.testing.assert_array_equal(x, features[utt], err_msg=utt)
    assert input_dim(cfg, feats_dir) == 240


def test_utterance_inputs_from_audio(feats_dir):
    cfg = config(source="wav", cmvn=False, fbank={"num-mel-bins": 40, "dither": 1.0})
    reference = FeatureExtractor(FbankConfig(num_mel_bins=40, dither=0.0))
    reader = AudioReader(feats_dir)
    for n, (utt, x) in enumerate(utterance_inputs(cfg, feats_dir)):
        samples = reader.read(utt)[0]
        expected = reference.compute(samples * 32768.0, utt)  # kaldi-native-fbank
        assert x.shape == expected.shape == (FbankConfig().num_frames(samples.size), 40)
        assert np.abs(x - expected).max() < 2e-2, (utt, np.abs(x - expected).max())
        if n == 2:
            break
    normalised = next(utterance_inputs(config(source="wav", norm_vars=True), feats_dir))[1]
    assert np.abs(normalised.mean(axis=0)).max() < 1e-4
    assert input_dim(config(source="wav", delta_order=1), feats_dir) == 80


# ----------------------------------------------------------------- metadata and errors

def test_frame_counts_from_archive_headers(feats_dir, tmp_path):
    counts = {u: int(n) for u, n in DataDir(feats_dir).table("utt2num_frames").items()}
    copy = tmp_path / "copy"
    shutil.copytree(feats_dir, copy, ignore=shutil.ignore_patterns("utt2num_frames"))
    assert feature_frames(DataDir(copy)) == counts
    rng = np.random.default_rng(0)
    with ArkScpWriter(tmp_path / "c.ark", copy / "feats.scp", compress=True) as w:
        for utt, n in counts.items():
            w.write(utt, rng.standard_normal((n, 5)).astype(np.float32))
    assert feature_frames(DataDir(copy)) == counts


def test_bad_inputs_are_errors_naming_the_file(feats_dir, tmp_path):
    with pytest.raises(InputError, match="wav.scp: key .*: sample rate is 16000 Hz, expected"):
        TrainingData(config(**dict(WAV_VIEWS, fbank={"sample-frequency": 8000})), feats_dir,
                     "views")
    with pytest.raises(InputError, match="set data.source: feats"):
        TrainingData(config(source="wav"), feats_dir, "frames")
    with pytest.raises(InputError, match="crop_frames"):
        TrainingData(config(crop_frames=2000, batch_frames=1000), feats_dir, "frames")
    broken = tmp_path / "broken"
    shutil.copytree(feats_dir, broken)
    scp = (broken / "feats.scp").read_text().splitlines()
    (broken / "feats.scp").write_text("\n".join(
        scp[:-1] + [scp[-1].split()[0] + " /nonexistent/x.ark:16"]) + "\n")
    data = TrainingData(config(**FRAMES), broken, "frames")
    with pytest.raises(InputError, match=f"{broken / 'feats.scp'}: key .*cannot read"):
        list(data.batches(0))
    (broken / "feats.scp").write_text("\n".join(scp[1:]) + "\n")
    with pytest.raises(InputError, match="1 utterances of utt2spk have no features"):
        TrainingData(config(**FRAMES), broken, "frames")


@pytest.mark.parametrize("nice", [0, 7])
def test_workers_lower_their_priority_only_when_asked(nice):
    # In a child process: os.nice cannot be undone.
    code = ("import os; from speechssl.train.data import _init_worker; base = os.nice(0); "
            f"_init_worker({nice}, 0); print(os.nice(0) - base)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "ssl")})
    assert out.stdout.strip() == str(nice)
