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


def split_speakers(speakers: list[Speaker], test_per_language: int, dev_per_language: int,
                   seed: int) -> dict[str, list[Speaker]]:
    """Disjoint train/dev/test speakers, drawn per language from the seed.

    In order of priority: every language keeps a training speaker; test takes one speaker
    of every language (at least two in all: trials need nontargets), then dev one speaker;
    then test grows to ``test_per_language`` per language (the second one of the other sex
    where the language has one, so each language has a same-language nontarget pair of a
    man and a woman), then dev to ``dev_per_language``; the rest train.  A small corpus
    gets what its speakers allow (the tiny preset's 8 speakers of 3 languages: 3 train, 1
    dev, and 4 test, of every language, two of one).
    """
    rng = np.random.default_rng([seed, 1])
    pools: dict[str, list[Speaker]] = {}
    for s in speakers:
        pools.setdefault(s.lang, []).append(s)
    for lang, pool in pools.items():
        pools[lang] = [pool[i] for i in rng.permutation(len(pool))]
    keep = max(1, math.ceil(2 / len(pools)))   # training speakers every language keeps
    sets: dict[str, list[Speaker]] = {"test": [], "dev": []}

    def count(name: str, lang: str) -> int:
        return sum(s.lang == lang for s in sets[name])

    def take(name: str, lang: str) -> bool:
        pool = pools[lang]
        if len(pool) <= keep:
            return False
        genders = {s.gender for s in sets[name] if s.lang == lang}
        pick = next((s for s in pool if s.gender not in genders), pool[0])
        pool.remove(pick)
        sets[name].append(pick)
        return True

    def take_at_least(name: str, num: int) -> None:
        while len(sets[name]) < num:
            lang = max(pools, key=lambda x: len(pools[x]))   # first of the largest
            if not take(name, lang):
                raise SpeechSSLError(f"{len(speakers)} speakers are too few for {num} {name} "
                                     f"speaker(s) besides {keep} training per language")

    for lang in pools:
        take("test", lang)
    take_at_least("test", 2)
    take_at_least("dev", 1)
    for name, per_language in (("test", test_per_language), ("dev", dev_per_language)):
        for lang in pools:
            while count(name, lang) < per_language and take(name, lang):
                pass
    taken = {s.spk_id for v in sets.values() for s in v}
    by_index = sorted(speakers, key=lambda s: s.index)
    return {"train": [s for s in by_index if s.spk_id not in taken],
            "dev": sorted(sets["dev"], key=lambda s: s.index),
            "test": sorted(sets["test"], key=lambda s: s.index)}
