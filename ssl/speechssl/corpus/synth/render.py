"""One utterance: a random sentence, synthesised, aligned and brought to 16 kHz.

The vocal-tract warp is folded into the 22050 -> 16000 Hz resampling: playing the voice
``warp`` times faster scales formants (and pitch and tempo) by ``warp``.  Alignments are
mapped through the same ratio, so they stay exact in output samples.  Silence is added
before and after, and the length is rounded up to whole milliseconds, so that a CTM with
millisecond times tiles each file exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from speechssl.corpus.synth.align import (
    SILENCE_PHONE,
    Alignment,
    Segment,
    align,
    merge_silences,
    silence_before_first_phoneme,
)
from speechssl.corpus.synth.espeak import PITCH, RATE, Espeak
from speechssl.corpus.synth.speakers import WARP_DOWN, Speaker
from speechssl.errors import SpeechSSLError

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050
SAMPLES_PER_MS = SAMPLE_RATE // 1000
LEAD_SILENCE = (0.05, 0.25)   # seconds, uniform
TRAIL_SILENCE = (0.05, 0.25)
PEAK_DBFS = (-6.0, -1.0)


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    spk_id: str
    lang: str
    words: tuple[str, ...]
    num_samples: int            # at SAMPLE_RATE, a multiple of SAMPLES_PER_MS
    word_segments: tuple[Segment, ...]   # in output samples
    phone_segments: tuple[Segment, ...]  # tile [0, num_samples)
    path: str


def sample_sentence(rng: np.random.Generator, vocabulary, min_words: int,
                    max_words: int) -> list[str]:
    """Distinct words drawn uniformly from the vocabulary."""
    n = int(rng.integers(min_words, max_words + 1))
    return [vocabulary[i] for i in rng.choice(len(vocabulary), size=n, replace=False)]


def set_prosody(engine: Espeak, speaker: Speaker, rng: np.random.Generator) -> None:
    """The speaker's rate and pitch with a small per-utterance jitter."""
    engine.set_parameter(RATE, round(speaker.rate * rng.uniform(0.95, 1.05)))
    engine.set_parameter(PITCH, int(np.clip(speaker.pitch + rng.integers(-3, 4), 0, 100)))


def _mapper(up: int, lead: int, raw_len: int, speech_len: int):
    """Map a sample index at 22050 Hz into the output signal (the end maps to the end)."""
    def to_output(x: int) -> int:
        return lead + (speech_len if x >= raw_len else round(x * up / WARP_DOWN))
    return to_output


def place_alignment(al: Alignment, up: int, lead: int, raw_len: int, speech_len: int,
                    total: int) -> tuple[list[Segment], list[Segment]]:
    """Word and phone segments in output samples; silence fills both ends."""
    to_out = _mapper(up, lead, raw_len, speech_len)
    phones = [Segment(0, lead, SILENCE_PHONE)]
    phones += [Segment(to_out(p.start), to_out(p.end), p.label) for p in al.phones]
    phones.append(Segment(lead + speech_len, total, SILENCE_PHONE))
    phones = merge_silences([p for p in phones if p.end > p.start])
    words = [Segment(to_out(w.start), to_out(w.end), w.label) for w in al.words]
    return words, phones


def synthesize(engine: Espeak, speaker: Speaker, words: list[str],
               rng: np.random.Generator) -> tuple[np.ndarray, list[Segment], list[Segment]]:
    """(float32 samples at 16 kHz, words, phones); raises ``Misaligned`` on a bad match."""
    if engine.sample_rate != ESPEAK_RATE:
        raise SpeechSSLError(f"espeak-ng runs at {engine.sample_rate} Hz, expected "
                             f"{ESPEAK_RATE}")
    set_prosody(engine, speaker, rng)
    raw, events = engine.synth(" ".join(words))
    raw = silence_before_first_phoneme(raw, events)
    al = align(words, events, raw, engine.sample_rate)
    speech = resample_poly(raw.astype(np.float64) / 32768.0, speaker.warp_up, WARP_DOWN)
    speech *= 10 ** (rng.uniform(*PEAK_DBFS) / 20) / max(np.abs(speech).max(), 1e-9)
    lead = round(rng.uniform(*LEAD_SILENCE) * SAMPLE_RATE)
    trail = round(rng.uniform(*TRAIL_SILENCE) * SAMPLE_RATE)
    total = -(-(lead + len(speech) + trail) // SAMPLES_PER_MS) * SAMPLES_PER_MS
    audio = np.zeros(total, np.float32)
    audio[lead:lead + len(speech)] = speech
    word_segs, phone_segs = place_alignment(al, speaker.warp_up, lead, len(raw), len(speech),
                                           total)
    return audio, word_segs, phone_segs
