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
