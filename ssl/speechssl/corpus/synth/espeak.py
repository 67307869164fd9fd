"""A minimal ctypes binding to libespeak-ng from the ``espeakng-loader`` wheel.

Only what the corpus needs: synchronous synthesis into memory with word (type 1) and
phoneme (type 7) events.  The library keeps global state that leaks from one utterance to
the next (intonation, voice tables), so a process should synthesise one speaker only and
always in the same order; ``generate.py`` runs one process per speaker.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from speechssl.errors import SpeechSSLError

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_END = 5
EVENT_PHONEME = 7
POS_CHARACTER = 1
CHARS_UTF8 = 1
# espeak_PARAMETER
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h (the union is 8 bytes on 64-bit platforms)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Event:
    """One synthesis event: ``sample`` counts samples from the start of the utterance.

    ``text_position`` is the 1-based character offset of the word in the input text;
    ``name`` is the phoneme mnemonic for phoneme events, '' otherwise.
    """

    type: int
    text_position: int
    length: int
    sample: int
    name: str


def load_loader():
    """Import ``espeakng_loader`` or fail with the command that installs it."""
    try:
        import espeakng_loader
    except ImportError:
        raise SpeechSSLError("the embedded corpus needs libespeak-ng from the Python package "
                             "espeakng-loader: pip install espeakng-loader") from None
    return espeakng_loader


def _phoneme_name(raw: bytes) -> str:
    """The union holds up to 8 bytes, zero-terminated only when shorter."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


class Espeak:
    """The synthesiser of this process: ``synth(text)`` returns int16 audio and events."""

    def __init__(self):
        loader = load_loader()
        self.lib = ctypes.CDLL(loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                          ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                          ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, loader.get_data_path().encode(),
            INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise SpeechSSLError(f"espeak_Initialize failed (returned {self.sample_rate})")
        self._chunks: list[np.ndarray] = []
        self._events: list[Event] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            e = events[i]
            name = _phoneme_name(bytes(e.id)) if e.type == EVENT_PHONEME else ""
            self._events.append(Event(e.type, e.text_position, e.length, e.sample, name))
            i += 1
        return 0

    def set_voice(self, name: str) -> None:
        """``name`` is a language voice with an optional variant, e.g. ``en+m3``."""
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise SpeechSSLError(f"espeak-ng has no voice '{name}'")

    def set_parameter(self, parameter: int, value: int) -> None:
        self.lib.espeak_SetParameter(parameter, int(value), 0)

    def synth(self, text: str) -> tuple[np.ndarray, list[Event]]:
        """Synthesise ``text``: (int16 samples at ``sample_rate``, events in order)."""
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8,
                                       None, None)
        if status != 0:
            raise SpeechSSLError(f"espeak_Synth failed (status {status}) on '{text}'")
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events
