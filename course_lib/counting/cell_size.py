r"""The size of the cells of a new microscope, measured from its images and their dot annotations.

Two choices of the chapter follow the cell size in pixels: the density target's :math:`\sigma` (half the radius of
the smallest cells to be counted, at least 1 px; ``ch03b`` section 5) and the classic pipeline's seed spacing
(``ch03a``: the smallest cells' radius). A lab with a new microscope has images and one dot per cell, not outlines.
This module reads each dotted cell's extent off the image:

1. **Smooth** with a Gaussian of ``sigma`` px, so that sensor noise does not decide where a cell ends.
2. **The empty field's level**: the median of the pixels below Otsu's threshold (Otsu 1979), and its spread (the
   median absolute deviation, scaled to a standard deviation).
3. **Each cell against its own brightness**: the smoothed value at the dot's pixel is the cell's brightness; the
   cell is where the image stays brighter than halfway between the empty field and that brightness — its full
   width at half maximum. Stain uptake varies from cell to cell: one level for the whole image (Otsu's) cuts a dim
   cell smaller than a bright one of the same size, a level per cell does not.
4. **Touching cells** share one bright blob: every pixel goes to the dot nearest to it (a Voronoi split), flooded
   from the dots (a watershed on the distance to the nearest dot) so that each cell is connected to its own dot.
5. **One radius per cell**, the equivalent radius :math:`\sqrt{\text{area} / \pi}` (scikit-image's
   ``equivalent_diameter_area / 2``); the **smallest cells** are a low percentile of them (default the 10th): the
   very smallest is a cell cut by the image border or squeezed by a neighbour, and the median would size the target
   for the average cell, not the small ones it must still separate.

A dot no brighter than the empty field by three of its standard deviations measures nothing (its radius is
``nan``): a cell too dim to see, or a misplaced click.

Every step is equivariant to :math:`a I + c` with :math:`a > 0`: another exposure, gain or offset gives the same
radius. What it does not handle: an illumination that falls off strongly across the field (one level is taken for
the whole empty field) and cells that are not brighter than their surroundings (brightfield).

References
----------
Otsu (1979). A threshold selection method from gray-level histograms. IEEE SMC 9(1).
scikit-image ``measure.regionprops`` (``equivalent_diameter_area``) and ``segmentation.watershed`` with markers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

__all__ = ["cell_regions", "cell_radii", "cell_radius_from_dots"]

# A dot must stand out of the empty field by this many standard deviations of it to be measured: at 3, noise alone
# reaches it in about 1 pixel of 700.
MIN_CONTRAST = 3.0


def _validate(image, dots, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"`image` must be 2-D (H, W), got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)):
        raise TypeError(f"`image` must be a real-valued (integer or float) array, got dtype {image.dtype}")
    image = image.astype(np.float64)  # unsigned integers would wrap round below the background
    if not np.isfinite(image).all():
        raise ValueError("`image` contains NaN or infinite values")
    dots = np.asarray(dots, dtype=np.float64)
    if dots.size == 0:
        raise ValueError("`dots` is empty: without a dot there is no cell to measure")
    if dots.ndim != 2 or dots.shape[1] != 2 or not np.isfinite(dots).all():
        raise ValueError(f"`dots` must be a finite (N, 2) array of (row, col) positions, got shape {dots.shape}")
    h, w = image.shape
    if (dots < -0.5).any() or (dots[:, 0] > h - 0.5).any() or (dots[:, 1] > w - 0.5).any():
        raise ValueError(f"`dots` must lie inside the image of shape {image.shape} (rows 0..{h - 1}, cols 0..{w - 1})")
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"`sigma` must be >= 0 px, got {sigma!r}")
    return image, dots


def cell_regions(image, dots, *, sigma: float = 1.0) -> np.ndarray:
    """The pixels of each dotted cell: brighter than half its own brightness above the empty field.

    Parameters
    ----------
    image : (H, W) array_like of float or int
        One fluorescence channel, cells brighter than the background.
    dots : (N, 2) array_like
        ``(row, col)`` positions of the cells, one per cell, inside the image (N >= 1).
    sigma : float
        Gaussian smoothing in px before anything is measured (0: none).

    Returns
    -------
    labels : (H, W) int32 ndarray
        ``k + 1`` on the pixels of the cell of dot ``k``, 0 elsewhere. A dot that does not stand out of the empty
        field has no pixel; of two dots on the same pixel only the later one has pixels.

    Raises
    ------
    ValueError, TypeError
        For an image that is not 2-D and real, no dots, dots that are not (N, 2) or lie outside the image, or a
        negative ``sigma``.

    Examples
    --------
    Two discs of radius 5 px that touch, one of them three times as bright:

    >>> rows, cols = np.mgrid[:30, :40]
    >>> image = 1.0 * (np.hypot(rows - 15, cols - 14) <= 5) + 3.0 * (np.hypot(rows - 15, cols - 24) <= 5)
    >>> labels = cell_regions(image, [[15, 14], [15, 24]], sigma=0)
    >>> np.bincount(labels.ravel())[1:].tolist()   # 81 px per disc; the one pixel they share goes to one of them
    [81, 80]

    One level for the whole image (Otsu's) would keep the bright disc only; each disc's own half maximum keeps both.
    """
    image, dots = _validate(image, dots, sigma)
    smoothed = ndimage.gaussian_filter(image, sigma) if sigma > 0 else image
    # the empty field: below Otsu's level (a flat image has none: then everything is "empty")
    level = threshold_otsu(smoothed) if np.ptp(smoothed) > 0 else smoothed.max()
    empty = smoothed[smoothed <= level]
    background = float(np.median(empty))
    noise = 1.4826 * float(np.median(np.abs(empty - background)))  # MAD -> sd of a normal distribution

    pixels = np.clip(np.floor(dots + 0.5).astype(np.int64), 0, np.array(image.shape) - 1)  # (N, 2) nearest pixel
    brightness = smoothed[pixels[:, 0], pixels[:, 1]]  # (N,) each cell's own brightness
    half = background + 0.5 * (brightness - background)  # (N,) each cell's half-maximum level
    visible = brightness - background > MIN_CONTRAST * noise  # (N,) dots that stand out of the empty field

    markers = np.zeros(image.shape, np.int32)
    kept = np.flatnonzero(visible)
    markers[pixels[kept, 0], pixels[kept, 1]] = kept + 1  # a later dot on the same pixel overwrites an earlier one
    # distance to the nearest visible dot, and which dot that is, for every pixel (the Voronoi split)
    distance, nearest = ndimage.distance_transform_edt(markers == 0, return_indices=True)
    owner = markers[nearest[0], nearest[1]]  # (H, W) label of the nearest dot, 0 where no dot is visible
    inside = smoothed > np.concatenate([[np.inf], half])[owner]  # (H, W) above the half maximum of its own cell
    # flooding outwards from each dot keeps only the pixels connected to it
    return watershed(distance, markers, mask=inside | (markers > 0)).astype(np.int32)


def cell_radii(image, dots, *, sigma: float = 1.0) -> np.ndarray:
    """The equivalent radius ``sqrt(area / pi)`` in px of every dotted cell (see :func:`cell_regions`).

    Returns
    -------
    radii : (N,) float64 ndarray
        Row ``k`` for dot ``k``; ``nan`` for a dot that measures nothing (no brighter than the empty field, or
        sharing its pixel with a later dot).

    Examples
    --------
    >>> rows, cols = np.mgrid[:40, :40]
    >>> image = 0.1 + (np.hypot(rows - 12, cols - 12) <= 4) + (np.hypot(rows - 27, cols - 27) <= 8)
    >>> cell_radii(image, [[12, 12], [27, 27], [3, 35]], sigma=0).round(2).tolist()   # the third dot: background
    [3.95, 7.92, nan]

    (Discs of radius 4 and 8 px hold 49 and 197 pixels.)
    """
    labels = cell_regions(image, dots, sigma=sigma)
    n = len(np.asarray(dots).reshape(-1, 2))
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)  # (N,) px per cell
    return np.where(areas > 0, np.sqrt(areas / np.pi), np.nan)


def cell_radius_from_dots(image, dots, *, percentile: float = 10.0, sigma: float = 1.0) -> float:
    """The radius in px of the smallest cells of an image: a low percentile of its cells' equivalent radii.

    Parameters
    ----------
    image : (H, W) array_like of float or int
        One fluorescence channel, cells brighter than the background.
    dots : (N, 2) array_like
        ``(row, col)`` position of each cell (N >= 1).
    percentile : float in [0, 100]
        Which percentile of the per-cell radii (:func:`cell_radii`) stands for "the smallest cells": 10 by
        default, the rule ``ch03b`` also applies to hand-drawn outlines.
    sigma : float
        Gaussian smoothing in px before measuring.

    Returns
    -------
    float
        The radius in px; the density target of these cells is ``density_map(dots, shape, max(1.0, r / 2))``.

    Raises
    ------
    ValueError
        No dots, or no dot that stands out of the empty field; a ``percentile`` outside [0, 100]; bad inputs as in
        :func:`cell_regions`.

    Examples
    --------
    A synthetic field of cells of radius 4-6 px (the 10th percentile of their true outlines is 4.0 px; a cell's
    half maximum lies a little inside its outline, as its brightness falls off towards the edge), and the same field
    at another exposure and offset:

    >>> from course_lib.counting.synthetic_cells import EASY, make_cell_image
    >>> cells = make_cell_image(EASY, seed=0)
    >>> r = cell_radius_from_dots(cells.image, cells.dots)
    >>> round(r, 1), bool(np.isclose(r, cell_radius_from_dots(3.0 * cells.image + 10.0, cells.dots)))
    (3.6, True)
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"`percentile` must lie in [0, 100], got {percentile!r}")
    radii = cell_radii(image, dots, sigma=sigma)
    measured = radii[np.isfinite(radii)]
    if len(measured) == 0:
        raise ValueError(f"none of the {len(radii)} dots stands out of the empty field: no cell to measure "
                         "(are the dots (row, col), and the cells brighter than the background?)")
    return float(np.percentile(measured, percentile))
