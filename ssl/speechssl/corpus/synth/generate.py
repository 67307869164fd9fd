"""Builds the whole corpus: one worker process per speaker, then the data directories.

Determinism: every speaker is synthesised in a fresh process (eSpeak's global state leaks
from one utterance to the next), in a fixed order, from random streams seeded by
``(seed, stream, speaker index[, utterance])``; so the same seed gives byte-identical wavs
whatever ``nj`` is.  Streams: 0 speaker parameters, 1 sentences and prosody, 2
augmentation, 3 trials.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechssl.corpus.synth import data_dirs
from speechssl.corpus.synth.align import Misaligned, align, silence_before_first_phoneme
from speechssl.corpus.synth.distort import augment
from speechssl.corpus.synth.espeak import RANGE, WORDGAP, Espeak, load_loader
from speechssl.corpus.synth.presets import CorpusConfig
from speechssl.corpus.synth.render import SAMPLE_RATE, Utterance, sample_sentence, synthesize
from speechssl.corpus.synth.speakers import Speaker, make_speakers, split_speakers
from speechssl.corpus.synth.vocabulary import ESPEAK_VOICES, VOCABULARY
from speechssl.data.table import write_table
from speechssl.data.trials import write_trials
from speechssl.data.write import staged_dir
from speechssl.errors import SpeechSSLError
from speechssl.fileio import atomic_write

log = logging.getLogger(__name__)
SETS = ("train", "dev", "test")
# fileio.atomic_write's temporary for <utt>.wav: ".<utt>.wav.<mkstemp's 8 characters>.tmp"
TEMPORARY_WAV = re.compile(r"\..+\.wav\.[a-z0-9_]{8}\.tmp")


@dataclass(frozen=True)
class Rejection:
    utt_id: str
    words: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class SpeakerJob:
    speaker: Speaker
    config: CorpusConfig
    seed: int
    wav_dir: str
    num_utts: int


def write_wav(path: Path, audio: np.ndarray) -> None:
    """16-bit PCM, written to a temporary name and renamed."""
    pcm = np.clip(np.round(audio.astype(np.float64) * 32767), -32768, 32767).astype(np.int16)
    with atomic_write(path, "wb") as f:
        sf.write(f, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def remove_stale_temporaries(wav_dir: Path) -> list[Path]:
    """Remove the temporary wavs that a killed generation left in ``<wav_dir>/<spk>/``:
    hidden, never renamed, they would stay forever.  Only files named as write_wav's
    temporaries are touched."""
    stale = [p for p in sorted(Path(wav_dir).glob("*/.*.tmp"))
             if TEMPORARY_WAV.fullmatch(p.name) and p.is_file()]
    for path in stale:
        path.unlink()
    if stale:
        log.warning("removed %d temporary wavs of an interrupted generation, e.g. %s",
                    len(stale), stale[0])
    return stale


def open_engine(speaker: Speaker) -> Espeak:
    engine = Espeak()
    engine.set_voice(speaker.voice)
    engine.set_parameter(RANGE, speaker.pitch_range)
    engine.set_parameter(WORDGAP, speaker.word_gap)
    return engine


def synth_speaker(job: SpeakerJob) -> tuple[list[Utterance], list[Rejection]]:
    """All utterances of one speaker (run in a fresh process)."""
    spk, c = job.speaker, job.config
    engine = open_engine(spk)
    text_rng = np.random.default_rng([job.seed, 1, spk.index])
    vocab = VOCABULARY[spk.lang]
    utts, rejected = [], []
    for n in range(1, job.num_utts + 1):
        utt_id = f"{spk.spk_id}-{n:04d}"
        for _ in range(c.max_attempts):
            words = sample_sentence(text_rng, vocab, c.min_words, c.max_words)
            try:
                audio, word_segs, phone_segs = synthesize(engine, spk, words, text_rng)
                break
            except Misaligned as e:
                rejected.append(Rejection(utt_id, tuple(words), str(e)))
        else:
            raise SpeechSSLError(f"{utt_id}: {c.max_attempts} sentences in a row misaligned")
        if c.augment:
            audio = augment(audio, np.random.default_rng([job.seed, 2, spk.index, n]),
                            SAMPLE_RATE)
        path = (Path(job.wav_dir) / spk.spk_id / f"{utt_id}.wav").resolve()
        write_wav(path, audio)
        utts.append(Utterance(utt_id, spk.spk_id, spk.lang, tuple(words), len(audio),
                              tuple(word_segs), tuple(phone_segs), str(path)))
    return utts, rejected


def isolated_pronunciations(lang: str) -> dict[str, tuple[str, ...]]:
    """Each vocabulary word of ``lang`` spoken alone by the plain voice (in its own process)."""
    engine = Espeak()
    engine.set_voice(ESPEAK_VOICES[lang])
    prons = {}
    for word in VOCABULARY[lang]:
        raw, events = engine.synth(word)
        raw = silence_before_first_phoneme(raw, events)
        try:
            al = align([word], events, raw, engine.sample_rate)
        except Misaligned:
            continue  # the corpus's own pronunciations still go into the lexicon
        prons[word] = tuple(p.label for p in al.phones if p.label != data_dirs.SILENCE_PHONE)
    return prons


def _run_job(job):
    if isinstance(job, SpeakerJob):
        return synth_speaker(job)
    return isolated_pronunciations(job)


def run_jobs(jobs: list, nj: int) -> list:
    """Each job in a fresh process (``maxtasksperchild=1``), results in job order."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "scipy.signal", "soundfile",
                                "speechssl.corpus.synth.generate"])
    with ctx.Pool(max(1, nj), maxtasksperchild=1) as pool:
        return list(pool.imap(_run_job, jobs, chunksize=1))


def observed_pronunciations(utts: list[Utterance]) -> dict[str, set[tuple[str, ...]]]:
    """The phones inside each word token, as spoken in the corpus."""
    prons: dict[str, set[tuple[str, ...]]] = {}
    for u in utts:
        for w in u.word_segments:
            phones = tuple(p.label for p in u.phone_segments
                           if w.start <= p.start < w.end and p.label != data_dirs.SILENCE_PHONE)
            prons.setdefault(w.label, set()).add(phones)
    return prons


def speaker_table(splits: dict[str, list[Speaker]]) -> dict[str, str]:
    return {s.spk_id: f"set={name} lang={s.lang} gender={s.gender} voice={s.voice} "
                      f"pitch={s.pitch} range={s.pitch_range} rate={s.rate} "
                      f"word_gap={s.word_gap} warp={s.warp:.4f}"
            for name, spks in splits.items() for s in spks}


def write_set(out: Path, name: str, utts: list[Utterance], speakers: list[Speaker],
              config: CorpusConfig, seed: int) -> dict[str, int]:
    """One data directory, written in one piece; returns counts for the summary."""
    counts = {f"{name}_speakers": len(speakers), f"{name}_utterances": len(utts),
              f"{name}_seconds": round(sum(u.num_samples for u in utts) / SAMPLE_RATE)}
    with staged_dir(out) as tmp:
        data_dirs.write_data_dir(tmp, utts, speakers)
        data_dirs.write_ctms(tmp, utts)
        if name in ("dev", "test"):
            counts[f"{name}_samediff_words"] = data_dirs.write_samediff(
                tmp, utts, config.min_word_dur, config.min_word_chars)
        if name == "test":
            trials = data_dirs.make_trials(utts, seed, config.trials_target,
                                        config.trials_nontarget)
            write_trials(tmp / "trials", trials)
            counts["test_trials_target"] = sum(t.target for t in trials)
            counts["test_trials_nontarget"] = sum(not t.target for t in trials)
    return counts


def write_rejections(path: Path, rejected: list[Rejection]) -> None:
    """One line per rejected sentence: ``<utt-id> <reason> :: <words>``."""
    with atomic_write(path) as f:
        for r in rejected:
            f.write(f"{r.utt_id} {r.reason} :: {' '.join(r.words)}\n")


def generate_corpus(config: CorpusConfig, seed: int, nj: int, wav_dir: Path,
                    data_dir: Path) -> dict[str, int]:
    """Synthesise the corpus into ``wav_dir`` and write ``data_dir``; returns the summary."""
    remove_stale_temporaries(wav_dir)
    load_loader()  # fail before starting workers if libespeak-ng is missing
    speakers = make_speakers(config.num_speakers, config.languages, config.variants, seed)
    splits = split_speakers(speakers, config.test_per_language, config.dev_per_language,
                            seed)
    evaluated = {s.spk_id for name in ("dev", "test") for s in splits[name]}
    jobs = [SpeakerJob(s, config, seed, str(wav_dir),
                       config.utts_per_eval_speaker if s.spk_id in evaluated
                       else config.utts_per_speaker) for s in speakers]
    results = run_jobs(jobs + list(config.languages), nj)
    utts_of = {s.spk_id: r[0] for s, r in zip(speakers, results[:len(speakers)], strict=True)}
    rejected = [x for r in results[:len(speakers)] for x in r[1]]
    all_utts = [u for s in speakers for u in utts_of[s.spk_id]]
    lexicon = observed_pronunciations(all_utts)
    for prons in results[len(speakers):]:
        for word, pron in prons.items():
            lexicon.setdefault(word, set()).add(pron)
    summary = {"speakers": len(speakers), "utterances": len(all_utts),
               "rejected_sentences": len(rejected)}
    for name in SETS:
        spks = splits[name]
        utts = [u for s in spks for u in utts_of[s.spk_id]]
        summary.update(write_set(data_dir / name, name, utts, spks, config, seed))
    summary["phones"] = len(data_dirs.write_lexicon(data_dir / "local" / "dict", lexicon))
    write_table_files(data_dir, config, seed, splits, rejected, summary)
    for r in rejected:
        log.warning("rejected a sentence for %s (%s): %s", r.utt_id, r.reason, " ".join(r.words))
    return summary


def write_table_files(data_dir: Path, config: CorpusConfig, seed: int, splits, rejected,
                      summary: dict[str, int]) -> None:
    """The corpus-level files: speakers, rejections, summary and the resolved config."""
    write_table(data_dir / "speakers", speaker_table(splits))
    write_rejections(data_dir / "rejected_sentences", rejected)
    write_table(data_dir / "summary", {k: str(v) for k, v in summary.items()},
                       sort=False)
    data_dirs.write_text(data_dir / "corpus_config.json",
                      json.dumps({"seed": seed, **dataclasses.asdict(config)}, indent=2) + "\n")
