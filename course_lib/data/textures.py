"""Tissue textures shared by the synthetic generators of several chapters.

Stroma in H&E is collagen: long fibres that run in bundles, here along the rows, there along the columns. Both the
histology tiles (chapter 2) and the nuclei of the counting chapter (chapter 3) paint it with :func:`fibre_texture`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["fibre_texture"]


def fibre_texture(rng: np.random.Generator, size: int, *, streak: float = 5.0,
                  bundle: float | None = None) -> np.ndarray:
    """Collagen-like texture: streaks along rows and along columns, blended by a slowly varying weight.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the noise (three ``(size, size)`` draws, in a fixed order).
    size : int
        Side ``S`` of the square texture.
    streak : float
        Length (Gaussian sigma, pixels) of a fibre along its direction; across it the sigma is 0.8 px.
    bundle : float, optional
        Size (sigma, pixels) of the regions where one direction dominates. Default ``size / 8``.

    Returns
    -------
    (S, S) ndarray of float64
        Texture with unit standard deviation (mean near 0).

    Examples
    --------
    >>> texture = fibre_texture(np.random.default_rng(0), 64)
    >>> texture.shape, round(float(texture.std()), 6)
    ((64, 64), 1.0)
    """
    if not isinstance(size, (int, np.integer)) or size < 4:
        raise ValueError(f"`size` must be an int >= 4, got {size!r}")
    if streak <= 0:
        raise ValueError(f"`streak` must be > 0, got {streak}")
    bundle = size / 8 if bundle is None else bundle
    if bundle <= 0:
        raise ValueError(f"`bundle` must be > 0, got {bundle}")
    along_rows = ndimage.gaussian_filter(rng.standard_normal((size, size)), (0.8, streak))  # (S, S)
    along_cols = ndimage.gaussian_filter(rng.standard_normal((size, size)), (streak, 0.8))  # (S, S)
    weight = ndimage.gaussian_filter(rng.standard_normal((size, size)), bundle)
    weight = 1.0 / (1.0 + np.exp(-weight / (weight.std() + 1e-12)))  # in (0, 1), varies slowly
    fibres = weight * along_rows / along_rows.std() + (1 - weight) * along_cols / along_cols.std()
    return fibres / fibres.std()
