"""From a density map back to cells: peaks, one-to-one matching with the annotated dots, and count errors.

A density model counts by summing (:func:`~course_lib.counting.density.count_from_density`); to say *where*
the cells are, and to classify each one (the lecture's "max prediction over output channels for each
cell identified"), take the local maxima of the predicted density (:func:`find_cells`).

A detected point is right when it lies within ``radius`` pixels of an annotated dot, and each dot may
justify one detection only. :func:`match_points` finds the largest such one-to-one matching (and, among
those, the one with the smallest total distance) with the Hungarian algorithm. Greedy nearest-neighbour
matching can do worse: a detection between two dots may take the dot that a second detection needed.

References
----------
Kuhn (1955). The Hungarian method for the assignment problem — :func:`scipy.optimize.linear_sum_assignment`.
Sirinukunwattana et al. (2016). Locality sensitive deep learning for detection and classification of
nuclei in routine colon cancer histology images. IEEE TMI — detection F1 within a radius of the annotation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from skimage.feature import peak_local_max

__all__ = ["find_cells", "Matching", "match_points", "localisation_f1", "localisation_scores"]


def find_cells(density, min_distance: int = 2, threshold: float = 0.0, *, num_peaks: int | None = None) -> np.ndarray:
    """Cell positions = local maxima of a density map.

    Parameters
    ----------
    density : (H, W) array_like
        A (predicted) density map.
    min_distance : int
        Peaks closer than this (in pixels, Chebyshev) are merged into the higher one. About the cell
        radius: smaller finds two peaks on one elongated cell, larger misses one of two touching cells.
    threshold : float
        Absolute density a peak must exceed. One isolated cell peaks at
        :func:`~course_lib.counting.density.peak_height` ``(sigma)`` (in the model's unscaled units), so a
        fraction of that is a sensible start; choose it on validation images.
    num_peaks : int, optional
        Keep at most this many peaks, the highest first — e.g. ``round(density.sum())``, the count the
        model itself predicts.

    Returns
    -------
    points : (N, 2) float64 ndarray
        ``(row, col)`` of the peaks, highest first.

    Examples
    --------
    >>> from course_lib.counting.density import density_map
    >>> find_cells(density_map([[5, 5], [5, 14]], (12, 20)), min_distance=3, threshold=0.01).tolist()
    [[5.0, 5.0], [5.0, 14.0]]
    """
    density = np.asarray(density, dtype=np.float64)
    if density.ndim != 2:
        raise ValueError(f"`density` must be a single (H, W) map, got shape {density.shape}")
    if not isinstance(min_distance, (int, np.integer)) or min_distance < 1:
        raise ValueError(f"`min_distance` must be an int >= 1, got {min_distance!r}")
    if num_peaks is not None and num_peaks <= 0:
        return np.zeros((0, 2))
    # exclude_border=False: cells cut by the image border are cells too.
    # peak_local_max keeps pixels > threshold_abs; plateaus give one peak per connected plateau.
    peaks = peak_local_max(density, min_distance=min_distance, threshold_abs=threshold, exclude_border=False,
                           num_peaks=np.inf if num_peaks is None else int(num_peaks))
    return peaks.astype(np.float64).reshape(-1, 2)


class Matching(NamedTuple):
    """Result of :func:`match_points`: counts and the matched ``(pred_index, true_index)`` pairs."""

    tp: int
    fp: int
    fn: int
    pairs: np.ndarray  # (tp, 2) int64: rows (index into pred, index into true)


def _points(points, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return np.zeros((0, 2))
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"`{name}` must be (N, 2) (row, col) points, got shape {points.shape}")
    return points


def match_points(pred, true, radius: float) -> Matching:
    """Largest one-to-one matching of predicted to true points within ``radius`` pixels.

    Parameters
    ----------
    pred : (P, 2) array_like
        Detected ``(row, col)`` points.
    true : (T, 2) array_like
        Annotated dots.
    radius : float
        Largest distance (Euclidean, inclusive) of a match, about a cell radius.

    Returns
    -------
    Matching
        ``tp`` matched pairs, ``fp = P - tp`` unmatched predictions, ``fn = T - tp`` missed dots, and
        ``pairs``. Among the matchings with the most pairs, the one with the smallest total distance.

    Examples
    --------
    >>> m = match_points([[0, 0], [0, 3], [9, 9]], [[0, 1], [0, 4.5]], radius=2)
    >>> m.tp, m.fp, m.fn, m.pairs.tolist()
    (2, 1, 0, [[0, 0], [1, 1]])
    """
    pred, true = _points(pred, "pred"), _points(true, "true")
    if not radius > 0:
        raise ValueError(f"`radius` must be > 0, got {radius!r}")
    if len(pred) == 0 or len(true) == 0:
        return Matching(0, len(pred), len(true), np.zeros((0, 2), np.int64))
    dist = cdist(pred, true)  # (P, T)
    allowed = dist <= radius
    # Forbidden pairs cost more than any set of allowed ones, so the cheapest assignment first maximises the
    # number of allowed pairs, then minimises their total distance.
    big = radius * (min(dist.shape) + 1)
    rows, cols = linear_sum_assignment(np.where(allowed, dist, big))
    keep = allowed[rows, cols]
    pairs = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    tp = len(pairs)
    return Matching(tp, len(pred) - tp, len(true) - tp, pairs)


def _f1(tp: int, fp: int, fn: int) -> float:
    # no predictions and no cells: a perfect answer
    return 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2.0 * tp + fp + fn)


def localisation_f1(pred, true, radius: float) -> float:
    """F1 of detected points vs annotated dots under :func:`match_points` (1.0 when both are empty).

    Examples
    --------
    >>> localisation_f1([[0, 0], [0, 3], [9, 9]], [[0, 1], [0, 4.5]], radius=2)  # tp 2, fp 1, fn 0: 4 / 5
    0.8
    """
    m = match_points(pred, true, radius)
    return _f1(m.tp, m.fp, m.fn)


def localisation_scores(preds, trues, radius: float) -> dict[str, float]:
    """Precision, recall and F1 pooled over images (sums of tp, fp, fn): lists of (N_i, 2) point arrays."""
    if len(preds) != len(trues):
        raise ValueError(f"`preds` ({len(preds)} images) and `trues` ({len(trues)} images) must have equal length")
    tp = fp = fn = 0
    for p, t in zip(preds, trues, strict=True):
        m = match_points(p, t, radius)
        tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1), "f1": _f1(tp, fp, fn),
            "tp": tp, "fp": fp, "fn": fn}

