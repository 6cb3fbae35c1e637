"""A grid of patches over a whole-slide image, and the patch scores put back on it as a heat-map.

Steps 3 and 4 of the slide pipeline (:mod:`course_lib.histology.slides` holds steps 1 and 2, reading and tissue):

* :func:`patch_grid` lays a regular grid of patches over the slide and keeps those on tissue
  (:func:`mask_fraction` measures the tissue under each patch on a low-resolution mask); the result, a
  :class:`PatchGrid`, holds each patch's corner in level-0 pixels (for :meth:`Slide.read_region`) and at the
  patch level;
* :func:`assemble_heatmap` puts one score per patch back on the grid, with the ``extent`` to draw it over
  the thumbnail.

Coordinates are ``(y, x)`` = (row, column) in pixels, NumPy's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["mask_fraction", "PatchGrid", "patch_grid", "assemble_heatmap"]


def mask_fraction(mask, coords_level0, size_level0: float, mask_downsample: float) -> np.ndarray:
    """Share of ``mask`` pixels inside each square patch; the mask may be at a lower resolution.

    Parameters
    ----------
    mask : (h, w) array_like of bool
        E.g. a tissue or tumour mask at thumbnail resolution.
    coords_level0 : (N, 2) array_like
        ``(y, x)`` top-left corners of the patches in level-0 pixels.
    size_level0 : float
        Patch side in level-0 pixels.
    mask_downsample : float
        Level-0 pixels per mask pixel. Patch borders are rounded to the nearest mask pixel.

    Returns
    -------
    (N,) float64 ndarray in [0, 1]; 0 for patches outside the mask.
    """
    mask = np.asarray(mask, dtype=bool)
    coords = np.asarray(coords_level0, dtype=np.float64).reshape(-1, 2)
    if mask.ndim != 2:
        raise ValueError(f"`mask` must be 2-D (h, w), got shape {mask.shape}")
    integral = np.pad(mask.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # (h+1, w+1) summed-area table
    start = np.round(coords / mask_downsample).astype(np.int64)  # (N, 2) in mask pixels
    stop = np.maximum(start + 1, np.round((coords + size_level0) / mask_downsample).astype(np.int64))
    start, stop = np.clip(start, 0, mask.shape), np.clip(stop, 0, mask.shape)
    (t, l), (b, r) = start.T, stop.T
    total = integral[b, r] - integral[t, r] - integral[b, l] + integral[t, l]
    area = (b - t) * (r - l)
    return np.divide(total, area, out=np.zeros(len(coords)), where=area > 0)


@dataclass(frozen=True)
class PatchGrid:
    """The patches :func:`patch_grid` laid over a slide (``N`` of them, on tissue)."""

    coords_level0: np.ndarray  # (N, 2) int64 (y, x) top-left corners in level-0 pixels: for `read_region`
    coords: np.ndarray  # (N, 2) int64 the same corners in pixels of the patch level
    index: np.ndarray  # (N, 2) int64 (row, col) of each patch in the grid
    tissue_fraction: np.ndarray  # (N,) share of tissue under each patch, >= min_tissue
    grid_shape: tuple[int, int]  # (rows, cols) of the full grid over the slide, tissue or not
    patch_size: int  # patch side in pixels of the patch level
    stride: int  # step between patches in pixels of the patch level
    downsample: float  # level-0 pixels per pixel of the patch level

    @property
    def size_level0(self) -> float:
        return self.patch_size * self.downsample

    @property
    def stride_level0(self) -> float:
        return self.stride * self.downsample


def patch_grid(tissue, patch_size: int, *, mask_downsample: float, slide_shape, level_downsample: float = 1.0,
               stride: int | None = None, min_tissue: float = 0.5) -> PatchGrid:
    """Regular grid of patches over a slide, keeping those with at least ``min_tissue`` tissue.

    Parameters
    ----------
    tissue : (h, w) array_like of bool
        Tissue mask at low resolution (from :func:`tissue_mask` on :meth:`Slide.thumbnail`).
    patch_size : int
        Patch side in pixels of the level the patches will be read at.
    mask_downsample : float
        Level-0 pixels per pixel of ``tissue``.
    slide_shape : (int, int)
        Level-0 (height, width); only patches lying wholly inside the slide are made.
    level_downsample : float
        Level-0 pixels per pixel of the patch level (``slide.levels[level].downsample``).
    stride : int, optional
        Step between patches at the patch level; default ``patch_size`` (no overlap).
    min_tissue : float
        Keep patches whose tissue fraction is >= this, in [0, 1]; 0 keeps the whole grid.

    Returns
    -------
    PatchGrid

    Examples
    --------
    >>> tissue = np.zeros((8, 8), bool); tissue[:4, :4] = True    # tissue in the top-left quarter
    >>> grid = patch_grid(tissue, 32, mask_downsample=16, slide_shape=(128, 128), level_downsample=2)
    >>> grid.grid_shape, grid.coords_level0.tolist(), grid.coords.tolist()
    ((2, 2), [[0, 0]], [[0, 0]])
    """
    tissue = np.asarray(tissue, dtype=bool)
    if tissue.ndim != 2:
        raise ValueError(f"`tissue` must be 2-D (h, w), got shape {tissue.shape}")
    stride = patch_size if stride is None else stride
    for name, value in (("patch_size", patch_size), ("stride", stride)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    if not 0.0 <= min_tissue <= 1.0:
        raise ValueError(f"`min_tissue` must lie in [0, 1], got {min_tissue}")
    if mask_downsample <= 0 or level_downsample <= 0:
        raise ValueError(f"downsample factors must be > 0, got {mask_downsample}, {level_downsample}")
    height, width = slide_shape
    size0, step0 = patch_size * level_downsample, stride * level_downsample
    rows, cols = (max(0, int((n - size0) // step0) + 1) for n in (height, width))
    index = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    coords0 = np.round(index * step0).astype(np.int64)  # (rows*cols, 2)
    fraction = mask_fraction(tissue, coords0, size0, mask_downsample)
    keep = fraction >= min_tissue
    coords = np.round(coords0[keep] / level_downsample).astype(np.int64)
    return PatchGrid(coords0[keep], coords, index[keep], fraction[keep], (rows, cols), int(patch_size), int(stride),
                     float(level_downsample))


def assemble_heatmap(coords, scores, patch_size: float, *, stride: float | None = None, grid_shape=None,
                     downsample: float = 1.0):
    """Put one score per patch back on the slide grid, and the ``extent`` to overlay it with ``imshow``.

    Parameters
    ----------
    coords : (N, 2) array_like
        ``(y, x)`` top-left corners of the patches in level-0 pixels, on a grid of step ``stride``
        starting at (0, 0) (``PatchGrid.coords_level0``).
    scores : (N,) or (N, C) array_like
        One score (or C scores) per patch, e.g. tumour probabilities.
    patch_size : float
        Patch side in level-0 pixels (``PatchGrid.size_level0``).
    stride : float, optional
        Grid step in level-0 pixels; default ``patch_size``.
    grid_shape : (int, int), optional
        (rows, cols) of the heat-map; default just large enough for ``coords``.
    downsample : float
        Level-0 pixels per pixel of the image the heat-map is drawn over (the thumbnail).

    Returns
    -------
    heatmap : (rows, cols[, C]) float64 ndarray
        Mean score of the patches in each cell; NaN where there is no patch (drawn transparent).
    extent : (left, right, bottom, top) tuple of float
        For ``plt.imshow(heatmap, extent=extent)`` over ``plt.imshow(thumbnail)``: each cell is
        ``stride`` wide and centred on its patch's centre.

    Examples
    --------
    >>> heat, extent = assemble_heatmap([[0, 0], [0, 4], [4, 4]], [0.1, 0.9, 0.5], patch_size=4)
    >>> heat
    array([[0.1, 0.9],
           [nan, 0.5]])
    >>> extent   # drawn over the level-0 image itself (downsample 1): pixel centres are integers
    (-0.5, 7.5, 7.5, -0.5)
    """
    coords = np.asarray(coords, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"`coords` must have shape (N, 2), got {coords.shape}")
    if scores.ndim not in (1, 2) or len(scores) != len(coords):
        raise ValueError(f"`scores` (shape {scores.shape}) must have shape (N,) or (N, C) with "
                         f"N = len(`coords`) = {len(coords)}")
    stride = patch_size if stride is None else stride
    if patch_size <= 0 or stride <= 0 or downsample <= 0:
        raise ValueError(f"`patch_size`, `stride`, `downsample` must be > 0, got {patch_size}, {stride}, {downsample}")
    index = np.round(coords / stride).astype(np.int64)  # (N, 2) (row, col)
    off_grid = np.abs(coords - index * stride).max(axis=1) > 0.5 + 1e-9  # rounding of level-0 pixels only
    if off_grid.any() or (index < 0).any():
        bad = int(np.argmax(off_grid | (index < 0).any(axis=1)))
        raise ValueError(f"`coords`[{bad}] = {coords[bad].tolist()} is not on the grid of step {stride} from (0, 0)")
    if grid_shape is None:
        grid_shape = tuple(int(n) for n in index.max(axis=0) + 1) if len(index) else (0, 0)
    rows, cols = grid_shape
    if len(index) and ((index[:, 0] >= rows).any() or (index[:, 1] >= cols).any()):
        raise ValueError(f"`coords` reach grid cell {index.max(axis=0).tolist()}, outside `grid_shape` {grid_shape}")
    total = np.zeros((rows, cols) + scores.shape[1:])
    count = np.zeros((rows, cols))
    np.add.at(total, (index[:, 0], index[:, 1]), scores)  # overlapping duplicates are averaged
    np.add.at(count, (index[:, 0], index[:, 1]), 1)
    count = count.reshape(count.shape + (1,) * (scores.ndim - 1))  # broadcast over C
    heatmap = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
    first = (patch_size - stride) / 2 / downsample - 0.5  # left/top edge of cell 0 in display coordinates
    extent = (first, first + cols * stride / downsample, first + rows * stride / downsample, first)
    return heatmap, tuple(float(v) for v in extent)
