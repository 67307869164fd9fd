"""Tiny hand-made Kaldi dict dirs and FST helpers for the lang, LM and graph tests."""

from __future__ import annotations

from pathlib import Path

# Homophones (da, dah), prefixes without word positions (ab < abc, ba < bad, c < cc),
# a shared-root line (a b), an OOV word with its own silence phone.
LEXICON = """<unk> spn
ab a b
abc a b c
ba b a
bad b a d
c c
cc c c
da d a
dah d a
"""


def write_dict(path: Path, lexicon: str = LEXICON, silence: str = "sil\nspn\n",
               nonsilence: str = "a b\nc\nd\n", optional: str = "sil\n") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "lexicon.txt").write_text(lexicon)
    (path / "silence_phones.txt").write_text(silence)
    (path / "nonsilence_phones.txt").write_text(nonsilence)
    (path / "optional_silence.txt").write_text(optional)
    return path


def arcs(fst) -> list[tuple[int, int, int, int, float]]:
    """(src, dest, ilabel, olabel, weight) of every arc."""
    import kaldifst
    out = []
    for s in range(fst.num_states):
        for a in kaldifst.ArcIterator(fst, s):
            out.append((s, a.nextstate, a.ilabel, a.olabel, float(a.weight.value)))
    return out


def paths(fst, limit: int = 1000) -> list[tuple[list[int], list[int], float]]:
    """Every (ilabels, olabels, cost) path of an acyclic FST, epsilons (0) dropped."""
    import math
    if fst.num_states == 0:
        return []
    out_arcs: dict[int, list] = {}
    for s, d, i, o, w in arcs(fst):
        out_arcs.setdefault(s, []).append((d, i, o, w))
    found = []
    stack = [(fst.start, [], [], 0.0)]
    while stack:
        s, ins, outs, cost = stack.pop()
        final = float(fst.final(s).value)
        if not math.isinf(final):
            found.append((ins, outs, cost + final))
        for d, i, o, w in out_arcs.get(s, []):
            stack.append((d, ins + [i] * (i != 0), outs + [o] * (o != 0), cost + w))
        assert len(found) + len(stack) < limit, "too many paths (a cycle?)"
    return found


def accept_phones(lfst, phone_ids: list[int]):
    """Compose a linear phone sequence with L: the paths it maps to words."""
    import kaldifst
    return paths(kaldifst.compose(kaldifst.make_linear_acceptor(phone_ids), lfst))


def write_model_dir(lang, out: Path, dim: int = 2, phones_txt: bool = True) -> Path:
    """A model dir (final.mdl in Kaldi's text form, tree, phones.txt) of a monophone system
    over ``lang`` with one unit Gaussian per pdf: enough for building graphs."""
    import shutil

    import kaldi_hmm_gmm as khg
    import numpy as np

    from speechssl.asr.model_io import write_model, write_tree
    out.mkdir(parents=True, exist_ok=True)
    tree = lang.context_dependency()
    tm = khg.TransitionModel(tree, lang.hmm_topology())
    am = khg.AmDiagGmm()
    gmm = khg.DiagGmm(1, dim)
    gmm.set_weights(np.ones(1, np.float32))
    gmm.set_invvars_and_means(np.ones((1, dim), np.float32), np.zeros((1, dim), np.float32))
    gmm.compute_gconsts()
    for _ in range(tree.num_pdfs):
        am.add_pdf(gmm)
    write_model(out / "final.mdl", tm, am)
    write_tree(out / "tree", tree)
    if phones_txt:
        shutil.copy(lang.path / "phones.txt", out / "phones.txt")
    return out
