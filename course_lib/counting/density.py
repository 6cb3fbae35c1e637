"""Targets for counting by regression: a Gaussian density map whose sum is the number of cells.

The lecture's target for an image with dots (cell centres) :math:`(x_i, y_i)`:

.. math::

    F^{gt}(x, y) = \\sum_i^{\\#\\,\\text{cells}} \\mathcal{N}\\big([x, y];\\, [x_i, y_i],\\, \\sigma^2\\big)

with :math:`\\sigma` a few pixels. Each Gaussian holds one unit of mass, so ``count = F.sum()``; a net
trained to output :math:`F` counts by summing its output (:func:`count_from_density`), without ever
deciding where one cell ends and the next begins — which is what breaks the classic threshold-and-watershed
pipeline on touching cells.

Conventions
-----------
* Dots are ``(row, col)`` in float pixel coordinates: pixel ``(i, j)`` has its centre at ``(i, j)`` and
  covers ``[i - 0.5, i + 0.5)``. A dot may sit between pixel centres (sub-pixel position).
* Each Gaussian is evaluated at pixel centres and cut at ``truncate * sigma`` (as
  :func:`scipy.ndimage.gaussian_filter`). Away from the border a dot on a pixel centre gives exactly
  ``gaussian_filter(dot_image, sigma, mode="constant")``.
* ``normalize="image"`` (default) renormalises each Gaussian over the part of it that lies *inside* the
  image, so every dot contributes exactly 1 and ``density.sum() == len(dots)``. Why: a cell half outside
  the field of view is still a cell the annotator clicked; with a plain Gaussian (``normalize="kernel"``)
  the half outside is lost and a model trained on such targets learns to *undercount* cells near the border
  (a dot on a corner pixel keeps only about a third of its mass).

How it is fast
--------------
A 2-D Gaussian is the product of two 1-D ones, so the whole map is one matrix product::

    F = R.T @ C        R: (N, H) row profiles of the N dots,  C: (N, W) column profiles

No loop over dots or pixels (``naive_density_map`` keeps the slow, obvious version beside it, for tests and
the benchmark).

The loss
--------
A net :math:`F(I)` is trained to output the target with the lecture's L1 loss (:func:`l1_density_loss`), per image

.. math::

    L = \\sum_{x,y} \\big|F^{gt}(x, y) - F(I)(x, y)\\big| ,

which costs exactly one unit per missed cell and also says *where* each unit of mass belongs.

Count-ception (:func:`countception_target`) is the other target of the chapter: *redundant* counting,
each output pixel predicts the number of cells in the square window it sees, so each cell is counted
``window ** 2`` times and ``count = output.sum() / window ** 2``.

References
----------
Lempitsky & Zisserman (2010). Learning to count objects in images. NeurIPS — density-map targets.
Cohen, Boucher, Glastonbury, Lo & Bengio (2017). Count-ception: counting by fully convolutional redundant
counting. ICCV workshops — reference implementation ieee8023/countception (``getMarkersCells``, ``getCellCountCells``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["density_map", "naive_density_map", "multiclass_density_maps", "countception_target",
           "count_from_density", "peak_height", "l1_density_loss"]

_NORMALIZE = ("image", "kernel")
_OUTSIDE = ("raise", "drop")


def _validate_shape(shape) -> tuple[int, int]:
    if len(tuple(shape)) != 2 or any(int(s) != s or s < 1 for s in shape):
        raise ValueError(f"`shape` must be (H, W) with positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


def _validate_dots(dots, shape: tuple[int, int], outside: str) -> tuple[np.ndarray, np.ndarray]:
    """Dots as a float64 (N, 2) array inside the image, and the boolean mask of the input rows kept."""
    if outside not in _OUTSIDE:
        raise ValueError(f"`outside` must be one of {_OUTSIDE}, got {outside!r}")
    dots = np.asarray(dots, dtype=np.float64)
    if dots.size == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    if dots.ndim != 2 or dots.shape[1] != 2:
        raise ValueError(f"`dots` must be (N, 2) (row, col) coordinates, got shape {dots.shape}")
    if not np.isfinite(dots).all():
        raise ValueError(f"`dots` must be finite, got non-finite rows {np.flatnonzero(~np.isfinite(dots).all(1))}")
    # pixel i covers [i - 0.5, i + 0.5); the last pixel's far edge is accepted too (a dot on the image border)
    upper = np.array(shape, dtype=np.float64) - 0.5
    inside = ((dots >= -0.5) & (dots <= upper)).all(axis=1)
    if not inside.all() and outside == "raise":
        bad = np.flatnonzero(~inside)
        raise ValueError(f"`dots` rows {bad[:10].tolist()} (e.g. {dots[bad[0]].tolist()}) lie outside the image of "
                         f"shape {shape}; pass outside='drop' to ignore them")
    return dots[inside], inside


def _profiles(centres: np.ndarray, size: int, sigma: float, truncate: float, normalize: str) -> np.ndarray:
    """1-D Gaussian profiles along one axis: (N,) centres -> (N, size), each row summing to 1 (or less)."""
    radius = int(truncate * sigma + 0.5)  # the same cut as scipy.ndimage.gaussian_filter
    nearest = np.clip(np.floor(centres + 0.5), 0, size - 1)  # (N,) pixel holding each dot
    offset = centres - nearest  # (N,) sub-pixel offset in [-0.5, 0.5]
    # subtracting the smallest squared distance (offset**2) before exp() keeps tiny sigmas from underflowing to 0;
    # the factor cancels in the normalisation
    pixels = np.arange(size)
    d2 = (pixels[None, :] - centres[:, None]) ** 2 - offset[:, None] ** 2  # (N, size)
    window = np.abs(pixels[None, :] - nearest[:, None]) <= radius  # (N, size) the truncated kernel's support
    profile = np.where(window, np.exp(-d2 / (2.0 * sigma**2)), 0.0)
    if normalize == "image":
        return profile / profile.sum(axis=1, keepdims=True)
    # "kernel": normalise over the whole truncated kernel, as if the image went on; mass outside is lost
    k = np.arange(-radius, radius + 1)
    full = np.exp(-((k[None, :] - offset[:, None]) ** 2 - offset[:, None] ** 2) / (2.0 * sigma**2)).sum(axis=1)
    return profile / full[:, None]


def density_map(dots, shape, sigma: float = 2.0, *, normalize: str = "image", outside: str = "raise",
                truncate: float = 4.0) -> np.ndarray:
    """Gaussian density map of ``dots``: one unit of mass per dot.

    Parameters
    ----------
    dots : (N, 2) array_like
        ``(row, col)`` float pixel coordinates of the cell centres; ``N = 0`` gives an all-zero map.
    shape : (H, W) tuple of int
    sigma : float
        Gaussian standard deviation in pixels (> 0), "a few pixels": about a cell radius or less.
    normalize : {"image", "kernel"}
        ``"image"``: each Gaussian is renormalised over the pixels inside the image, so ``sum == N``
        exactly even for dots on the border. ``"kernel"``: plain truncated Gaussian, mass falling outside
        the image is lost (what ``gaussian_filter(..., mode="constant")`` of a dot image gives).
    outside : {"raise", "drop"}
        What to do with dots outside ``[-0.5, H - 0.5] x [-0.5, W - 0.5]``: raise, or silently leave them out
        (then they are not counted).
    truncate : float
        Cut each Gaussian at this many sigmas.

    Returns
    -------
    density : (H, W) float32 ndarray

    Raises
    ------
    ValueError
        For a bad ``shape``/``sigma``/option, non-finite dots, or (``outside="raise"``) dots outside the image.

    Examples
    --------
    >>> d = density_map([[0.0, 0.0], [10.3, 7.8]], (16, 16), sigma=2.0)
    >>> d.shape, d.dtype, round(float(d.sum()), 4)   # the corner dot counts as a whole cell
    ((16, 16), dtype('float32'), 2.0)
    >>> round(float(density_map([[0.0, 0.0]], (16, 16), normalize="kernel").sum()), 2)  # plain: about 2/3 lost
    0.36
    """
    shape = _validate_shape(shape)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"`sigma` must be a positive number of pixels, got {sigma!r}")
    if normalize not in _NORMALIZE:
        raise ValueError(f"`normalize` must be one of {_NORMALIZE}, got {normalize!r}")
    if truncate <= 0:
        raise ValueError(f"`truncate` must be > 0, got {truncate!r}")
    dots, _ = _validate_dots(dots, shape, outside)
    if len(dots) == 0:
        return np.zeros(shape, np.float32)
    rows = _profiles(dots[:, 0], shape[0], sigma, truncate, normalize)  # (N, H)
    cols = _profiles(dots[:, 1], shape[1], sigma, truncate, normalize)  # (N, W)
    return (rows.T @ cols).astype(np.float32)  # sum_n outer(rows[n], cols[n]): (H, N) @ (N, W) -> (H, W)


def naive_density_map(dots, shape, sigma: float = 2.0, *, truncate: float = 4.0) -> np.ndarray:
    """The slow, obvious version of ``density_map(..., normalize="image")``: for every dot, every pixel.

    Kept for tests and the benchmark: an (H, W) Python loop per dot, each Gaussian renormalised over the
    image-and-window pixels it reaches.
    """
    shape = _validate_shape(shape)
    out = np.zeros(shape, np.float64)
    radius = int(truncate * sigma + 0.5)
    for r, c in np.asarray(dots, np.float64).reshape(-1, 2):
        nr, nc = np.floor(r + 0.5), np.floor(c + 0.5)
        kernel = np.zeros(shape, np.float64)
        for i in range(shape[0]):
            for j in range(shape[1]):
                if abs(i - nr) <= radius and abs(j - nc) <= radius:
                    kernel[i, j] = np.exp(-((i - r) ** 2 + (j - c) ** 2) / (2.0 * sigma**2))
        out += kernel / kernel.sum()
    return out.astype(np.float32)


def multiclass_density_maps(dots, classes, n_classes: int, shape, sigma: float = 2.0, **kwargs) -> np.ndarray:
    """One density map per class, plus channel 0 for "any nucleus" (all dots, whatever their class).

    Parameters
    ----------
    dots : (N, 2) array_like
        ``(row, col)`` of the cell centres.
    classes : (N,) array_like of int
        Class of each dot, in ``[0, n_classes)``.
    n_classes : int
    shape : (H, W)
    sigma : float
    **kwargs
        Passed to :func:`density_map` (``normalize``, ``outside``, ``truncate``).

    Returns
    -------
    maps : (n_classes + 1, H, W) float32 ndarray
        ``maps[0]`` = all cells, ``maps[1 + c]`` = cells of class ``c``; so ``maps[0] == maps[1:].sum(0)``.

    Examples
    --------
    >>> m = multiclass_density_maps([[4, 4], [10, 10], [12, 3]], [0, 2, 2], 3, (16, 16))
    >>> m.shape, m.sum(axis=(1, 2)).round(4).tolist()
    ((4, 16, 16), [3.0, 1.0, 0.0, 2.0])
    """
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"`n_classes` must be a positive int, got {n_classes!r}")
    shape = _validate_shape(shape)
    dots_arr = np.asarray(dots, np.float64).reshape(-1, 2) if np.size(dots) else np.zeros((0, 2))
    classes = np.asarray(classes).reshape(-1)
    if len(classes) != len(dots_arr):
        raise ValueError(f"`classes` (length {len(classes)}) must have one entry per dot ({len(dots_arr)} dots)")
    if len(classes) and (not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0
                         or classes.max() >= n_classes):
        raise ValueError(f"`classes` must be ints in [0, {n_classes}), got {np.unique(classes)[:10].tolist()}")
    _, kept = _validate_dots(dots_arr, shape, kwargs.get("outside", "raise"))
    maps = np.zeros((n_classes + 1, *shape), np.float32)
    for c in range(n_classes):
        maps[1 + c] = density_map(dots_arr[kept & (classes == c)], shape, sigma, **kwargs)
    maps[0] = maps[1:].sum(axis=0)  # (C, H, W) -> (H, W): the "any nucleus" channel
    return maps


def countception_target(dots, shape, window: int = 16, *, outside: str = "raise") -> np.ndarray:
    """Count-ception's redundant-count target: the number of dots in the ``window x window`` square of each output.

    Output pixel ``(i, j)`` sees the input square with rows ``i - window + 1 .. i`` and columns
    ``j - window + 1 .. j``. The output is larger than the image, ``(H + window - 1, W + window - 1)``, so
    that every dot lies in exactly ``window ** 2`` squares — also near the border — and
    ``count = target.sum() / window ** 2``. :class:`~course_lib.counting.models.CountCeptionNet` pads its
    input by ``window - 1`` on every side to produce exactly this grid.

    Parameters
    ----------
    dots : (N, 2) array_like
        ``(row, col)``; each dot counts in the pixel that holds it.
    shape : (H, W)
    window : int
        Side of the counting square (the network's receptive field), >= 1.
    outside : {"raise", "drop"}

    Returns
    -------
    target : (H + window - 1, W + window - 1) float32 ndarray of whole numbers

    Examples
    --------
    >>> t = countception_target([[0, 0], [5, 5]], (8, 8), window=3)
    >>> t.shape, float(t.sum()) / 3**2, float(t.max())
    ((10, 10), 2.0, 1.0)
    """
    shape = _validate_shape(shape)
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"`window` must be a positive int, got {window!r}")
    dots, _ = _validate_dots(dots, shape, outside)
    counts = np.zeros(shape, np.float64)  # (H, W) number of dots per pixel
    if len(dots):
        idx = np.clip(np.floor(dots + 0.5), 0, np.array(shape) - 1).astype(np.int64)
        np.add.at(counts, (idx[:, 0], idx[:, 1]), 1.0)
    # box sum of every window x window square via an integral image, with window - 1 zeros on every side
    padded = np.pad(counts, window - 1)  # (H + 2w - 2, W + 2w - 2)
    integral = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # integral[i, j] = padded[:i, :j].sum()
    w = window
    box = integral[w:, w:] - integral[:-w, w:] - integral[w:, :-w] + integral[:-w, :-w]  # (H + w - 1, W + w - 1)
    return np.rint(box).astype(np.float32)


def count_from_density(density, *, scale: float = 1.0):
    """Count = sum of the density over its last two axes, divided by ``scale``.

    Parameters
    ----------
    density : (..., H, W) ndarray or torch.Tensor
        A density map or a batch of them, e.g. (B, C, H, W) network outputs.
    scale : float
        Divide by this: the target scale a model was trained with, or ``window ** 2`` for Count-ception.

    Returns
    -------
    counts : float for a single (H, W) map, else an array/tensor of shape ``density.shape[:-2]``.

    Examples
    --------
    >>> round(count_from_density(density_map([[3, 3], [9, 9]], (12, 12))), 4)
    2.0
    >>> count_from_density(np.ones((2, 3, 4, 4)), scale=4.0).shape
    (2, 3)
    """
    if getattr(density, "ndim", 0) < 2:
        raise ValueError(f"`density` must be (..., H, W), got shape {getattr(density, 'shape', None)}")
    if scale <= 0:
        raise ValueError(f"`scale` must be > 0, got {scale!r}")
    if isinstance(density, np.ndarray):
        counts = density.sum(axis=(-2, -1), dtype=np.float64) / scale  # float64: no drift on large maps
    else:
        counts = density.sum(dim=(-2, -1)) / scale  # torch: keeps device, dtype and autograd
    return float(counts) if density.ndim == 2 else counts


def peak_height(sigma: float) -> float:
    """Height of one isolated cell's Gaussian, ``1 / (2 pi sigma^2)``: a scale for peak-finding thresholds."""
    return 1.0 / (2.0 * np.pi * sigma**2)


def l1_density_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The lecture's :math:`L = \\sum_{x,y} |F^{gt}(x,y) - F(I)(x,y)|`, per image, summed over channels too.

    Parameters
    ----------
    pred, target : (B, C, H, W) tensors of the same shape (never broadcast)
    reduction : {"mean", "sum", "none"}
        ``"none"``: (B,) the lecture's L of each image; ``"mean"``: their mean over the batch (a batch-size
        independent scale); ``"sum"``: their sum. Dividing further by the number of pixels only rescales the
        gradient, which Adam's per-parameter normalisation all but cancels.

    Examples
    --------
    >>> import torch
    >>> p, t = torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    >>> t[0, 0, 1, 1], t[1, 0] = 2.0, 0.5   # image 0: L = 2;  image 1: L = 9 * 0.5
    >>> l1_density_loss(p, t, "none").tolist(), float(l1_density_loss(p, t))
    ([2.0, 4.5], 3.25)
    """
    if pred.shape != target.shape:
        raise ValueError(f"`pred` (shape {tuple(pred.shape)}) and `target` (shape {tuple(target.shape)}) must match")
    if pred.ndim < 3:
        raise ValueError(f"`pred` must be (B, ..., H, W), got shape {tuple(pred.shape)}")
    per_image = (pred - target).abs().flatten(1).sum(1)  # (B, C, H, W) -> (B,)
    if reduction == "none":
        return per_image
    if reduction == "sum":
        return per_image.sum()
    if reduction == "mean":
        return per_image.mean()
    raise ValueError(f"`reduction` must be 'mean', 'sum' or 'none', got {reduction!r}")
