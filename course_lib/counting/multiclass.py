"""Counting *and* classifying cells with one density map per class.

The lecture's multi-class output: channel 0 is the density of "any nucleus", channels ``1..C`` the densities
of lymphocytes, normal epithelial and malignant epithelial nuclei (:func:`~course_lib.counting.density.
multiclass_density_maps` makes the targets). The losses of the channels are combined,

.. math::  L = \\lambda_{any} L_{any} + \\lambda_1 L_{lymph} + \\lambda_2 L_{norm} + \\lambda_3 L_{mal},

each :math:`L` the L1 density loss of one channel (:class:`MultiClassDensityLoss`). Then

* per-class counts are the sums of the class channels (:func:`per_class_counts`);
* each cell found as a peak of the "any" channel takes the class whose channel predicts most density there —
  the lecture's "max prediction over output channels for each cell identified" (:func:`classify_cells`);
* the classes of detections matched to annotated cells give a confusion matrix (:func:`confusion_matrix`).

References
----------
Bidart, Coudray, Lo, Pohl, Krings & Martel (2018). Localization and classification of cell nuclei in
post-neoadjuvant breast cancer tissue sections from routine H&E. MICCAI workshop COMPAY — the lecture's
lymphocyte / normal / malignant epithelial channels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from course_lib.counting.density import l1_density_loss
from course_lib.counting.peaks import find_cells, match_points

__all__ = ["MultiClassDensityLoss", "classify_cells", "per_class_counts", "confusion_matrix", "match_and_classify"]


class MultiClassDensityLoss(nn.Module):
    """:math:`\\lambda_{any} L_{any} + \\sum_c \\lambda_c L_c` over (B, 1 + C, H, W) outputs and targets.

    Parameters
    ----------
    lambdas : sequence of C floats
        Weight of each class channel (e.g. larger for a rare class).
    any_weight : float
        Weight of channel 0, "any nucleus". 0 drops it (the net then counts only through the classes).
    reduction : {"mean", "sum"}
        Over the batch, as :func:`~course_lib.counting.density.l1_density_loss`.

    Examples
    --------
    >>> loss = MultiClassDensityLoss([1.0, 2.0], any_weight=0.5)
    >>> pred, target = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    >>> target[0, :, 0, 0] = torch.tensor([1.0, 1.0, 0.0])  # one pixel: any = 1, class 0 = 1
    >>> target[0, 0, 3, 3] = target[0, 2, 3, 3] = 1.0      # another: any = 1, class 1 = 1
    >>> float(loss(pred, target))  # 0.5 * 2 + 1.0 * 1 + 2.0 * 1
    4.0
    """

    def __init__(self, lambdas, any_weight: float = 1.0, reduction: str = "mean"):
        super().__init__()
        lambdas = torch.as_tensor(lambdas, dtype=torch.float32).reshape(-1)
        if len(lambdas) == 0 or (lambdas < 0).any() or any_weight < 0:
            raise ValueError(f"`lambdas` (got {lambdas.tolist()}) and `any_weight` (got {any_weight}) must be >= 0, "
                             "with one lambda per class")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"`reduction` must be 'mean' or 'sum', got {reduction!r}")
        self.register_buffer("weights", torch.cat([torch.tensor([float(any_weight)]), lambdas]))  # (1 + C,)
        self.reduction = reduction

    def components(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unweighted per-channel losses, (1 + C,): ``[L_any, L_1, ..., L_C]`` reduced over the batch."""
        if pred.ndim != 4 or pred.shape[1] != len(self.weights):
            raise ValueError(f"`pred` must be (B, {len(self.weights)}, H, W) (any + {len(self.weights) - 1} classes),"
                             f" got shape {tuple(pred.shape)}")
        if pred.shape != target.shape:
            raise ValueError(f"`pred` (shape {tuple(pred.shape)}) and `target` (shape {tuple(target.shape)}) "
                             "must match")
        b, k = pred.shape[:2]
        per = l1_density_loss(pred.reshape(b * k, 1, *pred.shape[2:]), target.reshape(b * k, 1, *pred.shape[2:]),
                              reduction="none").reshape(b, k)  # (B * K,) -> (B, K): one L per image and channel
        return per.mean(0) if self.reduction == "mean" else per.sum(0)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.weights.to(pred.dtype) * self.components(pred, target)).sum()


def _maps(maps) -> np.ndarray:
    maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] < 2:
        raise ValueError(f"`maps` must be (1 + C, H, W) with C >= 1 class channels, got shape {maps.shape}")
    return maps.astype(np.float64)


def classify_cells(maps, points, *, radius: int = 1) -> np.ndarray:
    """Class of each detected cell = the class channel with the most density around it.

    Parameters
    ----------
    maps : (1 + C, H, W) array_like or tensor
        Predicted densities; channel 0 ("any nucleus") is not a class and is skipped.
    points : (N, 2) array_like
        ``(row, col)`` of the detected cells (rounded to the nearest pixel).
    radius : int
        Sum each class channel over the ``(2 radius + 1)^2`` square around the point before the argmax:
        a little more robust than the single peak pixel. 0 is the plain "max over channels at the pixel".

    Returns
    -------
    classes : (N,) int64 ndarray in ``[0, C)``

    Examples
    --------
    >>> maps = np.zeros((3, 5, 5)); maps[1, 1, 1] = 0.3; maps[2, 1, 1] = 0.5; maps[1, 3, 3] = 0.9
    >>> classify_cells(maps, [[1, 1], [3, 3]], radius=0).tolist()
    [1, 0]
    """
    maps = _maps(maps)
    if not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"`radius` must be an int >= 0, got {radius!r}")
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if len(points) == 0:
        return np.zeros(0, np.int64)
    h, w = maps.shape[1:]
    idx = np.floor(points + 0.5).astype(np.int64)  # (N, 2) nearest pixel
    if ((idx < 0) | (idx >= [h, w])).any():
        raise ValueError(f"`points` must lie inside the maps of size {(h, w)}")
    classes = maps[1:]  # (C, H, W)
    padded = np.pad(classes, ((0, 0), (radius, radius), (radius, radius)))
    # window sums of every class at every point: (N, C), offsets added one by one ((2r + 1)^2 small)
    sums = np.zeros((len(idx), classes.shape[0]))
    for dr in range(2 * radius + 1):
        for dc in range(2 * radius + 1):
            sums += padded[:, idx[:, 0] + dr, idx[:, 1] + dc].T  # (C, N) -> (N, C)
    return sums.argmax(axis=1).astype(np.int64)


def per_class_counts(maps, *, scale: float = 1.0):
    """Counts per class = sums of the class channels: (..., 1 + C, H, W) -> (..., C).

    Examples
    --------
    >>> maps = np.zeros((2, 3, 4, 4)); maps[:, 1] = 1 / 16; maps[1, 2, 0, 0] = 2.0
    >>> per_class_counts(maps).tolist()
    [[1.0, 0.0], [1.0, 2.0]]
    """
    if getattr(maps, "ndim", 0) < 3 or maps.shape[-3] < 2:
        raise ValueError(f"`maps` must be (..., 1 + C, H, W), got shape {getattr(maps, 'shape', None)}")
    if isinstance(maps, torch.Tensor):
        return maps[..., 1:, :, :].sum(dim=(-2, -1)) / scale
    return np.asarray(maps)[..., 1:, :, :].sum(axis=(-2, -1), dtype=np.float64) / scale


def confusion_matrix(true_classes, pred_classes, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class (scikit-learn's layout).

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], 3).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    """
    t = np.asarray(true_classes).reshape(-1)
    p = np.asarray(pred_classes).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"`true_classes` (length {t.size}) and `pred_classes` (length {p.size}) must match")
    for name, v in (("true_classes", t), ("pred_classes", p)):
        if v.size and (not np.issubdtype(v.dtype, np.integer) or v.min() < 0 or v.max() >= n_classes):
            raise ValueError(f"`{name}` must be ints in [0, {n_classes}), got {np.unique(v)[:10].tolist()}")
    # one bincount over the flat index true * C + pred: (C * C,) -> (C, C)
    return np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)


def match_and_classify(maps, true_dots, true_classes, *, radius: float = 4.0, min_distance: int = 3,
                       threshold: float = 0.0, class_radius: int = 1):
    """Find cells on channel 0, classify them, match them to annotated dots.

    Returns
    -------
    matching : :class:`~course_lib.counting.peaks.Matching`
        Detections vs annotated dots (for detection precision / recall).
    true_matched, pred_matched : (tp,) int64 ndarrays
        True and predicted class of each matched cell (the confusion matrix's input).
    """
    maps = _maps(maps)
    points = find_cells(maps[0], min_distance=min_distance, threshold=threshold)
    pred_classes = classify_cells(maps, points, radius=class_radius)
    m = match_points(points, true_dots, radius)
    true_classes = np.asarray(true_classes, np.int64).reshape(-1)
    return m, true_classes[m.pairs[:, 1]], pred_classes[m.pairs[:, 0]]
