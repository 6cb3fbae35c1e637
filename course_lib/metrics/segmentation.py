r"""Overlap metrics for segmentation: precision, recall, IoU (Jaccard) and Dice.

The lecture's formulas, with :math:`A` the predicted mask and :math:`B` the target:

.. math::

    \text{Precision} = \frac{TP}{TP + FP} \qquad
    \text{Recall} = \frac{TP}{TP + FN}

    \text{IoU} = \frac{TP}{TP + FN + FP} = \frac{|A \cap B|}{|A| + |B| - |A \cap B|}

    \text{Dice} = \frac{2\,TP}{2\,TP + FN + FP} = \frac{2|A \cap B|}{|A| + |B|}

Dice and IoU are monotone in each other, :math:`D = 2J / (1 + J)`, so they rank
segmentations identically; Dice is the larger of the two whenever they differ.

Conventions
-----------
* **Binary** functions take two masks of the *same shape* (bool, or numbers that are all
  0 or 1; NumPy arrays or torch tensors). Nothing is broadcast. By default one score is
  computed over *all* pixels; ``per_image=True`` treats axis 0 as the batch and returns
  one score per image, shape ``(B,)``.
* **Multi-class** functions take integer label maps of the same shape (or one-hot arrays
  with ``one_hot_axis``), compute a binary score per class and average them, as in
  :math:`DL_{mean}` of the lecture: :math:`\frac{1}{|C|}\sum_c \text{score}_c`.
* **Empty masks.** A score whose denominator is zero is ``empty_score`` (default 1.0)
  when prediction *and* target are both empty — nothing to find and nothing found is a
  perfect answer — and 0.0 otherwise (e.g. precision of an empty prediction on a
  non-empty target). Pass ``empty_score=np.nan`` to leave such images or classes out of
  averages (``np.nanmean``). MONAI's ``DiceMetric(ignore_empty=True)`` is close but not equal:
  it returns nan whenever the *target* is empty, even if the prediction is not (here: 0.0).

References
----------
Dice, L. R. (1945). Measures of the amount of ecologic association between species.
Taha & Hanbury (2015). Metrics for evaluating 3D medical image segmentation. BMC Med Imaging.
MONAI ``monai/metrics/meandice.py`` (``ignore_empty``, used as a test oracle).
"""

from __future__ import annotations

import numpy as np

from course_lib.metrics.validate import as_binary, as_labels, as_numpy, check_choice, check_same_shape

__all__ = [
    "confusion_counts",
    "precision",
    "recall",
    "iou",
    "dice",
    "one_hot",
    "multiclass_counts",
    "multiclass_score",
    "mean_dice",
    "mean_iou",
]


def confusion_counts(pred, target, *, per_image: bool = False):
    """Count true/false positives/negatives of a binary prediction.

    Parameters
    ----------
    pred, target : (...) array_like of bool or {0, 1}
        Predicted and reference masks of identical shape.
    per_image : bool
        If True, axis 0 is the batch and counts are returned per image.

    Returns
    -------
    tp, fp, fn, tn : int or (B,) ndarray of int

    Examples
    --------
    >>> confusion_counts([1, 1, 0, 0], [1, 0, 1, 0])
    (1, 1, 1, 1)
    """
    p = as_binary(pred, "pred")
    t = as_binary(target, "target")
    check_same_shape(p, t, "pred", "target")
    if per_image and p.ndim < 2:
        raise ValueError(f"`per_image=True` needs a batch axis: `pred` has shape {p.shape}")
    axes = tuple(range(1, p.ndim)) if per_image else None
    tp = np.sum(p & t, axis=axes)
    fp = np.sum(p & ~t, axis=axes)
    fn = np.sum(~p & t, axis=axes)
    tn = np.sum(~p & ~t, axis=axes)
    if not per_image:
        return int(tp), int(fp), int(fn), int(tn)
    return tp, fp, fn, tn


def _safe_ratio(num, den, both_empty, empty_score: float):
    """num / den, with ``empty_score`` where both masks are empty and 0.0 where only den is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    out = np.where(den > 0, out, np.where(both_empty, empty_score, 0.0))
    return float(out) if out.ndim == 0 else out


def _binary_score(metric: str, pred, target, per_image: bool, empty_score: float):
    tp, fp, fn, _ = confusion_counts(pred, target, per_image=per_image)
    tp, fp, fn = (np.asarray(v) for v in (tp, fp, fn))
    both_empty = (tp + fp + fn) == 0
    if metric == "precision":
        return _safe_ratio(tp, tp + fp, both_empty, empty_score)
    if metric == "recall":
        return _safe_ratio(tp, tp + fn, both_empty, empty_score)
    if metric == "iou":
        return _safe_ratio(tp, tp + fp + fn, both_empty, empty_score)
    if metric == "dice":
        return _safe_ratio(2 * tp, 2 * tp + fp + fn, both_empty, empty_score)
    raise ValueError(f"unknown metric {metric!r}")


def precision(pred, target, *, per_image: bool = False, empty_score: float = 1.0):
    """Precision TP / (TP + FP) of a binary mask: how much of what was predicted is right.

    Parameters
    ----------
    pred, target : (...) array_like of bool or {0, 1}
        Masks of identical shape.
    per_image : bool
        Treat axis 0 as the batch and return ``(B,)`` scores.
    empty_score : float
        Score when prediction and target are both empty (see module docstring).

    Returns
    -------
    float or (B,) ndarray

    Raises
    ------
    ValueError
        Shapes differ, values are not binary, or NaN is present.
    TypeError
        Input is not numeric.

    Examples
    --------
    >>> precision([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    return _binary_score("precision", pred, target, per_image, empty_score)


def recall(pred, target, *, per_image: bool = False, empty_score: float = 1.0):
    """Recall (sensitivity) TP / (TP + FN): how much of the target was found. See :func:`precision`.

    Examples
    --------
    >>> recall([1, 0, 0, 0], [1, 1, 0, 0])
    0.5
    """
    return _binary_score("recall", pred, target, per_image, empty_score)


def iou(pred, target, *, per_image: bool = False, empty_score: float = 1.0):
    """Intersection over union (Jaccard index) |A ∩ B| / |A ∪ B|. See :func:`precision`.

    Examples
    --------
    >>> iou([1, 1, 0, 0], [0, 1, 1, 0])   # 1 shared pixel, 3 in the union
    0.3333333333333333
    """
    return _binary_score("iou", pred, target, per_image, empty_score)


def dice(pred, target, *, per_image: bool = False, empty_score: float = 1.0):
    """Dice coefficient 2|A ∩ B| / (|A| + |B|) (equal to the F1 score of the pixels). See :func:`precision`.

    Examples
    --------
    >>> dice([1, 1, 0, 0], [0, 1, 1, 0])   # 2*1 / (2 + 2)
    0.5
    """
    return _binary_score("dice", pred, target, per_image, empty_score)


def one_hot(labels, num_classes: int, *, axis: int = 1) -> np.ndarray:
    """Turn an integer label map into a one-hot array with a new class axis.

    Parameters
    ----------
    labels : (B, ...) array_like of int
    num_classes : int
    axis : int
        Where the class axis goes in the output (1 gives ``(B, C, ...)``, as in PyTorch).

    Returns
    -------
    (B, C, ...) ndarray of uint8

    Examples
    --------
    >>> one_hot([[0, 2]], 3).tolist()
    [[[1, 0], [0, 0], [0, 1]]]
    """
    _check_num_classes(num_classes)
    labels = as_labels(labels, "labels", num_classes)
    encoded = (labels[..., None] == np.arange(num_classes)).astype(np.uint8)  # (..., C)
    return np.moveaxis(encoded, -1, axis)


def _check_num_classes(num_classes) -> None:
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an int >= 2, got {num_classes!r}")


def _from_one_hot(x, name: str, axis: int) -> np.ndarray:
    x = as_numpy(x, name)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"`one_hot_axis`={axis} is out of range for `{name}` with shape {x.shape}")
    if not np.isin(x, (0, 1)).all() or not np.all(x.sum(axis=axis) == 1):
        raise ValueError(
            f"`{name}` (shape {x.shape}) is not one-hot along axis {axis}: "
            "every pixel needs exactly one 1 across the classes"
        )
    return np.argmax(x, axis=axis)


def multiclass_counts(pred, target, num_classes: int, *, per_image: bool = False, one_hot_axis=None):
    """Per-class TP, FP, FN of two label maps, from one confusion matrix.

    Parameters
    ----------
    pred, target : (B, ...) array_like of int
        Label maps with values in ``[0, num_classes)``, identical shapes; or one-hot arrays
        when ``one_hot_axis`` names their class axis.
    num_classes : int
    per_image : bool
        Axis 0 is the batch; return counts per image.
    one_hot_axis : int or None
        Class axis of one-hot inputs; ``None`` for label maps.

    Returns
    -------
    tp, fp, fn : (C,) or (B, C) ndarray of int
    """
    _check_num_classes(num_classes)
    if one_hot_axis is not None:
        pred = _from_one_hot(pred, "pred", one_hot_axis)
        target = _from_one_hot(target, "target", one_hot_axis)
    p = as_labels(pred, "pred", num_classes)
    t = as_labels(target, "target", num_classes)
    check_same_shape(p, t, "pred", "target")
    if per_image and p.ndim < 2:
        raise ValueError(f"`per_image=True` needs a batch axis: `pred` has shape {p.shape}")
    p = p.reshape(p.shape[0], -1) if per_image else p.reshape(1, -1)  # (B, N)
    t = t.reshape(p.shape)
    # confusion[b, i, j] = number of pixels with target i and prediction j
    flat = t * num_classes + p + (np.arange(p.shape[0]) * num_classes**2)[:, None]  # (B, N)
    confusion = np.bincount(flat.ravel(), minlength=p.shape[0] * num_classes**2)
    confusion = confusion.reshape(p.shape[0], num_classes, num_classes)  # (B, C, C)
    tp = np.diagonal(confusion, axis1=1, axis2=2)  # (B, C)
    fp = confusion.sum(axis=1) - tp  # predicted c, target not c
    fn = confusion.sum(axis=2) - tp  # target c, predicted not c
    if not per_image:
        return tp[0], fp[0], fn[0]
    return tp, fp, fn


def multiclass_score(
    pred,
    target,
    num_classes: int,
    *,
    metric: str = "dice",
    average: str = "mean",
    include_background: bool = True,
    per_image: bool = False,
    one_hot_axis=None,
    empty_score: float = 1.0,
):
    """A binary overlap score for each class, and optionally their mean over classes.

    Parameters
    ----------
    pred, target : (B, ...) array_like
        Label maps (or one-hot arrays, see ``one_hot_axis``); see :func:`multiclass_counts`.
    num_classes : int
    metric : {"dice", "iou", "precision", "recall"}
    average : {"mean", "none"}
        ``"mean"``: the lecture's :math:`\\frac{1}{|C|}\\sum_c`, using ``np.nanmean`` so classes scored
        ``nan`` (``empty_score=np.nan``) are left out. ``"none"``: one score per class.
    include_background : bool
        If False, class 0 is dropped before averaging (common when background dominates).
    per_image : bool
        Axis 0 is the batch; scores per image.
    one_hot_axis : int or None
    empty_score : float
        Score of a class absent from both prediction and target.

    Returns
    -------
    float, (C,), (B,) or (B, C) ndarray

    Examples
    --------
    >>> target = [[0, 1, 1, 2]]
    >>> pred   = [[0, 1, 2, 2]]
    >>> multiclass_score(pred, target, 3, average="none").round(3).tolist()  # class 0, 1, 2
    [1.0, 0.667, 0.667]
    """
    check_choice(metric, "metric", ("dice", "iou", "precision", "recall"))
    check_choice(average, "average", ("mean", "none"))
    tp, fp, fn = multiclass_counts(pred, target, num_classes, per_image=per_image, one_hot_axis=one_hot_axis)
    if not include_background:
        tp, fp, fn = tp[..., 1:], fp[..., 1:], fn[..., 1:]
    num, den = {
        "dice": (2 * tp, 2 * tp + fp + fn),
        "iou": (tp, tp + fp + fn),
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
    }[metric]
    scores = np.asarray(_safe_ratio(num, den, (tp + fp + fn) == 0, empty_score))  # (C,) or (B, C)
    if average == "none":
        return scores
    if np.isnan(scores).all(axis=-1).any():
        # every class is nan for some image: the mean is undefined, say so instead of warning
        mean = np.full(scores.shape[:-1], np.nan)
        ok = ~np.isnan(scores).all(axis=-1)
        mean[ok] = np.nanmean(scores[ok], axis=-1)
    else:
        mean = np.nanmean(scores, axis=-1)
    return float(mean) if np.ndim(mean) == 0 else mean


def mean_dice(pred, target, num_classes: int, **kwargs):
    """Dice averaged over classes (the lecture's multi-class mean). See :func:`multiclass_score`."""
    return multiclass_score(pred, target, num_classes, metric="dice", **kwargs)


def mean_iou(pred, target, num_classes: int, **kwargs):
    """IoU averaged over classes. See :func:`multiclass_score`."""
    return multiclass_score(pred, target, num_classes, metric="iou", **kwargs)
