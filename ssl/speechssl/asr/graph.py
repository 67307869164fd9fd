"""Decoding graphs: HCLG as Kaldi's utils/mkgraph.sh builds it, with kaldifst and
kaldi-hmm-gmm in place of Kaldi's binaries.

    LG    = fsttablecompose L_disambig G | fstdeterminizestar --use-log=true
            | fstminimizeencoded [| fstpushspecial]
    CLG   = fstcomposecontext (the tree's context width: 1 for a monophone system)
    Ha    = make-h-transducer --transition-scale=1.0 (also gives disambig_tid.int)
    HCLGa = fsttablecompose Ha CLG | fstdeterminizestar --use-log=true
            | fstrmsymbols disambig_tid.int | fstrmepslocal | fstminimizeencoded
    HCLG  = add-self-loops --self-loop-scale=0.1 --reorder=true

Two differences from Kaldi: kaldifst has no ``fstpushspecial`` (weight pushing of LG;
it changes where costs sit along a path, not any path's total, so only pruning can
differ), and ``fstrmepslocal`` is replaced by OpenFst's full epsilon removal (the same
paths and, in the tropical semiring, the same best costs).  HCLG's input labels are
transition ids, its outputs word ids.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from speechssl.asr.lang import Lang
from speechssl.data.write import staged_dir
from speechssl.errors import InputError

log = logging.getLogger(__name__)
PathLike = str | os.PathLike


@dataclass(frozen=True)
class GraphOptions:
    """utils/mkgraph.sh's options (same names and defaults)."""
    transition_scale: float = 1.0
    self_loop_scale: float = 0.1


def remove_input_symbols(fst, symbols: set[int]):
    """Kaldi's fstrmsymbols, in place: the input labels in ``symbols`` become epsilon
    (only the states with such arcs are rewritten)."""
    import kaldifst
    for s in range(fst.num_states):
        arcs = list(kaldifst.ArcIterator(fst, s))
        if not any(a.ilabel in symbols for a in arcs):
            continue
        kept = [(0 if a.ilabel in symbols else a.ilabel, a.olabel, a.weight, a.nextstate)
                for a in arcs]
        fst.delete_arcs(s, len(arcs))
        for ilabel, olabel, weight, nextstate in kept:
            fst.add_arc(s, kaldifst.StdArc(ilabel, olabel, weight, nextstate))
    return fst


def compose_lg(lang: Lang):
    """LG: L_disambig o G, determinized in the log semiring and minimized."""
    import kaldifst
    g_path = lang.path / "G.fst"
    if not g_path.is_file():
        raise InputError("no G.fst (run utils/format_lm.sh to add an LM)", path=lang.path)
    g = kaldifst.StdVectorFst.read(str(g_path))
    kaldifst.arcsort(g, sort_type="ilabel")
    lg = kaldifst.compose(lang.lexicon_fst(disambig=True), g)
    if lg.num_states == 0:
        raise InputError("L_disambig o G is empty: G.fst's words are not the lang's "
                         "(format_lm.sh with another lang dir?)", path=g_path)
    kaldifst.determinize_star(lg, use_log=True)
    kaldifst.minimize_encoded(lg)
    return lg


def build_hclg(lang: Lang, tm, tree, opts: GraphOptions = GraphOptions()):
    """HCLG (a kaldifst.StdVectorFst, ilabel-sorted) for ``lang`` (with G.fst) and a
    model's transition model and tree."""
    return hclg_and_disambig_tids(lang, tm, tree, opts)[0]


def hclg_and_disambig_tids(lang: Lang, tm, tree, opts: GraphOptions = GraphOptions(),
                           ) -> tuple[object, list[int]]:
    """HCLG and the disambiguation transition ids (mkgraph's disambig_tid.int)."""
    import kaldi_hmm_gmm as khg
    import kaldifst
    lg = compose_lg(lang)
    clg, ilabels = kaldifst.compose_context(
        disambig_syms=lang.disambig_phones, context_width=tree.context_width,
        central_position=tree.central_position, ifst=lg)
    kaldifst.arcsort(clg, sort_type="ilabel")
    config = khg.HTransducerConfig(transition_scale=opts.transition_scale)
    ha, disambig_tids = khg.get_h_transducer(ilabel_info=ilabels, ctx_dep=tree,
                                             trans_model=tm, config=config)
    kaldifst.arcsort(ha, sort_type="olabel")
    hclga = kaldifst.compose(ha, clg)
    kaldifst.determinize_star(hclga, use_log=True)
    hclga = remove_input_symbols(hclga, set(disambig_tids))
    kaldifst.rmepsilon(hclga)
    kaldifst.minimize_encoded(hclga)
    hclg = khg.add_self_loops(self_loop_scale=opts.self_loop_scale, disambig_syms=[],
                              reorder=True, trans_model=tm, ifst=hclga)
    kaldifst.arcsort(hclg, sort_type="ilabel")
    if hclg.num_states == 0:
        raise InputError("the graph is empty", path=lang.path)
    return hclg, list(disambig_tids)


def check_model_matches_lang(lang: Lang, tm, model_dir: Path) -> None:
    """mkgraph.sh's check: the model's phones.txt must be the lang's (disambiguation
    symbols aside), and the transition model's phones the lang's phones."""
    from speechssl.asr.model_io import check_phones_compatible
    if (model_dir / "phones.txt").is_file():
        check_phones_compatible(lang.path / "phones.txt", model_dir / "phones.txt")
    phones = sorted(lang.silence_phones + lang.nonsilence_phones)
    if sorted(tm.phones) != phones:
        raise InputError(f"the model has {len(tm.phones)} phones, the lang dir {len(phones)}: "
                         "the model was trained with another lang dir",
                         path=model_dir / "final.mdl")


def copy_lang_files(lang: Lang, out: Path) -> None:
    """What mkgraph.sh keeps with HCLG so that decoding needs no lang dir."""
    shutil.copy2(lang.path / "words.txt", out / "words.txt")
    shutil.copy2(lang.path / "phones.txt", out / "phones.txt")
    (out / "phones").mkdir()
    for pattern in ("word_boundary.*", "align_lexicon.*", "optional_silence.*",
                    "disambig.txt", "disambig.int", "silence.csl"):
        for f in (lang.path / "phones").glob(pattern):
            shutil.copy2(f, out / "phones" / f.name)


def mkgraph(lang_dir: PathLike, model_dir: PathLike, graph_dir: PathLike,
            opts: GraphOptions = GraphOptions()) -> Path:
    """utils/mkgraph.sh: HCLG.fst, words.txt, phones.txt, phones/, num_pdfs and
    disambig_tid.int in ``graph_dir``, which appears complete or not at all."""
    from speechssl.asr.model_io import read_transition_model, read_tree
    lang, model_dir = Lang.load(lang_dir), Path(model_dir)
    for name in ("final.mdl", "tree"):
        if not (model_dir / name).is_file():
            raise InputError(f"no {name} (train a model first)", path=model_dir)
    tm = read_transition_model(model_dir / "final.mdl")
    check_model_matches_lang(lang, tm, model_dir)
    tree = read_tree(model_dir / "tree")
    hclg, disambig_tids = hclg_and_disambig_tids(lang, tm, tree, opts)
    with staged_dir(graph_dir) as out:
        if not hclg.write(str(out / "HCLG.fst")):
            raise OSError(f"could not write {out / 'HCLG.fst'}")
        (out / "disambig_tid.int").write_text("".join(f"{t}\n" for t in disambig_tids))
        (out / "num_pdfs").write_text(f"{tm.num_pdfs}\n")
        copy_lang_files(lang, out)
    log.info("HCLG: %d states, %d arcs", hclg.num_states,
             sum(hclg.num_arcs(s) for s in range(hclg.num_states)))
    return Path(graph_dir)
