"""WER and per-utterance alignments (speechssl.asr.score) against a brute-force
Levenshtein distance and hand-checked cases, in compute-wer's output format."""

from __future__ import annotations

import random

import pytest

from speechssl.asr import score
from speechssl.errors import InputError


def levenshtein(ref, hyp) -> int:
    """Independent reference: the textbook dynamic programme, unit costs."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(hyp) + 1)] for i in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    return d[-1][-1]


@pytest.mark.parametrize("ref, hyp, ins, dels, sub", [
    ("a b c", "a b c", 0, 0, 0),
    ("a b c", "a x c", 0, 0, 1),
    ("a b c", "a c", 0, 1, 0),
    ("a b c", "a b c d", 1, 0, 0),
    ("a b c", "", 0, 3, 0),
    ("", "a b", 2, 0, 0),
    ("the cat sat on the mat", "cat sat on a mat today", 1, 1, 1),
])
def test_hand_cases(ref, hyp, ins, dels, sub):
    assert score.edit_counts(ref.split(), hyp.split()) == (ins, dels, sub)


def test_random_cases_equal_brute_force():
    rng = random.Random(0)
    for case in range(300):
        ref = [rng.choice("abcd") for _ in range(rng.randint(0, 8))]
        hyp = [rng.choice("abcde") for _ in range(rng.randint(0, 8))]
        ins, dels, sub = score.edit_counts(ref, hyp)
        assert ins + dels + sub == levenshtein(ref, hyp), (case, ref, hyp)
        # the counts describe an alignment: ref tokens = correct + sub + del
        assert len(hyp) - ins == len(ref) - dels, (case, ref, hyp)


def test_totals_and_kaldi_format():
    refs = {"u1": "a b c".split(), "u2": "d e".split(), "u3": "f".split()}
    hyps = {"u1": "a x c d".split(), "u2": "d e".split(), "u3": []}
    counts, per_utt = score.score_texts(refs, hyps)
    assert (counts.ins, counts.dels, counts.sub, counts.ref_tokens) == (1, 1, 1, 6)
    assert per_utt == {"u1": (2, 1, 1, 0), "u2": (2, 0, 0, 0), "u3": (0, 0, 0, 1)}
    assert score.format_counts(counts) == (
        "%WER 50.00 [ 3 / 6, 1 ins, 1 del, 1 sub ]\n"
        "%SER 66.67 [ 2 / 3 ]\n"
        "Scored 3 sentences, 0 not present in hyp.\n")


def test_missing_hypotheses_by_mode():
    refs = {"u1": "a b".split(), "u2": "c d".split()}
    hyps = {"u1": "a b".split()}
    present, _ = score.score_texts(refs, hyps, "present")
    assert (present.errors, present.ref_tokens, present.missing) == (0, 2, 1)
    assert "[PARTIAL]" in score.format_counts(present).splitlines()[0]
    everything, _ = score.score_texts(refs, hyps, "all")
    assert (everything.dels, everything.ref_tokens, everything.error_rate) == (2, 4, 50.0)
    with pytest.raises(InputError, match="no hypothesis"):
        score.score_texts(refs, hyps, "strict")


def test_hypothesis_without_reference_is_an_error():
    with pytest.raises(InputError, match="no reference"):
        score.score_texts({"u1": ["a"]}, {"u1": ["a"], "u9": ["b"]})


def test_per_utterance_details_layout():
    lines = score.utterance_details("u1", "the cat sat".split(), "the bat sat down".split())
    assert lines == ["u1 ref  the  cat  sat  ***",
                     "u1 hyp  the  bat  sat  down",
                     "u1 op   C    S    C    I",
                     "u1 #csid 2 1 1 0"]


def test_int_transcripts_name_a_bad_word_id(tmp_path):
    tra = tmp_path / "7.tra"
    tra.write_text("u1 1 2\nu2\nu3 9\n")
    with pytest.raises(InputError, match=r"7.tra:3: key 'u3'"):
        score.read_int_transcripts(tra, {1: "a", 2: "b"})
    tra.write_text("u1 1 2\nu2\n")
    assert score.read_int_transcripts(tra, {1: "a", 2: "b"}) == {"u1": ["a", "b"], "u2": []}
