"""Classification metrics: F1, AUROC (per label for multi-label tasks) and average precision.

F1 is the harmonic mean of precision and recall, ``2 TP / (2 TP + FP + FN)`` — the same
formula as Dice, applied to images instead of pixels. CheXNet (Rajpurkar et al., 2017)
reported it against four radiologists; see :mod:`course_lib.metrics.bootstrap` for its CIs.

AUROC is the probability that a random positive is scored above a random negative
(Mann–Whitney U / (n_pos · n_neg)), with ties counted as one half. It needs both classes.

References
----------
Hanley & McNeil (1982). The meaning and use of the area under a ROC curve. Radiology.
scikit-learn ``f1_score`` and ``roc_auc_score`` serve as test oracles.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from course_lib.metrics.validate import as_binary, as_numpy, check_choice, check_same_shape

__all__ = ["f1_score", "auroc", "average_precision"]


def f1_score(y_true, y_pred, *, zero_division: float = 0.0) -> float:
    """F1 score of binary labels.

    Parameters
    ----------
    y_true, y_pred : (N,) array_like of bool or {0, 1}
    zero_division : float
        Returned when there are no positives in either (TP + FP + FN == 0); 0.0 as in scikit-learn.

    Returns
    -------
    float

    Examples
    --------
    >>> f1_score([1, 1, 0, 0], [1, 0, 1, 0])   # 2*1 / (2*1 + 1 + 1)
    0.5
    """
    t = as_binary(y_true, "y_true")
    p = as_binary(y_pred, "y_pred")
    check_same_shape(p, t, "y_pred", "y_true")
    if t.ndim != 1:
        raise ValueError(f"`y_true` must be 1-D (one label per image), got shape {t.shape}")
    tp = np.sum(p & t)
    den = 2 * tp + np.sum(p & ~t) + np.sum(~p & t)
    return float(2 * tp / den) if den > 0 else float(zero_division)


def _binary_auroc(t: np.ndarray, s: np.ndarray, column: str = "") -> float:
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both positive and negative labels{column}; got {n_pos} positives "
                         f"and {n_neg} negatives")
    ranks = rankdata(s)  # average ranks: ties count one half
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc(y_true, scores, *, average: str = "none"):
    """Area under the ROC curve.

    Parameters
    ----------
    y_true : (N,) or (N, L) array_like of bool or {0, 1}
        Labels; a second axis holds several labels (multi-label, e.g. 14 chest findings).
    scores : same shape as ``y_true``, float
        Scores, probabilities or logits (only their order matters).
    average : {"none", "macro"}
        For multi-label input: one AUROC per label, or their mean.

    Returns
    -------
    float or (L,) ndarray

    Examples
    --------
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    check_choice(average, "average", ("none", "macro"))
    t = as_binary(y_true, "y_true")
    s = as_numpy(scores, "scores").astype(np.float64)
    check_same_shape(s, t, "scores", "y_true")
    if t.ndim == 1:
        return _binary_auroc(t, s)
    if t.ndim != 2:
        raise ValueError(f"`y_true` must have shape (N,) or (N, L), got {t.shape}")
    per_label = np.array([_binary_auroc(t[:, j], s[:, j], f" in column {j}") for j in range(t.shape[1])])
    return float(per_label.mean()) if average == "macro" else per_label


def average_precision(y_true, scores) -> float:
    """Area under the precision-recall curve (average precision), a threshold-free score for rare positives.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct scores from high to low (scikit-learn's step rule, no
    interpolation). Unlike AUROC it ignores true negatives, so a 1 % foreground is not drowned by the background:
    a segmentation net's pixels can be scored before any threshold is chosen.

    Parameters
    ----------
    y_true : (...) array_like of bool or {0, 1}
        Labels (pixels of any shape are flattened).
    scores : same shape as ``y_true``, float
        Scores, probabilities or logits (only their order matters).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])   # (1/2)*1 + (1/2)*(2/3)
    0.8333333333333333
    """
    t = as_binary(y_true, "y_true")
    s = as_numpy(scores, "scores").astype(np.float64)
    check_same_shape(s, t, "scores", "y_true")
    t, s = t.ravel(), s.ravel()
    n_pos = int(t.sum())
    if n_pos == 0:
        raise ValueError("average precision needs at least one positive label in `y_true`")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(t)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(recall_gain * precision))
