"""VGG-cells-like images: the published properties of the VGG cells set, drawn with the chapter's cell generator.

The VGG cells set (Lempitsky & Zisserman 2010) is 200 synthetic fluorescence images made with SIMCEP: 256 x 256 px,
about 174 +- 64 cells an image, the cells drawn in the *blue* channel of ``NNNcell.png``, and one red (255, 0, 0)
pixel per cell centre in ``NNNdots.png``. Where the real files are not at hand, :func:`write_vgg_like` writes 200
pairs with those properties in that layout, so that ``benchmarks/vgg_cells_protocol.py --synthetic`` reads them
through the same reader (:func:`~course_lib.counting.datasets.read_vgg_cells`) and the same split
(:func:`~course_lib.counting.datasets.vgg_cells_split`) as the real set.

What is imitated and how (:data:`VGG_LIKE`):

* the count: uniform on 64..284, mean 174 and sd 63.5 (the set's 174 +- 64);
* crowding: small nuclei (radius 3.5-6 px) half of them placed against another, so clumps of touching and
  overlapping cells are common, as in SIMCEP's clustered populations;
* imaging: optics blur, a few out-of-focus cells, uneven illumination and sensor noise, quantised to 8 bits;
* the annotation: one pixel per cell, the centre rounded to the nearest pixel. Two centres that round to the same
  pixel make one red pixel, and the reader counts one cell: the truth is what the annotation image says, as on
  the real set.

This is a stand-in, not the set: a recipe designed on it still has to be checked on the real images, and numbers
measured on it are labelled as synthetic.

References
----------
Lempitsky & Zisserman (2010). Learning to count objects in images. NeurIPS.
Lehmussola et al. (2007). Computational framework for simulating fluorescence microscope images with cell
populations. IEEE TMI 26(7) — SIMCEP.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from course_lib.counting.synthetic_cells import EASY, make_cell_image

__all__ = ["VGG_LIKE", "VGG_SIDE", "make_vgg_like", "write_vgg_like"]

VGG_SIDE = 256  # px, the side of every VGG cells image
VGG_LIKE = replace(
    EASY, size=VGG_SIDE,
    count=(64, 284),  # uniform: mean 174, sd 63.5 — the set's 174 +- 64 cells an image
    radius=(3.5, 6.0),  # small nuclei: ~174 of them fill a 256 px field the way the set's do
    clustering=0.5,  # half the cells against another: touching and overlapping clumps
    brightness=(0.5, 1.0), background=(0.02, 0.08), gain=(0.8, 1.2),
    gradient=0.2,  # a mild fall-off of the light across the field
    defocus=0.1,  # a few cells out of the focal plane
)
_WHITE = 1.6  # intensity mapped to 255: overlaps (about 2 x a cell) saturate, as bright clumps do in 8-bit files


def make_vgg_like(seed: int | np.random.SeedSequence = 0) -> tuple[np.ndarray, np.ndarray]:
    """One VGG-cells-like pair: the RGB cell image and the RGB annotation image, both (256, 256, 3) uint8.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        The same seed gives the same pair.

    Returns
    -------
    cell : (256, 256, 3) uint8 ndarray
        Cells in the blue channel (index 2); red and green are 0.
    dots : (256, 256, 3) uint8 ndarray
        (255, 0, 0) at every cell centre (rounded to a pixel), black elsewhere.

    Examples
    --------
    >>> cell, dots = make_vgg_like(0)
    >>> cell.shape, cell.dtype, int(cell[..., :2].max()), int(cell[..., 2].max()) > 100
    ((256, 256, 3), dtype('uint8'), 0, True)
    >>> n = int((dots[..., 0] == 255).sum()); bool(64 <= n <= 284), int(dots[..., 1:].max())
    (True, 0)
    """
    drawn = make_cell_image(VGG_LIKE, seed)
    cell = np.zeros((VGG_SIDE, VGG_SIDE, 3), np.uint8)
    cell[..., 2] = np.round(np.clip(drawn.image / _WHITE, 0.0, 1.0) * 255).astype(np.uint8)
    rows, cols = np.clip(np.round(drawn.dots).astype(int), 0, VGG_SIDE - 1).T
    dots = np.zeros_like(cell)
    dots[rows, cols, 0] = 255
    return cell, dots


def write_vgg_like(root, n: int = 200, seed: int = 0) -> Path:
    """Write ``n`` pairs ``NNNcell.png`` + ``NNNdots.png`` (numbers 001..n) in the VGG cells layout under ``root``.

    Image ``k`` uses the ``k``-th child of ``SeedSequence(seed)``, so it does not depend on ``n``. Existing files
    of the same names are overwritten.

    Parameters
    ----------
    root : path
        Folder to write into (created).
    n : int
        Number of pairs, 1..999; the protocol needs 200 (the last 100 are its test set).
    seed : int

    Returns
    -------
    pathlib.Path
        ``root``, ready for :func:`course_lib.counting.datasets.read_vgg_cells`.
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or not 1 <= n <= 999:
        raise ValueError(f"`n` must be an int in 1..999 (three-digit file numbers), got {n!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for number, child in enumerate(np.random.SeedSequence(seed).spawn(int(n)), start=1):
        cell, dots = make_vgg_like(child)
        Image.fromarray(cell).save(root / f"{number:03d}cell.png")
        Image.fromarray(dots).save(root / f"{number:03d}dots.png")
    return root
