"""Decoding through an HCLG graph with kaldi-hmm-gmm's ``FasterDecoder``, as Kaldi's
``gmm-decode-faster`` (GMM) and ``decode-faster-mapped`` (hybrid DNN) do.

kaldi-hmm-gmm's bindings return no lattice (its lattice-faster decoder gives the best
path only), so where Kaldi's ``local/score.sh`` rescales one lattice for each LM weight
we decode once per weight with acoustic scale ``1 / lmwt``: the best path of a lattice
scaled by ``1/lmwt`` is the best path of a decode at that acoustic scale, up to pruning.
Without a lattice to keep, the lattice-faster decoder's token bookkeeping is wasted:
FasterDecoder, the same beam search (beam, max-active, min-active), finds the same best
paths in 1/2.6 of the search CPU at beam 13 (bench/bench_asr.py; 1/3.4 for egs/mini's
CPC DNN at beam 10).  The utterance loop is outside the weight
loop, so a DNN's log-likelihoods are computed once per utterance, and memory does not
grow with the test set.

Hybrid decoding: ``DecodableCtc(mat)`` returns ``mat[t, tid - 1]`` for transition id
``tid`` (checked in tests/test_asr_decode.py), so the (T, num_pdfs) log-likelihoods,
scaled, are expanded to (T, num_transition_ids) through the transition model's
transition-id -> pdf map; this is ``DecodableMatrixScaledMapped`` of Kaldi.

PER is computed from the best path's phones: the alignment split into phone instances as
Kaldi's ``ali-to-phones`` does (``model_io.split_to_phones``, either self-loop order),
word-position markers (``_B _E _I _S``) stripped, silence phones removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechssl.asr.lang import read_symbols  # noqa: F401  (callers use dec.read_symbols)
from speechssl.data.table import PathLike
from speechssl.errors import InputError

POSITION = re.compile(r"_[BEIS]$")   # Kaldi's word-position suffixes of phones.txt


@dataclass(frozen=True)
class DecoderOptions:
    """Kaldi's steps/decode.sh defaults."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 200


@dataclass
class BestPath:
    words: list[int]
    alignment: list[int]     # transition ids, one per frame
    log_like: float
    succeeded: bool          # False: no path reached a final state (the partial path kept)


def lmwt_values(spec: str) -> list[int]:
    """``7:17`` (Kaldi's --min-lmwt/--max-lmwt as one option), ``7:17:2`` (every second
    weight: each weight is a decoding pass here, not a cheap lattice rescoring) or ``12``.

    >>> lmwt_values("7:9"), lmwt_values("7:17:5"), lmwt_values("12")
    ([7, 8, 9], [7, 12, 17], [12])
    """
    try:
        parts = [int(x) for x in spec.split(":")]
    except ValueError:
        raise ValueError(f"LM weights must be N, MIN:MAX or MIN:MAX:STEP integers, got "
                         f"'{spec}'") from None
    if len(parts) not in (1, 2, 3) or min(parts) < 1 or parts[0] > parts[min(1, len(parts) - 1)]:
        raise ValueError(f"LM weights must be N, MIN:MAX or MIN:MAX:STEP with 1 <= MIN <= MAX"
                         f" and STEP >= 1, got '{spec}'")
    step = parts[2] if len(parts) == 3 else 1
    return list(range(parts[0], parts[min(1, len(parts) - 1)] + 1, step))


# ---------------------------------------------------------------- graph and model

def check_graph(graph_dir: PathLike, num_pdfs: int, model_phones: PathLike | None,
                model: PathLike) -> None:
    """The graph must have been built for this model: its ``num_pdfs`` (mkgraph writes it)
    equal to the model's, and its ``phones.txt`` the model's (another lang's phones would
    decode into nonsense without any error)."""
    graph_dir = Path(graph_dir)
    for name in ("HCLG.fst", "words.txt"):
        if not (graph_dir / name).is_file():
            raise InputError(f"no {name} (run utils/mkgraph.sh)", path=graph_dir)
    if (graph_dir / "num_pdfs").is_file():
        text = (graph_dir / "num_pdfs").read_text().strip()
        if text != str(num_pdfs):
            raise InputError(f"the graph was built for a model with {text} pdfs, {model} has "
                             f"{num_pdfs}: rebuild the graph with utils/mkgraph.sh for this "
                             "model", path=graph_dir / "num_pdfs")
    if model_phones is not None and (graph_dir / "phones.txt").is_file() \
            and Path(model_phones).is_file():
        from speechssl.asr.model_io import check_phones_compatible

        check_phones_compatible(graph_dir / "phones.txt", model_phones)


@dataclass
class GraphDecoder:
    """The decoder with its graph: the binding keeps no reference to the FST."""

    decoder: object
    graph: object


def make_decoder(graph_path: PathLike, options: DecoderOptions) -> GraphDecoder:
    import kaldi_hmm_gmm as khg
    import kaldifst

    graph = kaldifst.StdVectorFst.read(str(graph_path))
    if graph is None or graph.num_states == 0:
        raise InputError("cannot read the graph, or it is empty", path=graph_path)
    config = khg.FasterDecoderOptions()
    config.beam, config.max_active = options.beam, options.max_active
    config.min_active = options.min_active
    return GraphDecoder(khg.FasterDecoder(graph, config), graph)


# ---------------------------------------------------------------- decodables

def pdf_to_tid_matrix(loglikes: np.ndarray, tid2pdf: np.ndarray) -> np.ndarray:
    """(T, num_pdfs) -> (T, num_transition_ids): column ``tid - 1`` holds the pdf of
    ``tid`` (``tid2pdf`` as ``transition_id_to_pdf_array()``, entry 0 unused)."""
    return np.ascontiguousarray(loglikes[:, np.asarray(tid2pdf)[1:]], dtype=np.float32)


def decode_decodable(decoder: GraphDecoder, decodable) -> BestPath:
    """The best path, as Kaldi's decode-faster with --allow-partial: from the best final
    state, or, where no token reached one, from the best token of the last frame."""
    import kaldifst

    d = decoder.decoder
    d.decode(decodable)
    reached = d.reached_final()
    ok, path = d.get_best_path(use_final_probs=reached)
    if not ok:
        return BestPath([], [], float("-inf"), False)
    ok, alignment, words, weight = kaldifst.get_linear_symbol_sequence(path)
    if not ok:   # cannot happen for a best path; kept so a binding change fails loudly
        raise RuntimeError("the decoder's best path is not linear")
    return BestPath(list(words), list(alignment), -(weight.value1 + weight.value2), reached)


def decode_loglikes(decoder: GraphDecoder, tid2pdf: np.ndarray, loglikes: np.ndarray,
                    acoustic_scale: float) -> BestPath:
    """A best path from pdf log-likelihoods (a DNN's log-posteriors minus log-priors)."""
    import kaldi_hmm_gmm as khg

    mat = pdf_to_tid_matrix(loglikes * acoustic_scale, tid2pdf)
    return decode_decodable(decoder, khg.DecodableCtc(mat))


def decode_gmm(decoder: GraphDecoder, tm, am, feats: np.ndarray,
               acoustic_scale: float) -> BestPath:
    import kaldi_hmm_gmm as khg

    decodable = khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=np.ascontiguousarray(
        feats, dtype=np.float32), scale=acoustic_scale)
    return decode_decodable(decoder, decodable)


# ---------------------------------------------------------------- phones of a path

def scoring_phones(phone_ids: Sequence[int], id2phone: Mapping[int, str],
                   silence: set[str]) -> list[str]:
    """Phone symbols with position markers stripped and silence (after stripping) removed.

    >>> scoring_phones([1, 2, 3], {1: "sil", 2: "a_B", 3: "t_E"}, {"sil"})
    ['a', 't']
    """
    out = []
    for p in phone_ids:
        name = POSITION.sub("", id2phone[p])
        if name not in silence:
            out.append(name)
    return out
