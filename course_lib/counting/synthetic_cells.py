r"""Synthetic fluorescence cell images with dot annotations: the data of the counting chapter.

A proliferation assay stains the nuclei of the cells in each well with a fluorescent dye and images one
field per well; a count per image is the measurement. This generator draws such fields with the truth
known: the centre of every cell (a *dot*, all a counting net needs) and an instance label map (what a
segmentation pipeline would need).

How an image is drawn
---------------------
1. Cells are ellipses (long/short axis ratio up to ``aspect``). A share ``clustering`` of them is placed
   against an earlier cell, overlapping it by up to ``0.4 * clustering`` of the summed radii — colonies
   grow that way. The others keep a clear gap of ``gap`` px to every cell.
2. Fluorescence adds up, so each cell adds :math:`b_k (1 - 0.3 \rho^2)` (:math:`\rho` = normalised
   radius, 0 at the centre and 1 on the outline) times a faint chromatin texture; overlaps are brighter.
   A share ``defocus`` of the cells lies out of the focal plane and is blurred much more.
3. Optics blur (``blur``), unbound dye / autofluorescence background, an illumination that falls off across
   the field (``gradient``), a per-image exposure and stain strength (``gain``) and sensor noise:

   .. math::  I = g \, L(x) \, (\mathrm{cells} * G_\sigma + \mathrm{background}) + \varepsilon

Dots are the ellipse centres, (row, col) in pixels, always inside the image; cells near the border are cut
by it, as in a real field of view, and still count. Instance labels give each pixel to the cell whose
outline is relatively closest, so overlapping cells are split along a line between their centres.

Three presets carry the chapter's lesson that a classic pipeline tuned on easy images breaks on new ones:

* ``EASY``: well separated cells, even light — threshold + watershed works.
* ``CLUSTERED``: the same cells, but most of them in touching, overlapping colonies.
* ``SHIFTED``: the same cells under another lamp and stain — illumination gradient, higher background, a
  different exposure, many dim cells and some out of focus. A person still counts them easily. With the same
  seed, ``SHIFTED`` shows exactly the cells of ``EASY`` (same dots and labels), only imaged differently.

A fourth, ``OTHER_LAMP`` (another lamp, milder fall-off, no dim or defocused cells), is for validation only: what
must survive a change of microscope, such as the range of a lighting augmentation, is chosen on it, so that
``SHIFTED`` stays a test of a lamp no choice has seen.

Everything comes from one ``numpy.random.Generator``: the same seed gives the same image.

References
----------
Lempitsky & Zisserman (2010). Learning to count objects in images. NeurIPS — dot annotations, synthetic
fluorescence cells (the "VGG cells" data set).
Lehmussola et al. (2007). Computational framework for simulating fluorescence microscope images with cell
populations. IEEE TMI 26(7) — the SIMCEP simulator whose ingredients (clusters, blur, uneven illumination,
noise) this follows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import ndimage

__all__ = ["CellConfig", "CellImage", "make_cell_image", "cell_dataset", "EASY", "CLUSTERED", "SHIFTED",
           "OTHER_LAMP"]


@dataclass(frozen=True)
class CellConfig:
    size: int = 128  # image side in px; 128 px shows a few dozen nuclei, like a 10x field binned down
    count: tuple[int, int] = (10, 30)  # cells per image, drawn uniformly (inclusive); (n, n) for exactly n
    radius: tuple[float, float] = (4.0, 6.0)  # mean cell radius in px, drawn uniformly per cell
    aspect: float = 1.3  # largest long/short axis ratio: nuclei are round-ish, not circles
    clustering: float = 0.0  # share of cells placed against an earlier one; also scales how far they overlap
    gap: float = 2.0  # free distance (px) that cells not placed in a cluster keep to every other cell
    blur: float = 1.0  # Gaussian point-spread sigma in px (optics)
    texture: float = 0.15  # relative chromatin texture inside nuclei
    brightness: tuple[float, float] = (0.7, 1.0)  # per-cell brightness: stain uptake varies; a low end = dim cells
    background: tuple[float, float] = (0.03, 0.06)  # unbound dye / autofluorescence level, drawn per image
    gain: tuple[float, float] = (0.9, 1.1)  # per-image exposure x stain strength
    gradient: float = 0.0  # illumination falls off across the field: 0.5 means x0.5 in one corner, x1.5 opposite
    defocus: float = 0.0  # share of cells out of the focal plane (blurred by `defocus_blur`)
    defocus_blur: float = 2.5  # extra Gaussian sigma (px) of out-of-focus cells
    noise: float = 0.03  # std of the Gaussian sensor noise, in units of a typical cell's brightness
    max_tries: int = 50  # placement attempts per cell before it is squeezed in (see `make_cell_image`)


EASY = CellConfig(clustering=0.15)  # a few cells just touch: the watershed has work to do, and manages it
CLUSTERED = replace(EASY, clustering=0.7)
SHIFTED = replace(EASY, brightness=(0.2, 1.0), background=(0.1, 0.2), gain=(0.6, 1.4), gradient=0.6, defocus=0.25)
# a third microscope, for validation only: another lamp (brighter background, a milder fall-off), in focus, the same
# cells; choices that must work under a new lamp (the lighting augmentation) are made on it, never on SHIFTED
OTHER_LAMP = replace(EASY, background=(0.05, 0.12), gain=(0.7, 1.3), gradient=0.3)


class CellImage(NamedTuple):
    image: np.ndarray  # (S, S) float32 fluorescence intensity
    dots: np.ndarray  # (N, 2) float32 (row, col) cell centres, inside [0, S - 1]
    labels: np.ndarray  # (S, S) int32, 0 background, k + 1 = cell k (the k-th dot)


def _check_range(name: str, value, low: float, high: float = np.inf) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ValueError(f"`{name}` must be (low, high) with {low} <= low <= high <= {high}, got {value}")


def _validate(config: CellConfig) -> None:
    if not isinstance(config, CellConfig):
        raise TypeError(f"`config` must be a CellConfig, got {type(config).__name__}")
    _check_range("count", config.count, 0)
    _check_range("radius", config.radius, 1.0)
    if not isinstance(config.size, int) or config.size < 4 * config.radius[1]:
        raise ValueError(f"`size` must be an int >= 4 x the largest radius ({config.radius[1]}), got {config.size!r}")
    _check_range("brightness", config.brightness, 0.0)
    _check_range("background", config.background, 0.0)
    _check_range("gain", config.gain, 1e-6)
    for name in ("clustering", "defocus"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"`{name}` must lie in [0, 1], got {getattr(config, name)}")
    if not 0.0 <= config.gradient < 1.0:
        raise ValueError(f"`gradient` must lie in [0, 1) to keep the illumination positive, got {config.gradient}")
    if config.aspect < 1.0:
        raise ValueError(f"`aspect` must be >= 1, got {config.aspect}")
    for name in ("gap", "blur", "texture", "defocus_blur", "noise"):
        if getattr(config, name) < 0:
            raise ValueError(f"`{name}` must be >= 0, got {getattr(config, name)}")
    if config.max_tries < 1:
        raise ValueError(f"`max_tries` must be >= 1, got {config.max_tries}")


def _find_spot(rng, config: CellConfig, how: str, others: np.ndarray, reach: np.ndarray, overlap: float, tries: int):
    """A centre (2,) for a new cell placed ``how``, or None after ``tries`` failed attempts.

    ``others`` (M, 2) are the placed centres, ``reach`` (M,) the centre distances at which the new cell would
    just touch each of them.
    """
    hi = config.size - 1.0
    for _ in range(tries):
        if how == "cluster":  # against a random earlier cell, overlapping it by up to `overlap`
            j = int(rng.integers(len(others)))
            angle = rng.uniform(0, 2 * np.pi)
            c = others[j] + reach[j] * rng.uniform(1 - overlap, 1.0) * np.array([np.sin(angle), np.cos(angle)])
            need = reach * (1 - overlap)
        else:  # "apart": a clear gap to every cell; "squeeze": overlap no more than a cluster member may
            c = rng.uniform(0.0, hi, size=2)
            need = reach + config.gap if how == "apart" else 0.6 * reach
        if (0 <= c).all() and (c <= hi).all() and (np.hypot(*(others - c).T) >= need).all():
            return c
    return None


def _place_cells(rng: np.random.Generator, config: CellConfig, n: int, radii: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Centres (M, 2) of up to ``n`` cells, and which of the ``radii`` (M,) they belong to."""
    overlap = 0.4 * config.clustering  # largest overlap of a cluster member, as a share of the summed radii
    centres = np.empty((n, 2))
    kept = []  # indices of the radii whose cell found a place
    for k in range(n):
        others, reach = centres[: len(kept)], radii[kept] + radii[k]  # (M, 2), (M,)
        how = "cluster" if len(kept) > 0 and rng.random() < config.clustering else "apart"
        c = _find_spot(rng, config, how, others, reach, overlap, config.max_tries)
        if c is None:  # a crowded field: squeeze the cell in, as cells touch in a confluent well
            c = _find_spot(rng, config, "squeeze", others, reach, overlap, 4 * config.max_tries)
        if c is not None:
            centres[len(kept)] = c
            kept.append(k)
    return centres[: len(kept)], np.asarray(kept, dtype=np.int64)


def _render(layer, rho_best, labels, ys, xs, cy, cx, a, b, theta, value, label):
    """Add one elliptical cell to ``layer`` and claim the pixels where it is the relatively closest cell (in place)."""
    s = layer.shape[0]
    y0, y1 = max(0, int(cy - a) - 1), min(s, int(cy + a) + 2)  # bounding box of the ellipse
    x0, x1 = max(0, int(cx - a) - 1), min(s, int(cx + a) + 2)
    dy, dx = ys[y0:y1, None] - cy, xs[None, x0:x1] - cx  # (h, 1), (1, w)
    cos, sin = np.cos(theta), np.sin(theta)
    rho2 = ((dy * cos + dx * sin) / a) ** 2 + ((dx * cos - dy * sin) / b) ** 2  # (h, w), 1 on the outline
    inside = rho2 <= 1.0
    layer[y0:y1, x0:x1] += np.where(inside, value * (1.0 - 0.3 * rho2), 0.0)
    best = rho_best[y0:y1, x0:x1]  # views: writing into them writes into the full arrays
    win = inside & (rho2 < best)
    best[win] = rho2[win]
    labels[y0:y1, x0:x1][win] = label


def make_cell_image(config: CellConfig = EASY, seed: int | np.random.Generator | np.random.SeedSequence = 0
                    ) -> CellImage:
    """Draw one fluorescence field of cells with its dot annotations and instance labels.

    Parameters
    ----------
    config : CellConfig
        The knobs; presets ``EASY``, ``CLUSTERED``, ``SHIFTED``.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Anything ``numpy.random.default_rng`` accepts; a Generator is used (and advanced) as is.

    Returns
    -------
    CellImage
        ``image`` (S, S) float32, about ``background`` outside cells and about 1 on a typical in-focus cell
        under even light (not clipped: noise can make it slightly negative). ``dots`` (N, 2) float32 (row, col)
        centres inside ``[0, S - 1]``. ``labels`` (S, S) int32, 0 background and ``k + 1`` on cell ``k``.
        N is drawn from ``count``; in a field too crowded for even touching cells a cell is left out, so
        ``len(dots)`` is the truth, not ``count``.

    Raises
    ------
    ValueError, TypeError
        A config value out of range, or not a ``CellConfig``.

    Examples
    --------
    >>> cells = make_cell_image(EASY, seed=0)
    >>> cells.image.shape, cells.image.dtype, cells.labels.dtype
    ((128, 128), dtype('float32'), dtype('int32'))
    >>> n = len(cells.dots); bool(10 <= n <= 30), int(cells.labels.max()) == n
    (True, True)
    """
    _validate(config)
    rng = np.random.default_rng(seed)
    s = config.size
    n = int(rng.integers(config.count[0], config.count[1] + 1))
    radii = rng.uniform(*config.radius, size=n)
    centres, kept = _place_cells(rng, config, n, radii)
    m = len(kept)
    ratio = np.sqrt(rng.uniform(1.0, config.aspect, size=m))
    a, b = radii[kept] * ratio, radii[kept] / ratio  # semi-axes of the same area as the circle of that radius
    theta = rng.uniform(0, np.pi, size=m)
    value = rng.uniform(*config.brightness, size=m)
    out_of_focus = rng.random(m) < config.defocus

    ys = np.arange(s, dtype=np.float64)
    sharp, soft = np.zeros((s, s)), np.zeros((s, s))
    rho_best, labels = np.full((s, s), np.inf), np.zeros((s, s), np.int32)
    for k in range(m):
        _render(soft if out_of_focus[k] else sharp, rho_best, labels, ys, ys, *centres[k], a[k], b[k], theta[k],
                value[k], k + 1)
    if config.texture > 0:  # chromatin: speckle inside the nuclei, smoothed by the optics below
        sharp *= 1.0 + config.texture * rng.standard_normal((s, s))
    cells = ndimage.gaussian_filter(sharp, config.blur) if config.blur > 0 else sharp
    if out_of_focus.any():
        cells += ndimage.gaussian_filter(soft, np.hypot(config.blur, config.defocus_blur))

    angle = rng.uniform(0, 2 * np.pi)  # direction in which the lamp's light falls off
    ramp = (np.cos(angle) * (ys[None, :] - (s - 1) / 2) + np.sin(angle) * (ys[:, None] - (s - 1) / 2))
    illumination = 1.0 + config.gradient * ramp / ((s - 1) / np.sqrt(2))  # (S, S), in [1 - g, 1 + g]
    gain, background = rng.uniform(*config.gain), rng.uniform(*config.background)
    image = gain * illumination * (cells + background) + config.noise * rng.standard_normal((s, s))
    return CellImage(image.astype(np.float32), centres.astype(np.float32), labels)


def cell_dataset(n: int, config: CellConfig = EASY, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw ``n`` images with :func:`make_cell_image`; image ``i`` uses the ``i``-th child of ``SeedSequence(seed)``.

    Image ``i`` does not depend on ``n``: ``cell_dataset(5)`` starts with the 3 images of ``cell_dataset(3)``.

    Returns
    -------
    images : (n, S, S) float32 ndarray
    dots : list of n (N_i, 2) float32 ndarrays
        (row, col) cell centres of each image; ``len(dots[i])`` is its true count.

    Examples
    --------
    >>> images, dots = cell_dataset(4, CLUSTERED, seed=1)
    >>> images.shape, len(dots), dots[0].shape[1]
    ((4, 128, 128), 4, 2)
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    cells = [make_cell_image(config, child) for child in np.random.SeedSequence(seed).spawn(int(n))]
    return np.stack([c.image for c in cells]), [c.dots for c in cells]
