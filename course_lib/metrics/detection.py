"""Object-level (detection) scores of segmentations: lesions found and false alarms, as a nodule CAD counts them.

Pixel overlap (Dice) can reward one large blob over half an image; a radiologist asks instead "which lesions
were found, and how many false alarms per scan?". :func:`lesion_detection_scores` answers that on binary masks.

References
----------
Setio et al. (2017). Validation, comparison, and combination of algorithms for automatic detection of pulmonary
nodules in computed tomography images: the LUNA16 challenge. Medical Image Analysis 42 (a candidate hits a nodule
when it lies within the nodule's radius; FROC = recall against false positives per scan).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from course_lib.metrics.segmentation import dice

__all__ = ["lesion_detection_scores"]


def lesion_detection_scores(pred_masks, true_masks, *, tolerance: float = 2.0) -> dict[str, float]:
    """Object-level scores of binary predictions on ``(n, H, W)`` masks, counted as a nodule CAD is.

    Each predicted 4-connected component is one detection, reported at its centroid. It hits a lesion when
    the centroid lies within ``tolerance`` px of the lesion's pixels (LUNA16 counts a candidate point inside
    the nodule's radius), so one blob over half the image is a false positive, not a hit.

    Parameters
    ----------
    pred_masks, true_masks : (n, H, W) array_like of bool
        Predicted and reference masks, one per image.
    tolerance : float
        Largest distance (px) from a detection's centroid to a lesion pixel that still counts as a hit.

    Returns
    -------
    dict with ``recall`` (lesions hit at least once / lesions; NaN without lesions), ``fp_per_image``
    (detections hitting no lesion / images), ``dice`` (pooled over all pixels) and ``n_lesions``.

    Examples
    --------
    >>> true = np.zeros((2, 8, 8), bool); true[0, 1:3, 1:3] = True; true[1, 5:7, 5:7] = True
    >>> pred = np.zeros_like(true); pred[0, 2, 2] = True; pred[1, 0, 0] = True   # one hit, one false alarm
    >>> s = lesion_detection_scores(pred, true); s["recall"], s["fp_per_image"], s["n_lesions"]
    (0.5, 0.5, 2)
    """
    pred, true = np.asarray(pred_masks, bool), np.asarray(true_masks, bool)
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"`pred_masks` (shape {pred.shape}) and `true_masks` (shape {true.shape}) must be (n, H, W)")
    if tolerance < 0:
        raise ValueError(f"`tolerance` must be >= 0 px, got {tolerance}")
    found = lesions = false_pos = 0
    for p, t in zip(pred, true, strict=True):
        lesion_ids, n = ndimage.label(t)
        blobs, k = ndimage.label(p)
        lesions += n
        if k == 0:
            continue
        centres = np.round(ndimage.center_of_mass(p, blobs, range(1, k + 1))).astype(int)  # (k, 2) row, col
        if n == 0:
            false_pos += k
            continue
        dist, nearest = ndimage.distance_transform_edt(lesion_ids == 0, return_indices=True)  # to the closest lesion
        hit = dist[centres[:, 0], centres[:, 1]] <= tolerance  # (k,)
        which = lesion_ids[nearest[0], nearest[1]][centres[hit, 0], centres[hit, 1]]  # lesion id of each hit
        found += len(np.unique(which))
        false_pos += int((~hit).sum())
    return {"recall": found / lesions if lesions else float("nan"), "fp_per_image": false_pos / len(pred),
            "dice": dice(pred, true), "n_lesions": lesions}
