"""Synthetic rare-foreground segmentation: small faint lesions in textured grey images.

The task the chapter uses to show why Dice helps under class imbalance: lesions cover about
1 % of the pixels (``fg_fraction``), so a net that predicts "background everywhere" is 99 %
accurate and has Dice 0. Images have a smooth tissue-like background (low-frequency noise),
vessel-like bright lines as distractors, and sensor noise; lesions are blurred discs only a
little brighter than their surroundings.

Everything comes from one ``numpy.random.Generator(seed)``: the same seed gives the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import TensorDataset

__all__ = ["LesionConfig", "make_lesion_images", "lesion_dataset"]


@dataclass(frozen=True)
class LesionConfig:
    size: int = 64  # image side in pixels
    fg_fraction: float = 0.01  # expected share of lesion pixels; sets how many lesions are drawn
    radius: tuple[float, float] = (2.0, 4.0)  # lesion radius range in pixels
    contrast: float = 0.35  # lesion brightness above background, in units of background std
    noise: float = 0.15  # sensor noise std
    distractors: int = 2  # bright vessel-like lines per image (never labelled)


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return field / (field.std() + 1e-8)


def make_lesion_images(n: int, config: LesionConfig = LesionConfig(), seed: int = 0):
    """Generate ``n`` images and lesion masks.

    Parameters
    ----------
    n : int
        Number of images.
    config : LesionConfig
    seed : int

    Returns
    -------
    images : (n, 1, S, S) float32 ndarray
        Standardised intensities (mean 0, std about 1 per image).
    masks : (n, 1, S, S) float32 ndarray of {0, 1}

    Examples
    --------
    >>> x, y = make_lesion_images(4, seed=0)
    >>> x.shape, y.shape, bool(0 < y.mean() < 0.05)
    ((4, 1, 64, 64), (4, 1, 64, 64), True)
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    if not 0 < config.fg_fraction < 0.5:
        raise ValueError(f"`fg_fraction` must lie in (0, 0.5), got {config.fg_fraction}")
    rng = np.random.default_rng(seed)
    s = config.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    mean_area = np.pi * np.mean(config.radius) ** 2
    lesions_per_image = config.fg_fraction * s * s / mean_area
    images = np.empty((n, 1, s, s), np.float32)
    masks = np.zeros((n, 1, s, s), np.float32)
    for i in range(n):
        background = 0.8 * _smooth_noise(rng, s, 6.0) + 0.3 * _smooth_noise(rng, s, 1.5)
        for _ in range(config.distractors):  # thin bright curves, like vessels
            angle, offset = rng.uniform(0, np.pi), rng.uniform(-s / 3, s / 3)
            dist = np.abs((xx - s / 2) * np.sin(angle) - (yy - s / 2) * np.cos(angle) - offset)
            background += 0.6 * np.exp(-(dist**2) / 2.0)
        lesion = np.zeros((s, s), np.float32)
        for _ in range(rng.poisson(lesions_per_image)):
            r = rng.uniform(*config.radius)
            cy, cx = rng.uniform(r, s - r, size=2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
            masks[i, 0][disc] = 1.0
            lesion = np.maximum(lesion, disc.astype(np.float32))
        lesion = ndimage.gaussian_filter(lesion, 0.8)  # soft edges
        image = background + config.contrast * 3.0 * lesion + config.noise * rng.standard_normal((s, s))
        images[i, 0] = (image - image.mean()) / (image.std() + 1e-8)
    return images, masks


def lesion_dataset(n: int, config: LesionConfig = LesionConfig(), seed: int = 0) -> TensorDataset:
    """:func:`make_lesion_images` as a ``TensorDataset`` of ``(image, mask)`` float tensors."""
    images, masks = make_lesion_images(n, config, seed)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(masks))
