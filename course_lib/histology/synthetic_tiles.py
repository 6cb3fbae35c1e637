r"""Synthetic H&E histology tiles with invasive-ductal-carcinoma-like tumour regions.

A tile is built the way light passes through a stained section (Beer-Lambert law): each pixel
holds a hematoxylin concentration :math:`c_H` (binds DNA: nuclei) and an eosin concentration
:math:`c_E` (binds protein: stroma, cytoplasm), and the transmitted intensity is

.. math::

    I = I_0 \exp\left(-(c_H\,\mathbf{h} + c_E\,\mathbf{e})\right)

with :math:`\mathbf{h}, \mathbf{e}` the stains' optical-density colour vectors (unit RGB vectors;
the reference values of Macenko et al.). What is drawn:

* **stroma**: eosin with a fibrous, direction-changing texture (collagen), pink;
* **fat / gaps**: blobs with almost no stain, white;
* **normal nuclei**: sparse, small, dark ellipses (lymphocytes, fibroblasts), purple;
* **tumour (IDC-like) regions**: smooth blobs covering ``tumour_fraction`` of the tile where nuclei
  are dense, larger and *pleomorphic* (varying size, shape and darkness) — what a pathologist looks for.

Stain variation follows the HED colour augmentation of Tellez et al.: per-tile random scale and shift of
each stain concentration plus a small rotation of the stain vectors; lighting variation is a global gain,
a colour cast of the lamp and a smooth illumination ramp. Labels come from the tumour mask only, so a
model must learn nuclear morphology, not colour.

Everything comes from one ``numpy.random.Generator(seed)``: the same seed gives the same tile.

References
----------
Ruifrok & Johnston (2001). Quantification of histochemical staining by color deconvolution. Anal Quant Cytol Histol.
Macenko et al. (2009). A method for normalizing histology slides for quantitative analysis. ISBI.
Tellez et al. (2019). Quantifying the effects of data augmentation and stain color normalization in convolutional
neural networks for computational pathology. Medical Image Analysis 58.
Cruz-Roa et al. (2014). Automatic detection of invasive ductal carcinoma in whole slide images with CNNs. SPIE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from skimage.draw import ellipse
from torch.utils.data import TensorDataset

from course_lib.data.textures import fibre_texture

__all__ = ["HistologyConfig", "HistologyTile", "make_histology_tile", "patch_labels", "histology_patch_dataset"]

# Optical-density colour of one unit of each stain, (R, G, B), unit length (Macenko et al. reference vectors).
HEMATOXYLIN = np.array([0.5626, 0.7201, 0.4062])
EOSIN = np.array([0.2159, 0.8012, 0.5581])


@dataclass(frozen=True)
class HistologyConfig:
    size: int = 512  # tile side in pixels; 512 px is about 0.25 mm at 20x (0.5 um/px)
    tumour_fraction: float = 0.3  # expected share of tumour pixels; 0 = normal tissue, 0.005 = extreme imbalance
    normal_density: float = 1.5  # normal nuclei per 1000 px^2 of stroma: sparse
    tumour_density: float = 7.0  # tumour nuclei per 1000 px^2 of tumour: crowded, the first thing to see
    nucleus_radius: float = 3.0  # mean radius of a normal nucleus in pixels (a lymphocyte is ~7 um)
    tumour_scale: float = 1.7  # tumour nuclei are this much larger on average (atypia)
    pleomorphism: float = 0.3  # log-std of tumour nucleus size, elongation and darkness: variability is malignancy
    fat_fraction: float = 0.08  # share of white space (fat, tears) outside the tumour
    stain_jitter: float = 0.05  # HED augmentation sigma (Tellez: 0.05 "light", 0.2 "strong"); 0 = reference stain
    lighting_jitter: float = 0.05  # std of lamp gain, colour cast and illumination ramp; 0 = ideal lighting


class HistologyTile(NamedTuple):
    image: np.ndarray  # (S, S, 3) uint8 or float32 in [0, 1]
    mask: np.ndarray  # (S, S) bool, True = tumour
    patch_labels: np.ndarray  # (S // P, S // P) int64 in {0, 1}


def _check_config(config: HistologyConfig) -> None:
    if not isinstance(config, HistologyConfig):
        raise TypeError(f"`config` must be a HistologyConfig, got {type(config).__name__}")
    if not isinstance(config.size, int) or config.size < 16:
        raise ValueError(f"`size` must be an int >= 16, got {config.size!r}")
    if not 0.0 <= config.tumour_fraction <= 0.9:
        raise ValueError(f"`tumour_fraction` must lie in [0, 0.9], got {config.tumour_fraction}")
    if not 0.0 <= config.fat_fraction <= 0.5:
        raise ValueError(f"`fat_fraction` must lie in [0, 0.5], got {config.fat_fraction}")
    for name in ("normal_density", "tumour_density", "nucleus_radius", "tumour_scale", "pleomorphism",
                 "stain_jitter", "lighting_jitter"):
        if getattr(config, name) < 0:
            raise ValueError(f"`{name}` must be >= 0, got {getattr(config, name)}")


def _smooth_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Unit-variance Gaussian random field with correlation length ``sigma`` pixels, (size, size)."""
    step = max(1, int(sigma // 4))  # filter a coarse grid and upsample: same field, 16x less work per step
    coarse = -(-size // step) + 1 if step > 1 else size
    field = ndimage.gaussian_filter(rng.standard_normal((coarse, coarse)), sigma / step, mode="wrap")
    if step > 1:
        field = ndimage.zoom(field, step, order=1)[:size, :size]  # (coarse, coarse) -> (size, size)
    return (field - field.mean()) / (field.std() + 1e-8)


def _draw_nuclei(rng, hema, where, density, radius, scale_std, darkness):
    """Draw ``Poisson(density * area)`` ellipses centred on random pixels of ``where`` into ``hema`` (in place)."""
    candidates = np.flatnonzero(where)  # (K,) flat indices of allowed centres
    n = rng.poisson(density / 1000.0 * candidates.size) if candidates.size else 0
    size = hema.shape[0]
    for flat in rng.choice(candidates, size=n) if n else []:
        cy, cx = divmod(int(flat), size)
        r = radius * np.exp(scale_std * rng.standard_normal())  # lognormal size
        elongation = np.exp(abs(scale_std * rng.standard_normal()) + 0.1)  # >= 1: ellipses, not circles
        rr, cc = ellipse(cy, cx, r * elongation, r / elongation, shape=hema.shape, rotation=rng.uniform(0, np.pi))
        value = darkness * np.exp(0.5 * scale_std * rng.standard_normal())  # chromatin density varies too
        hema[rr, cc] = np.maximum(hema[rr, cc], value)


def patch_labels(mask, patch_size: int, threshold: float = 0.5) -> np.ndarray:
    """Label each non-overlapping ``patch_size`` patch 1 if its tumour fraction exceeds ``threshold``.

    Parameters
    ----------
    mask : (H, W) array_like of bool or {0, 1}
        Pixel tumour mask.
    patch_size : int
        Patch side P; rows/columns beyond the last full patch are ignored.
    threshold : float
        A patch is positive when ``mean(mask[patch]) > threshold`` (strictly).

    Returns
    -------
    (H // P, W // P) int64 ndarray of {0, 1}

    Examples
    --------
    >>> m = np.zeros((4, 4), bool); m[:2, :1] = True   # 2 of the 4 pixels of the top-left 2x2 patch
    >>> patch_labels(m, 2, threshold=0.4)
    array([[1, 0],
           [0, 0]])
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"`mask` must be 2-D (H, W), got shape {mask.shape}")
    if not isinstance(patch_size, int | np.integer) or not 1 <= patch_size <= min(mask.shape):
        raise ValueError(f"`patch_size` must be an int in [1, {min(mask.shape)}] for `mask` of shape {mask.shape}, "
                         f"got {patch_size!r}")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"`threshold` must lie in [0, 1), got {threshold}")
    rows, cols = mask.shape[0] // patch_size, mask.shape[1] // patch_size
    blocks = mask[: rows * patch_size, : cols * patch_size].astype(np.float64)
    fraction = blocks.reshape(rows, patch_size, cols, patch_size).mean(axis=(1, 3))  # (R*P, C*P) -> (R, C)
    return (fraction > threshold).astype(np.int64)


def make_histology_tile(config: HistologyConfig = HistologyConfig(), seed=0, *, patch_size: int = 32,
                        threshold: float = 0.5, dtype: str = "uint8") -> HistologyTile:
    """Generate one H&E-like tile, its tumour mask and its patch labels.

    Parameters
    ----------
    config : HistologyConfig
        Size, tumour fraction, nucleus statistics and stain/lighting variation.
    seed : int or numpy.random.SeedSequence
        Anything ``numpy.random.default_rng`` accepts; the same seed gives the same tile.
    patch_size : int
        Side P of the non-overlapping patches that get a label (see :func:`patch_labels`).
    threshold : float
        A patch is tumour when more than this share of its pixels is tumour.
    dtype : {"uint8", "float32"}
        ``uint8`` in [0, 255] as a scanner writes it, or ``float32`` in [0, 1] for a network.

    Returns
    -------
    HistologyTile
        ``image`` (S, S, 3) RGB, ``mask`` (S, S) bool, ``patch_labels`` (S // P, S // P) int64.

    Examples
    --------
    >>> tile = make_histology_tile(HistologyConfig(size=128, tumour_fraction=0.25), seed=0, patch_size=32)
    >>> tile.image.shape, tile.image.dtype, tile.patch_labels.shape
    ((128, 128, 3), dtype('uint8'), (4, 4))
    >>> bool(0.15 < tile.mask.mean() < 0.35)   # about tumour_fraction of the pixels are tumour
    True
    """
    _check_config(config)
    if dtype not in ("uint8", "float32"):
        raise ValueError(f"`dtype` must be 'uint8' or 'float32', got {dtype!r}")
    rng = np.random.default_rng(seed)
    s = config.size

    # Regions: tumour where a smooth field is in its top `tumour_fraction` quantile, fat elsewhere likewise.
    tumour = np.zeros((s, s), bool)
    if config.tumour_fraction > 0:
        field = _smooth_field(rng, s, s / 10)
        tumour = field > np.quantile(field, 1.0 - config.tumour_fraction)
    fat = np.zeros((s, s), bool)
    if config.fat_fraction > 0:
        fat_field = _smooth_field(rng, s, s / 30)
        fat = ~tumour & (fat_field > np.quantile(fat_field, 1.0 - config.fat_fraction))

    # Eosin: fibrous stroma, paler grainy cytoplasm between tumour cells, almost nothing in fat.
    fibres = fibre_texture(rng, s, streak=6.0, bundle=s / 6)
    eosin = np.clip(0.55 + 0.16 * fibres, 0.08, None)  # (S, S)
    grain = ndimage.gaussian_filter(rng.standard_normal((s, s)), 1.0)
    eosin[tumour] = np.clip(0.45 + 0.5 * grain[tumour] / grain.std() * 0.3, 0.1, None)
    eosin[fat] = 0.02
    eosin = ndimage.gaussian_filter(eosin, 0.7)  # soft tissue/fat borders

    # Hematoxylin: nuclei. Normal ones sparse and small, tumour ones crowded, larger and pleomorphic.
    hema = np.zeros((s, s))
    _draw_nuclei(rng, hema, ~tumour & ~fat, config.normal_density, config.nucleus_radius, 0.15, 1.3)
    _draw_nuclei(rng, hema, tumour, config.tumour_density, config.nucleus_radius * config.tumour_scale,
                 config.pleomorphism, 1.1)
    speckle = ndimage.gaussian_filter(rng.standard_normal((s, s)), 0.8)
    chromatin = 1.0 + 0.25 * speckle / speckle.std()  # coarse chromatin texture, +-25 %
    hema = ndimage.gaussian_filter(hema * np.clip(chromatin, 0.4, 1.6), 0.6) + 0.04  # + faint background stain

    # Stain variation (HED augmentation): c' = alpha * c + beta per stain, and slightly rotated stain vectors.
    sj = config.stain_jitter
    alpha, beta = rng.uniform(1 - sj, 1 + sj, size=2), rng.uniform(-sj, sj, size=2)
    h_vec = np.abs(HEMATOXYLIN + sj * rng.standard_normal(3))
    e_vec = np.abs(EOSIN + sj * rng.standard_normal(3))
    h_vec, e_vec = h_vec / np.linalg.norm(h_vec), e_vec / np.linalg.norm(e_vec)
    c_h = np.clip(alpha[0] * hema + beta[0], 0, None)
    c_e = np.clip(alpha[1] * eosin + beta[1], 0, None)
    optical_density = c_h[..., None] * h_vec + c_e[..., None] * e_vec + 0.03  # (S, S, 1) * (3,) -> (S, S, 3)

    # Lighting: lamp gain, lamp colour cast, smooth illumination ramp across the field of view.
    lj = config.lighting_jitter
    gain = np.exp(lj * rng.standard_normal()) * (1 + lj / 3 * rng.standard_normal(3))  # (3,)
    yy, xx = np.mgrid[0:s, 0:s] / s - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    ramp = 1 + 2 * lj * (np.cos(angle) * xx + np.sin(angle) * yy)  # (S, S)
    image = np.exp(-optical_density) * gain * ramp[..., None] + 0.01 * rng.standard_normal((s, s, 3))
    image = np.clip(image, 0.0, 1.0)
    image = (image * 255).round().astype(np.uint8) if dtype == "uint8" else image.astype(np.float32)
    return HistologyTile(image, tumour, patch_labels(tumour, patch_size, threshold))


def histology_patch_dataset(n_tiles: int, config: HistologyConfig = HistologyConfig(size=256), seed: int = 0, *,
                            patch_size: int = 32, threshold: float = 0.5) -> TensorDataset:
    """Cut ``n_tiles`` synthetic tiles into labelled patches for patch-wise classification.

    Parameters
    ----------
    n_tiles : int
        Number of tiles; tile ``i`` uses the ``i``-th child of ``numpy.random.SeedSequence(seed)``.
    config : HistologyConfig
    seed : int
    patch_size : int
        Patch side P (non-overlapping patches; leftover border pixels are dropped).
    threshold : float
        Tumour-fraction threshold of a positive patch.

    Returns
    -------
    TensorDataset
        ``(patch, label)``: patches (N, 3, P, P) float32 in [0, 1], labels (N,) int64 with
        N = n_tiles * (S // P) ** 2. Use ``label.float()`` for ``BCEWithLogitsLoss``.

    Examples
    --------
    >>> ds = histology_patch_dataset(2, HistologyConfig(size=64), seed=0, patch_size=16)
    >>> len(ds), tuple(ds[0][0].shape), ds.tensors[1].dtype
    (32, (3, 16, 16), torch.int64)
    """
    if not isinstance(n_tiles, int) or n_tiles < 1:
        raise ValueError(f"`n_tiles` must be a positive int, got {n_tiles!r}")
    patches, labels = [], []
    for child in np.random.SeedSequence(seed).spawn(n_tiles):
        tile = make_histology_tile(config, child, patch_size=patch_size, threshold=threshold, dtype="float32")
        rows, cols = tile.patch_labels.shape
        cut = tile.image[: rows * patch_size, : cols * patch_size]
        # (R*P, C*P, 3) -> (R, P, C, P, 3) -> (R, C, 3, P, P) -> (R*C, 3, P, P)
        cut = cut.reshape(rows, patch_size, cols, patch_size, 3).transpose(0, 2, 4, 1, 3)
        patches.append(cut.reshape(-1, 3, patch_size, patch_size))
        labels.append(tile.patch_labels.reshape(-1))
    return TensorDataset(torch.from_numpy(np.concatenate(patches)), torch.from_numpy(np.concatenate(labels)))
