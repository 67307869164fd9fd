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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from speechssl.eval.bootstrap import bootstrap, weighted_ratio

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
    """Standardisation (fixed, from the training set) then linear or MLP logits."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, num_classes: int,
                 hidden_dim: int = 0):
        super().__init__()
        dim = mean.shape[0]
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        if hidden_dim > 0:
            self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, num_classes))
        else:
            self.net = nn.Linear(dim, num_classes)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (N, D) raw -> (N, C) logits
        return self.net(self.standardise(x))


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per dimension, in float64 for the sums."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)


def train_probe(x: np.ndarray, y: np.ndarray, num_classes: int, config: ProbeConfig,
                device: str = "cpu") -> tuple[Probe, list[float]]:
    """A probe trained on ``x`` (N, D), ``y`` (N,) in [0, num_classes); the mean loss of
    each epoch.  The same seed gives the same weights (on CPU)."""
    torch.manual_seed(config.seed)
    probe = Probe(*standardisation(x), num_classes, config.hidden_dim).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(probe.parameters(), lr=config.lr)
    # standardised once (not per batch), in place in a single copy: large sets fill memory
    inputs = torch.from_numpy(x).to(device, copy=True)
    inputs.sub_(probe.mean).div_(probe.std)
    targets = torch.from_numpy(y).to(device)
    losses = []
    for epoch in range(1, config.epochs + 1):
        losses.append(_epoch(probe.net, optimiser, inputs, targets, config.batch_size,
                             generator))
        log.info("epoch %d/%d: cross-entropy %.4f", epoch, config.epochs, losses[-1])
    probe.eval()
    return probe, losses


def _epoch(net: nn.Module, optimiser: torch.optim.Optimizer, inputs: torch.Tensor,
           targets: torch.Tensor, batch_size: int, generator: torch.Generator) -> float:
    """One pass over the shuffled examples; the mean loss over examples."""
    net.train()
    order = torch.randperm(len(inputs), generator=generator).to(inputs.device)
    total = 0.0
    for batch in order.split(batch_size):
        loss = nn.functional.cross_entropy(net(inputs[batch]), targets[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / len(inputs)


@torch.no_grad()
def predict(probe: Probe, x: np.ndarray) -> np.ndarray:
    """Class ids (N,) of raw inputs (N, D)."""
    device = probe.mean.device
    out = [probe(torch.from_numpy(chunk).to(device)).argmax(dim=1).cpu()
           for chunk in np.array_split(x, max(1, -(-len(x) // PREDICT_BATCH)))]
    return torch.cat(out).numpy()


def percent(correct: int | np.integer, total: int) -> float:
    """Accuracy in percent, 2 decimals; 0 for no examples."""
    return round(100.0 * float(correct) / total, 2) if total else 0.0


def accuracy_interval(correct: np.ndarray, speaker: np.ndarray, num_speakers: int) -> dict:
    """:func:`bootstrap` of the accuracy in percent over the speakers: each example (frame
    or utterance) counts as often as its speaker is drawn."""
    ratio = weighted_ratio(np.asarray(correct, dtype=np.float64), np.ones(len(correct)),
                           speaker, num_speakers)

    def accuracy(weights: np.ndarray) -> float | None:
        value = ratio(weights)
        return None if value is None else 100.0 * value
    return bootstrap(accuracy, num_speakers)


def per_class_table(classes: list[str], train_y: np.ndarray, test_labels: np.ndarray,
                    test_y: np.ndarray, predicted: np.ndarray) -> list[str]:
    """Text lines: label, train and test counts, test accuracy, most frequent error.
    ``test_y`` is -1 for labels unseen in training (listed after the known classes)."""
    lines = ["# label num_train num_test accuracy% most_confused_with (count)"]
    train_counts = np.bincount(train_y, minlength=len(classes))
    for c, name in enumerate(classes):
        mine = test_y == c
        wrong = predicted[mine & (predicted != c)]
        if wrong.size:
            top = np.bincount(wrong, minlength=len(classes)).argmax()
            confused = f"{classes[top]} ({int((wrong == top).sum())})"
        else:
            confused = "-"
        lines.append(f"{name} {train_counts[c]} {int(mine.sum())} "
                     f"{percent((predicted[mine] == c).sum(), int(mine.sum())):.2f} {confused}")
    unseen, counts = np.unique(test_labels[test_y < 0].astype(str), return_counts=True)
    lines += [f"{name} 0 {n} 0.00 unseen-in-training" for name, n in zip(unseen, counts,
                                                                           strict=True)]
    return lines
