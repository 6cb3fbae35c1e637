r"""Boundary F1 (BF score): do the predicted outlines lie where the true outlines are?

Dice and IoU count pixels, so a few hundred interior pixels hide a ragged or misplaced outline.
The BF score of Csurka et al. looks only at the *boundary* pixels :math:`\partial A` of the
prediction and :math:`\partial B` of the target and allows a distance tolerance :math:`\theta`:

.. math::

    P = \frac{|\{p \in \partial A : d(p, \partial B) \le \theta\}|}{|\partial A|} \qquad
    R = \frac{|\{q \in \partial B : d(q, \partial A) \le \theta\}|}{|\partial B|} \qquad
    BF = \frac{2 P R}{P + R}

where :math:`d(p, S)` is the Euclidean distance from pixel :math:`p` to the nearest pixel of
:math:`S`, read off a distance transform (``scipy.ndimage.distance_transform_edt``).

Conventions
-----------
* Inputs are binary masks **or integer instance label maps** of the same shape (2-D or 3-D, one
  image; loop over a batch). Boundary pixels are those of an object that touch a pixel of another
  label, found with ``skimage.segmentation.find_boundaries(mode="inner")`` (4-connectivity in 2-D):
  they lie inside the objects, and for a label map they include the line where two touching
  objects meet — so a prediction that merges two nuclei loses recall there.
* The image border is not a boundary: an object cut by the edge of the image has no outline there.
* Empty boundaries: ``empty_score`` (default 1.0) when neither mask has a boundary, 0.0 when only one
  has. Both precision and recall of an empty prediction on a non-empty target are 0.

References
----------
Csurka, Larlus & Perronnin (2013). What is a good evaluation measure for semantic segmentation? BMVC.
Martin, Fowlkes & Malik (2004). Learning to detect natural image boundaries using local brightness,
color, and texture cues. IEEE TPAMI (the tolerance-based boundary precision/recall it builds on).
MATLAB ``bfscore`` computes the same quantity with a tolerance relative to the image diagonal.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

from course_lib.metrics.validate import as_numpy, check_same_shape

__all__ = ["boundary_pixels", "boundary_precision_recall", "boundary_f1"]


def _as_label_image(x, name: str) -> np.ndarray:
    x = as_numpy(x, name)
    if x.ndim not in (2, 3):
        raise ValueError(f"`{name}` must be one 2-D or 3-D mask or label map, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(x == np.round(x)) or x.min() < 0:
            raise ValueError(
                f"`{name}` (shape {x.shape}, dtype {x.dtype}) must hold a binary mask or non-negative integer "
                "labels; threshold probabilities first, e.g. `probs > 0.5`"
            )
    if x.size and x.min() < 0:
        raise ValueError(f"`{name}` (shape {x.shape}) has negative labels; 0 is background, objects are 1, 2, ...")
    return x.astype(np.int64)


def boundary_pixels(labels) -> np.ndarray:
    """Boundary pixels of a mask or label map: object pixels next to a pixel of another label.

    Parameters
    ----------
    labels : (H, W) or (D, H, W) array_like of bool or int
        Binary mask or instance label map (0 = background).

    Returns
    -------
    (H, W) or (D, H, W) ndarray of bool

    Examples
    --------
    >>> square = np.zeros((5, 5), int); square[1:4, 1:4] = 1
    >>> boundary_pixels(square).astype(int)   # the 8 outer pixels of the 3x3 square; the centre is interior
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    labels = _as_label_image(labels, "labels")
    return find_boundaries(labels, connectivity=1, mode="inner")


def boundary_precision_recall(pred, target, tolerance: float = 2.0, *, empty_score: float = 1.0):
    """Boundary precision and recall within a distance ``tolerance`` (see the module docstring).

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like of bool or int
        Binary masks or instance label maps of the same shape.
    tolerance : float
        Largest Euclidean distance in pixels at which a boundary pixel still counts as matched.
        0 demands the exact pixel.
    empty_score : float
        Returned for both values when neither input has any boundary pixel.

    Returns
    -------
    precision, recall : float

    Raises
    ------
    ValueError
        Shapes differ, ``tolerance`` is negative, or the inputs are not masks / label maps.

    Examples
    --------
    >>> a = np.zeros((12, 12), int); a[2:8, 2:8] = 1
    >>> b = np.roll(a, 1, axis=1)             # the same square shifted one pixel right
    >>> boundary_precision_recall(b, a, tolerance=0)   # only the top and bottom rows overlap: 10 of 20
    (0.5, 0.5)
    >>> boundary_precision_recall(b, a, tolerance=1)   # every pixel is within one pixel of the other outline
    (1.0, 1.0)
    """
    if not np.isscalar(tolerance) or not tolerance >= 0:
        raise ValueError(f"`tolerance` must be a number >= 0 (pixels), got {tolerance!r}")
    p = _as_label_image(pred, "pred")
    t = _as_label_image(target, "target")
    check_same_shape(p, t, "pred", "target")
    bp, bt = find_boundaries(p, mode="inner"), find_boundaries(t, mode="inner")
    n_pred, n_true = int(bp.sum()), int(bt.sum())
    if n_pred == 0 and n_true == 0:
        return float(empty_score), float(empty_score)
    if n_pred == 0 or n_true == 0:
        return 0.0, 0.0
    dist_to_true = ndimage.distance_transform_edt(~bt)  # (H, W): distance of every pixel to the true outline
    dist_to_pred = ndimage.distance_transform_edt(~bp)
    precision = float(np.sum(dist_to_true[bp] <= tolerance)) / n_pred
    recall = float(np.sum(dist_to_pred[bt] <= tolerance)) / n_true
    return precision, recall


def boundary_f1(pred, target, tolerance: float = 2.0, *, empty_score: float = 1.0) -> float:
    """Boundary F1 (BF score): harmonic mean of boundary precision and recall within ``tolerance`` px.

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like of bool or int
        Binary masks or instance label maps of the same shape. With label maps the lines between
        touching objects count as boundary.
    tolerance : float
        Distance in pixels within which a boundary pixel counts as matched.
    empty_score : float
        Score when neither input has a boundary (e.g. two empty masks).

    Returns
    -------
    float
        In [0, 1]; 1 for identical inputs.

    Examples
    --------
    >>> a = np.zeros((12, 12), int); a[2:8, 2:8] = 1
    >>> boundary_f1(a, a)
    1.0
    >>> boundary_f1(np.roll(a, 1, axis=1), a, tolerance=0)   # P = R = 10/20
    0.5
    """
    precision, recall = boundary_precision_recall(pred, target, tolerance, empty_score=empty_score)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
