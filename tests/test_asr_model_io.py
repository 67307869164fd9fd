"""final.mdl (Kaldi text model), tree and ali.*.gz I/O (speechssl.asr.model_io), checked
against kaldi-hmm-gmm's own objects and kaldi-native-io as an independent archive reader."""

from __future__ import annotations

import gzip

import kaldi_hmm_gmm as khg
import kaldi_native_io
import numpy as np
import pytest

from speechssl.asr import model_io
from speechssl.errors import InputError

SIL_STATES = "".join(
    f"<State> {j} <PdfClass> {j} "
    + "".join(f"<Transition> {k} 0.25 " for k in ((0, 1, 2, 3) if j == 0 else (1, 2, 3, 4)))
    + "</State>\n" for j in range(4))
# Kaldi's prepare_lang topology for 2 non-silence phones (2, 3) and one silence phone (1).
TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
2 3
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1
</ForPhones>
""" + SIL_STATES + """<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>
<State> 5 </State>
</TopologyEntry>
</Topology>
"""
DIM = 4


def tiny_model(seed: int = 0, shared: bool = False):
    """A monophone model with random GMMs (1-3 Gaussians per pdf) and random
    transition probabilities (an MLE update from random counts)."""
    rng = np.random.default_rng(seed)
    topo = khg.HmmTopology()
    topo.read(TOPO)
    classes = topo.get_phone_to_num_pdf_classes()
    tree = (khg.monophone_context_dependency_shared([[1], [2, 3]], classes) if shared
            else khg.monophone_context_dependency(topo.phones, classes))
    tm = khg.TransitionModel(tree, topo)
    tm.mle_update(rng.uniform(1, 50, tm.num_transition_ids + 1),
                  khg.MleTransitionUpdateConfig())
    am = khg.AmDiagGmm()
    for _ in range(tree.num_pdfs):
        n = int(rng.integers(1, 4))
        g = khg.DiagGmm(n, DIM)
        w = rng.uniform(0.1, 1, n)
        g.set_weights((w / w.sum()).astype(np.float32))
        g.set_invvars_and_means(rng.uniform(0.3, 3, (n, DIM)).astype(np.float32),
                                rng.normal(size=(n, DIM)).astype(np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    return tm, tree, am


def test_text_model_has_kaldis_layout(tmp_path):
    tm, _, am = tiny_model()
    model_io.write_model(tmp_path / "final.mdl", tm, am)
    text = (tmp_path / "final.mdl").read_text()
    lines = text.splitlines()
    # TransitionModel::Write, HmmTopology::Write in text mode (tokens followed by a space)
    assert lines[:6] == ["<TransitionModel> ", "<Topology> ", "<TopologyEntry> ",
                         "<ForPhones> ", "2 3 ", "</ForPhones> "]
    assert lines[6] == ("<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 "
                        "</State> ")
    i = lines.index("<Triples> 11 ")
    # phone 1 (silence, 5 states) first, then 2 and 3: (phone, hmm-state, pdf)
    assert lines[i + 1:i + 4] == ["1 0 0 ", "1 1 1 ", "1 2 2 "]
    assert lines[i + 12] == "</Triples> "
    assert lines[i + 13] == "<LogProbs> " and lines[i + 14].startswith(" [ 0 ")
    assert lines[i + 15:i + 17] == ["</LogProbs> ", "</TransitionModel> "]
    assert lines[i + 17].startswith(f"<DIMENSION> {DIM} <NUMPDFS> 11 <DiagGMM> ")
    assert lines[i + 18].startswith("<GCONSTS>  [ ") and lines[i + 19].startswith("<WEIGHTS>  [ ")
    assert lines[i + 20] == "<MEANS_INVVARS>  ["
    assert text.count("<DiagGMM>") == text.count("</DiagGMM> \n") == 11
    assert len(lines[i + 14].split()) == tm.num_transition_ids + 3   # [ 0 ... ]


@pytest.mark.parametrize("shared", [False, True])
def test_model_round_trip_gives_the_same_model(tmp_path, shared):
    tm, _, am = tiny_model(1, shared)
    model_io.write_model(tmp_path / "final.mdl", tm, am)
    tm2, am2 = model_io.read_model(tmp_path / "final.mdl")
    before, after = tm.__getstate__(), tm2.__getstate__()
    assert after[2:6] == before[2:6]          # state2id, id2state, id2pdf, num_pdfs
    np.testing.assert_allclose(after[6], before[6], rtol=1e-6, atol=1e-7)   # log-probs
    np.testing.assert_allclose(after[7], before[7], rtol=1e-5, atol=1e-6)   # derived
    assert tm2.transition_id_to_pdf_array() == tm.transition_id_to_pdf_array()
    rng = np.random.default_rng(2)
    for pdf in range(am.num_pdfs):
        assert am2.num_gauss_in_pdf(pdf) == am.num_gauss_in_pdf(pdf)
        for x in rng.normal(size=(5, DIM)).astype(np.float32):
            assert am2.log_likelihood(pdf, x) == pytest.approx(am.log_likelihood(pdf, x),
                                                               rel=1e-5, abs=1e-4)


def test_written_alignment_and_model_give_the_same_phones(tmp_path):
    """The issue's check: an alignment and model written and read back through
    kaldi-hmm-gmm give the same phones; kaldi-native-io reads the archive too."""
    tm, tree, am = tiny_model(3)
    rng = np.random.default_rng(3)
    alis = {f"utt{i}": rng.integers(1, tm.num_transition_ids + 1, size=n).astype(np.int32)
            for i, n in enumerate([7, 1, 0, 30])}
    model_io.write_model(tmp_path / "final.mdl", tm, am)
    model_io.write_alignments(tmp_path / "ali.1.gz", alis)
    tm2, _ = model_io.read_model(tmp_path / "final.mdl")
    back = model_io.read_alignment_file(tmp_path / "ali.1.gz")
    assert list(back) == list(alis)
    for utt, ali in alis.items():
        np.testing.assert_array_equal(back[utt], ali)
        assert ([tm2.transition_id_to_phone(int(t)) for t in back[utt]]
                == [tm.transition_id_to_phone(int(t)) for t in ali])
        assert model_io.phones_of_alignment(tm2, back[utt]) == \
            model_io.phones_of_alignment(tm, ali)
    with kaldi_native_io.SequentialInt32VectorReader(
            f"ark:gunzip -c {tmp_path}/ali.1.gz|") as reader:
        independent = {key: list(v) for key, v in reader}
    assert independent == {u: a.tolist() for u, a in alis.items()}


def test_tree_round_trip(tmp_path):
    _, tree, _ = tiny_model(shared=True)
    model_io.write_tree(tmp_path / "tree", tree)
    back = model_io.read_tree(tmp_path / "tree")
    assert back.num_pdfs == tree.num_pdfs == 8
    for phone, pdf_class in [(1, 4), (2, 0), (3, 2)]:
        assert back.compute([phone], pdf_class) == tree.compute([phone], pdf_class)
    (tmp_path / "bad").write_bytes(b"\0BFM junk")
    with pytest.raises(InputError, match="bad"):
        model_io.read_tree(tmp_path / "bad")


def test_text_alignments_as_train_mono_writes_them(tmp_path):
    (tmp_path / "ali.1.gz").write_bytes(gzip.compress(b"a 1 2 3\nb 4\n"))
    got = model_io.read_alignment_file(tmp_path / "ali.1.gz")
    assert {k: v.tolist() for k, v in got.items()} == {"a": [1, 2, 3], "b": [4]}


def test_read_alignments_reads_every_job(tmp_path):
    model_io.write_alignments(tmp_path / "ali.1.gz", {"a": np.array([1, 2])})
    model_io.write_alignments(tmp_path / "ali.2.gz", {"b": np.array([3])})
    (tmp_path / "num_jobs").write_text("2\n")
    assert sorted(model_io.read_alignments(tmp_path)) == ["a", "b"]
    model_io.write_alignments(tmp_path / "ali.2.gz", {"a": np.array([3])})
    with pytest.raises(InputError, match="ali.2.gz: key 'a': utterance also in"):
        model_io.read_alignments(tmp_path)
    model_io.write_alignments(tmp_path / "ali.2.gz", {"b": np.array([3])})
    (tmp_path / "num_jobs").write_text("3\n")
    with pytest.raises(InputError, match=r"ali\.3\.gz: missing"):
        model_io.read_alignments(tmp_path)


def test_bad_alignment_archives_name_file_and_utterance(tmp_path):
    good = b"u1 " + model_io.int_vector_binary([5, 6, 7])
    (tmp_path / "trunc.gz").write_bytes(gzip.compress(good + b"u2 " + good[3:-3]))
    with pytest.raises(InputError, match=r"trunc\.gz: key 'u2': truncated"):
        model_io.read_alignment_file(tmp_path / "trunc.gz")
    (tmp_path / "text.gz").write_bytes(gzip.compress(b"u1 1 x 3\n"))
    with pytest.raises(InputError, match=r"text\.gz: key 'u1': text entry"):
        model_io.read_alignment_file(tmp_path / "text.gz")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(InputError, match=r"broken\.gz: cannot decompress"):
        model_io.read_alignment_file(tmp_path / "broken.gz")


def test_bad_models_are_errors_naming_the_file(tmp_path):
    tm, _, am = tiny_model()
    model_io.write_model(tmp_path / "final.mdl", tm, am)
    text = (tmp_path / "final.mdl").read_text()
    (tmp_path / "cut.mdl").write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match="cut.mdl: not a Kaldi text model"):
        model_io.read_model(tmp_path / "cut.mdl")
    (tmp_path / "phone.mdl").write_text(text.replace("\n1 0 0 \n", "\n9 0 0 \n", 1))
    with pytest.raises(InputError, match="phone 9 is not in the model's topology"):
        model_io.read_model(tmp_path / "phone.mdl")
    (tmp_path / "bin.mdl").write_bytes(b"\0B<TransitionModel> ")
    with pytest.raises(InputError, match="binary Kaldi model"):
        model_io.read_model(tmp_path / "bin.mdl")


def test_phones_of_another_lang_are_refused_naming_both_files(tmp_path):
    (tmp_path / "a.txt").write_text("<eps> 0\nsil 1\na 2\n#0 3\n")
    (tmp_path / "b.txt").write_text("<eps> 0\nsil 1\na 2\n#0 3\n#1 4\n")
    model_io.check_phones_compatible(tmp_path / "a.txt", tmp_path / "b.txt")
    (tmp_path / "c.txt").write_text("<eps> 0\nsil 1\nb 2\n")
    with pytest.raises(InputError, match=r"a\.txt: phone symbols differ from those of "
                                         r".*c\.txt"):
        model_io.check_phones_compatible(tmp_path / "a.txt", tmp_path / "c.txt")


def _alignment(tm, phones: list[int], durations: list[list[int]], reordered: bool):
    """The transition ids of phones with the given frames per HMM state: each state's
    self-loops before its forward transition, or after it (Kaldi's reordered graphs)."""
    from asr_tiny_models import phone_tids

    pieces = []
    for phone, frames in zip(phones, durations, strict=True):
        piece = []
        for (loop, forward), n in zip(phone_tids(tm, phone), frames, strict=True):
            piece += [forward] + [loop] * (n - 1) if reordered else [loop] * (n - 1) + [forward]
        pieces.append(piece)
    return pieces


@pytest.mark.parametrize("reordered", [False, True])
def test_split_to_phones_recovers_each_instance(reordered):
    """Random phone strings with repeats of the same phone back to back, one to four frames
    per state, in both self-loop orders: the split gives back each phone instance."""
    from asr_tiny_models import tiny_transition_model

    tm, _ = tiny_transition_model(3)
    rng = np.random.default_rng(4)
    for _ in range(50):
        phones = [int(p) for p in rng.integers(1, 4, size=rng.integers(1, 8))]
        durations = [[int(n) for n in rng.integers(1, 5, size=3)] for _ in phones]
        pieces = _alignment(tm, phones, durations, reordered)
        ali = [t for piece in pieces for t in piece]
        got, ok = model_io.split_to_phones(tm, ali)
        assert ok and got == pieces, (phones, durations)
        assert model_io.phones_of_alignment(tm, np.array(ali, np.int32)) == phones


def test_split_to_phones_flags_implausible_alignments():
    from asr_tiny_models import tiny_transition_model

    tm, _ = tiny_transition_model(3)
    one, two = _alignment(tm, [1, 2], [[2, 2, 2], [1, 1, 1]], reordered=False)
    assert model_io.split_to_phones(tm, []) == ([], True)
    assert model_io.split_to_phones(tm, one[:-1]) == ([one[:-1]], False)   # never ends
    assert model_io.split_to_phones(tm, one[:3] + two) == ([one[:3], two], False)  # cut short
    assert model_io.split_to_phones(tm, one[2:]) == ([one[2:]], False)     # starts in state 1
