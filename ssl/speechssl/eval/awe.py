"""Acoustic word embeddings with the CAE-RNN (:mod:`speechssl.models.cae_rnn`): the word
tokens and same-word pairs of a training data dir, the training of one seed (AE
pretraining on every token, then the CAE on the pairs in both directions), and the
embedding of word segments.

Published settings (the defaults below; Kamper, ICASSP 2019, through his released recipe
``recipe_bucktsong_awe`` ``train_cae.py``, whose CAE-RNN van Staden & Kamper 2021 reuse):
Adam, learning rate 1e-3; batches of 300 token pairs drawn from 3 length buckets (pairs
sorted by the longer token, split into 3 equal buckets, shuffled within each bucket every
epoch, then cut into consecutive batches); 100 AE epochs, then 30 CAE epochs on
ground-truth pairs (the paper's ``gt`` sweep; 10 on UTD pairs); every segment truncated to
its first 100 frames, for training and for embedding; the final model is kept
(``--pretrain_usefinal``).  The decoder is conditioned on ``z`` at every step and decodes
for the target token's own length (see the model's docstring).

Deviations, all stated: the recipe feeds only the 13 static MFCCs (it cuts the input to 13
dimensions); here the features are used as given (any frame-level representation, e.g. 39-d
MFCC with deltas).  The recipe drops the partial last batch and the remainder of its
bucket split; here every token and pair is used.  The recipe picks the CAE model by
validation AP; here the final model is used (no validation data is consulted).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from speechssl.data.datadir import DataDir
from speechssl.data.feature_loader import FeatureLoader, FeatureTransform
from speechssl.data.pairs import Token, ctm_tokens, same_word_pairs
from speechssl.data.table import PathLike
from speechssl.errors import InputError
from speechssl.models.cae_rnn import CAERNN, CAERNNConfig, pad_segments
from speechssl.typed_config import check_sections, from_dict, read_yaml, to_dict

log = logging.getLogger(__name__)

SECTIONS = ("model", "data", "train")
PAIR_SUBSET_SEED = 0  # the pair subset (max_pairs...) is data, the same for every seed


@dataclass
class AWEDataConfig:
    """Which training tokens and pairs; key names as in the SSL configs' ``data``."""

    min_word_frames: int = 50      # 0.5 s (Kamper; van Staden & Kamper)
    min_word_chars: int = 5
    max_frames: int = 100          # segments are truncated to their first 100 frames (Kamper)
    max_pairs_per_type: int = 0    # 0: all N(N-1)/2 pairs of a word type
    max_pairs: int = 0             # ours, for quick runs: keep this many pairs in all (0: all)

    def __post_init__(self):
        if self.max_frames < 1 or min(self.min_word_frames, self.min_word_chars,
                                      self.max_pairs_per_type, self.max_pairs) < 0:
            raise ValueError("max_frames must be positive and the other limits not negative")


@dataclass
class AWETrainConfig:
    lr: float = 1.0e-3             # Adam (Kamper 2019)
    buckets: int = 3               # length buckets
    ae_epochs: int = 100           # AE pretraining on every token
    ae_batch_size: int = 300       # tokens per AE batch
    cae_epochs: int = 30           # CAE on the pairs, both directions (ground-truth pairs)
    cae_batch_size: int = 300      # directed pairs per CAE batch

    def __post_init__(self):
        if min(self.lr, self.buckets, self.ae_batch_size, self.cae_batch_size) <= 0:
            raise ValueError("lr, buckets and the batch sizes must be positive")
        if self.ae_epochs < 0 or self.cae_epochs < 0 or self.ae_epochs + self.cae_epochs < 1:
            raise ValueError("ae_epochs and cae_epochs must not be negative, nor both 0")


@dataclass
class AWEConfig:
    model: CAERNNConfig = field(default_factory=CAERNNConfig)
    data: AWEDataConfig = field(default_factory=AWEDataConfig)
    train: AWETrainConfig = field(default_factory=AWETrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {name: to_dict(getattr(self, name)) for name in SECTIONS}


def awe_config(raw: Any, where: str = "config") -> AWEConfig:
    """An :class:`AWEConfig` from plain data; unknown keys are errors naming ``where``."""
    if raw is None:
        raw = {}
    check_sections(raw, SECTIONS, where)
    return AWEConfig(model=from_dict(CAERNNConfig, raw.get("model"), f"{where}: model"),
                     data=from_dict(AWEDataConfig, raw.get("data"), f"{where}: data"),
                     train=from_dict(AWETrainConfig, raw.get("train"), f"{where}: train"))


def load_awe_config(path: PathLike | None) -> AWEConfig:
    """The config of a YAML file; None gives the published defaults."""
    if path is None:
        return AWEConfig()
    return awe_config(read_yaml(path), str(path))


@dataclass
class TrainingWords:
    """Word tokens of a training data dir, their features and the same-word pairs."""

    tokens: list[Token]
    feats: list[torch.Tensor]      # (min(T, max_frames), D) per token
    pairs: np.ndarray              # (P, 2) token indices, each unordered pair once
    skipped: Counter

    @property
    def input_dim(self) -> int:
        return int(self.feats[0].shape[1])


def utterance_frames(loader: FeatureLoader) -> dict[str, int]:
    """Frames per utterance: utt2num_frames where the data dir has it, else counted."""
    if loader.data.has("utt2num_frames"):
        frames = loader.data.table("utt2num_frames")
        return {utt: int(frames[utt]) for utt in loader.feats if utt in frames}
    return {utt: int(loader[utt].shape[0]) for utt in loader.feats}


def select_pairs(tokens: list[Token], config: AWEDataConfig) -> np.ndarray:
    """Same-word pairs, at most ``max_pairs_per_type`` per word and ``max_pairs`` in all."""
    pairs = same_word_pairs(tokens, config.max_pairs_per_type, PAIR_SUBSET_SEED)
    if 0 < config.max_pairs < len(pairs):
        rng = np.random.default_rng(PAIR_SUBSET_SEED)
        pairs = pairs[np.sort(rng.choice(len(pairs), config.max_pairs, replace=False))]
    return pairs


def load_training_words(train_dir: PathLike, transform: FeatureTransform,
                        config: AWEDataConfig) -> TrainingWords:
    """Tokens of ``<train_dir>/words.ctm`` passing the length filters, with features."""
    data = DataDir(train_dir)
    ctm = data.path / "words.ctm"
    if not ctm.is_file():
        raise InputError("no word alignment: the CAE-RNN takes its training words and "
                         "same-word pairs from words.ctm", path=ctm)
    loader = FeatureLoader(data, transform)
    tokens, skipped = ctm_tokens(ctm, data, utterance_frames(loader), config.min_word_frames,
                                 config.min_word_chars)
    pairs = select_pairs(tokens, config)
    if len(pairs) == 0:
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        raise InputError(f"no same-word pairs: {len(tokens)} tokens passed the length "
                         f"filters (>= {config.min_word_frames} frames, >= "
                         f"{config.min_word_chars} characters) and no word among them occurs "
                         f"twice (left out: {why or 'nothing'}); lower data.min_word_frames "
                         "or data.min_word_chars", path=ctm)
    return TrainingWords(tokens, cut_tokens(loader, tokens, config.max_frames), pairs, skipped)


def cut_tokens(loader: FeatureLoader, tokens: list[Token], max_frames: int,
               ) -> list[torch.Tensor]:
    """Each token's frames, truncated to ``max_frames``; each utterance is read once."""
    by_utt: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        by_utt.setdefault(token.utt, []).append(i)
    out: list[torch.Tensor] = [torch.empty(0)] * len(tokens)
    for utt, index in by_utt.items():
        feats = loader[utt]
        for i in index:
            start = tokens[i].start
            out[i] = torch.from_numpy(feats[start:min(tokens[i].end, start + max_frames)].copy())
    return out


def bucket_batches(lengths: np.ndarray, batch_size: int, buckets: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches of item indices, Kamper's bucketing: items sorted by length,
    split into ``buckets`` near-equal buckets, each shuffled, then consecutive batches.

    >>> rng = np.random.default_rng(0)
    >>> [sorted(b.tolist()) for b in bucket_batches(np.array([5, 1, 4, 2]), 2, 2, rng)]
    [[1, 3], [0, 2]]
    """
    order = np.argsort(lengths, kind="stable")
    parts = np.array_split(order, min(buckets, len(order)))
    for part in parts:
        rng.shuffle(part)
    index = np.concatenate(parts)
    return [index[i:i + batch_size] for i in range(0, len(index), batch_size)]


def train_epoch(model: CAERNN, optimizer: torch.optim.Optimizer, feats: list[torch.Tensor],
                items: np.ndarray, batch_size: int, buckets: int, rng: np.random.Generator,
                device: torch.device) -> float:
    """One pass over ``items`` ``(M, 2)`` (input token, target token); the mean loss."""
    model.train()
    lengths = np.array([max(feats[x].shape[0], feats[y].shape[0]) for x, y in items])
    total = 0.0
    for batch in bucket_batches(lengths, batch_size, buckets, rng):
        x, x_len = pad_segments([feats[i] for i in items[batch, 0]])
        y, y_len = pad_segments([feats[i] for i in items[batch, 1]])
        loss = model.loss(x.to(device), x_len, y.to(device), y_len)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(items)


def train_seed(words: TrainingWords, config: AWEConfig, seed: int,
               device: torch.device) -> tuple[CAERNN, dict[str, list[float]]]:
    """Train one CAE-RNN: AE epochs on every token, then CAE epochs on the directed pairs.
    Deterministic given ``seed`` (initialisation and batch order)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CAERNN(config.model, words.input_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    tokens = np.arange(len(words.tokens))
    t = config.train
    phases = {"ae": (np.stack([tokens, tokens], axis=1), t.ae_epochs, t.ae_batch_size),
              "cae": (np.concatenate([words.pairs, words.pairs[:, ::-1]]), t.cae_epochs,
                      t.cae_batch_size)}
    history: dict[str, list[float]] = {"ae": [], "cae": []}
    for phase, (items, epochs, batch_size) in phases.items():
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            loss = train_epoch(model, optimizer, words.feats, items, batch_size, t.buckets,
                               rng, device)
            history[phase].append(loss)
            log.info("seed %d %s epoch %d/%d: loss %.4f over %d %s (%.1f s)", seed,
                     phase.upper(), epoch, epochs, loss, len(items),
                     "tokens" if phase == "ae" else "directed pairs",
                     time.perf_counter() - start)
    return model, history


@torch.no_grad()
def embed_segments(model: CAERNN, segments: list[np.ndarray], max_frames: int,
                   device: torch.device, batch_size: int = 256) -> np.ndarray:
    """``(N, embed_dim)`` float32 embeddings of ``(T, D)`` segments (truncated to
    ``max_frames``), batched by length; the result does not depend on the batching."""
    model.eval()
    order = np.argsort([len(s) for s in segments], kind="stable")
    out = np.zeros((len(segments), model.config.embed_dim), dtype=np.float32)
    for i in range(0, len(order), batch_size):
        index = order[i:i + batch_size]
        x, lengths = pad_segments([torch.from_numpy(np.ascontiguousarray(segments[j][:max_frames]))
                                   for j in index])
        out[index] = model.embed(x.to(device), lengths).cpu().numpy()
    return out
