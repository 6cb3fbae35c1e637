r"""Class balancing with standard PyTorch tools: a weighted sampler, or a weighted loss.

With 1 tumour patch for every 20 normal ones, a classifier that always answers "normal" is 95 %
accurate and useless; gradient steps see the tumour class rarely and learn it slowly. Two cures
that change nothing else in the training loop:

* **Resample** (:func:`balanced_sampler`): draw each sample with probability proportional to
  :math:`1 / n_{c(i)}`, the inverse frequency of its class, so every class fills about
  :math:`1/C` of each batch. ``torch.utils.data.WeightedRandomSampler`` does the drawing
  (with replacement: the rare class is repeated, the common one is under-sampled per epoch).
* **Reweight** (:func:`class_weights`, :func:`pos_weight`): keep the data, weight the loss of class
  :math:`c` by :math:`w_c = N / (C\,n_c)` (scikit-learn's ``class_weight="balanced"``) in
  ``CrossEntropyLoss(weight=w)``, or weight positives by :math:`n_{neg} / n_{pos}` in
  ``BCEWithLogitsLoss(pos_weight=...)``.

Both make the expected gradient of the balanced problem; resampling gives less noisy batches for the rare
class, reweighting keeps one pass over the data per epoch. Either way the model's output probabilities are
calibrated to a 50/50 prior, not to the true prevalence: recalibrate before reporting probabilities.

References
----------
King & Zeng (2001). Logistic regression in rare events data. Political Analysis.
Buda, Maki & Mazurowski (2018). A systematic study of the class imbalance problem in CNNs. Neural Networks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

__all__ = ["class_weights", "pos_weight", "sample_weights", "balanced_sampler"]


def _labels(labels, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate integer class labels; return them (N,) and their counts (C,)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"`labels` must be a non-empty 1-D sequence of class indices, got shape {labels.shape}")
    if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
        raise TypeError("`labels` must be integer class indices, got non-integer floats")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"`labels` must be >= 0, got {labels.min()}")
    counts = np.bincount(labels, minlength=num_classes or 0)
    if num_classes is not None and len(counts) > num_classes:
        raise ValueError(f"`labels` contain class {labels.max()} but `num_classes` is {num_classes}")
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"class(es) {empty.tolist()} have no samples: their weight would be infinite")
    return labels, counts


def class_weights(labels, num_classes: int | None = None) -> torch.Tensor:
    """Inverse-frequency class weights :math:`w_c = N / (C\\,n_c)` for ``CrossEntropyLoss(weight=...)``.

    Parameters
    ----------
    labels : (N,) array_like of int
        Class index of every training sample.
    num_classes : int, optional
        C; default ``max(labels) + 1``. Every class must occur.

    Returns
    -------
    (C,) float32 tensor
        Balanced data gives all ones; the weighted count :math:`w_c n_c = N / C` is equal for every class.

    Examples
    --------
    >>> class_weights([0, 0, 0, 1])   # N = 4, C = 2: w = 4 / (2 * [3, 1])
    tensor([0.6667, 2.0000])
    """
    _, counts = _labels(labels, num_classes)
    return torch.as_tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)


def pos_weight(labels) -> torch.Tensor:
    """``n_negative / n_positive`` for ``BCEWithLogitsLoss(pos_weight=...)`` with binary {0, 1} labels.

    Examples
    --------
    >>> pos_weight([0, 0, 0, 1])
    tensor(3.)
    """
    _, counts = _labels(labels, 2)
    return torch.tensor(counts[0] / counts[1], dtype=torch.float32)


def sample_weights(labels) -> torch.Tensor:
    """Per-sample weight :math:`1 / n_{c(i)}`: each class gets the same total weight.

    Returns
    -------
    (N,) float64 tensor

    Examples
    --------
    >>> sample_weights([0, 0, 0, 1])
    tensor([0.3333, 0.3333, 0.3333, 1.0000], dtype=torch.float64)
    """
    labels, counts = _labels(labels)
    return torch.as_tensor(1.0 / counts[labels], dtype=torch.float64)


def balanced_sampler(labels, seed: int = 0, *, num_samples: int | None = None,
                     replacement: bool = True) -> WeightedRandomSampler:
    """A ``WeightedRandomSampler`` that draws every class equally often on average.

    Parameters
    ----------
    labels : (N,) array_like of int
        Class index of every sample of the dataset, in dataset order.
    seed : int
        Seeds the sampler's own ``torch.Generator``: the same seed gives the same epochs.
    num_samples : int, optional
        Indices drawn per epoch; default N (one "epoch" is as long as the dataset).
    replacement : bool
        Draw with replacement (needed for the rare class to fill half the batches).

    Returns
    -------
    torch.utils.data.WeightedRandomSampler
        Pass as ``DataLoader(dataset, sampler=..., batch_size=...)`` (not together with ``shuffle=True``).

    Examples
    --------
    >>> labels = [0] * 95 + [1] * 5
    >>> drawn = np.array(labels)[list(balanced_sampler(labels, seed=0, num_samples=1000))]
    >>> bool(0.4 < drawn.mean() < 0.6)   # about half the draws are the 5 % class
    True
    """
    weights = sample_weights(labels)
    num_samples = len(weights) if num_samples is None else num_samples
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}")
    if not replacement and num_samples > len(weights):
        raise ValueError(f"`num_samples` ({num_samples}) > N ({len(weights)}) needs `replacement=True`")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples, replacement=replacement, generator=generator)
