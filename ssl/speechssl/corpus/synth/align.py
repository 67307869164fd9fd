"""Word and phone alignments from eSpeak events, exact in samples of the synthesised audio.

eSpeak reports one word event per word it speaks (at the character offset of the word in
the text) and one phoneme event per phoneme.  A phoneme runs from its event to the next
one; pauses (names starting with ``_``) become ``sil``.  Two corrections and one check:

- stop closures: eSpeak puts the silent closure of a stop before the stop's event, inside
  the preceding phoneme.  A stop starts where that closure silence (a run of exact zeros of
  at least 1 ms) starts, but never before the start of its word or of the previous phone;
- stress marks (``'`` primary, ``,`` secondary) are removed from phoneme names;
- an utterance whose word events do not match its words one to one (eSpeak merges some
  words, e.g. "of the") raises :class:`Misaligned` and must be rejected, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechssl.corpus.synth.espeak import EVENT_PHONEME, EVENT_WORD, Event

SILENCE_PHONE = "sil"
SILENCE_WORD = "<sil>"
STRESS_MARKS = "',"
MIN_CLOSURE_MS = 1.0


class Misaligned(Exception):
    """The events of an utterance cannot be matched to its words."""


@dataclass(frozen=True)
class Segment:
    start: int  # first sample
    end: int    # one past the last sample
    label: str


@dataclass(frozen=True)
class Alignment:
    words: list[Segment]   # spoken words in order (no silences)
    phones: list[Segment]  # tiles [0, num_samples) exactly, pauses as 'sil'


def word_offsets(words: list[str]) -> list[int]:
    """1-based character offsets of ``words`` in ``' '.join(words)`` (eSpeak's positions).

    >>> word_offsets(["garden", "table"])
    [1, 8]
    """
    offsets, pos = [], 1
    for w in words:
        offsets.append(pos)
        pos += len(w) + 1
    return offsets


def phone_label(name: str) -> str:
    """``'a`` -> ``a``; any pause (``_``, ``_:``, ``_!``) -> ``sil``."""
    if name.startswith("_"):
        return SILENCE_PHONE
    return name.lstrip(STRESS_MARKS) or SILENCE_PHONE


def silence_before_first_phoneme(audio: np.ndarray, events: list[Event]) -> np.ndarray:
    """Zero what precedes the first phoneme event: the closure of an utterance-initial stop,
    where eSpeak can leave a faint ring of its filters from the previous utterance."""
    first = next((e.sample for e in events if e.type == EVENT_PHONEME), 0)
    audio = audio.copy()
    audio[:first] = 0
    return audio


def check_word_events(words: list[str], events: list[Event]) -> dict[int, int]:
    """Map each word's character offset to its index, if the word events match one to one."""
    expected = word_offsets(words)
    found = [e.text_position for e in events if e.type == EVENT_WORD]
    if found != expected:
        raise Misaligned(f"{len(found)} word events at characters {found} "
                         f"for {len(words)} words at {expected}")
    return {pos: i for i, pos in enumerate(expected)}


def _raw_phones(events: list[Event], audio: np.ndarray,
                num_samples: int) -> list[tuple[int, int, str, int]]:
    """(start, end, label, text_position) per phoneme event, empty ones dropped."""
    phonemes = [e for e in events if e.type == EVENT_PHONEME and e.sample < num_samples]
    bounds = [min(e.sample, num_samples) for e in phonemes] + [num_samples]
    if not phonemes:
        raise Misaligned("no phoneme events")
    if np.any(audio[:bounds[0]]):
        raise Misaligned(f"sound before the first phoneme event (sample {bounds[0]})")
    bounds[0] = 0  # an utterance-initial stop: its closure is the silence before its event
    return [(bounds[i], bounds[i + 1], phone_label(e.name), e.text_position)
            for i, e in enumerate(phonemes) if bounds[i + 1] > bounds[i]]


def _zero_run_start(audio: np.ndarray, end: int) -> int:
    """First index of the run of exact zeros that ends just before ``end``."""
    nonzero = np.flatnonzero(audio[:end])
    return int(nonzero[-1]) + 1 if nonzero.size else 0


def _closure_start(audio, phones, i, word_start, min_run) -> int:
    """Where phone ``i`` starts once the silent closure before its event is given to it."""
    start = phones[i][0]
    run_start = _zero_run_start(audio, start)
    if start - run_start < min_run:
        return start
    lower = phones[i - 1][0] + 1
    if phones[i - 1][2] == SILENCE_PHONE:
        lower = max(lower, min(word_start, start))
    return max(run_start, lower)


def align(words: list[str], events: list[Event], audio: np.ndarray,
          sample_rate: int) -> Alignment:
    """Word and phone segments of one synthesised utterance; raises :class:`Misaligned`.

    ``audio`` should have passed through :func:`silence_before_first_phoneme`."""
    word_index = check_word_events(words, events)
    word_event_sample = {e.text_position: e.sample for e in events if e.type == EVENT_WORD}
    phones = [list(p) for p in _raw_phones(events, audio, len(audio))]
    min_run = int(sample_rate * MIN_CLOSURE_MS / 1000)
    owner: list[int | None] = []
    for i, (_, _, label, pos) in enumerate(phones):
        if label == SILENCE_PHONE:
            owner.append(None)
            continue
        if pos not in word_index:
            raise Misaligned(f"phoneme '{label}' belongs to no word (character {pos})")
        owner.append(word_index[pos])
        if i > 0:
            new_start = _closure_start(audio, phones, i, word_event_sample[pos], min_run)
            phones[i - 1][1] = phones[i][0] = new_start
    return _collect(words, phones, owner)


def _collect(words, phones, owner) -> Alignment:
    spans: dict[int, list[int]] = {}
    last = -1
    for (start, end, _, _), k in zip(phones, owner, strict=True):
        if k is None:
            continue
        if k < last:
            raise Misaligned(f"phonemes of word {k} ('{words[k]}') come after word {last}")
        last = k
        spans.setdefault(k, [start, end])[1] = end
    missing = [words[k] for k in range(len(words)) if k not in spans]
    if missing:
        raise Misaligned(f"no phonemes for words {missing}")
    word_segs = [Segment(spans[k][0], spans[k][1], words[k]) for k in range(len(words))]
    return Alignment(word_segs, merge_silences(
        [Segment(s, e, lab) for s, e, lab, _ in phones if e > s]))


def merge_silences(phones: list[Segment]) -> list[Segment]:
    """Join adjacent ``sil`` segments into one."""
    out: list[Segment] = []
    for p in phones:
        if out and p.label == SILENCE_PHONE and out[-1].label == SILENCE_PHONE:
            out[-1] = Segment(out[-1].start, p.end, SILENCE_PHONE)
        else:
            out.append(p)
    return out
