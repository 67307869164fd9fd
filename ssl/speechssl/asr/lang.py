"""Kaldi lang dirs: check a dict dir, build a lang dir as Kaldi's ``utils/prepare_lang.sh``
does, and load one (:class:`Lang`).

A dict dir (``data/local/dict``) holds ``lexicon.txt`` (``word phone...``) or
``lexiconp.txt`` (``word prob phone...``, preferred when both exist, as in Kaldi),
``silence_phones.txt`` and ``nonsilence_phones.txt`` (one phone per line, or several: a
line is one "shared root" set, kept together in ``phones/sets.txt`` and ``roots.txt``;
our monophone systems still give each phone its own pdfs, as ``gmm-init-mono`` does
without ``--shared-phones``), ``optional_silence.txt`` (one silence phone) and, optionally,
``extra_questions.txt``.  The lang dir is Kaldi's: ``phones.txt``, ``words.txt``,
``L.fst``, ``L_disambig.fst`` (OpenFst binary), ``topo``, ``oov.{txt,int}`` and
``phones/``; it is written in a staging dir and renamed into place.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speechssl.data.write import staged_dir
from speechssl.errors import InputError
from speechssl.fileio import atomic_write

PathLike = str | os.PathLike
POSITIONS = ("_B", "_E", "_I", "_S")   # begin, end, internal, singleton (Kaldi's suffixes)
BOUNDARY = {"_B": "begin", "_E": "end", "_I": "internal", "_S": "singleton"}
RESERVED_WORDS = ("<eps>", "<s>", "</s>")


@dataclass(frozen=True)
class LangOptions:
    """utils/prepare_lang.sh's options (same names and defaults)."""
    position_dependent_phones: bool = True
    sil_prob: float = 0.5
    num_sil_states: int = 5
    num_nonsil_states: int = 3


@dataclass(frozen=True)
class LexiconEntry:
    word: str
    prob: float
    phones: tuple[str, ...]
    line: int = 0          # line in the lexicon file (0: made in memory)


@dataclass
class DictDir:
    """A checked dict dir; phone lists keep their lines (a line is a shared-root set)."""
    path: Path
    lexicon_file: Path
    lexicon: list[LexiconEntry]
    silence: list[list[str]]
    nonsilence: list[list[str]]
    optional_silence: str
    extra_questions: list[list[str]] = field(default_factory=list)

    @property
    def words(self) -> set[str]:
        return {e.word for e in self.lexicon}


# --- reading and checking a dict dir -------------------------------------------------------

def _phone_lines(path: Path, required: bool = True) -> list[tuple[int, list[str]]]:
    """(line number, phones) of a phone-list file; blank lines are an error."""
    if not path.is_file():
        if required:
            raise InputError("no such file (a Kaldi dict dir needs it)", path=path)
        return []
    lines = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.split():
            raise InputError("empty line", path=path, line=lineno)
        lines.append((lineno, line.split()))
    return lines


def _check_phone_name(phone: str, path: Path, line: int, position_dependent: bool) -> None:
    if phone.startswith("#") or phone == "<eps>":
        raise InputError("a phone may not be <eps> or start with '#' (disambiguation "
                         "symbols)", path=path, line=line, key=phone)
    if position_dependent and phone.endswith(POSITIONS):
        raise InputError("a phone may not end in _B, _E, _I or _S with position-dependent "
                         "phones (use --position-dependent-phones false or rename it)",
                         path=path, line=line, key=phone)


def read_phone_lists(path: Path, position_dependent: bool = True,
                     ) -> tuple[list[list[str]], list[list[str]], str]:
    """silence and nonsilence phone lines and the optional silence phone, checked: each
    phone listed once, at least one silence phone, the optional silence among them."""
    seen: dict[str, str] = {}
    lists = []
    for name in ("silence_phones.txt", "nonsilence_phones.txt"):
        lines = []
        for lineno, phones in _phone_lines(path / name):
            for p in phones:
                _check_phone_name(p, path / name, lineno, position_dependent)
                if p in seen:
                    raise InputError(f"phone listed twice (first in {seen[p]})",
                                     path=path / name, line=lineno, key=p)
                seen[p] = f"{name}:{lineno}"
            lines.append(phones)
        lists.append(lines)
    silence, nonsilence = lists
    if not silence:
        raise InputError("no silence phone (Kaldi needs at least one)",
                         path=path / "silence_phones.txt")
    opt = _phone_lines(path / "optional_silence.txt")
    if len(opt) != 1 or len(opt[0][1]) != 1:
        raise InputError("expected exactly one phone", path=path / "optional_silence.txt")
    optional = opt[0][1][0]
    if optional not in {p for line in silence for p in line}:
        raise InputError("the optional silence phone is not in silence_phones.txt",
                         path=path / "optional_silence.txt", line=1, key=optional)
    return silence, nonsilence, optional


def read_lexicon(path: PathLike, phones: set[str] | None = None,
                 with_probs: bool | None = None) -> list[LexiconEntry]:
    """lexicon.txt or lexiconp.txt (``with_probs``; default: by the file name), checked:
    a pronunciation, known phones, probabilities in (0, 1], no reserved words, no
    duplicate word + pronunciation."""
    path = Path(path)
    if with_probs is None:
        with_probs = path.name.startswith("lexiconp")
    if not path.is_file():
        raise InputError("no such file", path=path)
    entries, seen = [], set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        entry = _lexicon_entry(line.split(), path, lineno, with_probs)
        unknown = [p for p in entry.phones if phones is not None and p not in phones]
        if unknown:
            raise InputError(f"phone '{unknown[0]}' is not in silence_phones.txt or "
                             "nonsilence_phones.txt", path=path, line=lineno, key=entry.word)
        if (entry.word, entry.phones) in seen:
            raise InputError("duplicate pronunciation", path=path, line=lineno, key=entry.word)
        seen.add((entry.word, entry.phones))
        entries.append(entry)
    if not entries:
        raise InputError("empty lexicon", path=path)
    return entries


def _lexicon_entry(fields: list[str], path: Path, lineno: int, with_probs: bool,
                   ) -> LexiconEntry:
    if not fields:
        raise InputError("empty line", path=path, line=lineno)
    word, rest = fields[0], fields[1:]
    if word in RESERVED_WORDS or word.startswith("#"):
        raise InputError("reserved word (<eps>, <s>, </s> and #... are Kaldi's)",
                         path=path, line=lineno, key=word)
    prob = 1.0
    if with_probs:
        try:
            prob = float(rest[0]) if rest else math.nan
        except ValueError:
            prob = math.nan
        if not 0.0 < prob <= 1.0:
            raise InputError("expected a pronunciation probability in (0, 1] after the word",
                             path=path, line=lineno, key=word)
        rest = rest[1:]
    if not rest:
        raise InputError("empty pronunciation", path=path, line=lineno, key=word)
    return LexiconEntry(word, prob, tuple(rest), lineno)


def read_dict_dir(path: PathLike, position_dependent: bool = True) -> DictDir:
    """Read and check a Kaldi dict dir (Kaldi's utils/validate_dict_dir.pl's main checks)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such dict dir", path=path)
    silence, nonsilence, optional = read_phone_lists(path, position_dependent)
    phones = {p for line in silence + nonsilence for p in line}
    lexicon_file = path / "lexiconp.txt"
    if not lexicon_file.is_file():
        lexicon_file = path / "lexicon.txt"
    lexicon = read_lexicon(lexicon_file, phones)
    questions = _phone_lines(path / "extra_questions.txt", required=False)
    for lineno, line in questions:
        for p in line:
            if p not in phones:
                raise InputError("phone not in the phone lists",
                                 path=path / "extra_questions.txt", line=lineno, key=p)
    return DictDir(path, lexicon_file, lexicon, silence, nonsilence, optional,
                   [line for _, line in questions])


# --- the pieces of prepare_lang.sh ---------------------------------------------------------

def phone_map(d: DictDir, position_dependent: bool) -> dict[str, list[str]]:
    """Each dict phone's lang phones (prepare_lang.sh's phone_map.txt): a nonsilence phone
    becomes p_B p_E p_I p_S; a silence phone keeps itself too (it stands alone between
    words) before its four variants."""
    if not position_dependent:
        return {p: [p] for line in d.silence + d.nonsilence for p in line}
    out = {p: [p] + [p + s for s in POSITIONS] for line in d.silence for p in line}
    out.update({p: [p + s for s in POSITIONS] for line in d.nonsilence for p in line})
    return out


def mark_positions(phones: Sequence[str]) -> tuple[str, ...]:
    """Word-position-dependent phones of one pronunciation.

    >>> mark_positions(["a"]), mark_positions(["k", "a", "t"])
    (('a_S',), ('k_B', 'a_I', 't_E'))
    """
    if len(phones) == 1:
        return (phones[0] + "_S",)
    return (phones[0] + "_B", *(p + "_I" for p in phones[1:-1]), phones[-1] + "_E")


def add_lex_disambig(lexicon: Sequence[LexiconEntry], first: int = 1,
                     ) -> tuple[list[LexiconEntry], int]:
    """Kaldi's utils/add_lex_disambig.pl: a pronunciation shared by several entries
    (homophones) or a proper prefix of another gets ``#k`` appended, numbered per
    phone sequence from ``first``; returns the entries and the largest k used
    (``first - 1`` when none was needed)."""
    count = Counter(e.phones for e in lexicon)
    prefixes = {e.phones[:n] for e in lexicon for n in range(len(e.phones))}
    last_used: dict[tuple[str, ...], int] = {}
    max_disambig = first - 1
    out = []
    for e in lexicon:
        if e.phones not in prefixes and count[e.phones] == 1:
            out.append(e)
            continue
        k = last_used.get(e.phones, first - 1) + 1
        last_used[e.phones] = k
        max_disambig = max(max_disambig, k)
        out.append(LexiconEntry(e.word, e.prob, (*e.phones, f"#{k}"), e.line))
    return out, max_disambig


def lexicon_fst_arcs(lexicon: Sequence[LexiconEntry], sil_prob: float, sil_phone: str,
                     sil_disambig: str | None = None,
                     ) -> tuple[list[tuple[int, int, str, str, float]], list[int]]:
    """The arcs ``(src, dest, phone, word, cost)`` and final states of Kaldi's
    utils/lang/make_lexicon_fst.py: a loop state that words leave and enter; with
    ``sil_prob`` > 0, optional silence at the start and after each word (cost
    -log(sil_prob), -log(1 - sil_prob) without it), the silence followed by
    ``sil_disambig`` in L_disambig."""
    if sil_prob == 0.0:
        return _lexicon_arcs_no_silence(lexicon)
    if not 0.0 < sil_prob < 1.0:
        raise ValueError(f"sil_prob must be in [0, 1), got {sil_prob}")
    sil_cost, no_sil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
    start, loop, sil = 0, 1, 2
    arcs = [(start, loop, "<eps>", "<eps>", no_sil_cost), (start, sil, "<eps>", "<eps>", sil_cost)]
    next_state = 3
    if sil_disambig is None:
        arcs.append((sil, loop, sil_phone, "<eps>", 0.0))
    else:
        arcs += [(sil, next_state, sil_phone, "<eps>", 0.0),
                 (next_state, loop, sil_disambig, "<eps>", 0.0)]
        next_state += 1
    for e in lexicon:
        cur, next_state = _pron_arcs(arcs, e, loop, next_state)
        first = len(e.phones) == 1
        cost = -math.log(e.prob) if first else 0.0
        word = e.word if first else "<eps>"
        arcs.append((cur, loop, e.phones[-1], word, no_sil_cost + cost))
        arcs.append((cur, sil, e.phones[-1], word, sil_cost + cost))
    return arcs, [loop]


def _pron_arcs(arcs: list, e: LexiconEntry, loop: int, next_state: int) -> tuple[int, int]:
    """Arcs for all but the last phone of ``e`` (the word and its cost on the first);
    returns the state before the last phone and the next free state."""
    cur = loop
    for i, phone in enumerate(e.phones[:-1]):
        arcs.append((cur, next_state, phone, e.word if i == 0 else "<eps>",
                     -math.log(e.prob) if i == 0 else 0.0))
        cur, next_state = next_state, next_state + 1
    return cur, next_state


def _lexicon_arcs_no_silence(lexicon: Sequence[LexiconEntry]):
    arcs: list[tuple[int, int, str, str, float]] = []
    next_state = 1
    for e in lexicon:
        cur, next_state = _pron_arcs(arcs, e, 0, next_state)
        first = len(e.phones) == 1
        arcs.append((cur, 0, e.phones[-1], e.word if first else "<eps>",
                     -math.log(e.prob) if first else 0.0))
    return arcs, [0]


def compile_fst(arcs: Iterable[tuple[int, int, int, int, float]], finals: Iterable[int],
                sort_type: str | None = None):
    """A kaldifst.StdVectorFst from integer arcs (the first arc's source is the start)."""
    import kaldifst
    lines = [f"{s} {d} {i} {o} {w!r}" for s, d, i, o, w in arcs]
    lines += [str(f) for f in finals]
    fst = kaldifst.compile("\n".join(lines) + "\n", acceptor=False, keep_state_numbering=True)
    if sort_type:
        kaldifst.arcsort(fst, sort_type=sort_type)
    return fst


def add_disambig_self_loops(arcs: list, finals: Sequence[int], ilabel: int, olabel: int,
                            ) -> list:
    """Kaldi's fstaddselfloops: an ``ilabel:olabel`` self-loop on every state that is final
    or has an arc with a word on it (L_disambig's #0:#0, which lets G's backoff #0 through)."""
    needs = set(finals) | {a[0] for a in arcs if a[3] != 0}
    return arcs + [(s, s, ilabel, olabel, 0.0) for s in sorted(needs)]


def gen_topo(nonsil: Sequence[int], sil: Sequence[int], num_nonsil_states: int = 3,
             num_sil_states: int = 5) -> str:
    """Kaldi's utils/gen_topo.pl: left-to-right HMMs (self-loop 0.75, forward 0.25) for
    nonsilence phones; for silence, a first state into all but the last emitting state,
    middle states fully connected (1/(n-1) each) and a last state 0.75/0.25."""
    out = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, nonsil)),
           "</ForPhones>"]
    for s in range(num_nonsil_states):
        out.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 "
                   f"<Transition> {s + 1} 0.25 </State>")
    out += [f"<State> {num_nonsil_states} </State>", "</TopologyEntry>"]
    out += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, sil)), "</ForPhones>"]
    out += _silence_states(num_sil_states)
    out += ["</TopologyEntry>", "</Topology>"]
    return "\n".join(out) + "\n"


def _silence_states(n: int) -> list[str]:
    if n == 1:
        return ["<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>",
                "<State> 1 </State>"]
    p = f"{1.0 / (n - 1):.15g}"   # as Perl prints it
    trans = "".join(f"<Transition> {t} {p} " for t in range(n - 1))
    out = [f"<State> 0 <PdfClass> 0 {trans}</State>"]
    trans = "".join(f"<Transition> {t} {p} " for t in range(1, n))
    out += [f"<State> {s} <PdfClass> {s} {trans}</State>" for s in range(1, n - 1)]
    out.append(f"<State> {n - 1} <PdfClass> {n - 1} <Transition> {n - 1} 0.75 "
               f"<Transition> {n} 0.25 </State>")
    return out + [f"<State> {n} </State>"]


def word_boundary(phone: str, position_dependent: bool) -> str:
    """phones/word_boundary.txt's label (prepare_lang.sh's awk on the suffix)."""
    suffix = phone[-2:]
    return BOUNDARY.get(suffix, "nonword") if position_dependent else "nonword"


# --- prepare_lang --------------------------------------------------------------------------

@dataclass
class LangPlan:
    """Everything prepare_lang writes, in memory: ``phones[i]`` and ``words[i]`` have id i."""
    opts: LangOptions
    phones: list[str]
    words: list[str]
    silence: list[str]
    nonsilence: list[str]
    disambig: list[str]
    optional_silence: str
    sets: list[list[str]]
    extra_questions: list[list[str]]
    lexiconp: list[LexiconEntry]            # position-marked (when so), no disambig
    lexiconp_disambig: list[LexiconEntry]
    phone_map: dict[str, list[str]]
    oov: str


def plan_lang(d: DictDir, oov_word: str, opts: LangOptions = LangOptions()) -> LangPlan:
    """prepare_lang.sh's symbol tables and phone sets from a checked dict dir."""
    if oov_word not in d.words:
        raise InputError(f"the OOV word '{oov_word}' is not in the lexicon (add it, e.g. "
                         "'<unk> spn' with spn a silence phone)", path=d.lexicon_file)
    pd = opts.position_dependent_phones
    pmap = phone_map(d, pd)

    def mapped(lines):
        return [[q for p in line for q in pmap[p]] for line in lines]

    silence = [q for line in mapped(d.silence) for q in line]
    nonsilence = [q for line in mapped(d.nonsilence) for q in line]
    lexiconp = [LexiconEntry(e.word, e.prob, mark_positions(e.phones) if pd else e.phones,
                             e.line) for e in d.lexicon]
    lexiconp_disambig, max_disambig = add_lex_disambig(lexiconp)
    # One more symbol than the lexicon used: L_disambig's after optional silence.
    disambig = [f"#{k}" for k in range(max_disambig + 2)]
    questions = mapped(d.extra_questions)
    if pd:
        questions += [[p + s for line in d.nonsilence for p in line] for s in POSITIONS]
        questions += [[p + s for line in d.silence for p in line] for s in ("", *POSITIONS)]
    words = ["<eps>", *sorted(d.words), "#0", "<s>", "</s>"]
    return LangPlan(opts, ["<eps>", *silence, *nonsilence, *disambig], words, silence,
                    nonsilence, disambig, d.optional_silence, mapped(d.silence + d.nonsilence),
                    questions, lexiconp, lexiconp_disambig, pmap, oov_word)


def build_lexicon_fsts(plan: LangPlan):
    """(L, L_disambig) as prepare_lang.sh makes them: make_lexicon_fst.py, L_disambig with
    the last disambig symbol after optional silence and #0:#0 self-loops; olabel-sorted."""
    pid = {p: i for i, p in enumerate(plan.phones)}
    wid = {w: i for i, w in enumerate(plan.words)}
    wid["<eps>"] = 0

    def as_ints(arcs):
        return [(s, d, pid[p] if p != "<eps>" else 0, wid[w], c) for s, d, p, w, c in arcs]

    sil_prob = plan.opts.sil_prob
    arcs, finals = lexicon_fst_arcs(plan.lexiconp, sil_prob, plan.optional_silence)
    lfst = compile_fst(as_ints(arcs), finals, sort_type="olabel")
    arcs, finals = lexicon_fst_arcs(plan.lexiconp_disambig, sil_prob, plan.optional_silence,
                                    plan.disambig[-1])
    arcs = add_disambig_self_loops(as_ints(arcs), finals, pid["#0"], wid["#0"])
    return lfst, compile_fst(arcs, finals, sort_type="olabel")


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with atomic_write(path) as f:
        f.writelines(line + "\n" for line in lines)


def write_phone_sets(plan: LangPlan, phones_dir: Path) -> None:
    """phones/*.{txt,int,csl} as prepare_lang.sh writes them."""
    pid = {p: i for i, p in enumerate(plan.phones)}
    lists = {"silence": plan.silence, "nonsilence": plan.nonsilence,
             "optional_silence": [plan.optional_silence], "disambig": plan.disambig,
             "context_indep": plan.silence}
    for name, phones in lists.items():
        _write_lines(phones_dir / f"{name}.txt", phones)
        _write_lines(phones_dir / f"{name}.int", [str(pid[p]) for p in phones])
        _write_lines(phones_dir / f"{name}.csl", [":".join(str(pid[p]) for p in phones)])
    for name, sets in {"sets": plan.sets, "extra_questions": plan.extra_questions}.items():
        _write_lines(phones_dir / f"{name}.txt", [" ".join(s) for s in sets])
        _write_lines(phones_dir / f"{name}.int", [" ".join(str(pid[p]) for p in s) for s in sets])
    _write_lines(phones_dir / "roots.txt", ["shared split " + " ".join(s) for s in plan.sets])
    _write_lines(phones_dir / "roots.int",
                 ["shared split " + " ".join(str(pid[p]) for p in s) for s in plan.sets])
    if plan.opts.position_dependent_phones:
        bounds = [(p, word_boundary(p, True)) for p in plan.silence + plan.nonsilence]
        _write_lines(phones_dir / "word_boundary.txt", [f"{p} {b}" for p, b in bounds])
        _write_lines(phones_dir / "word_boundary.int", [f"{pid[p]} {b}" for p, b in bounds])
    _write_lines(phones_dir / "wdisambig.txt", ["#0"])
    _write_lines(phones_dir / "wdisambig_phones.int", [str(pid["#0"])])
    _write_lines(phones_dir / "wdisambig_words.int", [str(plan.words.index("#0"))])
    _write_align_lexicon(plan, phones_dir, pid)


def _write_align_lexicon(plan: LangPlan, phones_dir: Path, pid: dict[str, int]) -> None:
    """phones/align_lexicon.{txt,int}: ``word word phones...``, with ``<eps> <eps> sil``."""
    wid = {w: i for i, w in enumerate(plan.words)}
    rows = {("<eps>", plan.optional_silence)} | {(e.word, " ".join(e.phones))
                                                  for e in plan.lexiconp}
    rows_sorted = sorted(f"{w} {w} {p}" for w, p in rows)
    _write_lines(phones_dir / "align_lexicon.txt", rows_sorted)
    ints = []
    for row in rows_sorted:
        w, _, *phones = row.split()
        ints.append(" ".join([str(wid[w])] * 2 + [str(pid[p]) for p in phones]))
    _write_lines(phones_dir / "align_lexicon.int", ints)


def write_lang(plan: LangPlan, out: Path) -> None:
    """All of a lang dir into ``out`` (which should be a staging dir)."""
    (out / "phones").mkdir(parents=True, exist_ok=True)
    _write_lines(out / "phones.txt", [f"{p} {i}" for i, p in enumerate(plan.phones)])
    _write_lines(out / "words.txt", [f"{w} {i}" for i, w in enumerate(plan.words)])
    _write_lines(out / "oov.txt", [plan.oov])
    _write_lines(out / "oov.int", [str(plan.words.index(plan.oov))])
    write_phone_sets(plan, out / "phones")
    pid = {p: i for i, p in enumerate(plan.phones)}
    with atomic_write(out / "topo") as f:
        f.write(gen_topo([pid[p] for p in plan.nonsilence], [pid[p] for p in plan.silence],
                         plan.opts.num_nonsil_states, plan.opts.num_sil_states))
    lfst, ldis = build_lexicon_fsts(plan)
    for name, fst in (("L.fst", lfst), ("L_disambig.fst", ldis)):
        if not fst.write(str(out / name)):
            raise OSError(f"could not write {out / name}")


def write_tmp_dir(plan: LangPlan, tmp_dir: Path) -> None:
    """prepare_lang.sh's <tmp-dir>: lexiconp.txt, lexiconp_disambig.txt, phone_map.txt."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    for name, lex in (("lexiconp.txt", plan.lexiconp),
                      ("lexiconp_disambig.txt", plan.lexiconp_disambig)):
        _write_lines(tmp_dir / name, [f"{e.word}\t{e.prob:g}\t{' '.join(e.phones)}"
                                      for e in lex])
    _write_lines(tmp_dir / "phone_map.txt", [f"{p} {' '.join(v)}"
                                             for p, v in plan.phone_map.items()])
    _write_lines(tmp_dir / "lex_ndisambig", [str(len(plan.disambig) - 1)])


def prepare_lang(dict_dir: PathLike, oov_word: str, lang_dir: PathLike,
                 opts: LangOptions = LangOptions(), tmp_dir: PathLike | None = None,
                 ) -> Lang:
    """Kaldi's utils/prepare_lang.sh: check ``dict_dir``, build the lang dir in a staging
    dir and rename it to ``lang_dir`` (an error leaves the old one, or none)."""
    d = read_dict_dir(dict_dir, opts.position_dependent_phones)
    plan = plan_lang(d, oov_word, opts)
    if tmp_dir is not None:
        write_tmp_dir(plan, Path(tmp_dir))
    with staged_dir(lang_dir) as out:
        write_lang(plan, out)
    return Lang.load(lang_dir)


# --- loading a lang dir --------------------------------------------------------------------

def read_symbols(path: PathLike) -> dict[str, int]:
    """A symbol table (``symbol id`` lines), checked: unique symbols and ids."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    table: dict[str, int] = {}
    ids: set[int] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise InputError("expected 'symbol id'", path=path, line=lineno)
        sym, i = fields[0], int(fields[1])
        if sym in table or i in ids:
            raise InputError("duplicate symbol or id", path=path, line=lineno, key=sym)
        table[sym] = i
        ids.add(i)
    return table


def _read_ints(path: Path) -> list[int]:
    if not path.is_file():
        raise InputError("no such file (not a complete lang dir: run utils/prepare_lang.sh)",
                         path=path)
    try:
        return [int(x) for x in path.read_text().split()]
    except ValueError:
        raise InputError("expected integers", path=path) from None


@dataclass
class Lang:
    """A lang dir in memory (its symbol tables and phone sets); FSTs and the topology are
    read on demand.  ``oov_counts`` counts the words :meth:`word_ids` mapped to the OOV."""
    path: Path
    phones: dict[str, int]
    words: dict[str, int]
    id2word: dict[int, str]
    id2phone: dict[int, str]
    topo_text: str
    silence_phones: list[int]
    nonsilence_phones: list[int]
    disambig_phones: list[int]
    optional_silence: int
    oov_word: str
    oov_id: int
    position_dependent: bool
    oov_counts: Counter = field(default_factory=Counter)

    @classmethod
    def load(cls, lang_dir: PathLike) -> Lang:
        path = Path(lang_dir)
        if not path.is_dir():
            raise InputError("no such lang dir (run utils/prepare_lang.sh)", path=path)
        phones, words = read_symbols(path / "phones.txt"), read_symbols(path / "words.txt")
        for w in ("#0", "<s>", "</s>"):
            if w not in words:
                raise InputError(f"no {w} (not a lang dir from prepare_lang)",
                                 path=path / "words.txt")
        if not (path / "topo").is_file():
            raise InputError("no such file", path=path / "topo")
        oov_id = _read_ints(path / "oov.int")
        id2word = {i: w for w, i in words.items()}
        if len(oov_id) != 1 or oov_id[0] not in id2word:
            raise InputError("expected one word id of words.txt", path=path / "oov.int")
        ph = path / "phones"
        return cls(path, phones, words, id2word, {i: p for p, i in phones.items()},
                   (path / "topo").read_text(), _read_ints(ph / "silence.int"),
                   _read_ints(ph / "nonsilence.int"), _read_ints(ph / "disambig.int"),
                   _read_ints(ph / "optional_silence.int")[0], id2word[oov_id[0]], oov_id[0],
                   (ph / "word_boundary.int").is_file())

    def hmm_topology(self):
        """The topo file as a kaldi_hmm_gmm.HmmTopology."""
        import kaldi_hmm_gmm
        topo = kaldi_hmm_gmm.HmmTopology()
        topo.read(self.topo_text)   # the binding parses text, not a file name
        return topo

    def context_dependency(self):
        """The monophone tree over the topology's phones (Kaldi's gmm-init-mono without
        --shared-phones: each phone's own pdfs)."""
        import kaldi_hmm_gmm
        topo = self.hmm_topology()
        return kaldi_hmm_gmm.monophone_context_dependency(
            topo.phones, topo.get_phone_to_num_pdf_classes())

    def lexicon_fst(self, disambig: bool = False):
        """L.fst or L_disambig.fst as a kaldifst.StdVectorFst (olabel-sorted)."""
        import kaldifst
        path = self.path / ("L_disambig.fst" if disambig else "L.fst")
        if not path.is_file():
            raise InputError("no such file", path=path)
        return kaldifst.StdVectorFst.read(str(path))

    def word_ids(self, words: Sequence[str], where: str = "") -> list[int]:
        """Word ids of ``words``; a word not in words.txt becomes the OOV word's id and is
        counted in ``oov_counts`` (``where``, e.g. an utterance id, is for messages)."""
        ids = []
        for w in words:
            if w in ("<eps>", "#0", "<s>", "</s>"):
                raise InputError(f"reserved word '{w}' in a transcript", key=where or None)
            i = self.words.get(w)
            if i is None:
                self.oov_counts[w] += 1
                i = self.oov_id
            ids.append(i)
        return ids

    def oov_summary(self) -> str:
        """One line about the words mapped to the OOV word so far ('' if none)."""
        if not self.oov_counts:
            return ""
        top = ", ".join(f"{w} ({n})" for w, n in self.oov_counts.most_common(5))
        return (f"{sum(self.oov_counts.values())} tokens of {len(self.oov_counts)} words not "
                f"in {self.path}/words.txt were mapped to {self.oov_word}: {top}")
