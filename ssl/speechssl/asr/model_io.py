"""Kaldi's files of a GMM-HMM model dir, read and written without Kaldi's binaries.

- ``final.mdl`` in Kaldi's text model format, exactly as ``gmm-copy --binary=false``
  writes it: ``TransitionModel::Write`` (topology, triples, log-probs) then
  ``AmDiagGmm::Write`` (``<DIMENSION> <NUMPDFS>`` and one ``<DiagGMM>`` per pdf), floats
  printed as Kaldi's text streams print them (7 significant digits).  Kaldi reads it back
  with any of its tools (``gmm-info``, ``show-alignments``, ``gmm-latgen-faster``).
  kaldi-hmm-gmm 1.1.4 exposes no model I/O of its own, so the transition model is
  rebuilt from the file through its pickling state (``__setstate__``), with the derived
  tables (``state2id``, ``id2state``, ``id2pdf_id``, non-self-loop log-probs) computed
  here as Kaldi's ``ComputeDerived`` and ``ComputeDerivedOfProbs`` do.
- ``tree``: a ContextDependency in Kaldi's binary form (``ContextDependency.write``).
- ``ali.<job>.gz``: a gzipped Kaldi archive of int32 vectors (transition-ids, one per
  frame), binary (``key \\0B \\4<n>`` then ``\\4<int32>`` per element, what
  ``BasicVectorHolder<int32>`` writes); the reader also takes the text form
  (``key 1 2 3``) that Kaldi's train_mono.sh writes (``ark,t:|gzip -c``).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import kaldi_hmm_gmm as khg
import numpy as np
from _kaldi_hmm_gmm import TransitionModelTuple

from speechssl.data.table import PathLike
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

# ---------------------------------------------------------------------------------------
# Writing: Kaldi's text streams (WriteToken: "tok "; WriteBasicType: "value "; vectors
# " [ v v ]\n"; matrices " [\n  v v \n  v v ]\n"; precision 7, InitKaldiOutputStream).


def kaldi_float(x: float) -> str:
    """A float as a Kaldi text stream prints it (``os << x`` at precision 7).

    >>> [kaldi_float(x) for x in (0.75, -1.3862943649291992, 1e-05, 2.0)]
    ['0.75', '-1.386294', '1e-05', '2']
    """
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.7g}"


def vector_text(v) -> str:
    return " [ " + "".join(kaldi_float(float(x)) + " " for x in v) + "]\n"


def matrix_text(m: np.ndarray) -> str:
    if m.size == 0:
        return " [ ]\n"
    rows = ("\n  " + "".join(kaldi_float(float(x)) + " " for x in row) for row in m)
    return " [" + "".join(rows) + "]\n"


def topology_text(topo: khg.HmmTopology) -> str:
    """``HmmTopology::Write`` in text mode (the lang dir's ``topo`` in Kaldi's layout)."""
    _, phone2idx, entries = topo.__getstate__()
    out = ["<Topology> \n"]
    for i, entry in enumerate(entries):
        phones = "".join(f"{p} " for p, idx in enumerate(phone2idx) if idx == i)
        out.append(f"<TopologyEntry> \n<ForPhones> \n{phones}\n</ForPhones> \n")
        for j, state in enumerate(entry):
            if state.forward_pdf_class != state.self_loop_pdf_class:
                raise ValueError("only HMM topologies (one pdf-class per state) are written")
            line = f"<State> {j} "
            if state.forward_pdf_class != -1:
                line += f"<PdfClass> {state.forward_pdf_class} "
            for dest, prob in state.transitions:
                line += f"<Transition> {dest} {kaldi_float(prob)} "
            out.append(line + "</State> \n")
        out.append("</TopologyEntry> \n")
    out.append("</Topology> \n")
    return "".join(out)


def emitting_states(topo: khg.HmmTopology, phone: int) -> list[int]:
    return [j for j, s in enumerate(topo.topology_for_phone(phone))
            if s.forward_pdf_class != -1]


def transition_triples(tm: khg.TransitionModel) -> list[tuple[int, int, int]]:
    """The (phone, hmm-state, pdf) of each transition state, in Kaldi's order.

    kaldi-hmm-gmm does not expose a tuple's fields, so they are recovered from the
    transition-ids of a monophone model (one transition state per emitting HMM state,
    sorted by phone then state, as Kaldi sorts its tuples) and checked by recomputing
    the model's derived tables from them: a model of another shape is refused.
    """
    state2id = tm.__getstate__()[2]
    pdf_of = tm.transition_id_to_pdf_array()
    by_phone: dict[int, list[int]] = {}
    for tstate in range(1, len(state2id) - 1):
        by_phone.setdefault(tm.transition_id_to_phone(state2id[tstate]), []).append(tstate)
    triples = []
    for phone, tstates in sorted(by_phone.items()):
        states = emitting_states(tm.topo, phone)
        if len(states) != len(tstates):
            raise ValueError(f"phone {phone} has {len(tstates)} transition states for "
                             f"{len(states)} HMM states: only monophone models are written")
        triples += [(phone, j, pdf_of[state2id[t]]) for j, t in zip(states, tstates, strict=True)]
    if derived_tables(tm.topo, triples) != tuple(tm.__getstate__()[2:5]):
        raise ValueError("the transition model's tables do not match its recovered triples")
    return triples


def transition_model_text(tm: khg.TransitionModel) -> str:
    """``TransitionModel::Write`` in text mode."""
    triples = transition_triples(tm)
    rows = "".join(f"{p} {s} {d} \n" for p, s, d in triples)
    return ("<TransitionModel> \n" + topology_text(tm.topo)
            + f"<Triples> {len(triples)} \n{rows}</Triples> \n"
            + "<LogProbs> \n" + vector_text(tm.log_probs) + "</LogProbs> \n"
            + "</TransitionModel> \n")


def diag_gmm_text(gmm: khg.DiagGmm) -> str:
    """``DiagGmm::Write`` in text mode."""
    return ("<DiagGMM> \n<GCONSTS> " + vector_text(gmm.gconsts)
            + "<WEIGHTS> " + vector_text(gmm.weights)
            + "<MEANS_INVVARS> " + matrix_text(np.asarray(gmm.means_invvars))
            + "<INV_VARS> " + matrix_text(np.asarray(gmm.inv_vars)) + "</DiagGMM> \n")


def am_text(am: khg.AmDiagGmm) -> str:
    """``AmDiagGmm::Write`` in text mode."""
    pdfs = "".join(diag_gmm_text(am.get_pdf(i)) for i in range(am.num_pdfs))
    return f"<DIMENSION> {am.dim} <NUMPDFS> {am.num_pdfs} " + pdfs


def write_model(path: PathLike, tm: khg.TransitionModel, am: khg.AmDiagGmm) -> None:
    """Write ``final.mdl`` (or ``<n>.mdl``) as ``gmm-copy --binary=false`` would."""
    if tm.num_pdfs != am.num_pdfs:
        raise ValueError(f"transition model has {tm.num_pdfs} pdfs, GMM {am.num_pdfs}")
    text = transition_model_text(tm) + am_text(am)
    with atomic_write(path) as f:
        f.write(text)


# ---------------------------------------------------------------------------------------
# Reading the text model.


class _Tokens:
    """Whitespace-separated tokens of a Kaldi text object, with errors naming the file."""

    def __init__(self, text: str, path: PathLike):
        self.tokens = text.split()
        self.pos = 0
        self.path = path

    def error(self, message: str) -> InputError:
        return InputError(f"not a Kaldi text model (as gmm-copy --binary=false writes): "
                          f"{message} (token {self.pos})", path=self.path)

    def next(self) -> str:
        if self.pos >= len(self.tokens):
            raise self.error("unexpected end of file")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expect(self, token: str) -> None:
        got = self.next()
        if got != token:
            raise self.error(f"expected {token}, got {got[:40]}")

    def number(self, kind=int):
        token = self.next()
        try:
            return kind(token)
        except ValueError:
            raise self.error(f"expected a number, got {token[:40]}") from None

    def until(self, end: str) -> list[str]:
        start = self.pos
        while self.next() != end:
            pass
        return self.tokens[start:self.pos - 1]

    def floats(self) -> np.ndarray:
        self.expect("[")
        try:
            return np.array([float(x) for x in self.until("]")], dtype=np.float64)
        except ValueError as e:
            raise self.error(f"bad number in a vector: {e}") from None


def derived_tables(topo: khg.HmmTopology, triples: list[tuple[int, int, int]]):
    """Kaldi's ``TransitionModel::ComputeDerived``: (state2id, id2state, id2pdf_id)."""
    state2id, id2state, id2pdf = [0, 1], [0], [0]
    for tstate, (phone, hmm_state, pdf) in enumerate(triples, start=1):
        n = len(topo.topology_for_phone(phone)[hmm_state].transitions)
        state2id.append(state2id[-1] + n)
        id2state += [tstate] * n
        id2pdf += [pdf] * n
    return state2id, id2state, id2pdf


def non_self_loop_log_probs(topo, triples, log_probs, state2id) -> list[float]:
    """Kaldi's ``ComputeDerivedOfProbs``: log(1 - self-loop prob) per transition state."""
    out = [0.0]
    for tstate, (phone, hmm_state, _) in enumerate(triples, start=1):
        value = 0.0
        for k, (dest, _) in enumerate(topo.topology_for_phone(phone)[hmm_state].transitions):
            if dest == hmm_state:
                value = math.log(max(1.0 - math.exp(log_probs[state2id[tstate] + k]), 1e-10))
        out.append(value)
    return out


def check_triples(topo: khg.HmmTopology, triples, path: PathLike) -> None:
    phones = set(topo.phones)
    for i, (phone, hmm_state, pdf) in enumerate(triples):
        if phone not in phones:
            raise InputError(f"triple {i}: phone {phone} is not in the model's topology",
                             path=path)
        entry = topo.topology_for_phone(phone)
        if not 0 <= hmm_state < len(entry) or entry[hmm_state].forward_pdf_class == -1:
            raise InputError(f"triple {i}: phone {phone} has no emitting HMM state "
                             f"{hmm_state}", path=path)
        if pdf < 0:
            raise InputError(f"triple {i}: negative pdf {pdf}", path=path)


def parse_transition_model(tok: _Tokens) -> khg.TransitionModel:
    tok.expect("<TransitionModel>")
    tok.expect("<Topology>")
    topo_text = "<Topology> " + " ".join(tok.until("</Topology>")) + " </Topology>"
    topo = khg.HmmTopology()
    try:
        topo.read(topo_text)
    except Exception as e:  # kaldi-hmm-gmm raises RuntimeError on a bad topology
        raise tok.error(f"bad topology: {e}") from None
    tok.expect("<Triples>")
    n = tok.number()
    triples = [(tok.number(), tok.number(), tok.number()) for _ in range(n)]
    tok.expect("</Triples>")
    check_triples(topo, triples, tok.path)
    tok.expect("<LogProbs>")
    log_probs = [float(x) for x in tok.floats()]
    tok.expect("</LogProbs>")
    tok.expect("</TransitionModel>")
    state2id, id2state, id2pdf = derived_tables(topo, triples)
    if len(log_probs) != len(id2state):
        raise tok.error(f"{len(log_probs)} log-probs for {len(id2state) - 1} transition-ids")
    tm = khg.TransitionModel.__new__(khg.TransitionModel)
    tuples = [TransitionModelTuple(p, s, d, d) for p, s, d in triples]
    num_pdfs = max((d for _, _, d in triples), default=-1) + 1
    tm.__setstate__((tuples, topo, state2id, id2state, id2pdf, num_pdfs, log_probs,
                     non_self_loop_log_probs(topo, triples, log_probs, state2id)))
    return tm


def parse_diag_gmm(tok: _Tokens, dim: int) -> khg.DiagGmm:
    tok.expect("<DiagGMM>")
    token = tok.next()
    if token == "<GCONSTS>":  # optional, recomputed as Kaldi's DiagGmm::Read does
        tok.floats()
        token = tok.next()
    if token != "<WEIGHTS>":
        raise tok.error(f"expected <WEIGHTS>, got {token[:40]}")
    weights = tok.floats()
    tok.expect("<MEANS_INVVARS>")
    means_invvars = tok.floats()
    tok.expect("<INV_VARS>")
    inv_vars = tok.floats()
    tok.expect("</DiagGMM>")
    shape = (len(weights), dim)
    if means_invvars.size != len(weights) * dim or inv_vars.size != means_invvars.size:
        raise tok.error(f"a GMM's means or variances are not {shape[0]} x {shape[1]}")
    inv_vars = inv_vars.reshape(shape)
    if not (inv_vars > 0).all():
        raise tok.error("non-positive inverse variance")
    gmm = khg.DiagGmm(len(weights), dim)
    gmm.set_weights(weights.astype(np.float32))
    gmm.set_invvars_and_means(inv_vars.astype(np.float32),
                              (means_invvars.reshape(shape) / inv_vars).astype(np.float32))
    gmm.compute_gconsts()
    return gmm


def parse_am(tok: _Tokens) -> khg.AmDiagGmm:
    tok.expect("<DIMENSION>")
    dim = tok.number()
    tok.expect("<NUMPDFS>")
    num_pdfs = tok.number()
    am = khg.AmDiagGmm()
    for _ in range(num_pdfs):
        am.add_pdf(parse_diag_gmm(tok, dim))
    return am


def read_model(path: PathLike) -> tuple[khg.TransitionModel, khg.AmDiagGmm]:
    """(TransitionModel, AmDiagGmm) of a text ``final.mdl`` (``gmm-copy --binary=false``)."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\0B"):
        raise InputError("a binary Kaldi model: convert it with gmm-copy --binary=false",
                         path=path)
    tok = _Tokens(data.decode("utf-8", errors="replace"), path)
    tm = parse_transition_model(tok)
    am = parse_am(tok)
    if tm.num_pdfs != am.num_pdfs:
        raise InputError(f"the transition model has {tm.num_pdfs} pdfs, the GMM "
                         f"{am.num_pdfs}", path=path)
    if tok.pos != len(tok.tokens):
        raise tok.error("trailing data after the GMM")
    return tm, am


def read_transition_model(path: PathLike) -> khg.TransitionModel:
    """The transition model alone (enough for hybrid decoding)."""
    return read_model(path)[0]


# ---------------------------------------------------------------------------------------
# The tree.


def write_tree(path: PathLike, tree: khg.ContextDependency) -> None:
    """``tree`` in Kaldi's binary form, written atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tree.write(True, str(tmp))
    os.replace(tmp, path)


def read_tree(path: PathLike) -> khg.ContextDependency:
    """A binary ``tree`` (as :func:`write_tree` and Kaldi write it)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\0BContextDependency "):
        raise InputError("not a binary Kaldi tree (ContextDependency)", path=path)
    tree = khg.ContextDependency.__new__(khg.ContextDependency)
    try:
        tree.__setstate__((np.frombuffer(data[2:], dtype=np.int8).tolist(),))
    except Exception as e:
        raise InputError(f"cannot read the tree: {e}", path=path) from None
    return tree


# ---------------------------------------------------------------------------------------
# Alignments: archives of int32 vectors.

_INT = struct.Struct("<i")


def int_vector_binary(values) -> bytes:
    r"""One int32 vector as ``BasicVectorHolder<int32>`` writes it, from ``\0B``.

    >>> int_vector_binary([7])
    b'\x00B\x04\x01\x00\x00\x00\x04\x07\x00\x00\x00'
    """
    values = np.asarray(values, dtype="<i4")
    body = np.empty((len(values), 5), dtype=np.uint8)
    body[:, 0] = 4
    body[:, 1:] = values.view(np.uint8).reshape(-1, 4)
    return b"\0B\x04" + _INT.pack(len(values)) + body.tobytes()


def write_alignments(path: PathLike, alignments: Mapping[str, np.ndarray]) -> None:
    """``ali.<n>.gz``: a gzipped binary archive of the utterances' transition-ids, in the
    mapping's order, written atomically."""
    with atomic_write(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as z:
            for utt, ali in alignments.items():
                if not utt or any(c.isspace() for c in utt):
                    raise ValueError(f"bad utterance id {utt!r}")
                z.write(utt.encode() + b" " + int_vector_binary(ali))


def _binary_vector(buf: bytes, pos: int, path: PathLike, utt: str) -> tuple[np.ndarray, int]:
    if buf[pos:pos + 1] != b"\x04" or len(buf) < pos + 5:
        raise InputError("expected an int32 vector (\\4 then its size)", path=path, key=utt)
    n = _INT.unpack_from(buf, pos + 1)[0]
    end = pos + 5 + 5 * n
    if n < 0 or len(buf) < end:
        raise InputError(f"truncated int32 vector of {n} elements", path=path, key=utt)
    body = np.frombuffer(buf, dtype=np.uint8, count=5 * n, offset=pos + 5).reshape(n, 5)
    if n and not (body[:, 0] == 4).all():
        raise InputError("an element of the int32 vector is not 4 bytes", path=path, key=utt)
    return body[:, 1:].copy().view("<i4").ravel().astype(np.int32), end


def iter_int_vector_archive(buf: bytes, path: PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """(key, int32 vector) of a Kaldi archive, binary or text entries."""
    pos = 0
    while pos < len(buf):
        if buf[pos:pos + 1].isspace():
            pos += 1
            continue
        space = buf.find(b" ", pos)
        if space < 0:
            raise InputError(f"archive ends inside a key ({buf[pos:pos + 40]!r})", path=path)
        utt = buf[pos:space].decode("utf-8", errors="replace")
        if "\n" in utt:
            raise InputError(f"an entry without a value ({utt.splitlines()[0]!r})", path=path)
        if buf[space + 1:space + 3] == b"\0B":
            values, pos = _binary_vector(buf, space + 3, path, utt)
        else:
            end = buf.find(b"\n", space)
            end = len(buf) if end < 0 else end
            try:
                values = np.array(buf[space + 1:end].split(), dtype=np.int32)
            except ValueError:
                raise InputError("text entry is not a list of integers", path=path,
                                 key=utt) from None
            pos = end + 1
        yield utt, values


def read_alignment_file(path: PathLike) -> dict[str, np.ndarray]:
    """The alignments of one ``ali.<n>.gz`` (or an uncompressed archive)."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        try:
            data = gzip.GzipFile(fileobj=f).read() if head == b"\x1f\x8b" else f.read()
        except (OSError, EOFError) as e:
            raise InputError(f"cannot decompress: {e}", path=path) from None
    out: dict[str, np.ndarray] = {}
    for utt, ali in iter_int_vector_archive(data, path):
        if utt in out:
            raise InputError("utterance appears twice", path=path, key=utt)
        out[utt] = ali
    return out


def read_num_jobs(model_dir: PathLike) -> int:
    path = Path(model_dir) / "num_jobs"
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise InputError("no num_jobs: not an alignment dir (steps/align_si.sh, "
                         "steps/train_mono.sh)", path=path) from None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"expected a positive integer, got '{text[:40]}'", path=path)
    return int(text)


def read_alignments(ali_dir: PathLike) -> dict[str, np.ndarray]:
    """All ``ali.<n>.gz`` of a model or alignment dir (n = 1..num_jobs), utterance ->
    int32 transition-ids; an utterance in two files is an error naming both."""
    ali_dir = Path(ali_dir)
    out: dict[str, np.ndarray] = {}
    where: dict[str, Path] = {}
    for job in range(1, read_num_jobs(ali_dir) + 1):
        path = ali_dir / f"ali.{job}.gz"
        if not path.is_file():
            raise InputError(f"missing (num_jobs says {job} or more jobs)", path=path)
        for utt, ali in read_alignment_file(path).items():
            if utt in out:
                raise InputError(f"utterance also in {where[utt]}", path=path, key=utt)
            out[utt], where[utt] = ali, path
    return out


def _is_reordered(tm: khg.TransitionModel, ali: Sequence[int]) -> bool:
    """Whether self-loops follow the forward transition of their HMM state (Kaldi's
    default ``--reorder=true`` graphs) rather than precede it: the first change of
    transition state shows it (Kaldi's ``IsReordered``)."""
    state = tm.id2state
    for a, b in zip(ali[:-1], ali[1:], strict=True):
        if state[a] != state[b]:
            if tm.is_self_loop(a):
                return True
            if tm.is_self_loop(b):
                return False
    return bool(ali) and not tm.is_self_loop(ali[0]) and tm.is_self_loop(ali[-1])


def split_to_phones(tm: khg.TransitionModel, ali) -> tuple[list[list[int]], bool]:
    """An alignment cut into its phone instances, as Kaldi's ``SplitToPhones``: a phone
    ends at the transition into its final state (plus, in reordered alignments, the
    self-loops that follow it), or where the phone changes without one.  The flag is
    false for an implausible alignment: a phone cut short, or an instance that does not
    start in HMM state 0 (every state of our topologies emits)."""
    ali = [int(t) for t in ali]
    if not ali:
        return [], True
    reordered = _is_reordered(tm, ali)
    state = tm.id2state
    ends, ok, i = [], True, 0
    while i < len(ali):
        t = ali[i]
        if tm.is_final(t):
            while reordered and i + 1 < len(ali) and tm.is_self_loop(ali[i + 1]):
                i += 1
            ends.append(i + 1)
        elif i + 1 == len(ali):
            ok = False                           # the last phone never reached its end
            ends.append(i + 1)
        elif state[t] != state[ali[i + 1]] and (
                tm.transition_id_to_phone(t) != tm.transition_id_to_phone(ali[i + 1])):
            ok = False                           # a phone left before its final state
            ends.append(i + 1)
        i += 1
    pieces = [ali[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    ok = ok and all(tm.transition_ids_is_start_of_phone(piece[0]) for piece in pieces)
    return pieces, ok


def phones_of_alignment(tm: khg.TransitionModel, ali) -> list[int]:
    """The phone of each phone instance of an alignment (what ``ali-to-phones`` prints)."""
    return [tm.transition_id_to_phone(piece[0]) for piece in split_to_phones(tm, ali)[0]]


def check_phones_compatible(phones_a: PathLike, phones_b: PathLike) -> None:
    """Kaldi's utils/lang/check_phones_compatible.sh: the two phones.txt must be equal
    (disambiguation symbols aside: a model's phones.txt and a lang's may differ there)."""
    def load(path: PathLike) -> dict[str, str]:
        try:
            lines = Path(path).read_text().splitlines()
        except FileNotFoundError:
            raise InputError("no phones.txt", path=path) from None
        pairs = (line.split() for line in lines if line.strip())
        return {p[0]: p[1] for p in pairs if len(p) == 2 and not p[0].startswith("#")}
    a, b = load(phones_a), load(phones_b)
    if a != b:
        diff = sorted(set(a.items()) ^ set(b.items()))[:3]
        raise InputError(f"phone symbols differ from those of {phones_b} (e.g. "
                         f"{' '.join(f'{s}={i}' for s, i in diff)}): the model or "
                         "alignments come from another lang dir", path=phones_a)


__all__ = ["read_model", "write_model", "read_transition_model", "read_tree", "write_tree",
           "read_alignments", "read_alignment_file", "write_alignments", "read_num_jobs",
           "phones_of_alignment", "split_to_phones", "check_phones_compatible", "topology_text"]
