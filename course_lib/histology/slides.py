"""Whole-slide images: pyramid levels, regions and the tissue mask (the patch grid is in :mod:`.slide_grid`).

A whole-slide image (WSI) is a gigapixel scan stored as a *pyramid*: level 0 at full resolution
(e.g. 0.25 um/px at 40x) and levels downsampled by about 4x each, all cut into JPEG tiles, so a
viewer (or a network) reads only the tiles it needs. The pipeline of the chapter:

1. open the slide and list its levels (:class:`Slide`, :class:`SlideLevel`);
2. find the tissue on a small thumbnail (:func:`tissue_mask`: Otsu threshold on HSV saturation —
   glass is white or grey, stained tissue is coloured);
3. lay a grid of patches over the tissue (:func:`course_lib.histology.slide_grid.patch_grid`) and read
   each patch at the level the model was trained on (:meth:`Slide.read_region`);
4. classify the patches and put the scores back where they came from
   (:func:`course_lib.histology.slide_grid.assemble_heatmap`).

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

__all__ = ["SlideLevel", "Slide", "tissue_mask"]


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
