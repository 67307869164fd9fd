"""CAE-RNN acoustic word embeddings: the model against brute-force references, the configs,
and steps/train_awe.sh end to end on the tiny mini recipe (2 seeds, re-runs, bad input)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, sh
from recipe_fixtures import mini_recipe_fixture  # noqa: F401
from speechssl.errors import InputError
from speechssl.eval.awe import AWEConfig, bucket_batches, load_awe_config
from speechssl.eval.samediff import read_word_list
from speechssl.models.cae_rnn import CAERNN, CAERNNConfig, pad_segments
from speechssl.typed_config import to_dict

DIM = 5
# The tiny corpus has 85 training words of >= 20 frames (21 same-word pairs).
EPOCHS = 3
TINY = {"model": {"enc_layers": 1, "enc_hidden": 16, "dec_layers": 1, "dec_hidden": 16,
                  "embed_dim": 8},
        "data": {"min_word_frames": 20, "max_frames": 60},
        "train": {"lr": 5.0e-3, "ae_epochs": EPOCHS, "ae_batch_size": 16,
                  "cae_epochs": EPOCHS, "cae_batch_size": 8}}
SEEDS = (0, 3)


def small_model(seed: int = 0) -> CAERNN:
    torch.manual_seed(seed)
    return CAERNN(CAERNNConfig(enc_layers=2, enc_hidden=12, dec_layers=2, dec_hidden=10,
                               embed_dim=6), DIM).eval()


def segments(lengths, seed: int = 1) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, DIM, generator=gen) for n in lengths]


def test_a_segment_gets_the_same_embedding_alone_and_in_a_padded_batch():
    model, segs = small_model(), segments([7, 3, 12, 1, 5])
    with torch.no_grad():
        x, lengths = pad_segments(segs)
        batched = model.embed(x, lengths)
        assert batched.shape == (5, 6)
        for i, seg in enumerate(segs):
            alone = model.embed(seg[None], torch.tensor([len(seg)]))[0]
            diff = (alone - batched[i]).abs().max().item()
            assert diff < 1e-5, f"segment {i}: max difference {diff}"
        # Garbage in the padding changes nothing either.
        noisy = x + 100.0 * (torch.arange(x.shape[1])[None, :, None] >= lengths[:, None, None])
        assert torch.allclose(model.embed(noisy, lengths), batched, atol=1e-5)


def test_decoder_output_has_the_target_lengths_and_zeros_after():
    model, segs = small_model(), segments([4, 9, 6])
    x, x_len = pad_segments(segs)
    y_len = torch.tensor([10, 2, 6])
    out = model(x, x_len, y_len)
    assert out.shape == (3, 10, DIM)
    for b, n in enumerate(y_len.tolist()):
        assert torch.all(out[b, n:] == 0) and torch.all(out[b, :n].abs().sum(-1) > 0)


def brute_force_loss(model: CAERNN, xs, ys) -> float:
    """Mean over pairs of sum_t mean_d (dec(enc(x))_t - y_t)^2 / len(y), one pair at a
    time, in float64 numpy."""
    losses = []
    with torch.no_grad():
        for x, y in zip(xs, ys, strict=True):
            pred = model(x[None], torch.tensor([len(x)]), torch.tensor([len(y)]))[0]
            err = (pred.double().numpy() - y.double().numpy()) ** 2
            losses.append(err.mean(axis=1).sum() / len(y))
    return float(np.mean(losses))


def test_ae_loss_equals_the_per_sequence_computation():
    model, xs = small_model(), segments([6, 2, 9, 4])
    x, lengths = pad_segments(xs)
    with torch.no_grad():
        batched = model.loss(x, lengths, x, lengths).item()
    assert batched == pytest.approx(brute_force_loss(model, xs, xs), rel=1e-5)


def test_cae_loss_equals_the_per_sequence_computation_with_other_target_lengths():
    model, xs, ys = small_model(), segments([6, 2, 9, 4]), segments([3, 8, 9, 1], seed=2)
    x, x_len = pad_segments(xs)
    y, y_len = pad_segments(ys)
    with torch.no_grad():
        batched = model.loss(x, x_len, y, y_len).item()
    assert batched == pytest.approx(brute_force_loss(model, xs, ys), rel=1e-5)


def test_bucket_batches_cover_every_item_once_with_short_ones_first():
    lengths = np.random.default_rng(0).integers(10, 100, 23)
    batches = bucket_batches(lengths, 4, 3, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))
    assert max(len(b) for b in batches) == 4
    assert max(lengths[batches[0]]) <= min(lengths[batches[-1]])  # bucket 1 before bucket 3


def test_published_config_restates_the_dataclass_defaults():
    config = load_awe_config(ROOT / "egs" / "mini" / "conf" / "published" / "awe.yaml")
    assert config.to_dict() == AWEConfig().to_dict()
    assert to_dict(config.model) == {"enc_layers": 3, "enc_hidden": 400, "dec_layers": 3,
                                     "dec_hidden": 400, "embed_dim": 130}
    load_awe_config(ROOT / "egs" / "mini" / "conf" / "awe.yaml")  # the mini config loads


@pytest.mark.parametrize("text, message", [
    ("model: {hiden: 3}\n", r"x.yaml: model.hiden'; valid keys: .*enc_hidden"),
    ("optim: {lr: 1}\n", r"x.yaml: unknown key 'optim'; valid keys: model, data, train"),
    ("train: {lr: fast}\n", r"x.yaml: train.lr' = 'fast' must be a float"),
])
def test_bad_config_keys_and_values_name_the_file_and_key(tmp_path, text, message):
    (tmp_path / "x.yaml").write_text(text)
    with pytest.raises(InputError, match=message):
        load_awe_config(tmp_path / "x.yaml")


def awe_step(recipe, exp: str, config=TINY, seeds=SEEDS, train="data/train_mfcc",
             test="data/test_mfcc", words="data/test_mfcc/samediff_words", check=True,
             opts=""):  # MFCC: eval_opts gives --cmvn true --norm-vars true --delta-order 2
    conf = recipe / f"{exp.replace('/', '_')}.yaml"
    conf.write_text(yaml.safe_dump(config))
    return sh(f"steps/train_awe.sh --nj 2 --seeds '{' '.join(map(str, seeds))}' "
              f"{opts} {conf} {train} {test} {words} exp/{exp}", cwd=recipe, check=check)


@pytest.fixture(scope="module")
def trained(mini_recipe):
    awe_step(mini_recipe, "awe/mfcc")
    return mini_recipe, mini_recipe / "exp" / "awe" / "mfcc"


def test_results_summarise_the_seeds(trained):
    recipe, exp = trained
    results = json.loads((exp / "results.json").read_text())
    assert results["task"] == "awe" and results["features"] == "test_mfcc"
    assert results["seeds"] == list(SEEDS)
    per_seed = results["per_seed"]
    assert [r["seed"] for r in per_seed] == list(SEEDS)
    aps = [r["ap"] for r in per_seed]
    assert all(0.0 <= ap <= 1.0 for ap in aps) and all(r["train_seconds"] > 0 for r in per_seed)
    assert results["ap_mean"] == pytest.approx(np.mean(aps))
    assert results["ap_std"] == pytest.approx(np.std(aps))
    assert results["prb_mean"] == pytest.approx(np.mean([r["prb"] for r in per_seed]))
    assert results["ap_diff_speaker_mean"] == pytest.approx(
        np.mean([r["ap_diff_speaker"] for r in per_seed]))
    assert results["num_train_tokens"] > results["num_pairs"] > 0
    assert results["config"] == load_awe_config(recipe / "awe_mfcc.yaml").to_dict()
    assert aps[0] != aps[1]  # different seeds are different models
    # No options given: the step read MFCC as data/train_mfcc/eval_opts says.
    inputs = json.loads((exp / f"seed{SEEDS[0]}" / "results.json").read_text())["inputs"]
    assert (inputs["cmvn"], inputs["norm_vars"], inputs["delta_order"]) == (True, True, 2)


def test_embeddings_are_kaldi_vectors_of_every_listed_word(trained):
    recipe, exp = trained
    knio = pytest.importorskip("kaldi_native_io")
    keys = [s.key for s in read_word_list(recipe / "data/test_mfcc/samediff_words")]
    for seed in SEEDS:
        scp = exp / f"seed{seed}" / "embeddings.scp"
        reader = knio.RandomAccessFloatVectorReader(f"scp:{scp}")
        vectors = np.stack([np.array(reader[k], copy=True) for k in keys])
        reader.close()
        assert vectors.shape == (len(keys), TINY["model"]["embed_dim"])
        assert np.isfinite(vectors).all() and np.linalg.matrix_rank(vectors) > 1
        assert sorted(keys) == [line.split()[0] for line in scp.read_text().splitlines()]
        assert (exp / f"seed{seed}" / "final.pt").is_file()
        assert yaml.safe_load((exp / f"seed{seed}" / "config.yaml").read_text()) == \
            json.loads((exp / "results.json").read_text())["config"]


def test_the_loss_falls_in_both_phases(trained):
    _, exp = trained
    for seed in SEEDS:
        result = json.loads((exp / f"seed{seed}" / "results.json").read_text())
        for phase in ("ae_losses", "cae_losses"):
            losses = result[phase]  # epoch means: an untrained model repeats the same value
            assert len(losses) == EPOCHS, (seed, phase, losses)
            assert all(np.diff(losses) < 0), (seed, phase, losses)
            assert losses[-1] < 0.995 * losses[0], (seed, phase, losses)


def test_a_rerun_reuses_finished_seeds_and_retrains_an_unfinished_one(trained):
    recipe, exp = trained
    model0 = (exp / "seed0" / "final.pt").read_bytes()
    emb3 = (exp / "seed3" / "embeddings.ark").read_bytes()
    (exp / "seed3" / "results.json").unlink()  # as if seed 3 had been interrupted
    aps = [r["ap"] for r in json.loads((exp / "results.json").read_text())["per_seed"]]
    awe_step(recipe, "awe/mfcc")
    logs = "".join(p.read_text() for p in (exp / "log").glob("train.*.log"))
    assert "seed 0 already finished" in logs and f"seed 3 AE epoch 1/{EPOCHS}" in logs
    assert "seed 0 AE epoch" not in logs
    assert (exp / "seed0" / "final.pt").read_bytes() == model0
    assert (exp / "seed3" / "embeddings.ark").read_bytes() == emb3  # deterministic
    assert [r["ap"] for r in json.loads((exp / "results.json").read_text())["per_seed"]] == aps


def test_missing_word_alignment_is_an_error(trained, tmp_path):
    recipe, _ = trained
    data = tmp_path / "train_noctm"
    shutil.copytree(recipe / "data" / "train_mfcc", data)
    (data / "words.ctm").unlink()
    proc = awe_step(recipe, "awe/noctm", train=str(data), check=False)
    assert proc.returncode != 0 and f"no {data}/words.ctm" in proc.stderr
    from speechssl.bin.train_awe import main
    with pytest.raises(InputError, match=r"words.ctm: no word alignment"):
        main(["--cmvn", "true", "--norm-vars", "false", "--delta-order", "0", str(data),
              str(recipe / "data/test_mfcc"), str(recipe / "data/test_mfcc/samediff_words"),
              str(tmp_path / "exp")])


def run_main(recipe, tmp_path, config=TINY, test="data/test_mfcc",
             words="data/test_mfcc/samediff_words",
             opts=("--cmvn", "true", "--norm-vars", "true", "--delta-order", "0")):
    from speechssl.bin.train_awe import main
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    main(["--config", str(tmp_path / "c.yaml"), *opts, str(recipe / "data/train_mfcc"),
          str(recipe / test), str(recipe / words), str(tmp_path / "exp")])


def test_no_pairs_is_an_error_that_counts_the_tokens(trained, tmp_path):
    recipe, _ = trained
    config = {**TINY, "data": {"min_word_frames": 100}}
    with pytest.raises(InputError, match=r"words.ctm: no same-word pairs: \d+ tokens passed "
                                         r"the length filters \(>= 100 frames"):
        run_main(recipe, tmp_path, config)


def test_train_and_test_features_of_different_dimensions_are_an_error(trained, tmp_path):
    recipe, _ = trained
    with pytest.raises(InputError, match=r"test_fbank/feats.scp: test features are "
                                         r"80-dimensional but the training .* 13-dimensional"):
        run_main(recipe, tmp_path, test="data/test_fbank",
                 words="data/test_mfcc/samediff_words")


def test_a_word_list_utterance_without_features_is_an_error(trained, tmp_path):
    recipe, _ = trained
    lines = (recipe / "data/test_mfcc/samediff_words").read_text().splitlines()
    key, _, start, end = lines[1].split()
    lines[1] = f"{key} nobody-0001 {start} {end}"
    (tmp_path / "words").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"words:2: key .*: utterance 'nobody-0001' has no "
                                         "features"):
        run_main(recipe, tmp_path, words=str(tmp_path / "words"))


def test_an_unknown_config_key_fails_the_step_naming_it(trained):
    recipe, _ = trained
    proc = awe_step(recipe, "awe/badkey", config={"train": {"epochs": 3}}, check=False)
    assert proc.returncode != 0
    assert "awe_badkey.yaml: train.epochs'; valid keys:" in proc.stderr + "".join(
        p.read_text() for p in (recipe / "exp/awe/badkey/log").glob("*.log"))


def test_a_duplicate_word_list_key_is_an_error(trained, tmp_path):
    recipe, _ = trained
    lines = (recipe / "data/test_mfcc/samediff_words").read_text().splitlines()
    (tmp_path / "words").write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.raises(InputError, match=rf"words:{len(lines) + 1}: key .*: duplicate key "
                                         r"\(first on line 1\)"):
        run_main(recipe, tmp_path, words=str(tmp_path / "words"))
