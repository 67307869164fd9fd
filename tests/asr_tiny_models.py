"""A tiny transition model and a hand-built word-loop HCLG for decoding tests that must
not depend on prepare_lang/mkgraph: word ``w`` is the single phone ``w`` (3-state
left-to-right HMMs, as Kaldi's default topology), any word sequence is accepted."""

from __future__ import annotations

import numpy as np

TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
{phones}
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
</Topology>
"""


def tiny_transition_model(num_phones: int = 3):
    import kaldi_hmm_gmm as khg

    topo = khg.HmmTopology()
    topo.read(TOPO.format(phones=" ".join(str(p) for p in range(1, num_phones + 1))))
    phones = list(range(1, num_phones + 1))
    ctx = khg.monophone_context_dependency(phones, topo.get_phone_to_num_pdf_classes())
    return khg.TransitionModel(ctx, topo), ctx


def phone_tids(tm, phone: int) -> list[tuple[int, int]]:
    """(self-loop tid, forward tid) of each HMM state of ``phone``, in state order."""
    tids = [t for t in range(1, tm.num_transition_ids + 1) if tm.transition_id_to_phone(t) == phone]
    loops = [t for t in tids if tm.is_self_loop(t)]
    forward = [t for t in tids if not tm.is_self_loop(t)]
    return list(zip(loops, forward, strict=True))


def word_loop_hclg(tm, num_words: int):
    """Start state 0 (final); per word a chain of HMM states with self-loops, the word id
    output on the arc that enters its first frame, returning to state 0."""
    import kaldifst

    lines = []
    next_state = 1
    for word in range(1, num_words + 1):
        states = phone_tids(tm, word)
        first = next_state
        next_state += len(states)
        for i, (loop, fwd) in enumerate(states):
            here = first + i
            there = first + i + 1 if i + 1 < len(states) else 0
            if i == 0:  # entering: the first frame may be the self-loop or the forward one
                lines.append(f"0 {here} {loop} {word}")
                lines.append(f"0 {there} {fwd} {word}" if there else f"0 0 {fwd} {word}")
            lines.append(f"{here} {here} {loop} 0")
            lines.append(f"{here} {there} {fwd} 0")
    lines.append("0")
    return kaldifst.compile("\n".join(lines), acceptor=False)


def frames_for_words(tm, words: list[int], frames_per_state: int = 3) -> np.ndarray:
    """The pdf of each frame of the word sequence, ``frames_per_state`` per HMM state."""
    pdfs = []
    for w in words:
        for loop, _ in phone_tids(tm, w):
            pdfs.extend([tm.transition_id_to_pdf(loop)] * frames_per_state)
    return np.array(pdfs)


def tiny_gmm(tm, dim: int, means: np.ndarray | None = None):
    """One unit-variance Gaussian per pdf (means (num_pdfs, dim), default zeros)."""
    import kaldi_hmm_gmm as khg

    am = khg.AmDiagGmm()
    for pdf in range(tm.num_pdfs):
        g = khg.DiagGmm(1, dim)
        g.set_weights(np.ones(1, np.float32))
        g.set_invvars(np.ones((1, dim), np.float32))
        g.set_means(np.zeros((1, dim), np.float32) if means is None
                    else means[pdf:pdf + 1].astype(np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    return am


def phones_txt(num_phones: int) -> str:
    return "<eps> 0\n" + "".join(f"p{i} {i}\n" for i in range(1, num_phones + 1))


def pdf_means(num_pdfs: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3, (num_pdfs, dim)).astype(np.float32)


def utterance(tm, words: list[int], means: np.ndarray, rng, frames_per_state=(2, 5),
              ) -> tuple[np.ndarray, np.ndarray]:
    """Features (T, dim) drawn around each HMM state's pdf mean, and the transition-id
    alignment that produced them."""
    tids = []
    for w in words:
        for loop, fwd in phone_tids(tm, w):
            tids += [loop] * (int(rng.integers(*frames_per_state)) - 1) + [fwd]
    pdfs = np.array([tm.transition_id_to_pdf(t) for t in tids])
    feats = means[pdfs] + rng.normal(0, 1.0, (len(pdfs), means.shape[1]))
    return feats.astype(np.float32), np.array(tids, np.int32)


def write_corpus(root, tm, num_utts: int, seed: int, means: np.ndarray, name: str):
    """A data dir ``root/name`` (feats.scp, text, utt2spk, ...) of random word sequences
    and the alignments of its utterances (utt -> tids)."""
    from pathlib import Path

    from speechssl.data.ark import ArkScpWriter
    from speechssl.data.table import write_table

    rng = np.random.default_rng(seed)
    data = Path(root) / name
    data.mkdir(parents=True)
    num_words = len(tm.phones)
    texts, alis, frames, spk = {}, {}, {}, {}
    with ArkScpWriter(data / "feats.ark", data / "feats.scp") as w:
        for i in range(num_utts):
            spk_i = i * 3 // num_utts
            utt = f"s{spk_i}-{name}-{i:03d}"
            words = rng.integers(1, num_words + 1, int(rng.integers(2, 6))).tolist()
            feats, alis[utt] = utterance(tm, words, means, rng)
            w.write(utt, feats)
            texts[utt] = [f"w{x}" for x in words]
            frames[utt], spk[utt] = str(len(feats)), f"s{spk_i}"
    write_table(data / "text", texts)
    write_table(data / "utt2spk", spk)
    write_table(data / "spk2utt", {s: sorted(u for u in spk if spk[u] == s)
                                   for s in sorted(set(spk.values()))})
    write_table(data / "utt2num_frames", frames)
    (data / "frame_shift").write_text("0.01\n")
    return data, alis


def write_model_dirs(root, tm, am, alis: dict, num_words: int):
    """An alignment dir (final.mdl, ali.1.gz, num_jobs, phones.txt), a lang dir
    (phones.txt, words.txt) and a graph dir (HCLG.fst, words.txt, phones.txt, num_pdfs)."""
    from pathlib import Path

    from speechssl.asr.model_io import write_alignments, write_model

    root = Path(root)
    ali, lang, graph = root / "ali", root / "lang", root / "graph"
    words = "<eps> 0\n" + "".join(f"w{i} {i}\n" for i in range(1, num_words + 1))
    for d in (ali, lang, graph):
        d.mkdir(parents=True)
        (d / "phones.txt").write_text(phones_txt(len(tm.phones)))
    write_model(ali / "final.mdl", tm, am)
    write_alignments(ali / "ali.1.gz", alis)
    (ali / "num_jobs").write_text("1\n")
    for d in (lang, graph):
        (d / "words.txt").write_text(words)
    word_loop_hclg(tm, num_words).write(str(graph / "HCLG.fst"))
    (graph / "num_pdfs").write_text(f"{tm.num_pdfs}\n")
    return ali, lang, graph
