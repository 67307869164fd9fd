"""N-gram language models: estimation (interpolated modified Kneser-Ney, Chen & Goodman
1998, or interpolated Witten-Bell), ARPA files (write, read with line-numbered errors) and
G.fst (kaldilm's arpa2fst, as Kaldi's utils/format_lm.sh makes it).

The model is kept in ARPA's backoff form: ``probs[n][ngram]`` is the probability (not
its log) of the n-gram's last word after its first n - 1 words (the interpolated
estimate), ``bows[n][ngram]`` the backoff weight of an n-gram used as a history.  A word
w after history h has probability ``probs[len(h)+1][h+(w,)]`` where that n-gram is
listed, else ``bows[len(h)].get(h, 1) * p(w | h[1:])``; the backoff weights are computed
so that each history's distribution over the vocabulary (and ``</s>``) sums to 1.
The vocabulary is a lang dir's words (or any words.txt) without ``<eps>``, ``#0``, ``<s>``
and ``</s>``; words of the text that are not in it become the OOV word and are counted.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import math
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speechssl.errors import InputError
from speechssl.fileio import atomic_write

log = logging.getLogger(__name__)
PathLike = str | os.PathLike
BOS, EOS = "<s>", "</s>"
NOT_WORDS = ("<eps>", "#0", BOS, EOS)
METHODS = ("kn", "wb")
LOG10_ZERO = -99.0     # ARPA's log10 probability of <s> (never predicted)
Ngram = tuple[str, ...]


@dataclass
class NgramModel:
    order: int
    vocab: list[str]                      # predicted words: the vocabulary and </s>
    probs: list[dict[Ngram, float]]       # probs[n] for n = 1..order (probabilities)
    bows: list[dict[Ngram, float]]        # bows[n] for n = 1..order-1
    oov_counts: Counter = field(default_factory=Counter)

    def prob(self, word: str, history: Sequence[str]) -> float:
        """p(word | history) by the backoff walk (history truncated to order - 1 words)."""
        h = tuple(history)[max(0, len(history) - self.order + 1):]
        weight = 1.0
        while True:
            p = self.probs[len(h) + 1].get(h + (word,))
            if p is not None:
                return weight * p
            if not h:
                return 0.0
            weight *= self.bows[len(h)].get(h, 1.0)
            h = h[1:]


# --- reading the training text ---------------------------------------------------------------

def read_vocab(path: PathLike) -> list[str]:
    """The vocabulary of a lang dir or its words.txt (``word id`` lines), or of a dict dir
    or a lexicon (``lexicon*.txt``: the first field of each line), without <eps>, #0, <s>
    and </s>."""
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in ("words.txt", "lexiconp.txt", "lexicon.txt")
                 if (path / n).is_file()]
        path = found[0] if found else path / "words.txt"
    if not path.is_file():
        raise InputError("no such file (give a lang dir, a words.txt or a lexicon)", path=path)
    lexicon = path.name.startswith("lexicon")
    words = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or (not lexicon and len(fields) != 2):
            raise InputError("expected 'word phones...'" if lexicon else "expected 'word id'",
                             path=path, line=lineno)
        if fields[0] not in NOT_WORDS:
            words.append(fields[0])
    return list(dict.fromkeys(words))


def read_sentences(path: PathLike, kaldi_text: bool = True) -> Iterator[tuple[int, list[str]]]:
    """(line number, words) of a Kaldi ``text`` file (utterance id first) or of plain
    sentences; <s> and </s> in the text are an error (they are added here)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            words = line.split()[1:] if kaldi_text else line.split()
            for w in words:
                if w in NOT_WORDS:
                    raise InputError(f"'{w}' in the text (sentence boundaries are added by "
                                     "the estimator)", path=path, line=lineno)
            yield lineno, words


def count_ngrams(sentences: Iterable[Sequence[str]], order: int, vocab: set[str],
                 oov_word: str | None) -> tuple[list[Counter], Counter]:
    """Raw n-gram counts (``counts[n]``) of ``<s> words </s>``, out-of-vocabulary words
    replaced by ``oov_word`` (and counted); no n-gram predicts <s>."""
    counts = [Counter() for _ in range(order + 1)]
    oov: Counter = Counter()
    for words in sentences:
        tokens = [BOS]
        for w in words:
            if w not in vocab:
                oov[w] += 1
                w = oov_word
            tokens.append(w)
        tokens.append(EOS)
        for n in range(1, order + 1):
            for i in range(max(1, n - 1), len(tokens)):   # i: the predicted word
                counts[n][tuple(tokens[i - n + 1:i + 1])] += 1
    if oov and oov_word is None:
        raise InputError(f"{sum(oov.values())} words not in the vocabulary (e.g. "
                         f"{next(iter(oov))}) and no OOV word to map them to")
    return counts, oov


# --- estimation --------------------------------------------------------------------------------

def kn_counts(counts: list[Counter]) -> list[Counter]:
    """Kneser-Ney's counts: the highest order's raw counts; below it, the number of distinct
    words seen before the n-gram (continuation counts), except for n-grams that start with
    <s>, which nothing can precede (their raw counts, as SRILM and KenLM do)."""
    order = len(counts) - 1
    adjusted = [Counter() for _ in range(order + 1)]
    adjusted[order] = Counter(counts[order])
    for n in range(order - 1, 0, -1):
        for g in counts[n + 1]:
            adjusted[n][g[1:]] += 1
        for g, c in counts[n].items():
            if g[0] == BOS:
                adjusted[n][g] = c
    return adjusted


def kn_discounts(counts: Counter, n: int) -> tuple[float, float, float]:
    """Chen & Goodman's modified Kneser-Ney discounts D1, D2, D3+ from the counts of counts
    n1..n4; where they are missing or out of range (tiny corpora), one absolute discount
    D = n1 / (n1 + 2 n2) (Ney et al.; 0.5 without n1 or n2), with a warning."""
    nk = Counter(c for c in counts.values() if c <= 4)
    n1, n2, n3, n4 = (nk[k] for k in (1, 2, 3, 4))
    if n1 and n2:
        y = n1 / (n1 + 2 * n2)
        if n3 and n4:
            d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            if all(0 < dk < k for k, dk in enumerate(d, start=1)):
                return d
    else:
        y = 0.5
    log.warning("order %d: counts of counts n1..n4 = %d %d %d %d do not give modified "
                "Kneser-Ney discounts; using one discount %.3f", n, n1, n2, n3, n4, y)
    return y, y, y


def _discount(c: float, d: tuple[float, float, float]) -> float:
    return 0.0 if c == 0 else d[min(int(c), 3) - 1]


def _by_history(counts: Counter) -> dict[Ngram, list[tuple[str, float]]]:
    hist: dict[Ngram, list[tuple[str, float]]] = defaultdict(list)
    for g, c in counts.items():
        hist[g[:-1]].append((g[-1], c))
    return hist


def estimate(counts: list[Counter], vocab: Sequence[str], method: str = "kn",
             ) -> NgramModel:
    """An interpolated model of ``counts`` over ``vocab`` (+ </s>): each order's estimate
    is interpolated with the next lower order's, the unigrams with the uniform
    distribution; then the backoff weights (:func:`backoff_weights`)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method}")
    order = len(counts) - 1
    used = kn_counts(counts) if method == "kn" else counts
    predicted = [w for w in vocab if w != EOS] + [EOS]
    model = NgramModel(order, predicted, [{} for _ in range(order + 1)],
                       [{} for _ in range(order)])
    for n in range(1, order + 1):
        disc = kn_discounts(used[n], n) if method == "kn" else None
        for h, seen in _by_history(used[n]).items():
            lower = ({(w,): 1.0 / len(predicted) for w in predicted} if n == 1 else
                     {(w,): model.prob(w, h[1:]) for w, _ in seen})
            _interpolate(model, h, seen, lower, disc, n == 1)
        if n > 1:
            backoff_weights(model, n)
    model.probs[1][(BOS,)] = 0.0
    return model


def _interpolate(model: NgramModel, h: Ngram, seen: list[tuple[str, float]],
                 lower: dict[Ngram, float], disc, unigram: bool) -> None:
    """p(w | h) = (c(hw) - D(c)) / c(h) + gamma(h) p_lower(w) for the words seen after h
    (Kneser-Ney; Witten-Bell: D = 0 and c(h) + N1+(h .) below, gamma = N1+(h .) / that);
    for unigrams, every word of the vocabulary."""
    total = sum(c for _, c in seen)
    if disc is not None:
        gamma = sum(_discount(c, disc) for _, c in seen) / total
        p = {w: (c - _discount(c, disc)) / total for w, c in seen}
    else:
        types = len(seen)
        gamma = types / (total + types)
        p = {w: c / (total + types) for w, c in seen}
    words = [g[0] for g in lower] if unigram else [w for w, _ in seen]
    n = len(h) + 1
    for w in words:
        model.probs[n][h + (w,)] = p.get(w, 0.0) + gamma * lower[(w,)]


def backoff_weights(model: NgramModel, n: int) -> None:
    """bows[n - 1][h] = (1 - sum of p(w | h) listed) / (1 - sum of p(w | h[1:]) for those w):
    what makes p(. | h) sum to 1 (for an interpolated model this is its gamma(h))."""
    listed: dict[Ngram, list[str]] = defaultdict(list)
    for g in model.probs[n]:
        listed[g[:-1]].append(g[-1])
    for h, words in listed.items():
        num = 1.0 - sum(model.probs[n][h + (w,)] for w in words)
        den = 1.0 - sum(model.prob(w, h[1:]) for w in words)
        model.bows[n - 1][h] = max(num, 0.0) / den if den > 1e-12 else 1.0


def train_lm(text: PathLike, vocab: Sequence[str], order: int = 3, method: str = "kn",
             oov_word: str | None = "<unk>", kaldi_text: bool = True) -> NgramModel:
    """Estimate an n-gram model of the sentences in ``text`` over ``vocab``."""
    if order < 1:
        raise ValueError("order must be at least 1")
    vocab_set = set(vocab)
    if oov_word is not None and oov_word not in vocab_set:
        oov_word = None
    sentences = (words for _, words in read_sentences(text, kaldi_text))
    counts, oov = count_ngrams(sentences, order, vocab_set, oov_word)
    if not counts[1]:
        raise InputError("no sentences", path=text)
    model = estimate(counts, vocab, method)
    model.oov_counts = oov
    return model


# --- ARPA ------------------------------------------------------------------------------------

def _log10(p: float) -> str:
    return f"{math.log10(p):.7g}" if p > 0 else f"{LOG10_ZERO:g}"


def arpa_lines(model: NgramModel) -> Iterator[str]:
    """The model as ARPA text (log10 probabilities and backoff weights)."""
    yield ""
    yield "\\data\\"
    for n in range(1, model.order + 1):
        yield f"ngram {n}={len(model.probs[n])}"
    for n in range(1, model.order + 1):
        yield ""
        yield f"\\{n}-grams:"
        bows = model.bows[n] if n < model.order else {}
        for g in sorted(model.probs[n]):
            line = f"{_log10(model.probs[n][g])}\t{' '.join(g)}"
            if g in bows:
                line += f"\t{_log10(bows[g])}"
            yield line
    yield ""
    yield "\\end\\"


@contextlib.contextmanager
def open_text(path: PathLike, mode: str = "r"):
    """A text file, gzipped when its name ends in .gz; writing is atomic."""
    path = Path(path)
    if mode == "r":
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz"
              else open(path, encoding="utf-8")) as f:
            yield f
        return
    if path.suffix != ".gz":
        with atomic_write(path) as f:
            yield f
        return
    with atomic_write(path, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as f:
        yield f


def write_arpa(model: NgramModel, path: PathLike) -> None:
    with open_text(path, "w") as f:
        for line in arpa_lines(model):
            f.write(line + "\n")


class _ModelSink:
    """Keeps every n-gram (read_arpa)."""

    def __init__(self):
        self.probs: list[dict[Ngram, float]] = [{}]
        self.bows: list[dict[Ngram, float]] = [{}]

    def new_order(self) -> None:
        self.probs.append({})
        self.bows.append({})

    def count(self, n: int) -> int:
        return len(self.probs[n])

    def orders(self) -> int:   # sections started, plus one
        return len(self.probs)

    def add(self, n: int, g: Ngram, logp: float, bow: float | None, where: dict) -> None:
        if g in self.probs[n]:
            raise InputError(f"n-gram '{' '.join(g)}' listed twice", **where)
        self.probs[n][g] = 0.0 if logp <= LOG10_ZERO else 10.0 ** logp
        if bow is not None:
            self.bows[n][g] = 10.0 ** bow


class _ScanSink:
    """Counts n-grams and the words not in ``words`` (scan_arpa: constant memory)."""

    def __init__(self, words):
        self.words = words
        self.counts = [0]
        self.oov: Counter = Counter()

    def new_order(self) -> None:
        self.counts.append(0)

    def count(self, n: int) -> int:
        return self.counts[n]

    def orders(self) -> int:
        return len(self.counts)

    def add(self, n: int, g: Ngram, logp: float, bow: float | None, where: dict) -> None:
        self.counts[n] += 1
        for w in g:
            if w not in self.words and w not in (BOS, EOS):
                self.oov[w] += 1


def read_arpa(path: PathLike) -> NgramModel:
    """An ARPA file (gzipped or not) as an :class:`NgramModel`; a malformed line, a section
    out of place or a count that disagrees with the header is an error naming the line."""
    sink = _ModelSink()
    _read_arpa(path, sink)
    vocab = [g[0] for g in sink.probs[1] if g[0] != BOS]
    return NgramModel(len(sink.probs) - 1, vocab, sink.probs, sink.bows + [{}])


def scan_arpa(path: PathLike, words) -> tuple[list[int], Counter]:
    """Check an ARPA file as :func:`read_arpa` does without keeping it (a published LM may
    hold tens of millions of n-grams): the n-gram counts per order, and the words not in
    ``words`` with the number of n-grams they are in (format_lm.sh's find_arpa_oovs.pl;
    arpa2fst drops those n-grams)."""
    sink = _ScanSink(words)
    _read_arpa(path, sink)
    return sink.counts, sink.oov


def _read_arpa(path: PathLike, sink) -> None:
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        with open_text(path) as f:
            _parse_arpa(path, enumerate(f, start=1), sink)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
        raise InputError(f"not a readable ARPA file ({e})", path=path) from None


def _parse_arpa(path: Path, lines: Iterable[tuple[int, str]], sink) -> None:
    declared: dict[int, int] = {}
    section = None   # None: before \data\; 0: in \data\; n: in \n-grams:; -1: after \end\
    for lineno, raw in lines:
        line = raw.strip()
        if not line:
            continue
        if section == -1:
            raise InputError("text after \\end\\", path=path, line=lineno)
        if line == "\\data\\" and section is None:
            section = 0
        elif section is None:
            continue   # text before \data\ is allowed (comments)
        elif line == "\\end\\":
            _check_counts(path, lineno, declared, sink)
            section = -1
        elif line.startswith("\\") and line.endswith("-grams:"):
            section = _section_start(path, lineno, line, declared, sink)
        elif section == 0:
            _header_line(path, lineno, line, declared)
        else:
            _ngram_line(path, lineno, line, section, sink)
    if section != -1:
        raise InputError("no \\end\\ (truncated ARPA file?)" if section is not None
                         else "no \\data\\ section: not an ARPA file", path=path)


def _header_line(path: Path, lineno: int, line: str, declared: dict[int, int]) -> None:
    fields = line.replace("=", " ").split()
    if len(fields) != 3 or fields[0] != "ngram" or not (fields[1] + fields[2]).isdigit():
        raise InputError(f"expected 'ngram N=COUNT' in \\data\\, got '{line}'",
                         path=path, line=lineno)
    declared[int(fields[1])] = int(fields[2])


def _section_start(path, lineno, line, declared, sink) -> int:
    try:
        n = int(line[1:-len("-grams:")])
    except ValueError:
        raise InputError(f"bad section header '{line}'", path=path, line=lineno) from None
    if n != sink.orders() or n not in declared:
        raise InputError(f"section {line} out of order or not declared in \\data\\",
                         path=path, line=lineno)
    if n > 1:
        _check_counts(path, lineno, {n - 1: declared[n - 1]}, sink)
    sink.new_order()
    return n


def _ngram_line(path, lineno, line, n, sink) -> None:
    fields = line.split()
    if len(fields) not in (n + 1, n + 2):
        raise InputError(f"expected a log10 probability, {n} words and an optional backoff "
                         f"weight, got {len(fields)} fields", path=path, line=lineno)
    try:
        logp = float(fields[0])
        bow = float(fields[n + 1]) if len(fields) == n + 2 else None
    except ValueError:
        raise InputError(f"not a number in '{line}'", path=path, line=lineno) from None
    if logp > 0 or (bow is not None and not math.isfinite(bow)):
        raise InputError(f"bad log10 probability or backoff in '{line}'",
                         path=path, line=lineno)
    sink.add(n, tuple(fields[1:n + 1]), logp, bow, {"path": path, "line": lineno})


def _check_counts(path, lineno, declared, sink) -> None:
    for n, count in sorted(declared.items()):
        if n >= sink.orders():
            raise InputError(f"no \\{n}-grams: section", path=path, line=lineno)
        if sink.count(n) != count:
            raise InputError(f"\\data\\ declares {count} {n}-grams, the section has "
                             f"{sink.count(n)}", path=path, line=lineno)


# --- G.fst -----------------------------------------------------------------------------------

def import_kaldilm():
    """kaldilm, imported after kaldi_hmm_gmm and kaldifst: importing either of those after
    kaldilm hangs the process (a deadlock in their shared libraries' initialisation, seen
    with kaldilm 1.15.5, kaldifst 1.7.17, kaldi-hmm-gmm 1.1.4)."""
    import kaldi_hmm_gmm  # noqa: F401
    import kaldifst  # noqa: F401
    import kaldilm
    return kaldilm


def arpa_to_g(arpa: PathLike, words_txt: PathLike, out_fst: PathLike) -> None:
    """G.fst as utils/format_lm.sh makes it: kaldilm.arpa2fst with #0 on the backoff arcs,
    <s> and </s> as epsilons, labels from words.txt; written atomically."""
    kaldilm = import_kaldilm()
    out_fst = Path(out_fst)
    with tempfile.TemporaryDirectory(dir=out_fst.parent) as tmp:
        plain = Path(tmp) / "lm.arpa"
        with open_text(arpa) as src, open(plain, "w", encoding="utf-8") as dst:
            shutil.copyfileobj(src, dst)
        kaldilm.arpa2fst(input_arpa=str(plain), output_fst=str(Path(tmp) / "G.fst"),
                         disambig_symbol="#0", read_symbol_table=str(words_txt),
                         max_arpa_warnings=0)
        if not (Path(tmp) / "G.fst").is_file():
            raise InputError("arpa2fst wrote no G.fst", path=arpa)
        os.replace(Path(tmp) / "G.fst", out_fst)


def empty_word_cycles(gfst, empty_ids: set[int]) -> bool:
    """Whether G has a cycle whose arcs all carry empty words (#0, or words with an empty
    pronunciation): format_lm.sh's check, as CLG would not determinize."""
    import kaldifst
    succ: dict[int, list[int]] = defaultdict(list)
    for s in range(gfst.num_states):
        for a in kaldifst.ArcIterator(gfst, s):
            if a.ilabel in empty_ids or a.ilabel == 0:
                succ[s].append(a.nextstate)
    state = dict.fromkeys(succ, 0)   # 0 unvisited, 1 on the stack, 2 done
    for root in list(succ):
        if state[root]:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            s, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[s] = 2
                stack.pop()
            elif state.get(nxt, 0) == 1:
                return True
            elif state.get(nxt, 0) == 0:
                state[nxt] = 1
                stack.append((nxt, iter(succ.get(nxt, []))))
    return False


def stochasticity(gfst) -> tuple[float, float]:
    """fstisstochastic's figures: the min and max over states of -log(sum of arc and final
    probabilities) (backoff arcs make G only roughly stochastic; Kaldi only reports it)."""
    import kaldifst
    lo, hi = math.inf, -math.inf
    for s in range(gfst.num_states):
        costs = [float(a.weight.value) for a in kaldifst.ArcIterator(gfst, s)]
        final = float(gfst.final(s).value)
        if math.isfinite(final):
            costs.append(final)
        if costs:
            m = min(costs)
            total = m - math.log(sum(math.exp(m - c) for c in costs))
            lo, hi = min(lo, total), max(hi, total)
    return lo, hi
