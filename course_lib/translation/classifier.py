"""The referee of the bias experiment: a tumour / healthy classifier trained on **real** T1 slices.

A translation is "read" the way a downstream model (or a radiologist) would read a real T1: this classifier never
sees a translated image while it learns. Translators smooth away the scanner noise and blur edges, so the
classifier is trained with random blur and noise (:func:`augment`): it must not call a slice healthy or tumour
because of its texture. Its epoch and its decision threshold are chosen on a validation split of
real T1 slices (threshold: the one maximising Youden's J = sensitivity + specificity - 1).

A threshold chosen on real T1 does not carry over to translations: a translator returns smoother images than any
real T1, and a referee that never saw such images reads them differently (with the real-T1 threshold it called a
large share of a faithful paired translator's healthy slices tumour). Where it reads translations, the referee's
threshold is therefore **calibrated on a faithful translator's translations of validation subjects**
(:func:`threshold_at_false_positive_rate`): the lowest threshold at which at most a set share (e.g. 5 %) of the
healthy validation slices, as the faithful translator renders them, is called tumour. Both are fixed before any test
slice is scored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib import config

__all__ = ["TumourClassifier", "ClassifierResult", "train_tumour_classifier", "tumour_scores", "youden_threshold",
           "threshold_at_false_positive_rate", "augment"]


class TumourClassifier(nn.Module):
    """(B, 1, S, S) slices in [0, 1] -> (B,) tumour logits: three conv blocks, global max pooling, a linear layer.

    Max pooling over positions asks "is there a tumour *anywhere*", which suits a small lesion in a large slice.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        layers, channels = [], 1
        for out in (width, 2 * width, 2 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(True), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x).amax(dim=(-2, -1))  # (B, C, h, w) -> (B, C)
        return self.head(features)[:, 0]  # (B,)


@dataclass(frozen=True)
class ClassifierResult:
    model: TumourClassifier
    threshold: float  # on the probability, chosen on validation
    val_auroc: float
    best_epoch: int


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold on ``scores`` maximising sensitivity + specificity - 1; midway between neighbouring scores.

    Parameters
    ----------
    scores : (N,) float array
    labels : (N,) bool array with both classes present

    Examples
    --------
    >>> youden_threshold(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 0, 1, 1], bool))
    0.5
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"`scores` (shape {scores.shape}) and `labels` (shape {labels.shape}) must be equal 1-D")
    if labels.all() or not labels.any():
        raise ValueError("`labels` must contain both tumour and healthy slices to choose a threshold")
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    sensitivity = (scores[labels][None, :] > candidates[:, None]).mean(1)
    specificity = (scores[~labels][None, :] <= candidates[:, None]).mean(1)
    return float(candidates[np.argmax(sensitivity + specificity)])


def threshold_at_false_positive_rate(healthy_scores: np.ndarray, rate: float) -> float:
    """The lowest threshold calling at most a share ``rate`` of ``healthy_scores`` tumour (``score > t``).

    Candidates as in :func:`youden_threshold`: midpoints between neighbouring distinct scores, one below the smallest
    and one above the largest. Ties can leave the reached share below ``rate``; it never exceeds it.

    Parameters
    ----------
    healthy_scores : (N,) float array
        Scores of slices known to hold no tumour (e.g. a faithful translator's healthy validation translations).
    rate : float in [0, 1)
        The false-positive rate allowed on them.

    Examples
    --------
    >>> threshold_at_false_positive_rate(np.array([0.1, 0.2, 0.3, 0.9]), 0.25)  # only 0.9 is above
    0.6
    """
    scores = np.asarray(healthy_scores, float)
    if scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"`healthy_scores` must be a non-empty 1-D array, got shape {scores.shape}")
    if not 0 <= rate < 1:
        raise ValueError(f"`rate` must lie in [0, 1), got {rate}")
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    called = (scores[None, :] > candidates[:, None]).mean(1)  # non-increasing in the candidate
    return float(candidates[np.flatnonzero(called <= rate)[0]])


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random blur (sigma 0-1.2 px, half of the batches) and added noise (sd 0-0.04) on a (B, 1, S, S) batch."""
    from torchvision.transforms.functional import gaussian_blur

    if torch.rand((), generator=generator) < 0.5:
        sigma = 0.1 + 1.1 * torch.rand((), generator=generator).item()
        x = gaussian_blur(x, kernel_size=5, sigma=sigma)
    sd = 0.04 * torch.rand((), generator=generator).item()
    return (x + sd * torch.randn(x.shape, generator=generator)).clamp(0, 1)


def _auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a tumour slice outscores a healthy one (ties count 1/2)."""
    pos, neg = scores[labels], scores[~labels]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


@torch.no_grad()
def tumour_scores(model: TumourClassifier, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """(N,) tumour probabilities of (N, S, S) slices in [0, 1]."""
    images = np.asarray(images, np.float32)
    if images.ndim != 3:
        raise ValueError(f"`images` must be (N, H, W), got shape {images.shape}")
    model.eval()
    device = next(model.parameters()).device
    x = torch.from_numpy(images)[:, None]
    out = [torch.sigmoid(model(x[i:i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def train_tumour_classifier(train_images: np.ndarray, train_labels: np.ndarray, val_images: np.ndarray,
                            val_labels: np.ndarray, *, epochs: int = 8, batch_size: int = 32, lr: float = 3e-3,
                            width: int = 16, augmentation: bool = True, seed: int = 0) -> ClassifierResult:
    """Train on real T1 slices, keep the epoch with the best validation AUROC, fix the threshold on validation.

    Parameters
    ----------
    train_images, val_images : (N, S, S) float arrays in [0, 1]
    train_labels, val_labels : (N,) bool arrays (True: tumour slice)
    epochs, batch_size, lr, width : training settings
    augmentation : bool
        Random blur and noise on training batches (:func:`augment`).
    seed : int

    Returns
    -------
    ClassifierResult
    """
    for name, images, labels in (("train", train_images, train_labels), ("val", val_images, val_labels)):
        if np.ndim(images) != 3 or len(images) != len(labels):
            raise ValueError(f"`{name}_images` must be (N, H, W) with one label each, got shapes "
                             f"{np.shape(images)} and {np.shape(labels)}")
    generator = config.seed_everything(seed)
    device = config.device()
    model = TumourClassifier(width).to(device, memory_format=config.memory_format(device))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.from_numpy(np.asarray(train_images, np.float32))[:, None]
    y = torch.from_numpy(np.asarray(train_labels, np.float32))
    val_labels = np.asarray(val_labels, bool)
    best = (-1.0, None, -1)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            rows = order[i:i + batch_size]
            optimiser.zero_grad()
            batch = augment(x[rows], generator) if augmentation else x[rows]
            loss = nn.functional.binary_cross_entropy_with_logits(model(batch.to(device)), y[rows].to(device))
            loss.backward()
            optimiser.step()
        auroc = _auroc(tumour_scores(model, val_images), val_labels)
        if auroc > best[0]:
            best = (auroc, copy.deepcopy(model.state_dict()), epoch)
    model.load_state_dict(best[1])
    threshold = youden_threshold(tumour_scores(model, val_images), val_labels)
    return ClassifierResult(model.eval(), threshold, best[0], best[2])
