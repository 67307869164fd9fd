"""Speakers: one language, one eSpeak voice variant and their own prosody and vocal tract.

Speaker ``i`` speaks language ``i mod L``; within a language, speakers alternate male and
female, so any consecutive pair of a language's speakers is one man and one woman.  Ids are
``<lang>-<variant>-s<NNN>`` (fixed width, no underscores: the same-different keys split on
``_``), and utterance ids ``<spk>-<NNNN>``, so sorting utterances also sorts speakers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from speechssl.corpus.synth.vocabulary import ESPEAK_VOICES, check_languages
from speechssl.errors import SpeechSSLError

# f2, f3 and f5 are left out: they add "breath" noise, and with libespeak-ng 1.52 their
# output then depends on the memory state of the process (an uninitialised read), so the
# same seed would not give the same bytes.  The others were checked to be reproducible.
VARIANT_GENDER = {**{f"m{i}": "m" for i in range(1, 8)}, "f1": "f", "f4": "f"}
# 22050 Hz -> 16000 Hz is 1600/2205; a vocal-tract warp w plays the voice w times faster,
# so the resampling ratio is (1600/w)/2205 and w = 1600/up.
WARP_DOWN = 2205
WARP_BASE_UP = 1600
WARP_RANGE = {"m": (0.92, 1.02), "f": (0.98, 1.08)}
PITCH_RANGE = {"m": (25, 50), "f": (50, 80)}  # eSpeak pitch, 0-100


@dataclass(frozen=True)
class Speaker:
    spk_id: str
    index: int
    lang: str
    variant: str
    gender: str        # m or f, from the variant
    pitch: int         # eSpeak 0-100
    pitch_range: int   # eSpeak 0-100
    rate: int          # words per minute
    word_gap: int      # pause between words, units of 10 ms
    warp_up: int       # resampling numerator (see WARP_DOWN)

    @property
    def voice(self) -> str:
        return f"{ESPEAK_VOICES[self.lang]}+{self.variant}"

    @property
    def warp(self) -> float:
        return WARP_BASE_UP / self.warp_up


def check_variants(variants: list[str]) -> None:
    unknown = [v for v in variants if v not in VARIANT_GENDER]
    if unknown or not variants:
        raise SpeechSSLError(f"unknown voice variant(s) {', '.join(unknown) or '(none given)'}"
                             f"; available: {', '.join(VARIANT_GENDER)}")


def _pick_variant(rng, variants, gender) -> str:
    pool = [v for v in variants if VARIANT_GENDER[v] == gender] or list(variants)
    return pool[int(rng.integers(len(pool)))]


def make_speaker(index: int, languages, variants, seed: int) -> Speaker:
    """Speaker ``index``; its parameters come from its own random stream."""
    rng = np.random.default_rng([seed, 0, index])
    lang = languages[index % len(languages)]
    variant = _pick_variant(rng, variants, "m" if (index // len(languages)) % 2 == 0 else "f")
    gender = VARIANT_GENDER[variant]
    warp = rng.uniform(*WARP_RANGE[gender])
    return Speaker(
        spk_id=f"{lang}-{variant}-s{index + 1:03d}", index=index, lang=lang, variant=variant,
        gender=gender, pitch=int(rng.integers(*PITCH_RANGE[gender])),
        pitch_range=int(rng.integers(20, 81)), rate=int(rng.integers(140, 191)),
        word_gap=int(rng.integers(0, 3)), warp_up=round(WARP_BASE_UP / warp))


def make_speakers(num: int, languages, variants, seed: int) -> list[Speaker]:
    check_languages(list(languages))
    check_variants(list(variants))
    if num > 999:
        raise SpeechSSLError(f"at most 999 speakers, got {num}")
    return [make_speaker(i, list(languages), list(variants), seed) for i in range(num)]


def split_speakers(speakers: list[Speaker], dev_fraction: float,
                   test_fraction: float) -> dict[str, list[Speaker]]:
    """Disjoint train/dev/test speakers; dev and test take whole (male, female) pairs of one
    language at a time, cycling through the languages, so each has both genders, several
    languages and same-language speaker pairs (for nontarget trials)."""
    n = len(speakers)
    n_test = max(2, 2 * math.ceil(test_fraction * n / 2))
    n_dev = max(2, 2 * math.ceil(dev_fraction * n / 2))
    if n - n_test - n_dev < 2:
        raise SpeechSSLError(f"{n} speakers are too few for {n_dev} dev and {n_test} test")
    by_lang: dict[str, list[Speaker]] = {}
    for s in speakers:
        by_lang.setdefault(s.lang, []).append(s)
    num_pairs = max(len(v) for v in by_lang.values()) // 2
    pairs = [group[2 * p:2 * p + 2] for p in range(num_pairs) for group in by_lang.values()
             if len(group) >= 2 * p + 2]
    ordered = [s for pair in pairs for s in pair]
    test, dev = ordered[:n_test], ordered[n_test:n_test + n_dev]
    taken = {s.spk_id for s in test + dev}
    train = [s for s in speakers if s.spk_id not in taken]
    return {"train": train, "dev": dev, "test": test}
