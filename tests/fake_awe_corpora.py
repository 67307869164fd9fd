"""Fake Buckeye and ZeroSpeech 2015 Xitsonga corpora, laid out as the real ones, built from
the tiny espeak corpus (tests/corpus_fixtures.py), whose words.ctm gives exact word times.

- Buckeye: ``buckeye/sNN/sNNMMx.wav`` (a speaker's tiny utterances joined into two
  sessions, ``01a`` and ``01b``) and ``english.wrd`` with SIL lines for the pauses, one word
  per speaker replaced by SPN, a gap with no line at all between the utterances of session
  ``01b``, and one session cut right after its last word (no room for the collar).  Two
  speakers of each language go to devpart1, devpart2 and zs; the others to no set.
- Xitsonga: ``xitsonga_wavs/nchlt_tso_NNNg_NNNN.wav`` (one tiny utterance each) and
  ``xitsonga.wrd`` with words only (no SIL), one word line left out (a gap), and one wav
  without alignments.

Each comes with its truth: the speech regions the recipe must cut, found here from the
construction (the tiny corpus's ``<sil>`` entries, the SPN word, the left-out lines).
:func:`copy_recipe` gives a copy of egs/buckeye or egs/xitsonga with tiny model configs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from conftest import ROOT
from speechssl.data.ctm import read_ctm

BUCKEYE_SPEAKERS = {"devpart1": ("s02", "s03"), "devpart2": ("s17", "s18"),
                    "zs": ("s01", "s20"), None: ("s07", "s09")}
LANGUAGE_OF_SET = {"devpart1": "de", "devpart2": "en", "zs": "es"}
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Region:
    """A speech region the recipe must find: words (label, start ms, end ms) of a file."""

    rec: str
    words: tuple[tuple[str, int, int], ...]

    @property
    def start_ms(self) -> int:
        return self.words[0][1]

    @property
    def end_ms(self) -> int:
        return self.words[-1][2]


@dataclass
class FakeCorpus:
    root: Path                                   # the folder the recipe option names
    alignments: Path
    regions: list[Region] = field(default_factory=list)
    durations_ms: dict[str, int] = field(default_factory=dict)   # per recording
    speakers: dict[str, str] = field(default_factory=dict)       # recording -> speaker


@dataclass
class _Utt:
    """A tiny-corpus utterance: samples and its CTM entries (label, start ms, end ms)."""

    samples: np.ndarray
    entries: list[tuple[str, int, int]]


def tiny_utterances(tiny: Path) -> dict[str, dict[str, _Utt]]:
    """speaker -> utterance -> samples and word tiling, from all sets of the tiny corpus."""
    out: dict[str, dict[str, _Utt]] = {}
    for ctm in sorted((tiny / "data").glob("*/words.ctm")):
        for utt, entries in read_ctm(ctm).items():
            spk = utt.rsplit("-", 1)[0]
            samples, rate = sf.read(tiny / "wav" / spk / f"{utt}.wav", dtype="int16")
            assert rate == SAMPLE_RATE
            out.setdefault(spk, {})[utt] = _Utt(samples, [
                (e.token, round(e.start * 1000), round(e.end * 1000)) for e in entries])
    return {spk: dict(sorted(utts.items())) for spk, utts in sorted(out.items())}


def runs(entries: list[tuple[str, int, int]]) -> list[tuple[tuple[str, int, int], ...]]:
    """The word runs between non-words (<sil>, SIL, SPN) and skipped lines (None)."""
    out, current = [], []
    for e in entries:
        if e is None or e[0] in ("<sil>", "SIL", "SPN"):
            if current:
                out.append(tuple(current))
            current = []
        else:
            current.append(e)
    if current:
        out.append(tuple(current))
    return out


def _wrd_line(rec: str, label: str, start: int, end: int) -> str:
    return f"{rec} {start / 1000:.3f} {end / 1000:.3f} {label}\n"


def _session(utts: list[_Utt], spn: bool, skip_gap: bool, cut_end: bool,
             ) -> tuple[np.ndarray, list]:
    """Join utterances into one recording; returns samples and its entries (None marks a
    left-out line). ``spn``: the first utterance's second word becomes SPN; ``skip_gap``:
    no lines for the pauses between utterances; ``cut_end``: the audio ends with the last
    word (its trailing pause is cut off and has no line)."""
    samples, entries, offset = [], [], 0
    for i, u in enumerate(utts):
        shifted = [(lab, s + offset, e + offset) for lab, s, e in u.entries]
        words = [j for j, x in enumerate(shifted) if x[0] != "<sil>"]
        if spn and i == 0:
            lab, s, e = shifted[words[1]]
            shifted[words[1]] = ("SPN", s, e)
        if skip_gap:
            shifted = [None if x[0] == "<sil>" and k in (0, len(shifted) - 1) else x
                       for k, x in enumerate(shifted)]
        entries += [x if x is None or x[0] != "<sil>" else ("SIL", *x[1:]) for x in shifted]
        samples.append(u.samples)
        offset += round(u.samples.size * 1000 / SAMPLE_RATE)
    audio = np.concatenate(samples)
    if cut_end:
        while entries[-1] is None or entries[-1][0] == "SIL":
            entries.pop()
        audio = audio[:entries[-1][2] * SAMPLE_RATE // 1000]
    return audio, entries


def make_fake_buckeye(tiny: Path, dest: Path) -> FakeCorpus:
    """``dest/buckeye/sNN/sNNMMx.wav`` and ``dest/english.wrd`` (see the module docstring)."""
    utts = tiny_utterances(tiny)
    corpus = FakeCorpus(dest / "buckeye", dest / "english.wrd")
    by_lang: dict[str, list[str]] = {}
    for spk in utts:
        by_lang.setdefault(spk.split("-")[0], []).append(spk)
    assignment = {}
    for name, bspks in BUCKEYE_SPEAKERS.items():
        for k, bspk in enumerate(bspks):
            lang = LANGUAGE_OF_SET[name] if name else ("de", "en")[k]
            assignment[bspk] = by_lang[lang].pop(0)
    lines = []
    for bspk, tspk in sorted(assignment.items()):
        tutts = list(utts[tspk].values())
        for session, part in (("01a", tutts[:3]), ("01b", tutts[3:])):
            rec = f"{bspk}{session}"
            audio, entries = _session(part, spn=session == "01a", skip_gap=session == "01b",
                                      cut_end=(bspk, session) == ("s17", "01b"))
            path = corpus.root / bspk / f"{rec}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
            corpus.durations_ms[rec] = audio.size * 1000 // SAMPLE_RATE
            corpus.speakers[rec] = bspk
            corpus.regions += [Region(rec, r) for r in runs(entries)]
            lines += [_wrd_line(rec, *x) for x in entries if x is not None]
    corpus.alignments.write_text("".join(lines))
    return corpus


def make_fake_xitsonga(tiny: Path, dest: Path) -> FakeCorpus:
    """``dest/xitsonga_wavs/nchlt_tso_NNNg_NNNN.wav`` and ``dest/xitsonga.wrd``."""
    utts = tiny_utterances(tiny)
    corpus = FakeCorpus(dest / "xitsonga_wavs", dest / "xitsonga.wrd")
    corpus.root.mkdir(parents=True)
    lines = []
    for n, (tspk, tutts) in enumerate(utts.items(), start=1):
        spk = f"{n:03d}{tspk.split('-')[1][0]}"      # en-f1-s004 -> 00Nf
        for k, u in enumerate(tutts.values(), start=1):
            rec = f"nchlt_tso_{spk}_{7 * k:04d}"
            sf.write(corpus.root / f"{rec}.wav", u.samples, SAMPLE_RATE, subtype="PCM_16")
            corpus.durations_ms[rec] = u.samples.size * 1000 // SAMPLE_RATE
            corpus.speakers[rec] = spk
            # Xitsonga alignments have no silence lines: pauses are plain gaps.
            entries = [None if lab == "<sil>" else (lab, s, e) for lab, s, e in u.entries]
            if n == 1 and k == 1:    # a word line left out: one more gap
                words = [j for j, x in enumerate(entries) if x is not None]
                entries[words[1]] = None
            corpus.regions += [Region(rec, r) for r in runs(entries)]
            lines += [_wrd_line(rec, *x) for x in entries if x is not None]
    # A recording without alignments, as the real set has (it is counted, not used).
    sf.write(corpus.root / "nchlt_tso_099m_0001.wav", np.zeros(8000, np.int16), SAMPLE_RATE,
             subtype="PCM_16")
    corpus.alignments.write_text("".join(lines))
    return corpus


# The recipes' configs with tiny networks and 10 steps, so that a test trains in seconds.
SHRINK = {
    "apc": {"model": {"hidden": 32}, "data": {"crop_frames": 300, "batch_frames": 2000}},
    "cpc": {"model": {"enc_hidden": 32, "c_dim": 32},
            "data": {"crop_frames": 300, "batch_frames": 2000}},
    "capc": {"model": {"hidden": 32}, "data": {"min_word_frames": 30, "batch_frames": 1500}},
    "cae": {"model": {"ae_steps": 5}, "data": {"min_word_frames": 30, "batch_frames": 1500}},
}
STEPS = 10
AWE_SHRINK = {"model": {"enc_layers": 1, "enc_hidden": 16, "dec_layers": 1, "dec_hidden": 16,
                        "embed_dim": 8},
              "data": {"min_word_frames": 30},
              "train": {"ae_epochs": 1, "cae_epochs": 1, "ae_batch_size": 16,
                        "cae_batch_size": 16}}


def shrink(path: Path, changes: dict, steps: int | None = None) -> None:
    conf = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        conf[section].update(values)
    if steps:
        conf["data"]["num_workers"] = 0
        conf["train"].update(max_steps=steps, checkpoint_every=steps, log_every=1)
    path.write_text(yaml.safe_dump(conf))


def copy_recipe(name: str, dest: Path) -> Path:
    """A copy of egs/<name> (run.sh, cmd.sh, conf/ with shrunk configs) linking to this
    checkout's path.sh, steps, utils and local."""
    shutil.copy(ROOT / "egs" / name / "run.sh", dest / "run.sh")
    shutil.copy(ROOT / "egs" / name / "cmd.sh", dest / "cmd.sh")
    shutil.copytree(ROOT / "egs" / name / "conf", dest / "conf")
    for link in ("path.sh", "steps", "utils", "local"):
        (dest / link).symlink_to(ROOT / link)
    for method, changes in SHRINK.items():
        shrink(dest / "conf" / f"{method}.yaml", changes, STEPS)
    shrink(dest / "conf" / "awe.yaml", AWE_SHRINK)
    return dest
