"""Whole-slide images: pyramid levels, regions, tissue mask, patch grid and heat-map.

A whole-slide image (WSI) is a gigapixel scan stored as a *pyramid*: level 0 at full resolution
(e.g. 0.25 um/px at 40x) and levels downsampled by about 4x each, all cut into JPEG tiles, so a
viewer (or a network) reads only the tiles it needs. The pipeline of the chapter:

1. open the slide and list its levels (:class:`Slide`, :class:`SlideLevel`);
2. find the tissue on a small thumbnail (:func:`tissue_mask`: Otsu threshold on HSV saturation —
   glass is white or grey, stained tissue is coloured);
3. lay a grid of patches over the tissue (:func:`patch_grid`) and read each patch at the level the
   model was trained on (:meth:`Slide.read_region`);
4. classify the patches and put the scores back where they came from (:func:`assemble_heatmap`).

Coordinates are ``(y, x)`` = (row, column) in pixels, NumPy's order, everywhere in this module.
OpenSlide's ``read_region`` takes ``(x, y)``; like OpenSlide, :meth:`Slide.read_region` takes its
location in level-0 pixels so that patches read at different levels line up.

Files are read with tifffile (SVS files are TIFFs); JPEG tiles need the ``imagecodecs`` package.
Only the tiles a region touches are decoded, as OpenSlide does.

References
----------
Otsu (1979). A threshold selection method from gray-level histograms. IEEE Trans. SMC.
OpenSlide API (``level_dimensions``, ``level_downsamples``, ``read_region``); histolab ``TissueMask``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage
from skimage.filters import threshold_otsu

__all__ = ["SlideLevel", "Slide", "tissue_mask", "mask_fraction", "PatchGrid", "patch_grid", "assemble_heatmap"]


@dataclass(frozen=True)
class SlideLevel:
    level: int  # index in the pyramid, 0 = full resolution
    shape: tuple[int, int]  # (height, width) in pixels at this level
    downsample: float  # level-0 pixels per pixel of this level (OpenSlide's `level_downsamples`)


class Slide:
    """A pyramidal TIFF or Aperio SVS slide, read with tifffile. Use as a context manager.

    Parameters
    ----------
    path : path
        ``.svs``, ``.tif`` or ``.tiff`` file whose first series is an RGB(A) image pyramid.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a readable TIFF (corrupt or partial download) or not an RGB image.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "tiny.tif"
    >>> tifffile.imwrite(path, np.full((64, 96, 3), 200, np.uint8), tile=(32, 32), photometric="rgb")
    >>> with Slide(path) as slide:
    ...     slide.levels, slide.read_region((48, 80), (32, 32)).shape   # 16 x 16 inside, the rest white
    ([SlideLevel(level=0, shape=(64, 96), downsample=1.0)], (32, 32, 3))
    >>> folder.cleanup()
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"slide {self.path} not found")
        try:
            self._tif = tifffile.TiffFile(self.path)
        except (tifffile.TiffFileError, ValueError, OSError) as error:
            raise ValueError(f"{self.path} is not a readable TIFF/SVS slide ({error}); "
                             "delete it and download it again") from error
        self._pages = [level.keyframe for level in self._tif.series[0].levels] if self._tif.series else [None]
        shape = getattr(self._pages[0], "shape", ())
        if len(shape) != 3 or shape[-1] not in (3, 4):
            self._tif.close()
            raise ValueError(f"{self.path}: level 0 has shape {shape}, expected (H, W, 3) RGB or (H, W, 4) RGBA")
        h0, w0 = shape[:2]
        self.levels = [SlideLevel(i, (p.shape[0], p.shape[1]), (h0 / p.shape[0] + w0 / p.shape[1]) / 2)
                       for i, p in enumerate(self._pages)]

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._tif.close()

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of level 0."""
        return self.levels[0].shape

    def _level(self, level: int) -> int:
        if not isinstance(level, int | np.integer) or not -len(self.levels) <= level < len(self.levels):
            raise ValueError(f"`level` must be an int in [0, {len(self.levels) - 1}] (or negative), got {level!r}")
        return int(level) % len(self.levels)

    def _decode(self, page, index: int):
        fh = self._tif.filehandle
        with fh.lock:
            fh.seek(page.dataoffsets[index])
            data = fh.read(page.databytecounts[index])
        try:
            return page.decode(data or None, index, jpegtables=page.jpegtables)
        except ValueError as error:
            if "imagecodecs" in str(error):
                raise ImportError(f"reading {self.path.name} ({page.compression.name} tiles) needs the "
                                  "`imagecodecs` package: pip install imagecodecs") from error
            raise ValueError(f"{self.path}: tile {index} is corrupt ({error}); download the slide again") from error

    def read_level(self, level: int = -1) -> np.ndarray:
        """The whole of one level, (h, w, 3) uint8 (default: the smallest). Mind the memory at level 0."""
        level = self._level(level)
        h, w = self.levels[level].shape
        return self._read(level, 0, 0, h, w)

    def read_region(self, location, size, *, level: int = 0) -> np.ndarray:
        """Read a ``size`` = (h, w) region at ``level`` whose top-left corner is ``location`` in level-0 pixels.

        Parameters
        ----------
        location : (int, int)
            ``(y, x)`` of the top-left corner in level-0 pixels (OpenSlide's convention, but rows first).
        size : (int, int)
            ``(height, width)`` in pixels of ``level``.
        level : int

        Returns
        -------
        (h, w, 3) uint8 ndarray
            RGB; parts outside the slide are white (255), like empty glass.
        """
        level = self._level(level)
        if len(location) != 2 or len(size) != 2 or min(size) < 1:
            raise ValueError(f"`location` must be (y, x) and `size` a positive (h, w), got {location!r}, {size!r}")
        ds = self.levels[level].downsample
        return self._read(level, int(location[0] // ds), int(location[1] // ds), int(size[0]), int(size[1]))

    def _read(self, level: int, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        page = self._pages[level]
        height, width = self.levels[level].shape
        out = np.full((h, w, 3), 255, np.uint8)
        top, left, bottom, right = max(y0, 0), max(x0, 0), min(y0 + h, height), min(x0 + w, width)
        if top >= bottom or left >= right:
            return out
        if not page.is_tiled:  # strips: small levels, label images; decode the page whole
            out[top - y0:bottom - y0, left - x0:right - x0] = page.asarray()[top:bottom, left:right, :3]
            return out
        th, tw = page.tilelength, page.tilewidth
        tiles_across = math.ceil(width / tw)
        for ty in range(top // th, (bottom - 1) // th + 1):
            for tx in range(left // tw, (right - 1) // tw + 1):
                tile = self._decode(page, ty * tiles_across + tx)[0]
                if tile is None:  # a tile that was never written: leave it white
                    continue
                tile = tile.reshape(tile.shape[-3:])  # (1, th, tw, S) -> (th, tw, S)
                ya, yb = max(top, ty * th), min(bottom, (ty + 1) * th)
                xa, xb = max(left, tx * tw), min(right, (tx + 1) * tw)
                out[ya - y0:yb - y0, xa - x0:xb - x0] = tile[ya - ty * th:yb - ty * th, xa - tx * tw:xb - tx * tw, :3]
        return out

    def thumbnail(self, max_side: int = 1024) -> tuple[np.ndarray, float]:
        """A small RGB overview whose longer side is at most ``max_side``, and its downsample factor.

        Reads the coarsest level that is still at least ``max_side`` large, then averages blocks of
        ``f x f`` pixels (dropping up to ``f - 1`` border pixels).

        Returns
        -------
        image : (h, w, 3) uint8 ndarray
        downsample : float
            Level-0 pixels per thumbnail pixel: pass it as ``mask_downsample`` to :func:`patch_grid`.
        """
        if not isinstance(max_side, int) or max_side < 8:
            raise ValueError(f"`max_side` must be an int >= 8, got {max_side!r}")
        big_enough = [lv.level for lv in self.levels if max(lv.shape) >= max_side]
        level = big_enough[-1] if big_enough else 0
        image = self.read_level(level)
        f = max(1, math.ceil(max(image.shape[:2]) / max_side))
        if f > 1:
            h, w = image.shape[0] // f, image.shape[1] // f
            blocks = image[: h * f, : w * f].reshape(h, f, w, f, 3).astype(np.float32)
            image = blocks.mean(axis=(1, 3)).round().astype(np.uint8)  # (h*f, w*f, 3) -> (h, w, 3)
        return image, self.levels[level].downsample * f


def tissue_mask(rgb, *, min_size: int = 64, min_saturation: float = 0.05) -> np.ndarray:
    """Tissue versus glass on a low-resolution RGB image: Otsu threshold on HSV saturation.

    Saturation ``(max - min) / max`` of the RGB values is near 0 for white glass, grey dust and black
    borders, and high for H&E-stained tissue. Otsu's threshold splits the two, never going below
    ``min_saturation`` (on an image that is all glass Otsu would otherwise split the noise). Connected
    components smaller than ``min_size`` pixels (dust, debris) are removed. Saturated pen marks are
    not removed.

    Parameters
    ----------
    rgb : (H, W, 3) array_like of uint8
    min_size : int
        Smallest tissue component kept, in pixels of ``rgb``.
    min_saturation : float
        Lower bound of the threshold, in [0, 1).

    Returns
    -------
    (H, W) bool ndarray

    Examples
    --------
    >>> rgb = np.full((40, 40, 3), 235, np.uint8)                 # glass
    >>> rgb[10:30, 5:25] = (200, 120, 170)                          # a 20x20 pink piece of tissue
    >>> rgb[2, 35] = (200, 120, 170)                                # one pixel of debris
    >>> mask = tissue_mask(rgb, min_size=10)
    >>> int(mask.sum()), bool(mask[2, 35])
    (400, False)
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"`rgb` must have shape (H, W, 3), got {rgb.shape}")
    rgb = rgb.astype(np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)  # (H, W, 3) -> (H, W)
    saturation = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    threshold = min_saturation
    if np.ptp(saturation) > 0:
        threshold = max(float(threshold_otsu(saturation)), min_saturation)
    mask = saturation > threshold
    labels, n = ndimage.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)  # sizes[0] is the background
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


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
