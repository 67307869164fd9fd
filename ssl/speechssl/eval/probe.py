"""Probing classifiers: how linearly a representation encodes phones, speakers, languages.

The protocol of the CPC paper (van den Oord et al. 2018; LibriSpeech: 41 phones, linear
frame classifier, MFCC 39.7%, CPC 64.6%; 251 speakers on mean-pooled features, MFCC 17.6%,
CPC 97.4%): a softmax classifier (optionally one hidden ReLU layer, as the
Mockingjay/TERA papers report too), trained with Adam and cross-entropy in shuffled
minibatches on the training set's examples, accuracy on the test set's.  Examples and
labels come from :mod:`speechssl.eval.probe_data`.

Inputs are standardised with the training mean and standard deviation.  An affine rescaling
of each dimension does not change what a linear classifier can separate, but features come
on very different scales (log-mel energies around 10, MFCC c0 around 50, network
activations around 1): standardised, one learning rate and epoch count converge for all of
them, so the accuracy measures the representation and not the optimiser's fit to its scale.

Test labels that never occur in training count as errors (no classifier can output them).
The accuracy's 95% interval resamples the test speakers (:func:`accuracy_interval`).

On the stacked layers of ``extract_ssl.sh --layer all``, ``layer_sum`` puts S3PRL's
learnable weighted sum of the layers (:mod:`speechssl.eval.layers`) between the
standardisation and the classifier; mean pooling and the weighted sum commute, so the
utterance probes pool the stacked frames first.

Two ways to train the same classifier: :func:`train_probe` on an (N, D) matrix in memory,
and :func:`train_probe_streamed`, for training sets that do not fit in memory (LibriSpeech's
28 M frames are 29 GB at 256-d): each epoch visits the utterances in a seeded random order,
a buffer of frames at a time, shuffles the frames within the buffer and cuts them into
minibatches.  Memory is the buffer (``buffer_frames x D`` floats), the label ids (4 bytes
a frame) and the model, whatever the corpus size; the price is reading the features from
disk once per epoch.  The standardisation statistics come from one streaming pass
(:class:`Moments`), and predictions are summed up as they are made (:class:`Tally`), so
neither path needs the test set's features at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from speechssl.eval.bootstrap import bootstrap, weighted_ratio
from speechssl.eval.layers import WeightedLayerSum

log = logging.getLogger(__name__)

STD_FLOOR = 1e-5            # constant dimensions (e.g. padding) are left unscaled
PREDICT_BATCH = 65536


@dataclass(frozen=True)
class ProbeConfig:
    epochs: int
    lr: float
    batch_size: int
    hidden_dim: int = 0     # 0: linear; > 0: one hidden ReLU layer of this width
    seed: int = 0
    layer_sum: int = 0      # > 0: inputs are this many stacked layers, weighted and summed
    layer_norm: bool = False   # each stacked layer layer-normalised before the sum


# Defaults per task, chosen on the mini corpus (20 utterances per training speaker): the
# phone probe (~10^5 frames, 95 phones) reaches its plateau within 0.5% test accuracy
# (MFCC, fbank) in 20 epochs of 512 frames at 1e-2; the utterance probes (a few hundred
# vectors) fit the training set in 100 epochs of 32 at 1e-2, after which test accuracy
# stays within a few points.
TASK_DEFAULTS = {
    "phone": ProbeConfig(epochs=20, lr=1e-2, batch_size=512),
    "speaker": ProbeConfig(epochs=100, lr=1e-2, batch_size=32),
    "language": ProbeConfig(epochs=100, lr=1e-2, batch_size=32),
}


class Probe(nn.Module):
    """Standardisation (fixed, from the training set) then linear or MLP logits.

    Training and prediction reach the classifier only through :meth:`classify`, on
    standardised inputs: whatever comes between the standardisation and the logits (e.g.
    a learnt weighting of layers) then sits in one place for both training paths."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, num_classes: int,
                 hidden_dim: int = 0, layer_sum: int = 0, layer_norm: bool = False):
        super().__init__()
        dim = mean.shape[0]
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.layers = None
        if layer_sum > 0:   # standardised per dimension of every layer, then weighted
            if dim % layer_sum:
                raise ValueError(f"{dim} dimensions are not {layer_sum} stacked layers")
            dim //= layer_sum
            self.layers = WeightedLayerSum(layer_sum, dim, layer_norm)
        if hidden_dim > 0:
            self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, num_classes))
        else:
            self.net = nn.Linear(dim, num_classes)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def standardise_(self, x: torch.Tensor) -> torch.Tensor:
        """In place: a training set or buffer is not copied a second time."""
        return x.sub_(self.mean).div_(self.std)

    def classify(self, standardised: torch.Tensor) -> torch.Tensor:   # (N, D) -> (N, C)
        if self.layers is not None:
            standardised = self.layers(standardised)
        return self.net(standardised)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (N, D) raw -> (N, C) logits
        return self.classify(self.standardise(x))


def _floored(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per dimension, in float64 for the sums."""
    return _floored(x.mean(axis=0, dtype=np.float64), x.std(axis=0, dtype=np.float64))


class Moments:
    """:func:`standardisation` of frames that arrive a block (an utterance) at a time:
    float64 count, mean and sum of squared deviations per dimension, blocks merged with
    Chan et al.'s update (sums of squares minus squared sums would lose the digits of
    a small deviation around a large mean, e.g. MFCC c0)."""

    def __init__(self):
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        if not len(x):
            return
        mean = x.mean(axis=0, dtype=np.float64)
        m2 = np.square(x - mean).sum(axis=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = len(x), mean, m2
            return
        total = self.count + len(x)
        delta = mean - self.mean
        self.mean = self.mean + delta * (len(x) / total)
        self.m2 = self.m2 + m2 + np.square(delta) * (self.count * len(x) / total)
        self.count = total

    def standardisation(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None:
            raise ValueError("no frames")
        return _floored(self.mean, np.sqrt(self.m2 / self.count))


def train_probe(x: np.ndarray, y: np.ndarray, num_classes: int, config: ProbeConfig,
                device: str = "cpu") -> tuple[Probe, list[float]]:
    """A probe trained on ``x`` (N, D), ``y`` (N,) in [0, num_classes); the mean loss of
    each epoch.  The same seed gives the same weights (on CPU)."""
    torch.manual_seed(config.seed)
    probe = Probe(*standardisation(x), num_classes, config.hidden_dim, config.layer_sum,
                  config.layer_norm).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(probe.parameters(), lr=config.lr)
    # standardised once (not per batch), in place in a single copy: large sets fill memory
    inputs = probe.standardise_(torch.from_numpy(x).to(device, copy=True))
    targets = torch.from_numpy(y).to(device)
    losses = []
    for epoch in range(1, config.epochs + 1):
        losses.append(_steps(probe, optimiser, inputs, targets, config.batch_size,
                             generator) / len(inputs))
        log.info("epoch %d/%d: cross-entropy %.4f", epoch, config.epochs, losses[-1])
    probe.eval()
    return probe, losses


class FrameSource(Protocol):
    """Labelled frames read a buffer at a time (:class:`speechssl.eval.probe_data.FrameSet`)."""

    num_utts: int

    def buffers(self, order: Sequence[int], size: int,
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]: ...


def train_probe_streamed(frames: FrameSource, stats: tuple[np.ndarray, np.ndarray],
                         classes_of: np.ndarray, num_classes: int, config: ProbeConfig,
                         buffer_frames: int, device: str = "cpu",
                         ) -> tuple[Probe, list[float]]:
    """:func:`train_probe` on frames that are read ``buffer_frames`` at a time, the
    utterances in a seeded random order each epoch; ``stats``: the training set's
    (mean, std) (:class:`Moments`); ``classes_of``: the class of each label id."""
    torch.manual_seed(config.seed)
    probe = Probe(*stats, num_classes, config.hidden_dim, config.layer_sum,
                  config.layer_norm).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(probe.parameters(), lr=config.lr)
    classes_of = torch.from_numpy(np.asarray(classes_of, dtype=np.int64))
    losses = []
    for epoch in range(1, config.epochs + 1):
        order = np.random.default_rng([config.seed, epoch]).permutation(frames.num_utts)
        total = count = 0
        for x, y, _ in frames.buffers(order, buffer_frames):
            # in place: on the CPU this overwrites the buffer, which is refilled next
            inputs = probe.standardise_(torch.from_numpy(x).to(device))
            targets = classes_of[torch.from_numpy(y).long()].to(device)
            total += _steps(probe, optimiser, inputs, targets, config.batch_size, generator)
            count += len(y)
        losses.append(total / count)
        log.info("epoch %d/%d: cross-entropy %.4f", epoch, config.epochs, losses[-1])
    probe.eval()
    return probe, losses


def _steps(probe: Probe, optimiser: torch.optim.Optimizer, inputs: torch.Tensor,
           targets: torch.Tensor, batch_size: int, generator: torch.Generator) -> float:
    """One pass over the shuffled (standardised) examples; the sum of their losses."""
    probe.train()
    order = torch.randperm(len(inputs), generator=generator).to(inputs.device)
    total = 0.0
    for batch in order.split(batch_size):
        loss = nn.functional.cross_entropy(probe.classify(inputs[batch]), targets[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total


@torch.no_grad()
def predict(probe: Probe, x: np.ndarray) -> np.ndarray:
    """Class ids (N,) of raw inputs (N, D)."""
    probe.eval()
    device = probe.mean.device
    out = [probe(torch.from_numpy(chunk).to(device)).argmax(dim=1).cpu()
           for chunk in np.array_split(x, max(1, -(-len(x) // PREDICT_BATCH)))]
    return torch.cat(out).numpy()


class Tally:
    """A set's predictions summed up as results.json and per_class.txt report them, so
    that they can be made a buffer at a time: the confusion counts (rows: the true class,
    then labels unseen in training; columns: the predicted class) and the correct and
    total examples of each utterance (what the speaker bootstrap resamples)."""

    def __init__(self, num_rows: int, num_classes: int, num_utts: int):
        self.confusion = np.zeros((num_rows, num_classes), dtype=np.int64)
        self.correct = np.zeros(num_utts, dtype=np.int64)
        self.total = np.zeros(num_utts, dtype=np.int64)

    def add(self, rows: np.ndarray, predicted: np.ndarray, utt: np.ndarray) -> None:
        """Examples of true ``rows``, ``predicted`` classes and utterance indices."""
        num_rows, num_classes = self.confusion.shape
        cells = np.asarray(rows, dtype=np.int64) * num_classes + predicted
        self.confusion += np.bincount(cells, minlength=self.confusion.size).reshape(
            num_rows, num_classes)
        self.correct += np.bincount(utt[rows == predicted], minlength=len(self.correct))
        self.total += np.bincount(utt, minlength=len(self.total))

    @property
    def num_examples(self) -> int:
        return int(self.total.sum())

    def accuracy(self) -> float:
        return percent(self.correct.sum(), self.num_examples)


def tally_streamed(probe: Probe, frames: FrameSource, rows_of: np.ndarray, tally: Tally,
                   buffer_frames: int) -> Tally:
    """:class:`Tally` of ``frames`` read a buffer at a time in utterance order;
    ``rows_of``: the tally row of each label id."""
    for x, y, utt in frames.buffers(range(frames.num_utts), buffer_frames):
        tally.add(rows_of[y], predict(probe, x), utt)
    return tally


def percent(correct: int | np.integer, total: int) -> float:
    """Accuracy in percent, 2 decimals; 0 for no examples."""
    return round(100.0 * float(correct) / total, 2) if total else 0.0


def accuracy_interval(correct: np.ndarray, speaker: np.ndarray, num_speakers: int,
                      total: np.ndarray | None = None) -> dict:
    """:func:`bootstrap` of the accuracy in percent over the speakers: each example (frame
    or utterance) counts as often as its speaker is drawn.  ``correct`` is per example, or
    with ``total`` the correct and total examples of groups (utterances) of one speaker."""
    total = np.ones(len(correct)) if total is None else np.asarray(total, dtype=np.float64)
    ratio = weighted_ratio(np.asarray(correct, dtype=np.float64), total, speaker,
                           num_speakers)

    def accuracy(weights: np.ndarray) -> float | None:
        value = ratio(weights)
        return None if value is None else 100.0 * value
    return bootstrap(accuracy, num_speakers)


def per_class_table(classes: list[str], train_counts: np.ndarray, confusion: np.ndarray,
                    unseen: list[str]) -> list[str]:
    """Text lines: label, train and test counts, test accuracy, most frequent error.
    ``confusion``: a :class:`Tally`'s, whose rows after the classes are the test labels
    ``unseen`` in training (listed after the known classes)."""
    lines = ["# label num_train num_test accuracy% most_confused_with (count)"]
    for c, name in enumerate(classes):
        row = confusion[c]
        wrong = row.copy()
        wrong[c] = 0
        if wrong.any():
            top = int(wrong.argmax())
            confused = f"{classes[top]} ({int(wrong[top])})"
        else:
            confused = "-"
        lines.append(f"{name} {int(train_counts[c])} {int(row.sum())} "
                     f"{percent(row[c], int(row.sum())):.2f} {confused}")
    num_unseen = confusion[len(classes):].sum(axis=1)
    lines += [f"{name} 0 {int(n)} 0.00 unseen-in-training"
              for name, n in zip(unseen, num_unseen, strict=True) if n]
    return lines
