"""Monophone GMM-HMM training and alignment, as Kaldi's steps/train_mono.sh and
steps/align_si.sh run them, on kaldi-hmm-gmm 1.1.4.

The programs of Kaldi's scripts map to functions here:
  gmm-init-mono        :func:`init_mono` (flat start: one Gaussian with the global mean and
                       variance of the first job's first 10 utterances, for every pdf;
                       pdfs shared within each line of ``phones/sets.int``, as
                       train_mono.sh's ``--shared-phones``)
  compile-train-graphs :class:`GraphCompiler` (L.fst, transcripts through words.txt with
                       OOV words mapped to oov.int and counted)
  align-equal-compiled :func:`equal_align`
  gmm-align-compiled   :func:`align` (with gmm-boost-silence first)
  gmm-acc-stats-ali    :func:`accumulate` (vectorised: the frames of each pdf at once)
  gmm-sum-accs         :meth:`Stats.add`
  gmm-est              :func:`estimate` (MLE of transitions and GMMs, then gmm-mixup's
                       split_by_count towards the pass's Gaussian target)

Jobs.  Kaldi runs every pass as ``$cmd JOB=1:nj`` programs that each re-read their
features and write an accumulator file, then sums them.  Here one training process starts
``nj`` worker processes, one per ``data/split<nj>/JOB``, which read their features and
compile their graphs once and keep them in memory; each pass the parent sends the model,
every worker aligns (on realignment passes) and accumulates its part, and returns its
statistics as numpy arrays (kaldi-hmm-gmm's accumulators cannot be written to disk, but
their fields can be read and added back: :meth:`Stats.to_accum`), which the parent sums
and estimates from.  That keeps Kaldi's per-job data split and outputs (``ali.JOB.gz``
holds split JOB's utterances) without 40 x nj process start-ups and feature re-reads,
which cost more than the training itself on a small corpus.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _kaldi_hmm_gmm as _khg
import kaldi_hmm_gmm as khg
import kaldifst
import numpy as np

from speechssl.asr.lang import Lang
from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.errors import InputError, SpeechSSLError, examples

log = logging.getLogger("gmm")

REALIGN_ITERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)


@dataclass(frozen=True)
class MonoConfig:
    """steps/train_mono.sh's options (same names and defaults)."""
    num_iters: int = 40            # passes of training
    max_iter_inc: int = 30         # last pass that adds Gaussians
    totgauss: int = 1000           # target number of Gaussians
    realign_iters: tuple[int, ...] = REALIGN_ITERS
    boost_silence: float = 1.0     # gmm-boost-silence factor for the optional silence
    careful: bool = False          # gmm-align-compiled --careful
    power: float = 0.25            # gmm-est --power (allocation of Gaussians to pdfs)
    transition_scale: float = 1.0  # scale_opts of train_mono.sh
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    first_beam: float = 6.0        # pass 1's beam; later passes 10; retry-beam 4 x beam
    beam: float = 10.0
    init_utts: int = 10            # subset-feats --n=10 for gmm-init-mono
    max_fail_fraction: float = 0.1  # ours: fail when more utterances than this fail


@dataclass(frozen=True)
class AlignOptions:
    """gmm-align-compiled's options as the scripts pass them."""
    beam: float = 10.0
    retry_beam: float = 40.0
    careful: bool = False
    transition_scale: float = 1.0
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    boost_silence: float = 1.0


# --- the model -----------------------------------------------------------------------------

def read_phone_sets(lang: Lang) -> list[list[int]] | None:
    """phones/sets.int (train_mono.sh's --shared-phones), None without one."""
    path = lang.path / "phones" / "sets.int"
    if not path.is_file():
        return None
    sets = [[int(x) for x in line.split()] for line in path.read_text().splitlines()
            if line.strip()]
    return sets or None


def monophone_tree(lang: Lang, topo: khg.HmmTopology) -> khg.ContextDependency:
    """The monophone tree: shared pdfs per phones/sets.int when present, as train_mono.sh
    (word-position variants of a phone share its pdfs), else one set of pdfs per phone."""
    sets = read_phone_sets(lang)
    if sets is None:
        return lang.context_dependency()
    covered = sorted(p for s in sets for p in s)
    if covered != sorted(topo.phones):
        raise InputError("phone sets do not cover the topology's phones exactly once",
                         path=lang.path / "phones" / "sets.int")
    return khg.monophone_context_dependency_shared(sets, topo.get_phone_to_num_pdf_classes())


def global_gaussian(feats: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance of all frames (gmm-init-mono --train-feats), in doubles."""
    count, s, s2 = 0, 0.0, 0.0
    for x in feats:
        x = x.astype(np.float64)
        count += len(x)
        s = s + x.sum(0)
        s2 = s2 + (x * x).sum(0)
    if count == 0:
        raise SpeechSSLError("gmm-init-mono: no features were seen")
    mean = s / count
    var = s2 / count - mean * mean
    if var.min() <= 0:
        raise SpeechSSLError("gmm-init-mono: bad variance (constant feature dimension?)")
    return mean, var


def init_mono(lang: Lang, feats: Iterable[np.ndarray]):
    """gmm-init-mono: (TransitionModel, tree, AmDiagGmm) of the flat start."""
    topo = lang.hmm_topology()
    tree = monophone_tree(lang, topo)
    mean, var = global_gaussian(feats)
    gmm = khg.DiagGmm(1, len(mean))
    gmm.set_weights(np.ones(1, np.float32))
    gmm.set_invvars_and_means((1.0 / var)[None].astype(np.float32),
                              mean[None].astype(np.float32))
    gmm.compute_gconsts()
    am = khg.AmDiagGmm()
    for _ in range(tree.num_pdfs):
        am.add_pdf(gmm)
    return khg.TransitionModel(tree, topo), tree, am


def am_arrays(am: khg.AmDiagGmm) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(weights, means, inv_vars) per pdf: the GMMs as plain arrays, to send to jobs."""
    out = []
    for i in range(am.num_pdfs):
        g = am.get_pdf(i)
        iv = np.array(g.inv_vars)
        out.append((np.array(g.weights), np.array(g.means_invvars) / iv, iv))
    return out


def am_from_arrays(arrays) -> khg.AmDiagGmm:
    am = khg.AmDiagGmm()
    for w, mean, iv in arrays:
        g = khg.DiagGmm(len(w), mean.shape[1])
        g.set_weights(w.astype(np.float32))
        g.set_invvars_and_means(iv.astype(np.float32), mean.astype(np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    return am


def with_log_probs(tm: khg.TransitionModel, probs: tuple[list, list]) -> khg.TransitionModel:
    """A copy of ``tm`` with another model's (log_probs, non_self_loop_log_probs)."""
    state = list(tm.__getstate__())
    state[6], state[7] = probs
    out = khg.TransitionModel.__new__(khg.TransitionModel)
    out.__setstate__(tuple(state))
    return out


def boost_silence(am: khg.AmDiagGmm, tm: khg.TransitionModel, phones: Sequence[int],
                  boost: float) -> khg.AmDiagGmm:
    """gmm-boost-silence: the silence pdfs' weights times ``boost`` (not renormalised, as
    Kaldi does, so their likelihoods rise by log(boost)); a copy."""
    if boost == 1.0:
        return am
    _, pdfs = khg.get_pdfs_for_phones(tm, sorted(phones))
    out = khg.AmDiagGmm()
    out.copy_from_am_diag_gmm(am)
    for pdf in pdfs:
        g = out.get_pdf(pdf)
        g.set_weights((np.array(g.weights) * boost).astype(np.float32))
        g.compute_gconsts()
    return out


# --- graphs and alignment ------------------------------------------------------------------

class GraphCompiler:
    """compile-train-graphs: a training graph per transcript, through L.fst (no
    disambiguation symbols, as train_mono.sh and align_si.sh use it)."""

    def __init__(self, lang: Lang, tm: khg.TransitionModel, tree: khg.ContextDependency):
        lex = lang.lexicon_fst(disambig=False)
        kaldifst.arcsort(lex, sort_type="olabel")
        self.lang = lang
        self.compiler = khg.TrainingGraphCompiler(tm, tree, lex, [],
                                                  khg.TrainingGraphCompilerOptions())

    def compile(self, words: Sequence[str], utt: str):
        return self.compiler.compile_graph_from_text(self.lang.word_ids(words, utt))


def linear_ilabels(fst) -> list[int] | None:
    ok, ilabels, _, _ = kaldifst.get_linear_symbol_sequence(fst)
    return list(ilabels) if ok else None


def equal_align(graph, num_frames: int, utt: str) -> list[int] | None:
    """align-equal-compiled: a random path of the graph with ``num_frames`` transition-ids
    spread evenly (seeded by the utterance id, as Kaldi hashes the key); None if the
    utterance is too short for its transcript."""
    ok, fst = kaldifst.equal_align(graph, num_frames, zlib.crc32(utt.encode()) & 0x7FFFFFFF, 10)
    return linear_ilabels(fst) if ok else None


def align(tm, am, graph, feats: np.ndarray, utt: str, opts: AlignOptions
          ) -> tuple[list[int] | None, float, bool]:
    """gmm-align-compiled on one utterance: (transition-ids or None, log-likelihood of the
    best path, retried)."""
    graph = graph.copy()
    khg.add_transition_probs(trans_model=tm, transition_scale=opts.transition_scale,
                             self_loop_scale=opts.self_loop_scale, fst=graph)
    decodable = khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=feats,
                                             scale=opts.acoustic_scale)
    config = khg.AlignConfig(beam=opts.beam, retry_beam=opts.retry_beam,
                             careful=opts.careful)
    done, _, retried, like, _, ali, _ = khg.align_utterance_wrapper(
        config, utt, opts.acoustic_scale, graph, decodable, 0, 0, 0, 0.0, 0)
    if not done or len(ali) != len(feats):
        return None, 0.0, bool(retried)
    return list(ali), like, bool(retried)


# --- statistics ----------------------------------------------------------------------------

@dataclass
class Stats:
    """gmm-acc-stats-ali's accumulators as arrays: per pdf, per Gaussian the occupancy and
    the first and second order sums; transition-id counts; the total log-likelihood."""
    occ: list[np.ndarray]
    x: list[np.ndarray]
    x2: list[np.ndarray]
    trans: np.ndarray
    log_like: float = 0.0
    frames: int = 0

    @classmethod
    def zeros(cls, am: khg.AmDiagGmm, num_tids: int) -> Stats:
        sizes = [am.num_gauss_in_pdf(i) for i in range(am.num_pdfs)]
        return cls([np.zeros(g) for g in sizes], [np.zeros((g, am.dim)) for g in sizes],
                   [np.zeros((g, am.dim)) for g in sizes], np.zeros(num_tids + 1))

    def add(self, other: Stats) -> None:
        """gmm-sum-accs."""
        for mine, theirs in ((self.occ, other.occ), (self.x, other.x), (self.x2, other.x2)):
            for a, b in zip(mine, theirs, strict=True):
                a += b
        self.trans += other.trans
        self.log_like += other.log_like
        self.frames += other.frames

    def pdf_accum(self, am: khg.AmDiagGmm, pdf: int) -> khg.AccumDiagGmm:
        """The statistics of one pdf as a kaldi-hmm-gmm accumulator.  (Per pdf, because
        AccumAmDiagGmm.get_acc returns a copy: statistics added to it would be lost.)"""
        acc = khg.AccumDiagGmm(am.get_pdf(pdf), int(khg.GmmUpdateFlags.kGmmAll))
        for g in range(len(self.occ[pdf])):
            acc.add_stats_for_component(g, float(self.occ[pdf][g]), self.x[pdf][g],
                                        self.x2[pdf][g])
        return acc


def gmm_posteriors(w: np.ndarray, mean: np.ndarray, iv: np.ndarray, x: np.ndarray):
    """(per-frame log-likelihood, Gaussian posteriors) of frames ``x`` (T, D) under one
    diagonal GMM, in doubles."""
    logdet = 0.5 * np.log(iv).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)
    diff2 = (x * x) @ iv.T - 2 * x @ (mean * iv).T + ((mean * mean) * iv).sum(1)
    comp = np.log(np.maximum(w, 1e-300)) + logdet - 0.5 * diff2
    top = comp.max(1, keepdims=True)
    post = np.exp(comp - top)
    total = post.sum(1, keepdims=True)
    return (top + np.log(total)).ravel(), post / total


def accumulate(stats: Stats, arrays, tid2pdf: np.ndarray, feats: np.ndarray,
               ali: np.ndarray) -> None:
    """gmm-acc-stats-ali for one utterance: each frame counted for its pdf (a hard
    alignment) and shared among the pdf's Gaussians by posterior."""
    ali = np.asarray(ali)
    x = feats.astype(np.float64)
    stats.trans += np.bincount(ali, minlength=len(stats.trans))
    pdfs = tid2pdf[ali]
    for pdf in np.unique(pdfs):
        xs = x[pdfs == pdf]
        like, post = gmm_posteriors(*arrays[pdf], xs)
        stats.log_like += float(like.sum())
        stats.occ[pdf] += post.sum(0)
        stats.x[pdf] += post.T @ xs
        stats.x2[pdf] += post.T @ (xs * xs)
    stats.frames += len(ali)


def estimate(tm: khg.TransitionModel, am: khg.AmDiagGmm, stats: Stats, mixup: int,
             power: float, min_gaussian_occupancy: float = 10.0, perturb_factor=0.01,
             min_count: float = 20.0) -> dict[str, float]:
    """gmm-est: MLE update of the transitions and the GMMs, then split Gaussians towards
    ``mixup`` in proportion to pdf occupancy ** power (gmm-est --mix-up)."""
    objf_t, count_t = tm.mle_update(stats.trans, khg.MleTransitionUpdateConfig())
    opts = khg.MleDiagGmmOptions()
    opts.min_gaussian_occupancy = min_gaussian_occupancy
    objf = count = 0.0
    for pdf in range(am.num_pdfs):  # what mle_am_diag_gmm_update does, pdf by pdf
        change, n, *_ = _khg.mle_diag_gmm_update(opts, stats.pdf_accum(am, pdf),
                                                 int(khg.GmmUpdateFlags.kGmmAll),
                                                 am.get_pdf(pdf))
        objf, count = objf + change, count + n
    if mixup > am.num_gauss:
        occs = np.array([o.sum() for o in stats.occ], dtype=np.float32)
        split_gaussians(am, occs, mixup, perturb_factor, power, min_count)
    return {"transition_impr": objf_t / max(count_t, 1), "gmm_impr": objf / max(count, 1),
            "num_gauss": am.num_gauss}


def split_gaussians(am: khg.AmDiagGmm, occs: np.ndarray, target: int, perturb_factor: float,
                    power: float, min_count: float) -> None:
    """gmm-mixup's split: Kaldi's ``SplitByCount`` chooses how many Gaussians each pdf gets
    and makes them, here as exact copies; they are then moved apart as Kaldi's
    ``DiagGmm::Split`` does (the heaviest Gaussian, the first of equals, is halved into
    itself - f·r·std and a copy + f·r·std, r ~ N(0, I)), with a NumPy generator seeded by
    the target and the pdf: Kaldi's own generator differed from process to process here,
    and so did every model trained."""
    before = [np.array(am.get_pdf(i).weights, dtype=np.float64) for i in range(am.num_pdfs)]
    am.split_by_count(occs, target, 0.0, power, min_count)
    for pdf, weights in enumerate(before):
        g = am.get_pdf(pdf)
        n_old, n = len(weights), g.num_gauss
        if n == n_old:
            continue
        iv = np.array(g.inv_vars, dtype=np.float64)
        means = np.array(g.means_invvars, dtype=np.float64) / iv
        weights = np.concatenate([weights, np.zeros(n - n_old)])
        rng = np.random.default_rng([target, pdf])
        for i in range(n_old, n):   # Split's loop, replayed
            k = int(np.argmax(weights[:i]))
            weights[k] /= 2
            weights[i] = weights[k]
            shift = perturb_factor * rng.standard_normal(iv.shape[1]) / np.sqrt(iv[k])
            means[i] = means[k] + shift
            means[k] -= shift
        if not np.allclose(weights, np.array(g.weights), rtol=1e-5, atol=1e-9):
            raise RuntimeError(f"pdf {pdf}: kaldi-hmm-gmm's split is not Kaldi's")
        g.set_means(means.astype(np.float32))
        g.compute_gconsts()


# --- jobs ----------------------------------------------------------------------------------

@dataclass
class Utterance:
    feats: np.ndarray
    graph: object
    ali: list[int] | None = None


@dataclass
class Job:
    """One part of the data (data/split<nj>/JOB): features and training graphs in memory."""
    index: int
    utts: dict[str, Utterance]
    tm: khg.TransitionModel   # this job's copy: its log-probs are replaced each alignment
    failed: dict[str, str] = field(default_factory=dict)   # utt -> why
    oov: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, index: int, data_dir: Path, lang: Lang, transform: FeatureTransform,
             tm, tree, dim: int | None = None) -> Job:
        data = DataDir(data_dir)
        loader = FeatureLoader(data, transform)
        text = data.table("text")
        compiler = GraphCompiler(lang, tm, tree)
        job = cls(index, {}, tm)
        for utt in loader.utterances():
            feats = loader[utt]
            if dim is not None and feats.shape[1] != dim:
                raise InputError(f"features have dimension {feats.shape[1]}, the model "
                                 f"{dim} (features of another kind than the model's?)",
                                 path=data.path / "feats.scp", key=utt)
            if utt not in text:
                job.failed[utt] = "no transcript"
                continue
            job.utts[utt] = Utterance(feats, compiler.compile(text[utt].split(), utt))
        job.oov = dict(lang.oov_counts)
        return job

    def equal_align(self) -> None:
        for utt, u in self.utts.items():
            u.ali = equal_align(u.graph, len(u.feats), utt)
            if u.ali is None:
                self.failed[utt] = "equal alignment failed (utterance too short?)"

    def realign(self, probs, arrays, opts: AlignOptions, silence: Sequence[int]) -> dict:
        """gmm-align-compiled with the model of (log-probs, GMM arrays): kaldi-hmm-gmm's
        transition models do not pickle, so the parent sends what changes."""
        tm = with_log_probs(self.tm, probs)
        am = boost_silence(am_from_arrays(arrays), tm, silence, opts.boost_silence)
        retried = 0
        for utt, u in self.utts.items():
            u.ali, _, r = align(tm, am, u.graph, u.feats, utt, opts)
            retried += r
            if u.ali is None:
                self.failed[utt] = "no alignment within the retry beam"
            else:
                self.failed.pop(utt, None)
        return {"retried": retried}

    def accumulate(self, arrays, tid2pdf: np.ndarray, num_tids: int, am_shape) -> Stats:
        stats = Stats([np.zeros(g) for g in am_shape[0]],
                      [np.zeros((g, am_shape[1])) for g in am_shape[0]],
                      [np.zeros((g, am_shape[1])) for g in am_shape[0]],
                      np.zeros(num_tids + 1))
        for u in self.utts.values():
            if u.ali is not None:
                accumulate(stats, arrays, tid2pdf, u.feats, u.ali)
        return stats

    def alignments(self) -> dict[str, np.ndarray]:
        return {utt: np.asarray(u.ali, np.int32) for utt, u in sorted(self.utts.items())
                if u.ali is not None}

    def summary(self) -> dict:
        return {"failed": dict(self.failed), "oov": dict(self.oov),
                "num_utts": len(self.utts) + sum(1 for u in self.failed
                                                 if u not in self.utts)}


class JobRunner:
    """The jobs, in this process (nj = 1) or one worker process each: ``call(method,
    *args)`` runs ``Job.method`` on every job and returns their results in job order."""

    def __init__(self, loaders: Sequence[Callable[[], Job]]):
        self.procs, self.pipes, self.local = [], [], None
        if len(loaders) == 1:
            self.local = [loaders[0]()]
            return
        ctx = multiprocessing.get_context("fork")
        for load in loaders:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(load, child), daemon=True)
            p.start()
            self.procs.append(p)
            self.pipes.append(parent)
        self._receive()   # each worker reports that it loaded its job (or its error)

    def _receive(self) -> list:
        results = []
        for pipe in self.pipes:
            ok, value = pipe.recv()
            if not ok:
                self.close()
                raise value
            results.append(value)
        return results

    def call(self, method: str, *args) -> list:
        if self.local is not None:
            return [getattr(job, method)(*args) for job in self.local]
        for pipe in self.pipes:
            pipe.send((method, args))
        return self._receive()

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            p.join(timeout=5)
        self.pipes, self.procs = [], []


def _serve(load: Callable[[], Job], pipe) -> None:
    """A worker: load the job, then run the methods the parent sends until None."""
    try:
        job = load()
        pipe.send((True, None))
    except BaseException as e:  # report any failure to the parent, which raises it
        pipe.send((False, e))
        return
    while (msg := pipe.recv()) is not None:
        method, args = msg
        try:
            pipe.send((True, getattr(job, method)(*args)))
        except BaseException as e:
            pipe.send((False, e))


# --- training and alignment ----------------------------------------------------------------

def gauss_targets(num_gauss0: int, cfg: MonoConfig) -> list[int]:
    """The --mix-up target of each pass 0..num_iters-1, as train_mono.sh grows numgauss:
    pass x uses numgauss0 + incgauss * min(x - 1, max_iter_inc) (pass 0: numgauss0)."""
    inc = int((cfg.totgauss - num_gauss0) / cfg.max_iter_inc)  # bash's $[...] truncates
    return [num_gauss0 + inc * min(max(x - 1, 0), cfg.max_iter_inc)
            for x in range(cfg.num_iters)]


@dataclass
class Model:
    tm: khg.TransitionModel
    tree: khg.ContextDependency
    am: khg.AmDiagGmm

    def probs(self) -> tuple[list, list]:
        state = self.tm.__getstate__()
        return state[6], state[7]


def check_failures(summaries: Sequence[dict], what: str, max_fraction: float = 1.0) -> dict:
    """Count and report utterances that failed (Kaldi warns and leaves them out of the
    pass); more than ``max_fraction`` of them is an error."""
    failed = {u: why for s in summaries for u, why in s["failed"].items()}
    total = sum(s["num_utts"] for s in summaries)
    if failed:
        log.warning("%s: %d of %d utterances failed (%s): %s", what, len(failed), total,
                    sorted(set(failed.values()))[0], examples(failed))
    if total == 0 or len(failed) > max_fraction * total:
        raise SpeechSSLError(f"{what}: {len(failed)} of {total} utterances failed "
                             f"(more than {max_fraction:.0%}), e.g. {examples(failed)}")
    return failed


def report_oov(summaries: Sequence[dict], lang: Lang) -> int:
    oov: dict[str, int] = {}
    for s in summaries:
        for w, n in s["oov"].items():
            oov[w] = oov.get(w, 0) + n
    if oov:
        top = ", ".join(f"{w} ({n})" for w, n in sorted(oov.items(), key=lambda x: -x[1])[:5])
        log.warning("%d transcript tokens of %d words not in %s were mapped to %s: %s",
                    sum(oov.values()), len(oov), lang.path / "words.txt", lang.oov_word, top)
    return sum(oov.values())


def accumulate_jobs(runner: JobRunner, model: Model) -> Stats:
    am = model.am
    shape = ([am.num_gauss_in_pdf(i) for i in range(am.num_pdfs)], am.dim)
    tid2pdf = np.asarray(model.tm.transition_id_to_pdf_array(), dtype=np.int64)
    parts = runner.call("accumulate", am_arrays(am), tid2pdf,
                        model.tm.num_transition_ids, shape)
    total = parts[0]
    for p in parts[1:]:
        total.add(p)
    return total


def align_options(cfg: MonoConfig, beam: float) -> AlignOptions:
    return AlignOptions(beam=beam, retry_beam=4 * beam, careful=cfg.careful,
                        transition_scale=cfg.transition_scale,
                        acoustic_scale=cfg.acoustic_scale,
                        self_loop_scale=cfg.self_loop_scale, boost_silence=cfg.boost_silence)


def train_pass(x: int, runner: JobRunner, model: Model, cfg: MonoConfig, lang: Lang,
               mixup: int) -> float:
    """One pass of train_mono.sh's loop (x >= 1): realign if scheduled, accumulate,
    estimate; returns the average log-likelihood per frame of the accumulation."""
    if x in cfg.realign_iters:
        opts = align_options(cfg, cfg.first_beam if x == 1 else cfg.beam)
        runner.call("realign", model.probs(), am_arrays(model.am), opts,
                    [lang.optional_silence])
        check_failures(runner.call("summary"), f"pass {x} alignment")
    stats = accumulate_jobs(runner, model)
    info = estimate(model.tm, model.am, stats, mixup, cfg.power)
    avg = stats.log_like / max(stats.frames, 1)
    log.info("pass %d%s: average log-likelihood per frame %.4f over %d frames; "
             "%d Gaussians", x, " (realigned)" if x in cfg.realign_iters else "", avg,
             stats.frames, info["num_gauss"])
    return avg


def train_mono(runner: JobRunner, model: Model, cfg: MonoConfig, lang: Lang,
               on_pass: Callable[[int, Model], None] | None = None) -> list[float]:
    """Passes 0..num_iters-1 of train_mono.sh on the jobs' data; ``model`` is updated in
    place (becomes final.mdl).  Returns the average log-likelihood per frame of each pass.
    The alignments the jobs hold are those of the last realignment, as Kaldi's."""
    runner.call("equal_align")
    check_failures(runner.call("summary"), "equal alignment", cfg.max_fail_fraction)
    targets = gauss_targets(model.am.num_gauss, cfg)
    stats = accumulate_jobs(runner, model)
    estimate(model.tm, model.am, stats, targets[0], cfg.power, min_gaussian_occupancy=3.0)
    likes = [stats.log_like / max(stats.frames, 1)]
    log.info("pass 0 (equal alignment): average log-likelihood per frame %.4f over %d "
             "frames", likes[0], stats.frames)
    for x in range(1, cfg.num_iters):
        likes.append(train_pass(x, runner, model, cfg, lang, targets[x]))
        if on_pass is not None:
            on_pass(x, model)
    last = max(x for x in cfg.realign_iters if x < cfg.num_iters) if any(
        x < cfg.num_iters for x in cfg.realign_iters) else 0
    check_failures(runner.call("summary"), f"the alignments (pass {last})",
                   cfg.max_fail_fraction)
    return likes


def align_jobs(runner: JobRunner, model: Model, opts: AlignOptions, lang: Lang,
               max_fail_fraction: float) -> dict:
    """align_si.sh's gmm-align-compiled over the jobs."""
    runner.call("realign", model.probs(), am_arrays(model.am), opts,
                    [lang.optional_silence])
    return check_failures(runner.call("summary"), "alignment", max_fail_fraction)


def phone_frames(tm: khg.TransitionModel, ali: Sequence[int]) -> list[int]:
    """The phone of every frame of an alignment."""
    return [tm.transition_id_to_phone(int(t)) for t in ali]


def frame_accuracy(hyp: Mapping[str, Sequence[str]], ref: Mapping[str, Sequence[str]]
                   ) -> float:
    """Fraction of frames whose phone labels agree, over utterances in both."""
    agree = total = 0
    for utt, r in ref.items():
        h = hyp.get(utt)
        if h is None:
            continue
        n = min(len(h), len(r))
        agree += sum(a == b for a, b in zip(h[:n], r[:n], strict=True))
        total += max(len(h), len(r))
    return agree / max(total, 1)


__all__ = ["MonoConfig", "AlignOptions", "Model", "Job", "JobRunner", "init_mono",
           "train_mono", "align_jobs", "gauss_targets", "equal_align", "align",
           "accumulate", "estimate", "Stats", "frame_accuracy", "phone_frames"]
