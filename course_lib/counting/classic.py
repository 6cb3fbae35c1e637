r"""Classic cell counting: threshold, watershed, count — each step kept so a student can look at it.

The lecture's pipeline, as a lab would run it with scikit-image:

1. **Binary segmentation image.** Smooth with a Gaussian (``sigma``) so that noise does not split cells,
   threshold (Otsu's method picks the level that best separates two intensity populations), drop specks
   smaller than ``min_size`` px and fill holes.
2. **Watershed.** Touching cells form one binary blob. The distance of each foreground pixel to the
   background peaks at cell centres; one marker per peak (``peak_local_max``, at least ``min_distance`` px
   apart) and a watershed on the negated distance, restricted to the blob, cut it along the necks.
3. **Isolate and count.** Each watershed region is one cell; its centroid is the detection.

The defaults were tuned once on the ``EASY`` preset of :mod:`course_lib.counting.synthetic_cells` (cells of
radius 4–6 px), exactly as a lab tunes a pipeline on the images it has: a grid over ``sigma`` in
{0.5, 1, 1.5, 2} and ``min_distance`` in {2, ..., 7} on 60 validation images (``cell_dataset(60, EASY,
seed=12345)``, seeds the tests do not use) picked ``sigma=0.5, min_distance=4`` (MAE 0.18 cells);
``min_size=10`` is a fifth of the smallest cell (:math:`\pi \cdot 4^2 \approx 50` px) and did not matter
on ``EASY``. The chapter then applies them unchanged to ``CLUSTERED`` and ``SHIFTED``: the pipeline "works
well on easy tasks but doesn't scale" — touching colonies merge (undercount) and a new lamp or stain moves
the threshold (dim and out-of-focus cells are lost).

:func:`tune_classic` repeats that tuning on any labelled images — in :mod:`course_lib.counting.experiment` on the
very images the density net learns from, so that the two methods see the same data.

``count_errors`` summarises counts against the truth (MAE, relative error, bias); it lives here, beside the
first counting method of the chapter; later methods (density maps) can report the same numbers with it.

References
----------
Otsu (1979). A threshold selection method from gray-level histograms. IEEE SMC 9(1).
Beucher & Lantuéjoul (1979). Use of watersheds in contour detection. Workshop on image processing.
scikit-image gallery, "Watershed segmentation" (``plot_watershed.py``) — the distance-transform recipe followed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

__all__ = ["ClassicResult", "classic_count", "count_errors", "tune_classic"]


@dataclass
class ClassicResult:
    smoothed: np.ndarray  # (H, W) float64, the image after Gaussian smoothing
    threshold: float  # intensity level that separates cells from background
    binary: np.ndarray  # (H, W) bool, foreground after removing specks and filling holes
    distance: np.ndarray  # (H, W) float64, Euclidean distance of each foreground pixel to the background
    markers: np.ndarray  # (H, W) int32, 1..K at the distance peaks (watershed seeds), 0 elsewhere
    labels: np.ndarray  # (H, W) int32, 0 background, 1..count one region per detected cell
    count: int  # number of detected cells
    centroids: np.ndarray  # (count, 2) float64 (row, col) centre of each region, row k for label k + 1


def _validate(image, sigma, threshold, min_distance, min_size, footprint) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"`image` must be 2-D (H, W), got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)):
        raise TypeError(f"`image` must be a real-valued (integer or float) array, got dtype {image.dtype}")
    if not np.isfinite(image).all():
        raise ValueError("`image` contains NaN or infinite values")
    if sigma < 0:
        raise ValueError(f"`sigma` must be >= 0, got {sigma}")
    number = isinstance(threshold, int | float | np.number) and not isinstance(threshold, bool)
    if threshold != "otsu" and not (number and np.isfinite(threshold)):
        raise ValueError(f"`threshold` must be 'otsu' or a finite number, got {threshold!r}")
    if not isinstance(min_distance, int | np.integer) or min_distance < 1:
        raise ValueError(f"`min_distance` must be an int >= 1, got {min_distance!r}")
    if not isinstance(min_size, int | np.integer) or min_size < 0:
        raise ValueError(f"`min_size` must be an int >= 0, got {min_size!r}")
    if footprint is not None and np.ndim(footprint) != 2:
        raise ValueError(f"`footprint` must be a 2-D array or None, got shape {np.shape(footprint)}")
    return image.astype(np.float64)


def _remove_small(binary: np.ndarray, min_size: int) -> np.ndarray:
    """Keep the 4-connected components of at least ``min_size`` px (stable across scikit-image versions)."""
    components, _ = ndimage.label(binary)
    sizes = np.bincount(components.ravel())  # sizes[0] counts the background
    keep = sizes >= min_size
    keep[0] = False
    return keep[components]


def _foreground(image: np.ndarray, sigma: float, threshold, min_size: int):
    """Step 1 and what step 2 needs of it: (smoothed, level, binary, distance to the background, blob labels)."""
    smoothed = ndimage.gaussian_filter(image, sigma) if sigma > 0 else image
    if threshold == "otsu":
        # a flat image has no two populations: call it all background rather than fail
        level = float(threshold_otsu(smoothed)) if np.ptp(smoothed) > 0 else float(smoothed.max())
    else:
        level = float(threshold)
    binary = ndimage.binary_fill_holes(_remove_small(smoothed > level, min_size))
    blobs, _ = ndimage.label(binary)
    return smoothed, level, binary, ndimage.distance_transform_edt(binary), blobs


def _regions(distance: np.ndarray, blobs: np.ndarray, min_distance: int, footprint) -> tuple[np.ndarray, np.ndarray]:
    """Step 2: one seed per distance peak, a watershed on the negated distance -> (markers, labels), (H, W) int32."""
    peaks = peak_local_max(distance, min_distance=min_distance, footprint=footprint, labels=blobs,
                           exclude_border=False)  # (K, 2): cells cut by the image border still count
    markers = np.zeros(distance.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return markers, watershed(-distance, markers, mask=blobs > 0).astype(np.int32)


def classic_count(image, *, sigma: float = 0.5, threshold: str | float = "otsu", min_distance: int = 4,
                  min_size: int = 10, footprint=None) -> ClassicResult:
    """Count bright cells with smoothing, a global threshold and a distance-transform watershed.

    Parameters
    ----------
    image : (H, W) array_like of float or int
        One fluorescence channel, cells brighter than the background. No NaN.
    sigma : float
        Gaussian smoothing in px before thresholding; 0 for none.
    threshold : "otsu" or float
        ``"otsu"`` computes the level from the smoothed image's histogram; a number is used as is
        (in the units of ``image``) — it then breaks as soon as exposure or stain change.
    min_distance : int
        Smallest distance in px between two watershed seeds; smaller splits elongated cells, larger
        merges touching ones. Tuned for cells of radius 4–6 px.
    min_size : int
        Foreground components smaller than this many px are noise, not cells.
    footprint : (h, w) array_like of bool, optional
        Neighbourhood in which a seed must be the distance maximum (``peak_local_max``); default a
        ``(2 * min_distance + 1)`` square.

    Returns
    -------
    ClassicResult
        Every intermediate: ``smoothed``, ``threshold``, ``binary``, ``distance``, ``markers``, ``labels``,
        ``count``, ``centroids``. An image without foreground gives ``count == 0`` and empty centroids.

    Raises
    ------
    ValueError
        ``image`` not 2-D or not finite; an unknown ``threshold``; a parameter out of range.
    TypeError
        ``image`` not real-valued.

    Examples
    --------
    Two discs that touch are one blob for the threshold and two cells for the watershed:

    >>> yy, xx = np.mgrid[:40, :60]
    >>> image = ((np.hypot(yy - 20, xx - 22) < 8) | (np.hypot(yy - 20, xx - 37) < 8)).astype(float)
    >>> result = classic_count(image, sigma=0)
    >>> int(ndimage.label(result.binary)[1]), result.count
    (1, 2)
    """
    image = _validate(image, sigma, threshold, min_distance, min_size, footprint)
    smoothed, level, binary, distance, blobs = _foreground(image, sigma, threshold, min_size)  # 1. binary image
    markers, labels = _regions(distance, blobs, min_distance, footprint)  # 2. watershed, one seed per distance peak

    # 3. isolate and count: every watershed region is one cell
    count = int(labels.max())  # seeds are numbered 1..K and each one grows a region
    centroids = np.asarray(ndimage.center_of_mass(binary, labels, np.arange(1, count + 1)), np.float64)
    return ClassicResult(smoothed, level, binary, distance, markers, labels, count, centroids.reshape(count, 2))


def count_errors(pred_counts, true_counts) -> dict[str, float]:
    """How far predicted counts are from the truth, over a set of images.

    Parameters
    ----------
    pred_counts : (N,) array_like of float
        Predicted count per image (a density sum need not be an integer).
    true_counts : (N,) array_like of float
        True count per image, >= 0.

    Returns
    -------
    dict
        ``mae``: mean |pred - true|; ``relative_error``: mean |pred - true| / true over the images with
        ``true > 0`` (NaN when there is none); ``bias``: mean (pred - true), negative = undercount.

    Raises
    ------
    ValueError
        Shapes differ, are not 1-D or empty, or values are not finite, or a true count is negative.

    Examples
    --------
    >>> errors = count_errors([9, 22, 30], [10, 20, 30])
    >>> errors["mae"], errors["bias"], round(errors["relative_error"], 3)
    (1.0, 0.3333333333333333, 0.067)
    """
    pred, true = np.asarray(pred_counts, np.float64), np.asarray(true_counts, np.float64)
    if pred.ndim != 1 or pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"`pred_counts` (shape {pred.shape}) and `true_counts` (shape {true.shape}) must be "
                         "1-D with the same, non-zero length")
    if not (np.isfinite(pred).all() and np.isfinite(true).all()):
        raise ValueError("`pred_counts` and `true_counts` must be finite")
    if (true < 0).any():
        raise ValueError(f"`true_counts` must be >= 0, got minimum {true.min()}")
    error = pred - true
    positive = true > 0
    relative = float(np.mean(np.abs(error[positive]) / true[positive])) if positive.any() else float("nan")
    return {"mae": float(np.mean(np.abs(error))), "relative_error": relative, "bias": float(np.mean(error))}


def tune_classic(images, dots, *, sigmas=(0.5, 1.0, 2.0), min_distances=(3, 4, 5, 7)) -> dict:
    """Choose ``sigma`` and ``min_distance`` of :func:`classic_count` by the count MAE on labelled images.

    The lab's way of tuning a pipeline, as a grid search: every pair is run on every image, the pair with the
    lowest mean absolute count error wins (ties: the first in grid order, smallest ``sigma`` first). The counts are
    those of :func:`classic_count` (its other parameters at their defaults); step 1 depends on ``sigma`` only, so it
    runs once per image and ``sigma``, and only the watershed once per ``min_distance``.

    Parameters
    ----------
    images : (n, H, W) array_like
        Labelled fluorescence images (the tuning set: never the test images).
    dots : list of n (N_i, 2) arrays
        Their annotated cells; only the counts ``N_i`` are used.
    sigmas, min_distances : sequences
        The grid.

    Returns
    -------
    dict
        ``sigma``, ``min_distance`` (the chosen pair), ``mae`` (its MAE on the tuning images) and ``grid``:
        (len(sigmas), len(min_distances)) MAE of every pair.

    Examples
    --------
    >>> yy, xx = np.mgrid[:40, :60]
    >>> image = ((np.hypot(yy - 20, xx - 22) < 8) | (np.hypot(yy - 20, xx - 37) < 8)).astype(float)
    >>> tuned = tune_classic([image], [np.zeros((2, 2))], sigmas=(0.5,), min_distances=(3, 30))
    >>> tuned["min_distance"], tuned["grid"].tolist()          # 30 px apart: one seed for both discs
    (3, [[0.0, 1.0]])
    """
    images = np.asarray(images)
    if images.ndim != 3 or len(images) != len(dots) or len(images) == 0:
        raise ValueError(f"`images` must be (n, H, W) with one entry of `dots` each, got shape {images.shape} and "
                         f"{len(dots)} dot arrays")
    true = np.array([len(d) for d in dots], np.float64)  # (n,)
    counts = np.zeros((len(sigmas), len(min_distances), len(images)))  # (sigmas, min_distances, n)
    for k, image in enumerate(images):
        for i, s in enumerate(sigmas):
            for m in min_distances:
                _validate(image, s, "otsu", m, 10, None)
            *_, distance, blobs = _foreground(image.astype(np.float64), s, "otsu", 10)  # classic_count's defaults
            for j, m in enumerate(min_distances):
                counts[i, j, k] = _regions(distance, blobs, m, None)[1].max()  # regions are numbered 1..K
    grid = np.abs(counts - true).mean(axis=2)  # (len(sigmas), len(min_distances))
    i, j = np.unravel_index(int(np.argmin(grid)), grid.shape)
    return {"sigma": float(sigmas[i]), "min_distance": int(min_distances[j]), "mae": float(grid[i, j]), "grid": grid}
