"""The phone and speaker classification protocol of the CPC paper (van den Oord et al.
2018) on LibriSpeech train-clean-100, imported from the files its authors distribute
(CPC_audio's "LibriSpeech100_labels_split"; S3PRL's phone_linear task uses the same)::

    converted_aligned_phones.txt  <utt> <label> <label> ...  one class (0-40) per 10 ms frame
    train_split.txt               utterance ids, one a line (22,830)
    test_split.txt                (5,708), the same 251 readers

The files may end without a newline.  The class-to-phone map is not published, so labels
stay integers.  Output: two data dirs, subsets of the corpus data dir (train_clean_100),
each with ``phone_ali``: the lines of converted_aligned_phones.txt for its utterances,
C-sorted, the format ``steps/train_probe.sh`` reads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from speechssl.corpus.librispeech import SAMPLE_RATE
from speechssl.data.datadir import DataDir
from speechssl.data.edit import write_subset
from speechssl.data.table import write_table
from speechssl.data.write import staged_dir
from speechssl.errors import InputError, examples

log = logging.getLogger(__name__)

ALIGNMENTS = "converted_aligned_phones.txt"
TRAIN_SPLIT = "train_split.txt"
TEST_SPLIT = "test_split.txt"
NUM_CLASSES = 41
# Kaldi frames with snip_edges: 25 ms windows every 10 ms at 16 kHz.
WINDOW, SHIFT = 400, 160


def read_id_list(path: Path) -> list[str]:
    """One utterance id a line; blank lines are skipped, a repeated id is an error."""
    ids: list[str] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 1:
                raise InputError(f"expected one utterance id, got {len(fields)} fields",
                                 path=path, line=lineno)
            if fields[0] in seen:
                raise InputError("utterance listed twice", path=path, line=lineno,
                                 key=fields[0])
            seen.add(fields[0])
            ids.append(fields[0])
    if not ids:
        raise InputError("no utterance ids", path=path)
    return ids


def read_alignments(path: Path, wanted: set[str], num_classes: int = NUM_CLASSES,
                    ) -> dict[str, str]:
    """Labels (one string of space-separated integers) of the ``wanted`` utterances.

    Every line is checked, wanted or not: a line that does not parse means a damaged or
    wrong file.  Labels are compared as strings against the valid ones, which is fast
    enough for the 36 M labels of the real file.
    """
    valid = {str(i) for i in range(num_classes)}
    labels: dict[str, str] = {}
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            utt = fields[0]
            if len(fields) < 2:
                raise InputError("expected '<utt> <label> <label> ...', got no labels",
                                 path=path, line=lineno, key=utt)
            bad = next((x for x in fields[1:] if x not in valid), None)
            if bad is not None:
                raise InputError(f"label '{bad}' is not a class 0-{num_classes - 1} "
                                 "(one integer per 10 ms frame)", path=path, line=lineno,
                                 key=utt)
            if utt in seen:
                raise InputError("utterance listed twice", path=path, line=lineno, key=utt)
            seen.add(utt)
            if utt in wanted:
                labels[utt] = " ".join(fields[1:])
    return labels


def expected_frames(seconds: float) -> int:
    """Kaldi's frame count for ``seconds`` of 16 kHz audio (snip_edges=true)."""
    samples = round(seconds * SAMPLE_RATE)
    return max(0, (samples - WINDOW) // SHIFT + 1)


def check_files(labels_dir: Path) -> None:
    missing = [n for n in (ALIGNMENTS, TRAIN_SPLIT, TEST_SPLIT) if not (labels_dir / n).is_file()]
    if missing:
        raise InputError(f"missing {', '.join(missing)}: expected the CPC protocol files "
                         f"{ALIGNMENTS}, {TRAIN_SPLIT} and {TEST_SPLIT} in this folder",
                         path=labels_dir)


def check_splits(labels_dir: Path, splits: dict[str, list[str]], corpus: DataDir) -> None:
    """Both split lists must be disjoint and made of utterances of the corpus data dir."""
    overlap = set(splits[TRAIN_SPLIT]) & set(splits[TEST_SPLIT])
    if overlap:
        raise InputError(f"{len(overlap)} ids are in both {TRAIN_SPLIT} and {TEST_SPLIT} "
                         f"({examples(overlap)})", path=labels_dir)
    known = set(corpus.utts)
    for name, ids in splits.items():
        absent = set(ids) - known
        if absent:
            raise InputError(f"{len(absent)} of {len(ids)} ids are not utterances of "
                             f"{corpus.path} ({examples(absent)}); the CPC splits are "
                             "subsets of train-clean-100", path=labels_dir / name)


def report_frame_counts(corpus: DataDir, labels: dict[str, str]) -> None:
    """Log how label counts compare with Kaldi's frame counts (the probe allows a few
    frames of difference at the end; more means the labels are for other audio)."""
    if not corpus.has("utt2dur"):
        return
    durs = corpus.table("utt2dur")
    diffs = [len(v.split()) - expected_frames(float(durs[u])) for u, v in labels.items()]
    exact = sum(d == 0 for d in diffs)
    worst = max(diffs, key=abs)
    log.info("label counts vs Kaldi frames (1 + (samples - 400) // 160): %d of %d equal, "
             "largest difference %+d", exact, len(diffs), worst)


def import_protocol(labels_dir: Path, corpus_dir: Path, train_dest: Path, test_dest: Path,
                    num_classes: int = NUM_CLASSES) -> dict[str, dict]:
    """Write the train and test data dirs of the protocol, with phone_ali."""
    if not labels_dir.is_dir():
        raise InputError(f"no such directory: expected a folder with {ALIGNMENTS}, "
                         f"{TRAIN_SPLIT} and {TEST_SPLIT}", path=labels_dir)
    check_files(labels_dir)
    corpus = DataDir(corpus_dir)
    splits = {n: read_id_list(labels_dir / n) for n in (TRAIN_SPLIT, TEST_SPLIT)}
    check_splits(labels_dir, splits, corpus)
    wanted = set(splits[TRAIN_SPLIT]) | set(splits[TEST_SPLIT])
    labels = read_alignments(labels_dir / ALIGNMENTS, wanted, num_classes)
    unlabelled = wanted - set(labels)
    if unlabelled:
        raise InputError(f"{len(unlabelled)} ids of the split lists have no line "
                         f"({examples(unlabelled)})", path=labels_dir / ALIGNMENTS)
    report_frame_counts(corpus, labels)
    summary = {}
    for name, dest in ((TRAIN_SPLIT, train_dest), (TEST_SPLIT, test_dest)):
        ids = splits[name]
        with staged_dir(dest) as tmp:
            write_subset(corpus, tmp, ids)
            write_table(tmp / "phone_ali", {u: labels[u] for u in ids})
        speakers = {corpus.utt2spk[u] for u in ids}
        summary[name] = {"utterances": len(ids), "speakers": len(speakers),
                         "frames": sum(len(labels[u].split()) for u in ids)}
        log.info("%s: %d utterances of %d speakers, %d labelled frames -> %s", name,
                 len(ids), len(speakers), summary[name]["frames"], dest)
    train_spk = {corpus.utt2spk[u] for u in splits[TRAIN_SPLIT]}
    unseen = {corpus.utt2spk[u] for u in splits[TEST_SPLIT]} - train_spk
    if unseen:
        log.warning("%d speakers of %s are not in %s (%s): the speaker probe needs every "
                    "test speaker in training", len(unseen), TEST_SPLIT, TRAIN_SPLIT,
                    examples(unseen))
    return summary
