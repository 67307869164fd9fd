"""Hybrid ASR speed: decoding real-time factor of the GMM and the hybrid DNN through a real
HCLG, the DNN's training frames/s through its streaming pipeline against the bare step,
and train_hybrid's peak RSS, measured in the same run.

The system is built on the spot, in a temporary folder, by the steps egs/mini's stage 4
uses: the embedded corpus (make_mini_corpus, the tiny preset enlarged to --speakers x
--utts: the tiny preset's 40 utterances train a GMM that fails to align most of them),
MFCC + CMVN for train and test, prepare_lang, a trigram of the training transcripts,
format_lm, train_mono with --num-iters 15 (not 40: a bench, not a recipe; train_mono's
own alignments stand in for align_si's), mkgraph, and train_hybrid.sh (3 x 512 units,
--max-epochs 3 --batch-size 1024 --num-threads 2).

Decoding (1 thread, CPU seconds of the thread per second of audio; audio = frames x the
frame shift; features read beforehand): each utterance at acoustic scale 0.1
(``gmm-decode-faster``'s and ``decode-faster-mapped``'s default, LM weight 10, the middle
of Kaldi's 7..17), at the default beams (13, max-active 7000) and at beam 8.  The split:
the *search* is the decoder over a precomputed (T, transition-ids)
log-likelihood matrix (``DecodableCtc``); the GMM's *acoustic-model* time is its full
decode (``DecodableAmDiagGmmScaled``, likelihoods computed on demand, cached per frame)
minus the search over its own likelihoods, precomputed (same scores, so the same search:
the hypotheses are checked equal); the DNN's is its forward pass, priors and the pdf ->
transition-id expansion.  The in-run reference for the search is beam 8 against 13: with
Kaldi absent, the cost of beam width on this graph says whether the search, not the
Python binding around it, is what costs (and WER says what narrowing it loses).  The
DNN's search is also run through kaldi-hmm-gmm's lattice-faster decoder (lattice beam 6,
the decoder used before FasterDecoder): its time against FasterDecoder's, and how many
best paths agree.

Training (wall frames/s, medians of --rounds epochs over --train-utts utterances):
``hybrid.train_epoch`` steps on batches from ``hybrid.stream_batches`` (ark reading, CMVN,
deltas, normalisation, buffer shuffling, on-the-fly splicing) against the same steps on
in-memory random batches of the same shapes, the two taking turns batch by batch (the
machine is shared: epoch-by-epoch turns measured the other load more than the
pipeline); target >= 0.9x.  The making of the pipeline's batches is timed apart.

Peak RSS: train_hybrid's own figure (training.json) for the whole training set and for
half of it (the same 3 epochs), against a process that only imports what train_hybrid
imports.

    python bench/bench_asr.py [--speakers 16] [--utts 30] [--rounds 2]   # ~4 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ssl"))
import torch  # noqa: E402

import speechssl.asr  # noqa: E402,F401  (kaldifst/kaldi_hmm_gmm before kaldilm)
from speechssl.asr import decode as dec  # noqa: E402
from speechssl.asr import hybrid, score  # noqa: E402
from speechssl.asr.model_io import read_model  # noqa: E402
from speechssl.bin import train_hybrid  # noqa: E402
from speechssl.data.ark import ArkScpWriter  # noqa: E402
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform  # noqa: E402

ACWT = 0.1
BEAMS = {"beam 13 (default)": dec.DecoderOptions(),
         "beam 8": dec.DecoderOptions(beam=8.0)}
TRAINING = {"train_hybrid.sh defaults (batch 256, 1 thread)": (256, 1),
            "--batch-size 1024 --num-threads 2": (1024, 2),
            "batch 1024, 1 thread (threads apart)": (1024, 1)}
HYBRID_OPTS = "--batch-size 1024 --num-threads 2 --max-unaligned-fraction 0.5"
KALDI_GMM, KALDI_DNN = "gmm-decode-faster", "decode-faster-mapped"


# ---------------------------------------------------------------- the system

def sh(command: str) -> float:
    """Run ``command`` under path.sh; its wall seconds.  On failure, exit with the end of
    its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "ssl"))
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-c", f". ./path.sh && {command}"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit(f"{command}\nfailed (code {proc.returncode}):\n{proc.stdout[-3000:]}")
    return time.perf_counter() - start


def build_system(w: Path, speakers: int, utts: int) -> dict[str, float]:
    """Corpus, features, lang, LM, GMM, graph and hybrid DNN under ``w``: seconds each."""
    d, mfcc = w / "data", ROOT / "egs" / "mini" / "conf" / "mfcc.conf"
    feats = " && ".join(
        f"utils/copy_data_dir.sh {d}/{x} {d}/{x}_mfcc && steps/make_mfcc.sh --nj 2 "
        f"--mfcc-config {mfcc} {d}/{x}_mfcc {w}/log {w}/mfcc && "
        f"steps/compute_cmvn_stats.sh {d}/{x}_mfcc {w}/log {w}/mfcc" for x in ("train", "test"))
    steps = {
        "corpus": f"python -m speechssl.bin.make_mini_corpus --preset tiny --num-speakers "
                  f"{speakers} --utts-per-speaker {utts} --nj 2 --seed 0 {w}/wav {d}",
        "mfcc": feats,
        "lang + LM": f"utils/prepare_lang.sh {d}/local/dict '<unk>' {d}/local/lang {d}/lang && "
                     f"utils/make_ngram_lm.sh --order 3 {d}/train/text {d}/lang "
                     f"{d}/local/lm/3gram.arpa.gz && utils/format_lm.sh {d}/lang "
                     f"{d}/local/lm/3gram.arpa.gz {d}/local/dict/lexicon.txt {d}/lang_test",
        "train_mono": f"steps/train_mono.sh --nj 2 --num-iters 15 --max-iter-inc 12 "
                      f"--realign-iters '1 2 3 4 5 6 7 8 10 12 14' --max-fail-fraction 0.5 "
                      f"{d}/train_mfcc {d}/lang {w}/mono",
        "mkgraph": f"utils/mkgraph.sh {d}/lang_test {w}/mono {w}/mono/graph",
        "train_hybrid": f"steps/train_hybrid.sh --max-epochs 3 {HYBRID_OPTS} "
                        f"{d}/train_mfcc {w}/mono {d}/lang {w}/hybrid",
        "train_hybrid, half": f"utils/subset_data_dir.sh {d}/train_mfcc "
                              f"$(( $(wc -l < {d}/train_mfcc/utt2spk) / 2 )) {d}/half_mfcc && "
                              f"steps/train_hybrid.sh --max-epochs 3 {HYBRID_OPTS} "
                              f"{d}/half_mfcc {w}/mono {d}/lang {w}/hybrid_half",
    }
    if (w / "hybrid_half" / "final.pt").is_file():
        return {"reused": 0.0}
    return {name: sh(command) for name, command in steps.items()}


@dataclass
class TestSet:
    feats: dict[str, np.ndarray]
    refs: dict[str, list[str]]
    frames: int
    seconds: float


def load_test(w: Path) -> TestSet:
    data = w / "data" / "test_mfcc"
    loader = FeatureLoader(data, FeatureTransform(cmvn=True, delta_order=2))
    feats = {utt: np.ascontiguousarray(f) for utt, f in loader}
    frames = sum(len(f) for f in feats.values())
    shift = float((data / "frame_shift").read_text()) if (data / "frame_shift").is_file() \
        else 0.01
    return TestSet(feats, score.read_transcripts(data / "text"), frames, frames * shift)


# ---------------------------------------------------------------- decoding

def gmm_loglikes(am, feats: np.ndarray) -> np.ndarray:
    """(T, num_pdfs) log-likelihoods of every pdf (log-sum-exp over its Gaussians)."""
    out = np.empty((len(feats), am.num_pdfs), dtype=np.float32)
    for pdf in range(am.num_pdfs):
        comp = np.asarray(am.get_pdf(pdf).log_likelihoods_matrix(feats), dtype=np.float64)
        top = comp.max(1)
        out[:, pdf] = top + np.log(np.exp(comp - top[:, None]).sum(1))
    return out


@dataclass
class DecodeTimes:
    """Thread CPU seconds of one pass over the test set, per part, and its hypotheses."""

    parts: dict[str, float] = field(default_factory=dict)
    hyps: dict[str, list[int]] = field(default_factory=dict)
    failed: int = 0

    def keep(self, utt: str, best: dec.BestPath) -> None:
        self.hyps[utt] = best.words
        self.failed += not best.succeeded

    def add(self, part: str, seconds: float) -> None:
        self.parts[part] = self.parts.get(part, 0.0) + seconds


def timed(times: DecodeTimes, part: str, fn, *args):
    start = time.thread_time()
    out = fn(*args)
    times.add(part, time.thread_time() - start)
    return out


def decode_pass(test: TestSet, decoder, lattice_faster, tm, am,
                dnn) -> dict[str, DecodeTimes]:
    """The GMM (full decode, and the search alone over its precomputed likelihoods) and
    the DNN (acoustic model, then search, by both decoders) on every test utterance,
    taking turns."""
    import kaldi_hmm_gmm as khg

    tid2pdf = np.asarray(tm.transition_id_to_pdf_array())
    out = {k: DecodeTimes() for k in ("gmm", "gmm search", "dnn", "dnn lattice-faster")}
    for utt, feats in test.feats.items():
        best = timed(out["gmm"], "total", dec.decode_gmm, decoder, tm, am, feats, ACWT)
        out["gmm"].keep(utt, best)
        mat = dec.pdf_to_tid_matrix(dnn["gmm_ll"][utt] * ACWT, tid2pdf)
        best = timed(out["gmm search"], "search", dec.decode_decodable, decoder,
                     khg.DecodableCtc(mat))
        out["gmm search"].keep(utt, best)
        ll = timed(out["dnn"], "am", hybrid.log_likelihoods, dnn["model"], feats, dnn["prior"])
        mat = timed(out["dnn"], "am", dec.pdf_to_tid_matrix, ll * ACWT, tid2pdf)
        best = timed(out["dnn"], "search", dec.decode_decodable, decoder,
                     khg.DecodableCtc(mat))
        out["dnn"].keep(utt, best)
        best = timed(out["dnn lattice-faster"], "search", lattice_faster_search,
                     lattice_faster, khg.DecodableCtc(mat), tm, utt)
        out["dnn lattice-faster"].keep(utt, best)
    return out


def make_lattice_faster(graph, options: dec.DecoderOptions):
    import kaldi_hmm_gmm as khg

    config = khg.LatticeFasterDecoderConfig(beam=options.beam, max_active=options.max_active,
                                            min_active=options.min_active, lattice_beam=6.0)
    return khg.LatticeFasterDecoder(graph, config)


def lattice_faster_search(decoder, decodable, tm, utt: str) -> dec.BestPath:
    import kaldi_hmm_gmm as khg

    ok, alignment, words, log_like = khg.decode_utterance_lattice_faster(
        decoder=decoder, decodable=decodable, trans_model=tm, utt=utt, allow_partial=True)
    return dec.BestPath(list(words), list(alignment), float(log_like), bool(ok))


def wer(test: TestSet, hyps: dict[str, list[int]], id2word: dict[int, str]) -> float:
    counts, _ = score.score_texts(test.refs, {u: [id2word[i] for i in h] for u, h in hyps.items()})
    return counts.error_rate


def load_dnn(w: Path, am, test: TestSet) -> dict:
    """The hybrid DNN with its log-priors, and the GMM's likelihoods of the test set."""
    model, _ = hybrid.load_checkpoint(w / "hybrid" / "final.pt")
    counts = hybrid.parse_counts((w / "hybrid" / "ali_train_pdf.counts").read_text(), w)
    return {"model": model, "prior": hybrid.log_priors(counts),
            "gmm_ll": {u: gmm_loglikes(am, f) for u, f in test.feats.items()}}


def bench_decoding(w: Path, test: TestSet, rounds: int) -> None:
    torch.set_num_threads(1)
    tm, am = read_model(w / "mono" / "final.mdl")
    dnn = load_dnn(w, am, test)
    graph = w / "mono" / "graph"
    id2word = {i: s for s, i in dec.read_symbols(graph / "words.txt").items()}
    results: dict[str, list[dict[str, DecodeTimes]]] = {b: [] for b in BEAMS}
    for r in range(rounds):
        names = list(BEAMS)[::1 if r % 2 == 0 else -1]
        for name in names:
            decoder = dec.make_decoder(graph / "HCLG.fst", BEAMS[name])
            lattice_faster = make_lattice_faster(decoder.graph, BEAMS[name])
            results[name].append(decode_pass(test, decoder, lattice_faster, tm, am, dnn))
    print(f"\n== Decoding: {len(test.feats)} test utterances, {test.seconds:.1f} s of audio, "
          f"{test.frames} frames; acoustic scale {ACWT}; 1 thread; medians of {rounds} rounds")
    print(f"{'model':5s} {'beams':18s} {'AM s':>6s} {'search s':>8s} {'RTF':>6s} "
          f"{'RTF AM':>7s} {'RTF srch':>8s} {'us/frame srch':>13s} {'WER %':>6s} {'failed':>6s}")
    search = {}
    for name, passes in results.items():
        search[name] = report_beam(name, passes, test, id2word)
    default, narrow = (search[b] for b in BEAMS)
    print(f"search time, beam 13 / beam 8: GMM {default['gmm'] / narrow['gmm']:.2f}x, "
          f"DNN {default['dnn'] / narrow['dnn']:.2f}x")
    same = sum(results[list(BEAMS)[0]][0]["gmm"].hyps[u] == results[list(BEAMS)[0]][0][
        "gmm search"].hyps[u] for u in test.feats)
    print(f"GMM search over its precomputed likelihoods: same hypothesis for {same} of "
          f"{len(test.feats)} utterances (the AM/search split assumes the same search)")
    for name, passes in results.items():
        lf = float(np.median([p["dnn lattice-faster"].parts["search"] for p in passes]))
        agree = sum(passes[0]["dnn"].hyps[u] == passes[0]["dnn lattice-faster"].hyps[u]
                    for u in test.feats)
        print(f"DNN search, {name}: lattice-faster {lf:.2f} s / FasterDecoder "
              f"{search[name]['dnn']:.2f} s = {lf / search[name]['dnn']:.2f}x; same best "
              f"path for {agree} of {len(test.feats)} utterances")
    kaldi_reference(w, test, tm, dnn)


def report_beam(name: str, passes: list[dict[str, DecodeTimes]], test: TestSet,
                id2word: dict[int, str]) -> dict[str, float]:
    """Rows of the GMM and the DNN at one beam; their median search seconds."""
    def med(kind: str, part: str) -> float:
        return float(np.median([p[kind].parts[part] for p in passes]))

    rows = {"gmm": (med("gmm", "total") - med("gmm search", "search"),
                    med("gmm search", "search")),
            "dnn": (med("dnn", "am"), med("dnn", "search"))}
    for kind, (am_s, search_s) in rows.items():
        first = passes[0][kind]
        print(f"{kind.upper():5s} {name:18s} {am_s:6.2f} {search_s:8.2f} "
              f"{(am_s + search_s) / test.seconds:6.3f} {am_s / test.seconds:7.3f} "
              f"{search_s / test.seconds:8.3f} {1e6 * search_s / test.frames:13.1f} "
              f"{wer(test, first.hyps, id2word):6.1f} {first.failed:6d}")
    return {kind: search_s for kind, (_, search_s) in rows.items()}


def kaldi_reference(w: Path, test: TestSet, tm, dnn: dict) -> None:
    """Kaldi's decoders on the same inputs (features with CMVN and deltas as the GMM saw
    them; the DNN's log-likelihoods), when on PATH: CPU seconds of the child process."""
    missing = [p for p in (KALDI_GMM, KALDI_DNN) if shutil.which(p) is None]
    if missing:
        print(f"{' and '.join(missing)} not on PATH: Kaldi's decoders are not measured")
        return
    with ArkScpWriter(w / "k" / "feats.ark", w / "k" / "feats.scp") as feats, \
            ArkScpWriter(w / "k" / "ll.ark", w / "k" / "ll.scp") as ll:
        for utt, f in test.feats.items():
            feats.write(utt, f)
            ll.write(utt, hybrid.log_likelihoods(dnn["model"], f, dnn["prior"]))
    graph, mdl = w / "mono" / "graph", w / "mono" / "final.mdl"
    opts = "--beam=13 --max-active=7000 --acoustic-scale=0.1"
    for prog, inputs in ((KALDI_GMM, "feats"), (KALDI_DNN, "ll")):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        sh(f"{prog} {opts} {mdl} {graph}/HCLG.fst scp:{w}/k/{inputs}.scp ark:/dev/null")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        print(f"{prog} (Kaldi, beam 13, one run): RTF {cpu / test.seconds:.3f} "
              "(CPU incl. process start-up and graph reading)")


# ---------------------------------------------------------------- training

def training_data(w: Path, num_utts: int):
    """What train_hybrid streams from: a loader of normalised features, fitted pdfs and
    the first ``num_utts`` training utterances (its own functions, its own order)."""
    d = w / "data"
    tm, pdfs = train_hybrid.load_targets(w / "mono", d / "lang")
    loader = FeatureLoader(d / "train_mfcc", FeatureTransform(cmvn=True, delta_order=2))
    utts, pdfs, _ = train_hybrid.fit_targets(loader, pdfs, w / "mono", 0.5)
    train_utts, _ = hybrid.split_cv(utts, 0.1, 0)
    mean, std, _ = hybrid.feature_stats(lambda u: loader[u], train_utts)
    return (tm.num_pdfs, len(mean), (lambda u: (loader[u] - mean) / std), pdfs,
            train_utts[:num_utts])


def random_batches(sizes: list[int], dim: int, num_pdfs: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, dim, generator=g), torch.randint(num_pdfs, (b,), generator=g))
            for b in sizes]


def interleaved_epoch(model, opt, stream, bare) -> np.ndarray:
    """Wall seconds of (pipeline steps, bare steps, producing the pipeline's batches) over
    one epoch, the two steps taking turns batch by batch (which goes first alternates), so
    that both see the same load on a shared machine.  Each step is ``train_epoch`` on one
    batch; the pipeline's includes making its batch."""
    spent = np.zeros(3)
    for i, bare_batch in enumerate(bare):
        if i % 2:
            start = time.perf_counter()
            hybrid.train_epoch(model, opt, [bare_batch])
            spent[1] += time.perf_counter() - start
        start = time.perf_counter()
        batch = next(stream)
        made = time.perf_counter()
        hybrid.train_epoch(model, opt, [batch])
        spent[0] += time.perf_counter() - start
        spent[2] += made - start
        if i % 2 == 0:
            start = time.perf_counter()
            hybrid.train_epoch(model, opt, [bare_batch])
            spent[1] += time.perf_counter() - start
    return spent


def bench_setting(batch: int, threads: int, rounds: int, data) -> dict[str, float]:
    """Median wall frames/s of the streaming pipeline, of the bare step on random
    in-memory batches of the same shapes, and of the pipeline's batch making alone."""
    num_pdfs, dim, load, pdfs, utts = data
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = hybrid.HybridConfig(batch_size=batch)
    model = hybrid.HybridMLP(dim, num_pdfs, config)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    spliced = dim * (config.left_context + 1 + config.right_context)

    def stream(r: int):
        return hybrid.stream_batches(load, pdfs, utts, config, np.random.default_rng([0, r]))

    sizes = [len(y) for _, y in stream(0)]
    bare_batches = random_batches(sizes, spliced, num_pdfs, 0)
    hybrid.train_epoch(model, opt, bare_batches[:5])   # warm-up
    spent = np.median([interleaved_epoch(model, opt, stream(r), bare_batches)
                       for r in range(rounds)], axis=0)
    return {"pipeline": sum(sizes) / spent[0], "bare": sum(sizes) / spent[1],
            "data alone": sum(sizes) / spent[2], "frames": sum(sizes), "batches": len(sizes)}


def bench_training(w: Path, rounds: int, num_utts: int) -> None:
    data = training_data(w, num_utts)
    print(f"\n== DNN training (3 x 512 MLP, +-5 frames of {data[1]}-dim MFCC+deltas, "
          f"{data[0]} pdfs; {len(data[4])} utterances; wall frames/s, medians of {rounds} "
          f"epochs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'setting':48s} {'frames':>7s} {'pipeline':>9s} {'bare':>9s} {'ratio':>6s} "
          f"{'data alone':>10s}")
    for name, (batch, threads) in TRAINING.items():
        r = bench_setting(batch, threads, rounds, data)
        print(f"{name:48s} {r['frames']:7.0f} {r['pipeline']:9.0f} {r['bare']:9.0f} "
              f"{r['pipeline'] / r['bare']:6.2f} {r['data alone']:10.0f}")
    print("(ratio: pipeline / bare step, target >= 0.9; data alone: making the pipeline's "
          "batches)")


# ---------------------------------------------------------------- memory

def import_rss_mb() -> float:
    """Peak RSS of a process that imports what train_hybrid imports, and does nothing."""
    # VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at its parent's RSS
    # (kept across fork + exec), and this parent is large.
    code = ("import speechssl.asr, speechssl.bin.train_hybrid, speechssl.asr.model_io; "
            "print([int(x.split()[1]) / 1024 for x in open('/proc/self/status') "
            "if x.startswith('VmHWM')][0])")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "ssl"))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, text=True,
                         stdout=subprocess.PIPE)
    return float(out.stdout)


def report_memory(w: Path) -> None:
    print("\n== train_hybrid peak RSS (training.json; 3 x 512, batch 1024, buffer 128 "
          "utterances)")
    base = import_rss_mb()
    for name in ("hybrid", "hybrid_half"):
        s = json.loads((w / name / "training.json").read_text())
        dim = hybrid.load_checkpoint(w / name / "final.pt")[1]["input_dim"]
        frames, c = s["train_frames"], s["config"]
        context = c["left_context"] + 1 + c["right_context"]
        # Per frame: the features twice (utterances, then stacked), int64 target and
        # context indices.
        buffer_mb = c["buffer_utts"] * frames / s["train_utts"] * (
            2 * dim * 4 + 8 + context * 8) / 2 ** 20
        print(f"{name:12s} {s['train_utts']:5d} utterances {frames:7d} frames: peak RSS "
              f"{s['peak_rss_mb']:6.1f} MB ({s['peak_rss_mb'] - base:+.1f} MB over the "
              f"imports' {base:.1f} MB); one buffer ~{buffer_mb:.1f} MB; "
              f"{len(s['epochs'])} epochs")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speakers", type=int, default=16, help="corpus speakers (60%% train)")
    p.add_argument("--utts", type=int, default=30, help="utterances per speaker")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (medians)")
    p.add_argument("--train-utts", type=int, default=100,
                   help="training utterances of the frames/s measurements")
    p.add_argument("--work", help="build here and keep it, or reuse what a previous run "
                   "built there (default: a temporary folder)")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_asr_")).absolute()
    try:
        built = build_system(work, args.speakers, args.utts)
        print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; system built in "
              + ", ".join(f"{k} {v:.1f} s" for k, v in built.items()))
        bench_decoding(work, load_test(work), args.rounds)
        bench_training(work, args.rounds, args.train_utts)
        report_memory(work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
