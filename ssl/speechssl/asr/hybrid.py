"""A hybrid DNN-HMM acoustic model: an MLP on spliced frames of any frame-level features,
trained with cross-entropy on the pdf ids of HMM-state alignments (Kaldi's nnet1 recipe,
``steps/nnet/train.sh``, and the frozen-features protocol of S3PRL and PASE+: the
features are read as stored, never fine-tuned).

* Input: a data dir's ``feats.scp`` read with its ``eval_opts`` protocol (speaker CMVN,
  deltas; :class:`~speechssl.data.feature_loader.FeatureLoader`), normalised by global
  mean and variance from the training set (nnet1's ``feature_transform``), spliced
  ``left`` frames before and ``right`` after (Kaldi's ``splice-feats``: the edge frames
  are repeated).  Splicing happens on the fly from the unspliced frames, so a buffer
  holds ``D``, not ``(left + 1 + right) * D``, floats per frame.
* Layers: on the stacked layers of ``extract_ssl.sh --layer all``, ``layer_sum`` learns
  S3PRL's weighted sum of them (:mod:`speechssl.eval.layers`) on each frame before
  splicing, trained with the MLP; the weights are reported with the model.
* Targets: alignments (transition ids) mapped to pdfs.  Alignment and feature frame
  counts may differ by :data:`MAX_FRAME_DIFF` (conventions differ at the end): the
  alignment is cut, or its last pdf repeated, to the feature count; more is an error
  naming the utterance.
* Streaming: each epoch visits the utterances in a seeded random order, ``buffer_utts``
  at a time; the frames of a buffer are shuffled and cut into minibatches.  Memory is the
  buffer plus the model, whatever the corpus size (the alignments themselves, 4 bytes a
  frame, are held in memory: 150 MB for LibriSpeech's 36 M frames).
* Schedule: Adam, with nnet1's "newbob" learning-rate schedule on the held-out loss
  (``steps/nnet/train_scheduler.sh``): an epoch that makes the CV loss worse is rejected
  (the previous weights are restored); once the relative improvement falls below
  ``start_halving_impr`` the learning rate halves every epoch, and training stops when it
  falls below ``end_halving_impr`` after halving started, or after ``max_epochs``.
* Priors: pdf frame counts of the training alignments (Kaldi's ``ali_train_pdf.counts``);
  decoding subtracts ``log(count / total)`` from the log-posteriors.  Pdfs never seen get
  nnet1's treatment (``PdfPrior``, prior floor 1e-10): a log-likelihood so low that the
  decoder never uses them.

Published configuration for comparison (not our default, which fits a CPU in minutes):
PASE+ (Ravanelli et al. 2020) used +-8 frames of context and an MLP of 5 x 1024.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from speechssl.errors import InputError
from speechssl.eval.layers import WeightedLayerSum

log = logging.getLogger(__name__)

MAX_FRAME_DIFF = 2
PRIOR_FLOOR = 1e-10          # nnet1's --prior-floor
UNSEEN_LOG_LIKE = -1e10      # what an unseen pdf scores (nnet1: -sqrt(FLT_MAX))


@dataclass(frozen=True)
class HybridConfig:
    """The network and its training; defaults sized for a CPU (egs/mini)."""

    left_context: int = 5
    right_context: int = 5
    num_layers: int = 3
    hidden_dim: int = 512
    dropout: float = 0.1
    lr: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 10
    min_epochs: int = 2
    start_halving_impr: float = 0.01
    end_halving_impr: float = 0.001
    halving_factor: float = 0.5
    buffer_utts: int = 128
    cv_fraction: float = 0.1
    seed: int = 0
    layer_sum: bool = False     # a learnable weighted sum of stacked layers
    layer_norm: bool = False    # each layer layer-normalised before the sum


# ---------------------------------------------------------------- frames and labels

def splice_indices(num_frames: int, left: int, right: int) -> np.ndarray:
    """(T, left + 1 + right) frame indices of each frame's context, clipped at the edges
    (splice-feats repeats the first and last frames)."""
    offsets = np.arange(-left, right + 1)
    return np.clip(np.arange(num_frames)[:, None] + offsets, 0, num_frames - 1)


def splice(feats: np.ndarray, left: int, right: int) -> np.ndarray:
    """(T, D) -> (T, (left + 1 + right) * D), frame t's context in time order."""
    idx = splice_indices(len(feats), left, right)
    return feats[idx].reshape(len(feats), -1)


def fit_alignment(pdfs: np.ndarray, num_frames: int, utt: str, where) -> np.ndarray:
    """``pdfs`` cut, or its last entry repeated, to ``num_frames`` when they differ by at
    most MAX_FRAME_DIFF; otherwise an error naming the utterance."""
    diff = len(pdfs) - num_frames
    if abs(diff) > MAX_FRAME_DIFF:
        raise InputError(f"the alignment has {len(pdfs)} frames, the features {num_frames} "
                         f"(up to {MAX_FRAME_DIFF} are trimmed or padded): were the "
                         "alignments made from these features' audio with the same frame "
                         "shift?", path=where, key=utt)
    if diff > 0:
        return pdfs[:num_frames]
    if diff < 0:
        return np.concatenate([pdfs, np.full(-diff, pdfs[-1], dtype=pdfs.dtype)])
    return pdfs


def alignment_pdfs(alignments: Mapping[str, np.ndarray], tid2pdf: np.ndarray,
                   where) -> dict[str, np.ndarray]:
    """Transition-id alignments as pdf ids; a transition id the model does not have means
    the alignments belong to another model."""
    tid2pdf = np.asarray(tid2pdf)
    out = {}
    for utt, tids in alignments.items():
        tids = np.asarray(tids)
        if len(tids) == 0:
            raise InputError("empty alignment", path=where, key=utt)
        if tids.min() < 1 or tids.max() >= len(tid2pdf):
            raise InputError(f"transition id {int(tids.max())} out of the model's range "
                             f"1..{len(tid2pdf) - 1}: alignments of another model?",
                             path=where, key=utt)
        out[utt] = tid2pdf[tids].astype(np.int32)
    return out


def pdf_counts(pdfs: Mapping[str, np.ndarray], num_pdfs: int) -> np.ndarray:
    """Frames per pdf (Kaldi's ``ali-to-pdf | analyze-counts``)."""
    counts = np.zeros(num_pdfs, dtype=np.int64)
    for seq in pdfs.values():
        counts += np.bincount(seq, minlength=num_pdfs)
    return counts


def log_priors(counts: np.ndarray) -> np.ndarray:
    """``log(count / total)``; pdfs whose prior is below PRIOR_FLOOR (unseen ones) get
    ``-UNSEEN_LOG_LIKE`` so that their log-likelihood is prohibitively low."""
    counts = np.asarray(counts, dtype=np.float64)
    priors = counts / counts.sum()
    out = np.full(len(counts), -UNSEEN_LOG_LIKE, dtype=np.float64)
    seen = priors >= PRIOR_FLOOR
    out[seen] = np.log(priors[seen])
    return out.astype(np.float32)


def format_counts(counts: np.ndarray) -> str:
    """A Kaldi text vector, as ``analyze-counts`` writes ``ali_train_pdf.counts``."""
    return "[ " + " ".join(str(int(c)) for c in counts) + " ]\n"


def parse_counts(text: str, where) -> np.ndarray:
    fields = text.split()
    if len(fields) < 3 or fields[0] != "[" or fields[-1] != "]":
        raise InputError("expected a Kaldi text vector '[ c1 c2 ... ]'", path=where)
    try:
        return np.array([float(x) for x in fields[1:-1]], dtype=np.float64)
    except ValueError:
        raise InputError("non-numeric count", path=where) from None


def split_cv(utts: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, cv): a seeded ``fraction`` of the utterances (at least one) held out."""
    utts = sorted(utts)
    if len(utts) < 2:
        raise InputError(f"{len(utts)} aligned utterances: need at least 2 (one held out)")
    rng = np.random.default_rng(seed)
    num_cv = min(len(utts) - 1, max(1, round(fraction * len(utts))))
    cv = set(rng.choice(len(utts), num_cv, replace=False).tolist())
    return ([u for i, u in enumerate(utts) if i not in cv],
            [u for i, u in enumerate(utts) if i in cv])


# ---------------------------------------------------------------- streaming batches

class FrameBuffer:
    """The frames of a few utterances stacked (N, D), their pdfs, and each frame's context
    indices into the stack (clipped at its own utterance's edges)."""

    def __init__(self, feats: Sequence[np.ndarray], pdfs: Sequence[np.ndarray],
                 left: int, right: int):
        self.x = torch.from_numpy(np.concatenate(feats))
        self.y = torch.from_numpy(np.concatenate(pdfs).astype(np.int64))
        starts = np.cumsum([0] + [len(f) for f in feats[:-1]])
        self.context = torch.from_numpy(np.concatenate(
            [splice_indices(len(f), left, right) + s for f, s in zip(feats, starts, strict=True)]))

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, left + 1 + right, D) context frames and (B,) targets."""
        return self.x[self.context[frames]], self.y[frames]


def stream_batches(load, pdfs: Mapping[str, np.ndarray], utts: Sequence[str],
                   config: HybridConfig, rng: np.random.Generator | None,
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches over ``utts`` (``load(utt)`` gives its normalised features): shuffled
    utterance order and frames within each buffer when ``rng`` is given, else in order.
    A buffer's last frame never makes a minibatch of its own (it joins the one before):
    batch normalisation cannot train on one frame."""
    order = list(utts) if rng is None else [utts[i] for i in rng.permutation(len(utts))]
    for start in range(0, len(order), config.buffer_utts):
        chunk = order[start:start + config.buffer_utts]
        feats = [load(u) for u in chunk]
        buf = FrameBuffer(feats, [pdfs[u] for u in chunk], config.left_context,
                          config.right_context)
        frames = (torch.arange(len(buf)) if rng is None
                  else torch.from_numpy(rng.permutation(len(buf))))
        starts = list(range(0, len(buf), config.batch_size))
        if len(starts) > 1 and len(buf) - starts[-1] == 1:
            starts.pop()
        for b, e in zip(starts, starts[1:] + [len(buf)], strict=True):
            yield buf.batch(frames[b:e])


# ---------------------------------------------------------------- the network

class HybridMLP(nn.Module):
    """Global feature normalisation, then (with ``layer_sum``, over ``input_layers``
    stacked layers) the weighted layer sum of each frame, then ``num_layers`` x (Linear,
    ReLU, BatchNorm, Dropout) on the spliced frames and a linear output layer over the pdfs
    (log-softmax applied by the loss)."""

    def __init__(self, input_dim: int, num_pdfs: int, config: HybridConfig,
                 mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 input_layers: int = 1):
        super().__init__()
        context = config.left_context + 1 + config.right_context
        self.layer_sum = None
        frame_dim = input_dim
        if config.layer_sum:
            if input_dim % input_layers:
                raise ValueError(f"{input_dim} dimensions are not {input_layers} layers")
            frame_dim = input_dim // input_layers
            self.layer_sum = WeightedLayerSum(input_layers, frame_dim, config.layer_norm)
        self.register_buffer("mean", torch.zeros(input_dim) if mean is None
                             else torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.ones(input_dim) if std is None
                             else torch.as_tensor(std, dtype=torch.float32))
        layers: list[nn.Module] = []
        dim = frame_dim * context
        for _ in range(config.num_layers):
            layers += [nn.Linear(dim, config.hidden_dim), nn.ReLU(),
                       nn.BatchNorm1d(config.hidden_dim), nn.Dropout(config.dropout)]
            dim = config.hidden_dim
        layers.append(nn.Linear(dim, num_pdfs))
        self.net = nn.Sequential(*layers)
        self.left_context, self.right_context = config.left_context, config.right_context

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., D) raw frames -> normalised (before splicing)."""
        return (feats - self.mean) / self.std

    def forward(self, frames: torch.Tensor) -> torch.Tensor:   # (B, C, D) -> (B, P)
        """Logits of each frame's normalised context frames."""
        if self.layer_sum is not None:
            frames = self.layer_sum(frames)
        return self.net(frames.flatten(1))


def feature_stats(load, utts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Global mean and standard deviation (floored at 1e-5 of the largest) and frames,
    in one streaming pass in float64."""
    total = sq = None
    frames = 0
    for utt in utts:
        f = load(utt).astype(np.float64)
        total = f.sum(0) if total is None else total + f.sum(0)
        sq = (f * f).sum(0) if sq is None else sq + (f * f).sum(0)
        frames += len(f)
    mean = total / frames
    std = np.sqrt(np.maximum(sq / frames - mean * mean, 0.0))
    std = np.maximum(std, 1e-5 * max(std.max(), 1e-10))
    return mean.astype(np.float32), std.astype(np.float32), frames


# ---------------------------------------------------------------- training

@dataclass
class EpochResult:
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    cv_loss: float
    cv_acc: float
    accepted: bool
    frames: int
    seconds: float


def train_epoch(model: HybridMLP, opt: torch.optim.Optimizer, batches,
                ) -> tuple[float, float, int]:
    """One pass; mean loss, frame accuracy (%) and frames."""
    model.train()
    dev = next(model.parameters()).device
    loss_sum = correct = frames = 0
    for x, y in batches:
        if len(y) < 2:   # a buffer of one frame: batch normalisation cannot train on it
            log.warning("left out a minibatch of one frame")
            continue
        x, y = x.to(dev), y.to(dev)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        frames += len(y)
    return loss_sum / max(frames, 1), 100.0 * correct / max(frames, 1), frames


@torch.no_grad()
def evaluate(model: HybridMLP, batches) -> tuple[float, float, int]:
    """Mean loss and frame accuracy (%) without dropout or batch-statistics updates."""
    model.eval()
    dev = next(model.parameters()).device
    loss_sum = correct = frames = 0
    for x, y in batches:
        x, y = x.to(dev), y.to(dev)
        logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        frames += len(y)
    return loss_sum / max(frames, 1), 100.0 * correct / max(frames, 1), frames


def newbob(previous: float, current: float, halving: bool, config: HybridConfig,
           ) -> tuple[bool, bool, bool]:
    """nnet1's schedule step from CV losses: ``(accept, halving, stop)``.

    >>> newbob(2.0, 1.5, False, HybridConfig())     # a big improvement: go on
    (True, False, False)
    >>> newbob(2.0, 1.99, False, HybridConfig())    # 0.5 % better: start halving
    (True, True, False)
    >>> newbob(2.0, 1.9999, True, HybridConfig())   # 0.005 % while halving: stop
    (True, True, True)
    """
    accept = current < previous
    impr = (previous - current) / previous if math.isfinite(previous) else 1.0
    stop = halving and impr < config.end_halving_impr
    halving = halving or impr < config.start_halving_impr
    return accept, halving, stop


def train(model: HybridMLP, load, pdfs: Mapping[str, np.ndarray], train_utts: Sequence[str],
          cv_utts: Sequence[str], config: HybridConfig, timer) -> list[EpochResult]:
    """Train with the newbob schedule, keeping the weights of the best CV loss."""
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    best_loss, _, _ = evaluate(model, stream_batches(load, pdfs, cv_utts, config, None))
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    log.info("initial CV loss %.4f", best_loss)
    halving, lr, history = False, config.lr, []
    for epoch in range(1, config.max_epochs + 1):
        start = timer()
        rng = np.random.default_rng([config.seed, epoch])
        tr_loss, tr_acc, frames = train_epoch(model, opt, stream_batches(
            load, pdfs, train_utts, config, rng))
        seconds = timer() - start
        cv_loss, cv_acc, _ = evaluate(model, stream_batches(load, pdfs, cv_utts, config, None))
        accept, halving, stop = newbob(best_loss, cv_loss, halving, config)
        history.append(EpochResult(epoch, lr, tr_loss, tr_acc, cv_loss, cv_acc, accept,
                                   frames, seconds))
        log.info("epoch %d: lr %.2g, train loss %.4f acc %.2f%%, CV loss %.4f acc %.2f%% "
                 "(%s), %.0f frames/s", epoch, lr, tr_loss, tr_acc, cv_loss, cv_acc,
                 "accepted" if accept else "rejected", frames / max(seconds, 1e-9))
        if accept:
            best_loss = cv_loss
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            model.load_state_dict(best_state)
        if stop and epoch >= config.min_epochs:
            break
        if halving:
            lr *= config.halving_factor
            for group in opt.param_groups:
                group["lr"] = lr
    model.load_state_dict(best_state)
    return history


# ---------------------------------------------------------------- inference

@torch.no_grad()
def log_likelihoods(model: HybridMLP, feats: np.ndarray, log_prior: np.ndarray,
                    prior_scale: float = 1.0, chunk: int = 4096) -> np.ndarray:
    """(T, D) features -> (T, num_pdfs) ``log p(pdf | x) - prior_scale * log p(pdf)``
    (Kaldi's ``nnet-forward --class-frame-counts``)."""
    model.eval()
    x = model.normalise(torch.tensor(feats, dtype=torch.float32))
    ctx = torch.from_numpy(splice_indices(len(x), model.left_context, model.right_context))
    out = []
    for s in range(0, len(x), chunk):
        logits = model(x[ctx[s:s + chunk]])
        out.append(torch.log_softmax(logits, dim=1))
    logp = torch.cat(out).numpy()
    return logp - prior_scale * log_prior[None, :]


def save_checkpoint(path, model: HybridMLP, config: HybridConfig, meta: dict) -> None:
    """``final.pt``: weights, the configuration and what decoding must reproduce (feature
    protocol, input dimension, pdf count)."""
    from speechssl.fileio import atomic_write

    with atomic_write(path, "wb") as f:
        torch.save({"state_dict": model.state_dict(), "config": asdict(config), **meta}, f)


def load_checkpoint(path) -> tuple[HybridMLP, dict]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError) as e:
        raise InputError(f"cannot read the hybrid model: {e}", path=path) from None
    for key in ("state_dict", "config", "input_dim", "num_pdfs", "cmvn", "delta_order"):
        if key not in ckpt:
            raise InputError(f"not a hybrid model checkpoint (no '{key}')", path=path)
    config = HybridConfig(**ckpt["config"])
    model = HybridMLP(ckpt["input_dim"], ckpt["num_pdfs"], config,
                      input_layers=len(ckpt.get("layer_names", [None])))
    model.load_state_dict(ckpt["state_dict"])
    return model, ckpt
