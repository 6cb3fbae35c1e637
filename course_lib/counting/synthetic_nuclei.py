r"""Synthetic H&E nuclei of three classes with a dot per nucleus: data for counting *and* classifying.

The lecture's histology counting task (Bidart et al. 2018) annotates each nucleus by a dot and a class,
and a net predicts one density map per class. Here the classes differ the way a pathologist tells them apart:

=====================  ==========  =====================  ===============================================
class                  size        shape                  chromatin (colour)
=====================  ==========  =====================  ===============================================
lymphocyte             small       round, smooth          dense, dark blue-purple throughout
normal_epithelial      medium      oval, regular          even, medium purple; pink cytoplasm around it
malignant_epithelial   large,      irregular outline,     *vesicular*: pale centre, dark rim (membrane),
                       variable    varies between nuclei  1–3 dark nucleoli; pink cytoplasm around it
=====================  ==========  =====================  ===============================================

How an image is drawn
---------------------
1. The class mix of an image is drawn from a Dirichlet distribution (``mix_concentration``; small values
   give images dominated by one class), then each nucleus's class from that mix. Nuclei do not overlap.
2. Each nucleus is an ellipse whose outline radius is modulated by a few random harmonics
   (irregular outlines for malignant nuclei), painted into a *hematoxylin* concentration map with the class's
   chromatin pattern; epithelial cells also get a halo of cytoplasm in the *eosin* map.
3. Stroma is eosin with a fibrous, direction-changing texture (collagen).
4. Light through the section (Beer–Lambert): :math:`I = I_0 \exp(-(c_H\,\mathbf{h} + c_E\,\mathbf{e}))`
   with the Macenko reference stain vectors, per-image stain and lighting jitter (as in
   :mod:`course_lib.histology.synthetic_tiles`), blur and noise.

Dots are nucleus centres (row, col), inside the image; nuclei near the border are cut by it and still count.
Everything comes from one ``numpy.random.Generator``: the same seed gives the same image.

References
----------
Bidart et al. (2018). Localization and classification of cell nuclei in post-neoadjuvant breast cancer
surgical specimen using fully convolutional networks. SPIE Medical Imaging — the lecture's three classes.
Macenko et al. (2009). A method for normalizing histology slides for quantitative analysis. ISBI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from course_lib.data.textures import fibre_texture

__all__ = ["CLASSES", "NucleiConfig", "NucleiImage", "make_nuclei_image", "nuclei_dataset"]

CLASSES = ("lymphocyte", "normal_epithelial", "malignant_epithelial")

# Optical density of one unit of each stain, (R, G, B), unit length (Macenko et al. reference vectors).
HEMATOXYLIN = np.array([0.5626, 0.7201, 0.4062])
EOSIN = np.array([0.2159, 0.8012, 0.5581])

# Morphology per class (radii in px at scale 1): what tells the classes apart.
MORPHOLOGY = (
    # lymphocyte: small, round, smooth, uniformly dense chromatin, no cytoplasm to speak of
    dict(radius=(2.5, 3.5), aspect=1.1, wobble=0.03, darkness=1.5, rim=0.0, nucleoli=(0, 0), cytoplasm=0.0),
    # normal epithelial: medium, oval, regular, even chromatin, a rim of cytoplasm
    dict(radius=(4.0, 5.0), aspect=1.6, wobble=0.05, darkness=0.85, rim=0.15, nucleoli=(0, 0), cytoplasm=1.8),
    # malignant epithelial: large and variable (pleomorphic), irregular, pale (vesicular) with a dark rim and nucleoli
    dict(radius=(5.5, 9.0), aspect=1.6, wobble=0.25, darkness=0.4, rim=0.8, nucleoli=(1, 3), cytoplasm=1.7),
)


@dataclass(frozen=True)
class NucleiConfig:
    size: int = 128  # tile side in px (about 0.5 um/px: a lymphocyte is ~3 px in radius)
    count: tuple[int, int] = (15, 35)  # nuclei per image, drawn uniformly (inclusive); fewer if no room
    mix_concentration: float = 1.0  # Dirichlet concentration of the class mix: 1 = any mix, 100 = always ~1/3 each
    scale: float = 1.0  # multiplies every radius (another magnification)
    gap: float = 1.0  # smallest free distance (px) between two nuclei
    blur: float = 0.6  # Gaussian blur sigma in px (optics)
    stain_jitter: float = 0.05  # HED jitter of stain amounts and vectors (Tellez et al.: 0.05 light, 0.2 strong)
    lighting_jitter: float = 0.05  # lamp gain, colour cast and illumination ramp
    noise: float = 0.01  # std of the sensor noise on [0, 1] intensities
    max_tries: int = 50  # placement attempts per nucleus before it is skipped


class NucleiImage(NamedTuple):
    image: np.ndarray  # (S, S, 3) float32 RGB in [0, 1]
    dots: np.ndarray  # (N, 2) float32 (row, col) nucleus centres
    classes: np.ndarray  # (N,) int64 index into CLASSES


def _validate(config: NucleiConfig) -> None:
    if not isinstance(config, NucleiConfig):
        raise TypeError(f"`config` must be a NucleiConfig, got {type(config).__name__}")
    if len(config.count) != 2 or not 0 <= config.count[0] <= config.count[1]:
        raise ValueError(f"`count` must be (low, high) with 0 <= low <= high, got {config.count}")
    if config.scale <= 0:
        raise ValueError(f"`scale` must be > 0, got {config.scale}")
    largest = max(m["radius"][1] for m in MORPHOLOGY) * config.scale
    if not isinstance(config.size, int) or config.size < 4 * largest:
        raise ValueError(f"`size` must be an int >= 4 x the largest radius ({largest}), got {config.size!r}")
    if config.mix_concentration <= 0:
        raise ValueError(f"`mix_concentration` must be > 0, got {config.mix_concentration}")
    for name in ("gap", "blur", "stain_jitter", "lighting_jitter", "noise"):
        if getattr(config, name) < 0:
            raise ValueError(f"`{name}` must be >= 0, got {getattr(config, name)}")


def _draw_nucleus(rng, hema, eosin, ys, cy, cx, style, scale) -> None:
    """Paint one nucleus (and its cytoplasm) into the concentration maps ``hema`` and ``eosin``, in place."""
    s = hema.shape[0]
    r = rng.uniform(*style["radius"]) * scale
    ratio = np.sqrt(rng.uniform(1.0, style["aspect"]))
    a, b, theta = r * ratio, r / ratio, rng.uniform(0, np.pi)
    harmonics = rng.uniform(-1, 1, size=3) * style["wobble"] / 2, rng.uniform(0, 2 * np.pi, size=3)
    reach = a * (1 + 1.5 * style["wobble"]) * max(1.0, style["cytoplasm"])
    y0, y1 = max(0, int(cy - reach) - 1), min(s, int(cy + reach) + 2)
    x0, x1 = max(0, int(cx - reach) - 1), min(s, int(cx + reach) + 2)
    dy, dx = ys[y0:y1, None] - cy, ys[None, x0:x1] - cx  # (h, 1), (1, w)
    u, v = dy * np.cos(theta) + dx * np.sin(theta), dx * np.cos(theta) - dy * np.sin(theta)
    angle = np.arctan2(v, u)
    bumps = 1 + sum(amp * np.cos(k * angle + ph) for k, amp, ph in zip((2, 3, 5), *harmonics, strict=True))
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2) / bumps  # (h, w): 0 at the centre, 1 on the outline
    if style["cytoplasm"] > 0:  # cytoplasm: more eosin in a halo around epithelial nuclei
        halo = np.clip(style["cytoplasm"] - rho, 0, 0.3) / 0.3  # (h, w), 1 inside the cell, soft edge
        eosin[y0:y1, x0:x1] = np.maximum(eosin[y0:y1, x0:x1], 0.75 * halo)
    # chromatin: `darkness` in the centre rising to `darkness + rim` at the outline (vesicular nuclei)
    value = np.where(rho <= 1.0, style["darkness"] + style["rim"] * rho**6, 0.0)
    for _ in range(rng.integers(style["nucleoli"][0], style["nucleoli"][1] + 1)):
        ny, nx = rng.uniform(-0.35, 0.35, size=2) * r  # nucleoli sit near the middle of the nucleus
        value = np.where((np.hypot(dy - ny, dx - nx) <= rng.uniform(0.8, 1.3) * scale) & (rho <= 1), 1.5, value)
    hema[y0:y1, x0:x1] = np.maximum(hema[y0:y1, x0:x1], value)


def make_nuclei_image(config: NucleiConfig = NucleiConfig(), seed: int | np.random.Generator = 0) -> NucleiImage:
    """Draw one H&E-like tile of lymphocytes, normal and malignant epithelial nuclei with a dot and class each.

    Parameters
    ----------
    config : NucleiConfig
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Anything ``numpy.random.default_rng`` accepts; a Generator is used (and advanced) as is.

    Returns
    -------
    NucleiImage
        ``image`` (S, S, 3) float32 RGB in [0, 1]; ``dots`` (N, 2) float32 (row, col) centres inside
        ``[0, S - 1]``; ``classes`` (N,) int64 indices into ``CLASSES``. N is drawn from ``count``; a nucleus
        that finds no free place is left out, so ``len(dots)`` is the truth.

    Raises
    ------
    ValueError, TypeError
        A config value out of range, or not a ``NucleiConfig``.

    Examples
    --------
    >>> tile = make_nuclei_image(seed=0)
    >>> tile.image.shape, tile.image.dtype, tile.dots.shape[1], tile.classes.dtype
    ((128, 128, 3), dtype('float32'), 2, dtype('int64'))
    >>> bool(set(tile.classes.tolist()) <= {0, 1, 2})
    True
    """
    _validate(config)
    rng = np.random.default_rng(seed)
    s = config.size
    ys = np.arange(s, dtype=np.float64)
    mix = rng.dirichlet(np.full(len(CLASSES), config.mix_concentration))
    wanted = rng.choice(len(CLASSES), size=int(rng.integers(config.count[0], config.count[1] + 1)), p=mix)

    # Place every nucleus with a clear gap; the bound of its radius is known before it is drawn.
    bound = np.array([m["radius"][1] * (1 + 1.5 * m["wobble"]) * np.sqrt(m["aspect"]) for m in MORPHOLOGY])
    bound = bound * config.scale
    centres, classes, reaches = [], [], []
    for k in wanted:
        for _ in range(config.max_tries):
            c = rng.uniform(0.0, s - 1.0, size=2)
            if all(np.hypot(*(c - p)) >= bound[k] + r + config.gap for p, r in zip(centres, reaches, strict=True)):
                centres.append(c)
                classes.append(int(k))
                reaches.append(bound[k])
                break

    stroma = 0.5 + 0.15 * fibre_texture(rng, s, streak=5.0)
    hema, cytoplasm = np.zeros((s, s)), np.zeros((s, s))
    for (cy, cx), k in zip(centres, classes, strict=True):
        _draw_nucleus(rng, hema, cytoplasm, ys, cy, cx, MORPHOLOGY[k], config.scale)
    speckle = ndimage.gaussian_filter(rng.standard_normal((s, s)), 0.7)
    hema = hema * np.clip(1.0 + 0.3 * speckle / speckle.std(), 0.4, 1.6) + 0.05  # coarse chromatin, faint counterstain
    eosin = np.clip(np.maximum(stroma, cytoplasm), 0.05, None)
    hema, eosin = ndimage.gaussian_filter(hema, config.blur), ndimage.gaussian_filter(eosin, config.blur)

    # Stain variation (HED jitter of amounts and colour vectors), then light through the section (Beer-Lambert).
    sj = config.stain_jitter
    alpha, beta = rng.uniform(1 - sj, 1 + sj, size=2), rng.uniform(-sj, sj, size=2)
    h_vec, e_vec = np.abs(HEMATOXYLIN + sj * rng.standard_normal(3)), np.abs(EOSIN + sj * rng.standard_normal(3))
    h_vec, e_vec = h_vec / np.linalg.norm(h_vec), e_vec / np.linalg.norm(e_vec)
    c_h, c_e = np.clip(alpha[0] * hema + beta[0], 0, None), np.clip(alpha[1] * eosin + beta[1], 0, None)
    optical_density = c_h[..., None] * h_vec + c_e[..., None] * e_vec + 0.03  # (S, S, 1) * (3,) -> (S, S, 3)
    lj = config.lighting_jitter
    gain = np.exp(lj * rng.standard_normal()) * (1 + lj / 3 * rng.standard_normal(3))  # (3,) lamp and colour cast
    angle = rng.uniform(0, 2 * np.pi)
    ramp = 1 + 2 * lj * (np.cos(angle) * (ys[None, :] / s - 0.5) + np.sin(angle) * (ys[:, None] / s - 0.5))
    image = np.exp(-optical_density) * gain * ramp[..., None] + config.noise * rng.standard_normal((s, s, 3))
    dots = np.asarray(centres, np.float32).reshape(-1, 2)
    return NucleiImage(np.clip(image, 0.0, 1.0).astype(np.float32), dots, np.asarray(classes, np.int64))


def nuclei_dataset(n: int, config: NucleiConfig = NucleiConfig(), seed: int = 0
                   ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Draw ``n`` tiles with :func:`make_nuclei_image`; tile ``i`` uses the ``i``-th child of ``SeedSequence(seed)``.

    Returns
    -------
    images : (n, S, S, 3) float32 ndarray in [0, 1]
    dots : list of n (N_i, 2) float32 ndarrays
    classes : list of n (N_i,) int64 ndarrays

    Examples
    --------
    >>> images, dots, classes = nuclei_dataset(3, seed=1)
    >>> images.shape, [len(d) == len(c) for d, c in zip(dots, classes)]
    ((3, 128, 128, 3), [True, True, True])
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    tiles = [make_nuclei_image(config, child) for child in np.random.SeedSequence(seed).spawn(int(n))]
    return np.stack([t.image for t in tiles]), [t.dots for t in tiles], [t.classes for t in tiles]
