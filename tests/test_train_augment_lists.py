"""Recorded noises (MUSAN-style lists) and impulse responses (RIR lists) in training
augmentation: noise crops at the drawn SNR, several talkers for babble, Kaldi-style
reverberation, and errors that name the list or file at fault."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speechssl.augment import add_noise, noise_bank, reverberate
from speechssl.errors import InputError
from speechssl.train import view_augment as augment
from speechssl.train.config import AugmentConfig, DataConfig, NoiseSource
from speechssl.typed_config import from_dict

SR, N = 16000, 8000


def write_list(path, files) -> str:
    path.write_text("".join(f"f{i:02d} {f}\n" for i, f in enumerate(files)))
    return str(path)


def tone_file(path, freq_bin: int, seconds: float = 2.0, rate: int = SR):
    """A sine with a whole number of cycles per N samples: its power sits in one rfft bin
    of any N-sample crop, whatever the offset."""
    t = np.arange(int(seconds * rate))
    sf.write(path, 0.5 * np.sin(2 * np.pi * freq_bin * t / N), rate, subtype="FLOAT")
    return path


@pytest.fixture
def speech():
    """Noise-like "speech" with no near-silent sample, so its SNR reference (the power of
    the non-silent samples) is simply its mean power."""
    rng = np.random.default_rng(0)
    return 0.1 * (1 + rng.random(N)) * rng.choice([-1.0, 1.0], N)


def test_one_noise_file_is_a_crop_of_the_file_at_the_snr(tmp_path, speech):
    noise = np.random.default_rng(1).standard_normal(3 * N) * 0.2
    sf.write(tmp_path / "n.wav", noise, SR, subtype="DOUBLE")
    source = NoiseSource("noise", write_list(tmp_path / "noise.scp", [tmp_path / "n.wav"]),
                         (7.0, 7.0))
    y = augment.add_recorded_noise(speech, np.random.default_rng(2), source, SR)
    added = y - speech
    snr = 10 * np.log10(np.mean(speech ** 2) / np.mean(added ** 2))
    assert abs(snr - 7.0) < 1e-6
    # The added noise is one contiguous stretch of the file, scaled (brute force offsets).
    errors = [np.abs(added / (noise[o:o + N] @ added / (noise[o:o + N] @ noise[o:o + N]))
                     - noise[o:o + N]).max() for o in range(2 * N + 1)]
    assert min(errors) < 1e-9


def test_babble_mixes_distinct_talkers_each_at_its_own_snr(tmp_path, speech):
    bins = [50, 130, 220, 310, 400, 510, 620, 730]
    files = [tone_file(tmp_path / f"t{b}.wav", b) for b in bins]
    source = NoiseSource("babble", write_list(tmp_path / "speech.scp", files), (10.0, 10.0),
                         count=(3, 7))
    counts = set()
    for seed in range(12):
        added = augment.add_recorded_noise(speech, np.random.default_rng(seed), source, SR) - speech
        power = np.abs(np.fft.rfft(added)) ** 2 * 2 / N ** 2  # per-bin mean power
        present = [b for b in bins if power[b] > 1e-8]
        assert 3 <= len(present) <= 7
        counts.add(len(present))
        for b in present:  # each talker at 10 dB below the speech
            assert 10 * np.log10(np.mean(speech ** 2) / power[b]) == pytest.approx(10.0, abs=1e-6)
        assert power[[b for b in range(len(power)) if b not in bins]].max() < 1e-8
    assert len(counts) > 1  # the number of talkers is drawn


def test_a_file_shorter_than_the_view_repeats(tmp_path):
    short = np.random.default_rng(3).standard_normal(1000)
    sf.write(tmp_path / "s.wav", short, SR, subtype="DOUBLE")
    offsets = set()
    for seed in range(3):
        crop = augment.read_crop(str(tmp_path / "s.wav"), N, np.random.default_rng(seed), SR)
        offset = int(np.argmin([np.abs(crop[:1000] - np.roll(short, -o)).max()
                                for o in range(1000)]))
        assert np.allclose(crop, short[(offset + np.arange(N)) % 1000])
        offsets.add(offset)
    assert len(offsets) == 3  # from a random offset


def test_reverberation_with_an_rir_is_kaldis_shifted_and_renormalised_convolution(tmp_path,
                                                                                 speech):
    rir = np.zeros(800)
    rir[40], rir[40 + 160], rir[40 + 500] = 1.0, 0.5, -0.25  # direct path 40 samples in
    sf.write(tmp_path / "r.wav", rir, SR, subtype="DOUBLE")
    rirs = write_list(tmp_path / "rir.scp", [tmp_path / "r.wav"])
    got = augment.reverberate_with_rir(speech, np.random.default_rng(0), rirs, SR)
    want = np.convolve(speech, rir)[40:40 + N]  # brute force, advanced to the direct path
    want *= np.sqrt(np.sum(speech ** 2) / np.sum(want ** 2))
    assert np.abs(got - want).max() < 1e-5 * np.abs(want).max()
    delta = np.zeros(100)
    delta[7] = 0.3
    assert np.allclose(augment.convolve_rir(speech, delta), speech, atol=1e-5)


def test_augment_view_uses_the_lists_and_stays_a_function_of_the_seed(tmp_path, speech):
    # A single-tap response: reverberation with it is the identity (after the shift and
    # renormalisation), so what a view adds is the listed noise alone.
    sf.write(tmp_path / "r.wav", np.r_[np.zeros(9), 0.7, np.zeros(40)], SR, subtype="DOUBLE")
    files = [tone_file(tmp_path / f"t{b}.wav", b) for b in (50, 130)]
    rir_scp = write_list(tmp_path / "rir.scp", [tmp_path / "r.wav"])
    x = speech.astype(np.float32)
    reverb_only = AugmentConfig(noise_prob=0, reverb_prob=1, bandpass_prob=0, gain_prob=0,
                                rir_scp=rir_scp)
    assert np.allclose(augment.augment_view(x, np.random.default_rng(9), SR, reverb_only), x,
                       atol=1e-5)
    config = AugmentConfig(noise_prob=1, reverb_prob=1, bandpass_prob=0, gain_prob=0,
                           rir_scp=rir_scp,
                           noises=[NoiseSource("a", write_list(tmp_path / "a.scp", files),
                                               (5.0, 5.0))])
    a = augment.augment_view(x, np.random.default_rng(9), SR, config)
    b = augment.augment_view(x, np.random.default_rng(9), SR, config)
    assert a.dtype == np.float32 and a.shape == x.shape and np.array_equal(a, b)
    power = np.abs(np.fft.rfft(a.astype(np.float64) - speech)) ** 2 * 2 / N ** 2
    tone = 50 if power[50] > power[130] else 130
    assert 10 * np.log10(np.mean(speech ** 2) / power[tone]) == pytest.approx(5.0, abs=0.01)
    assert np.delete(power, tone).max() < 1e-6 * power[tone]
    # Without lists, the same draws as before the lists existed (the synthetic path).
    plain = AugmentConfig(noise_prob=1, reverb_prob=1, bandpass_prob=0, gain_prob=0)
    rng = np.random.default_rng(9)
    rng.random(4)
    y = reverberate(x.astype(np.float64), rng, SR, fft_dtype=np.float32)
    want = add_noise(y, rng, plain.snr_db, noise_bank(0, SR, N))
    got = augment.augment_view(x, np.random.default_rng(9), SR, plain)
    assert np.array_equal(got, want.astype(np.float32))


def test_bad_lists_name_the_file_at_fault(tmp_path, speech):
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="missing.scp: no such file"):
        augment.add_recorded_noise(speech, rng, NoiseSource("n", str(tmp_path / "missing.scp"),
                                                            (0, 5)), SR)
    (tmp_path / "pipe.scp").write_text("a sox x.wav -t wav - |\n")
    with pytest.raises(InputError, match=r"pipe.scp:1: noise and RIR lists need plain wav"):
        augment.audio_list(str(tmp_path / "pipe.scp"))
    tone_file(tmp_path / "8k.wav", 50, rate=8000)
    listed = write_list(tmp_path / "8k.scp", [tmp_path / "8k.wav"])
    with pytest.raises(InputError, match=r"8k.wav: expected non-empty 16000 Hz audio, got "
                                         r"\d+ samples at 8000 Hz"):
        augment.reverberate_with_rir(speech, rng, listed, SR)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    listed = write_list(tmp_path / "bad.scp", [tmp_path / "bad.wav"])
    with pytest.raises(InputError, match=r"bad.wav: cannot read the audio header"):
        augment.add_recorded_noise(speech, rng, NoiseSource("n", listed, (0, 5)), SR)


def test_noise_sources_parse_from_yaml_data_and_reject_bad_ranges():
    data = from_dict(DataConfig, {"augment": {"rir_scp": "data/rirs/wav.scp", "noises": [
        {"name": "babble", "wav_scp": "data/musan_speech/wav.scp", "snr_db": [13, 20],
         "count": [3, 7]}]}}, "data")
    assert data.augment.noises == [NoiseSource("babble", "data/musan_speech/wav.scp",
                                               (13.0, 20.0), (3, 7))]
    assert AugmentConfig().noises == [] and AugmentConfig().rir_scp == ""
    with pytest.raises(InputError, match=r"unknown key 'data.augment.noises\[0\].snr'"):
        from_dict(DataConfig, {"augment": {"noises": [{"name": "n", "wav_scp": "x",
                                                       "snr": [0, 5]}]}}, "data")
    with pytest.raises(InputError, match=r"noise source 'n': count \[0, 2\] must be"):
        from_dict(NoiseSource, {"name": "n", "wav_scp": "x", "snr_db": [0, 5],
                                "count": [0, 2]}, "n")
    with pytest.raises(InputError, match=r"noise source 'n': snr_db \[5.0, 0.0\] must be"):
        from_dict(NoiseSource, {"name": "n", "wav_scp": "x", "snr_db": [5, 0]}, "n")
