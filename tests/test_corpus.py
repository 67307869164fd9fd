"""The embedded corpus: alignments, determinism, data-dir contract and a speaker baseline."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from corpus_fixtures import (  # noqa: F401 (the fixtures are used by name)
    TINY_SEED,
    generate,
    tiny_corpus_augmented_fixture,
    tiny_corpus_fixture,
)
from speechssl.augment import BAND_HIGH_HZ, BAND_LOW_HZ, GAIN_DB, add_noise, room_response
from speechssl.corpus.synth.align import Misaligned, align, silence_before_first_phoneme
from speechssl.corpus.synth.data_dirs import make_trials
from speechssl.corpus.synth.distort import augment
from speechssl.corpus.synth.espeak import Espeak, Event, load_loader
from speechssl.corpus.synth.generate import TEMPORARY_WAV, generate_corpus
from speechssl.corpus.synth.presets import PRESETS
from speechssl.corpus.synth.render import Utterance
from speechssl.corpus.synth.speakers import make_speakers, split_speakers
from speechssl.corpus.synth.vocabulary import VOCABULARY
from speechssl.data.ctm import read_ctm
from speechssl.data.table import read_list_table, read_table
from speechssl.data.trials import read_trials
from speechssl.errors import SpeechSSLError
from speechssl.fileio import atomic_write

SETS = ("train", "dev", "test")
TABLES = ("wav.scp", "utt2spk", "text", "utt2lang", "utt2dur")


def data(root: Path, name: str = "") -> Path:
    return root / "data" / name


def all_utts(root: Path) -> dict[str, str]:
    return {k: v for s in SETS for k, v in read_table(data(root, s) / "wav.scp").items()}


# ---------------------------------------------------------------- vocabulary and speakers

def test_vocabulary_is_large_and_unshared():
    seen: dict[str, str] = {}
    for lang, words in VOCABULARY.items():
        assert len(set(words)) >= 40, lang
        for w in words:
            assert w == w.lower() and w.isalpha(), (lang, w)  # no '_' '-' or spaces
            assert w not in seen, f"'{w}' in both {seen.get(w)} and {lang}"
            seen[w] = lang


@pytest.mark.parametrize("seed", [0, 1, 977])
@pytest.mark.parametrize("preset", ["default", "tiny"])
def test_split_covers_every_language_in_test(preset, seed):
    c = PRESETS[preset]
    speakers = make_speakers(c.num_speakers, c.languages, c.variants, seed=seed)
    sets = split_speakers(speakers, c.test_per_language, c.dev_per_language, seed)
    ids = [s.spk_id for v in sets.values() for s in v]
    assert len(ids) == len(set(ids)) == c.num_speakers
    assert len({len(i) for i in ids}) == 1, "speaker ids must have a fixed width"
    assert {s.lang for s in sets["train"]} == set(c.languages)
    assert {s.lang for s in sets["test"]} == set(c.languages)
    assert len(sets["dev"]) >= 1
    per_language = {lang: [s for s in sets["test"] if s.lang == lang] for lang in c.languages}
    if preset == "default":   # 7 speakers of each language: 2 test, a man and a woman
        assert all(len(v) == 2 for v in per_language.values())
        assert all({s.gender for s in v} == {"m", "f"} for v in per_language.values())
        assert {s.lang for s in sets["dev"]} == set(c.languages)
        assert len(sets["train"]) == 28
    else:   # 8 speakers of 3 languages: one training speaker each, 1 dev, 4 test
        assert sorted(len(v) for v in per_language.values()) == [1, 1, 2]
        assert (len(sets["train"]), len(sets["dev"])) == (3, 1)


def test_split_changes_with_the_seed():
    c = PRESETS["default"]
    tests = []
    for seed in (0, 1):
        speakers = make_speakers(c.num_speakers, c.languages, c.variants, seed=seed)
        sets = split_speakers(speakers, c.test_per_language, c.dev_per_language, seed)
        tests.append({s.index for s in sets["test"]})
    assert tests[0] != tests[1]


def test_split_of_one_language_keeps_two_training_speakers():
    speakers = make_speakers(6, ("en",), ("m1", "f1"), seed=0)
    sets = split_speakers(speakers, 2, 1, seed=0)
    assert [len(sets[x]) for x in ("train", "dev", "test")] == [3, 1, 2]
    with pytest.raises(SpeechSSLError, match="4 speakers are too few for 1 dev"):
        split_speakers(speakers[:4], 2, 1, seed=0)


def test_half_the_nontargets_share_the_language():
    utts = [Utterance(f"{spk}-{i:04d}", spk, spk[:2], ("w",), 16000, (), (), "")
            for spk in ("en-m1-s001", "en-f1-s002", "de-m1-s003", "de-f1-s004")
            for i in range(6)]
    trials = make_trials(utts, seed=0, num_target=3, num_nontarget=4)
    lang = {u.utt_id: u.lang for u in utts}
    nontarget = [t for t in trials if not t.target]
    same = sum(lang[t.enroll] == lang[t.test] for t in nontarget)
    assert 0.35 < same / len(nontarget) < 0.65
    assert sum(t.target for t in trials) >= 3 * len(utts) // 2


def test_voice_warps_stay_in_range():
    c = PRESETS["default"]
    warps = [s.warp for s in make_speakers(c.num_speakers, c.languages, c.variants, seed=3)]
    assert 0.91 < min(warps) and max(warps) < 1.09


def test_unknown_language_lists_available():
    with pytest.raises(SpeechSSLError, match="unknown language.*xx.*available: de, en"):
        make_speakers(8, ("en", "xx"), ("m1", "f1"), seed=0)


def test_unknown_voice_lists_available():
    with pytest.raises(SpeechSSLError, match="unknown voice variant.*robot.*available: m1"):
        make_speakers(8, ("en",), ("m1", "robot"), seed=0)


def test_cli_rejects_unknown_language(tmp_path):
    with pytest.raises(SpeechSSLError, match="available"):
        generate(tmp_path, "--languages", "en,klingon")


def test_missing_loader_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import now fails
    with pytest.raises(SpeechSSLError, match="pip install espeakng-loader"):
        load_loader()
    with pytest.raises(SpeechSSLError, match="pip install espeakng-loader"):
        generate(tmp_path)


# ---------------------------------------------------------------- alignment from events

def _events(table_position: int) -> list[Event]:
    """'of the table' as eSpeak says it: 'the' merged into 'of', no word event of its own."""
    return [Event(1, 1, 2, 0, ""), Event(7, 1, 0, 0, "0"), Event(7, 1, 0, 10, "v"),
            Event(7, 1, 0, 20, "D"), Event(7, 1, 0, 30, "@"),
            Event(1, table_position, 5, 40, ""), Event(7, table_position, 0, 40, "t"),
            Event(7, table_position, 0, 50, "_")]


def test_word_events_must_match_words():
    audio = np.ones(60, np.int16)
    with pytest.raises(Misaligned, match="2 word events .* for 3 words"):
        align(["of", "the", "table"], _events(8), audio, 22050)
    good = align(["of", "table"], _events(4), audio, 22050)
    assert [(w.start, w.end) for w in good.words] == [(0, 40), (40, 50)]
    assert [p.label for p in good.phones] == ["0", "v", "D", "@", "t", "sil"]


def test_stop_takes_its_closure_silence():
    # a vowel, 30 zeros of closure, then the burst of 't' (its event)
    audio = np.concatenate([np.ones(50), np.zeros(30), np.ones(40)]).astype(np.int16)
    events = [Event(1, 1, 2, 0, ""), Event(7, 1, 0, 0, "'a"), Event(7, 1, 0, 80, "t")]
    al = align(["at"], events, audio, 22050)
    assert [(p.start, p.end, p.label) for p in al.phones] == [(0, 50, "a"), (50, 120, "t")]


def test_espeak_merge_is_rejected():
    engine = Espeak()
    engine.set_voice("en-us")
    raw, events = engine.synth("of the table")
    with pytest.raises(Misaligned):
        align(["of", "the", "table"], events, silence_before_first_phoneme(raw, events), 22050)


# ---------------------------------------------------------------- the generated tiny corpus

def test_data_dirs_are_sorted_and_consistent(tiny_corpus):
    speakers = []
    for name in SETS:
        d = data(tiny_corpus, name)
        tables = {t: read_table(d / t) for t in TABLES}  # read_table checks C order
        utts = list(tables["utt2spk"])
        for t, table in tables.items():
            assert list(table) == utts, f"{name}/{t} keys differ from utt2spk"
        assert list(tables["utt2spk"].values()) == sorted(tables["utt2spk"].values())
        spk2utt = read_list_table(d / "spk2utt")
        assert {u: s for s, us in spk2utt.items() for u in us} == tables["utt2spk"]
        assert set(read_table(d / "spk2gender")) == set(spk2utt)
        if name != "dev":   # the tiny preset's dev set is one speaker
            assert set(read_table(d / "spk2gender").values()) == {"m", "f"}
        for u, path in tables["wav.scp"].items():
            assert Path(path).is_absolute() and u.startswith(tables["utt2spk"][u] + "-")
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.frames / 16000 - float(tables["utt2dur"][u])) < 1e-9
        speakers += list(spk2utt)
    assert len(speakers) == len(set(speakers)) == 8, "speaker sets must be disjoint"
    summary = read_table(data(tiny_corpus) / "summary", check_sorted=False)
    assert int(summary["utterances"]) == 40 and int(summary["rejected_sentences"]) >= 0


def _ms(x: float) -> int:
    return round(x * 1000)


def test_ctms_tile_each_file_and_agree(tiny_corpus):
    lexicon: dict[str, set[tuple[str, ...]]] = {}
    for line in (data(tiny_corpus) / "local/dict/lexicon.txt").read_text().splitlines():
        word, *phones = line.split()
        lexicon.setdefault(word, set()).add(tuple(phones))
    for name in SETS:
        d = data(tiny_corpus, name)
        durs = read_table(d / "utt2dur")
        texts = read_list_table(d / "text")
        phones, words = read_ctm(d / "phones.ctm"), read_ctm(d / "words.ctm")
        assert set(phones) == set(words) == set(durs)
        for utt, dur in durs.items():
            for ctm in (phones[utt], words[utt]):
                bounds = [(_ms(e.start), _ms(e.start) + _ms(e.duration)) for e in ctm]
                assert bounds[0][0] == 0 and bounds[-1][1] == _ms(float(dur)), utt
                assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False)), utt
            spoken = [e for e in words[utt] if e.token != "<sil>"]
            assert [e.token for e in spoken] == texts[utt]
            phone_starts = {_ms(e.start): e for e in phones[utt]}
            for w in spoken:
                inside = [p for p in phones[utt] if _ms(w.start) <= _ms(p.start) < _ms(w.end)]
                assert _ms(w.start) in phone_starts, (utt, w)
                assert _ms(w.end) in set(phone_starts) | {_ms(float(dur))}, (utt, w)
                pron = tuple(p.token for p in inside if p.token != "sil")
                assert pron in lexicon[w.token], (utt, w.token, pron)
            for w in words[utt]:
                if w.token == "<sil>":
                    assert {p.token for p in phones[utt]
                            if _ms(w.start) <= _ms(p.start) < _ms(w.end)} == {"sil"}
    vocab = {w for lang in PRESETS["tiny"].languages for w in VOCABULARY[lang]}
    assert vocab <= set(lexicon)
    symbols = (data(tiny_corpus) / "local/dict/phones.txt").read_text().split()
    assert symbols[:4] == ["<eps>", "0", "sil", "1"]


def test_energy_is_inside_the_words(tiny_corpus):
    wavs = all_utts(tiny_corpus)
    for name in SETS:
        for utt, entries in read_ctm(data(tiny_corpus, name) / "words.ctm").items():
            x, sr = sf.read(wavs[utt])
            mask = np.zeros(len(x), bool)
            for e in entries:
                if e.token != "<sil>":
                    mask[round(e.start * sr):round(e.end * sr)] = True
            inside, outside = np.mean(x[mask] ** 2), np.mean(x[~mask] ** 2)
            assert inside > 100 * outside, (utt, inside, outside)  # 20 dB


def test_word_durations_are_consistent_across_speakers(tiny_corpus):
    durations: dict[str, list[float]] = {}
    for name in SETS:
        for entries in read_ctm(data(tiny_corpus, name) / "words.ctm").values():
            for e in entries:
                if e.token != "<sil>":
                    durations.setdefault(e.token, []).append(e.duration)
    cvs = [np.std(d) / np.mean(d) for d in durations.values() if len(d) >= 3]
    assert len(cvs) >= 5
    assert max(cvs) < 0.35 and np.median(cvs) < 0.2, sorted(cvs)


def test_trials_have_both_labels_and_same_language_nontargets(tiny_corpus):
    d = data(tiny_corpus, "test")
    utt2spk, utt2lang = read_table(d / "utt2spk"), read_table(d / "utt2lang")
    trials = read_trials(d / "trials")
    assert all(t.enroll in utt2spk and t.test in utt2spk and t.enroll != t.test
               for t in trials)
    assert all((utt2spk[t.enroll] == utt2spk[t.test]) == t.target for t in trials)
    assert any(t.target for t in trials)
    assert any(not t.target and utt2lang[t.enroll] == utt2lang[t.test] for t in trials)
    pairs = [tuple(sorted((t.enroll, t.test))) for t in trials]
    assert len(pairs) == len(set(pairs))


def _frame(seconds: float) -> int:
    return (_ms(seconds) + 5) // 10


def test_samediff_words_obey_the_thresholds(tiny_corpus):
    for name in ("dev", "test"):
        d = data(tiny_corpus, name)
        words = read_ctm(d / "words.ctm")
        segs = read_list_table(d / "samediff_words")
        assert segs, name
        for key, (utt, start, end) in segs.items():
            word, spk, key_utt, span = key.split("_")
            assert key_utt == utt and utt.startswith(spk + "-")
            assert span == f"{int(start):06d}-{int(end):06d}"
            assert int(end) - int(start) >= 50 and len(word) >= 5, key
            assert any(e.token == word and _frame(e.start) == int(start)
                       and _frame(e.end) == int(end) for e in words[utt]), key
        eligible = [e for es in words.values() for e in es if e.token != "<sil>"
                    and len(e.token) >= 5 and _frame(e.end) - _frame(e.start) >= 50]
        assert len(eligible) == len(segs)


def _file_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_for_any_nj(tiny_corpus, tmp_path):
    again = generate(tmp_path, "--nj", "1")
    a, b = _file_digests(tiny_corpus / "wav"), _file_digests(again / "wav")
    assert a == b and len(a) == 40
    for name in SETS:
        for f in ("text", "utt2dur", "words.ctm", "phones.ctm"):
            assert (data(again, name) / f).read_bytes() == (data(tiny_corpus, name) / f
                                                             ).read_bytes(), (name, f)
    generate(tmp_path, "--nj", "3")  # a re-run over the same dirs rewrites the same bytes
    assert _file_digests(again / "wav") == a


def test_augmented_corpus_shares_text_and_alignments(tiny_corpus, tiny_corpus_augmented):
    for name in SETS:
        for f in ("text", "utt2dur", "words.ctm", "phones.ctm", "utt2spk"):
            assert (data(tiny_corpus_augmented, name) / f).read_bytes() == (
                data(tiny_corpus, name) / f).read_bytes(), (name, f)
    clean, aug = all_utts(tiny_corpus), all_utts(tiny_corpus_augmented)
    different = sum(not np.array_equal(sf.read(clean[u])[0], sf.read(aug[u])[0]) for u in clean)
    assert different == len(clean)


def _reference_augment(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """The corpus's chain from scipy's fftconvolve and butter: each coin drawn just before
    its distortion, the noise being speechssl.augment.add_noise (tested against its
    measured SNR in test_augment.py), a gain, then a scale that keeps the peak <= 0.99."""
    from scipy.signal import butter, fftconvolve, sosfilt

    y, coins = x.astype(np.float64), []
    coins.append(rng.random() < 0.5)
    if coins[-1]:
        wet = fftconvolve(y, room_response(rng, 16000))[:len(y)]
        y = wet * np.sqrt(np.sum(y ** 2) / np.sum(wet ** 2))
    coins.append(rng.random() < 0.5)
    if coins[-1]:
        edges = [rng.uniform(*BAND_LOW_HZ), rng.uniform(*BAND_HIGH_HZ)]
        y = sosfilt(butter(4, edges, btype="band", fs=16000, output="sos"), y)
    coins.append(rng.random() < 0.75)
    if coins[-1]:
        y = add_noise(y, rng)
    y = y * 10 ** (rng.uniform(*GAIN_DB) / 20)
    return (y * min(1.0, 0.99 / np.abs(y).max())).astype(np.float32), tuple(coins)


def test_augment_is_the_float64_chain_of_scipys_filters_to_the_bit():
    # To the bit: the bytes of an augmented corpus for a seed depend on it.
    t = np.arange(16000)
    chains = set()
    for seed in range(16):
        x = (0.9 * np.sin(t / (5 + seed)) * (t > 3000)).astype(np.float32)
        want, coins = _reference_augment(x, np.random.default_rng([seed, 2]))
        got = augment(x, np.random.default_rng([seed, 2]), 16000)
        err = np.abs(got - want)
        assert np.array_equal(got, want), f"seed {seed}: max diff {err.max():g} at {err.argmax()}"
        assert np.abs(got).max() <= 0.99
        chains.add(coins)
    assert len(chains) >= 4, chains  # the seeds cover several combinations of distortions


# ---------------------------------------------------------------- a speaker baseline

def _pooled_mfcc(path: str) -> np.ndarray:
    import kaldi_native_fbank as knf

    x, sr = sf.read(path, dtype="float32")
    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = sr
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 23
    mfcc = knf.OnlineMfcc(opts)
    mfcc.accept_waveform(sr, (x * 32768).tolist())
    mfcc.input_finished()
    feats = np.array([mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)])
    speech = feats[feats[:, 0] > feats[:, 0].max() - 10]  # drop the silent frames (c0)
    return np.concatenate([speech.mean(0), speech.std(0)])


def eer(scores: np.ndarray, targets: np.ndarray) -> float:
    """Equal error rate in %: where the miss rate meets the false-alarm rate."""
    order = np.argsort(scores)
    targets = targets[order]
    miss = np.cumsum(targets) / targets.sum()                  # targets at or below
    false_alarm = 1 - np.cumsum(~targets) / (~targets).sum()   # nontargets above
    i = np.argmin(np.abs(miss - false_alarm))
    return 100 * (miss[i] + false_alarm[i]) / 2


def test_pooled_mfcc_separates_speakers(tiny_corpus):
    utt2spk = {u: s for n in SETS
               for u, s in read_table(data(tiny_corpus, n) / "utt2spk").items()}
    wavs = all_utts(tiny_corpus)
    utts = sorted(wavs)
    emb = np.stack([_pooled_mfcc(wavs[u]) for u in utts])
    emb = (emb - emb.mean(0)) / emb.std(0)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    i, j = np.triu_indices(len(utts), k=1)
    scores = np.sum(emb[i] * emb[j], axis=1)
    targets = np.array([utt2spk[utts[a]] == utt2spk[utts[b]] for a, b in zip(i, j, strict=True)])
    result = eer(scores, targets)
    assert result < 20, f"pooled-MFCC cosine EER {result:.1f}% on the tiny corpus"


def test_tiny_seed_is_what_the_fixture_uses():
    assert TINY_SEED == 7


# ---------------------------------------------------------------- interrupted generation

def test_the_pattern_matches_what_atomic_write_names_its_temporaries(tmp_path):
    path = tmp_path / "spk01" / "spk01-0001.wav"
    with atomic_write(path, "wb") as f:
        f.write(b"RIFF")
        names = [p.name for p in path.parent.iterdir()]
    assert len(names) == 1 and TEMPORARY_WAV.fullmatch(names[0]), names


def test_generation_removes_its_stale_temporaries_and_nothing_else(tmp_path, monkeypatch):
    wav_dir = tmp_path / "wav"
    stale = wav_dir / "spk01" / ".spk01-0003.wav.k2_x9q0z.tmp"
    keep = ["spk01/spk01-0001.wav", "spk01/.spk01-0001.wav.tmp", "spk01/notes.tmp",
            "spk01/.a.wav.k2_x9q0z.tmp.bak", "spk01/.a.flac.k2_x9q0z.tmp",
            "spk01/.a.wav.SHORT.tmp", ".top.wav.k2_x9q0z.tmp", "other/x/.a.wav.k2_x9q0z.tmp"]
    for name in [*keep, str(stale.relative_to(wav_dir))]:
        (wav_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (wav_dir / name).write_bytes(b"x")
    (wav_dir / "spk02" / ".b.wav.abcdefgh.tmp").mkdir(parents=True)  # a directory: kept

    class Stop(Exception):
        pass

    def stop(*_):
        raise Stop
    monkeypatch.setattr("speechssl.corpus.synth.generate.load_loader", lambda: None)
    monkeypatch.setattr("speechssl.corpus.synth.generate.run_jobs", stop)  # synthesis starts here
    with pytest.raises(Stop):
        generate_corpus(PRESETS["tiny"], TINY_SEED, 1, wav_dir, tmp_path / "data")
    assert not stale.exists()
    for name in keep:
        assert (wav_dir / name).is_file(), name
    assert (wav_dir / "spk02" / ".b.wav.abcdefgh.tmp").is_dir()


def test_dev_and_test_speakers_say_fewer_utterances(tmp_path, tiny_corpus):
    generate(tmp_path, "--utts-per-eval-speaker", "3")
    for name, per_speaker in (("train", 5), ("dev", 3), ("test", 3)):
        spk2utt = read_list_table(data(tmp_path, name) / "spk2utt")
        assert {len(u) for u in spk2utt.values()} == {per_speaker}, name
    # The first utterances are those of the corpus where every speaker says 5.
    test = read_table(data(tmp_path, "test") / "text")
    full = read_table(data(tiny_corpus, "test") / "text")
    assert test == {u: full[u] for u in test}
