"""Corpus configurations: one dataclass holds every default, presets override a few."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from speechssl.errors import SpeechSSLError

ALL_LANGUAGES = ("en", "de", "es", "fr", "nl", "sw", "tn")
ALL_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f4")  # see speakers.py


@dataclass(frozen=True)
class CorpusConfig:
    num_speakers: int = 49         # 7 per language: 2 test, 1 dev, 4 train
    utts_per_speaker: int = 90
    # Dev and test speakers say fewer (None: as many): an interval over test speakers
    # narrows with more speakers, not with more of one speaker's utterances, and the
    # evaluations' time grows with the utterances.
    utts_per_eval_speaker: int | None = 40
    languages: tuple[str, ...] = ALL_LANGUAGES
    variants: tuple[str, ...] = ALL_VARIANTS
    min_words: int = 2             # words per sentence, drawn uniformly
    max_words: int = 4
    test_per_language: int = 2     # speakers (a man and a woman where the voices allow)
    dev_per_language: int = 1
    min_word_dur: float = 0.5      # same-different word segments: seconds ...
    min_word_chars: int = 5        # ... and characters
    trials_target: int = 3         # per enrollment utterance of a test speaker
    trials_nontarget: int = 4      # half of them from speakers of the same language
    augment: bool = False
    max_attempts: int = 20         # sentences tried per utterance before giving up


PRESETS = {
    "tiny": CorpusConfig(num_speakers=8, utts_per_speaker=5, utts_per_eval_speaker=None,
                         languages=("en", "de", "es"), min_words=3, max_words=5),
    "default": CorpusConfig(),
}


def get_preset(name: str, **overrides) -> CorpusConfig:
    """A preset with some fields replaced; ``None`` overrides are ignored."""
    if name not in PRESETS:
        raise SpeechSSLError(f"unknown preset '{name}'; available: {', '.join(PRESETS)}")
    config = dataclasses.replace(PRESETS[name],
                                 **{k: v for k, v in overrides.items() if v is not None})
    if config.utts_per_eval_speaker is None:
        config = dataclasses.replace(config, utts_per_eval_speaker=config.utts_per_speaker)
    check_config(config)
    return config


def check_config(c: CorpusConfig) -> None:
    if not 1 <= c.min_words <= c.max_words:
        raise SpeechSSLError(f"need 1 <= min_words <= max_words, got {c.min_words}, "
                             f"{c.max_words}")
    if c.num_speakers < 6 or min(c.utts_per_speaker, c.utts_per_eval_speaker) < 2:
        raise SpeechSSLError("need at least 6 speakers and 2 utterances each, got "
                             f"{c.num_speakers} speakers x {c.utts_per_speaker} utterances "
                             f"({c.utts_per_eval_speaker} of dev and test speakers)")
