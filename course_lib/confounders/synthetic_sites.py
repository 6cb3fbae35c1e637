"""A synthetic two-site imaging task whose site artefact is confounded with the label at a chosen rate.

Zech et al. (2018) trained pneumonia detectors on chest X-rays from several hospitals: the models read the
hospital (a scanner's intensity profile, the technician's marker, the collimation border) because the hospitals
had different prevalences, and lost accuracy outside them (AUC 0.93 inside, 0.82 outside). This module makes
that situation with every factor under control:

* **The true signal lies inside a known region of interest (ROI).** Every image shows an "organ": a disc of
  radius about ``roi_radius`` px with a smooth random texture. A positive image has a faint lesion (a small
  Gaussian blob) somewhere inside it; a negative image has none. The ROI mask of every image is returned.
* **The site artefact lies outside the ROI.** Images of site 1 differ from site 0 by any of four artefacts:
  ``"marker"`` (a bright square in the top-left corner, like a technician's letter), ``"intensity"`` (a brighter
  background, like another scanner's intensity profile), ``"border"`` (a bright collimation frame) and
  ``"texture"`` (coarser background noise). None of them touches the ROI.
* **The confound is one number.** ``confound`` is the probability that an image's site equals its label
  (site 1 for positives, site 0 for negatives): 0.5 means no correlation, 1.0 means the site gives the label
  away, 0.0 reverses it. Labels are balanced, so ``confound`` is the only link between site and label.

A model trained at ``confound = 0.9`` can be tested with the correlation **kept** (0.9), **removed** (0.5) or
**reversed** (0.1): :func:`shifted_test_sets`. Everything that follows from this construction (the artefact lies
outside the ROI, so a model that looks only inside cannot use it) holds *by construction* of the synthetic data.

Example
-------
>>> data = site_dataset(8, confound=0.9, seed=0)
>>> data.images.shape, data.roi.shape, data.labels.shape, data.sites.shape
((8, 1, 32, 32), (8, 1, 32, 32), (8,), (8,))
>>> bool((data.roi.sum(axis=(1, 2, 3)) > 100).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["ARTEFACTS", "SiteConfig", "SiteData", "site_dataset", "shifted_test_sets", "SHIFTS"]

ARTEFACTS = ("marker", "intensity", "border", "texture")
SHIFTS = ("kept", "removed", "reversed")


@dataclass(frozen=True)
class SiteConfig:
    """How the synthetic images look. Defaults: 32 px images, a lesion a small CNN finds with effort."""

    size: int = 32  # image side in px: small enough for many CPU runs, big enough for a 10 px organ
    roi_radius: float = 10.0  # organ radius in px (jittered by +- roi_jitter)
    roi_jitter: float = 1.5  # organ centre and radius vary per image, so the ROI mask differs per image
    lesion_contrast: float = 0.8  # lesion peak; a small CNN reaches about 0.87 accuracy without a confound
    lesion_sigma: float = 1.6  # lesion width in px
    texture_sd: float = 0.15  # organ texture amplitude (smooth random field): lesion-like bumps in negatives too
    noise_sd: float = 0.08  # pixel noise everywhere
    artefacts: tuple[str, ...] = ARTEFACTS  # site-1 artefacts, all outside the ROI
    artefact_strength: float = 1.0  # scales every artefact (0: sites look alike)


@dataclass(frozen=True)
class SiteData:
    """A set of synthetic images. ``images``, ``roi``: (N, 1, S, S); ``labels``, ``sites``: (N,) int64."""

    images: np.ndarray  # (N, 1, S, S) float32
    labels: np.ndarray  # (N,) int64, 1 = lesion present
    sites: np.ndarray  # (N,) int64, 0 or 1
    roi: np.ndarray  # (N, 1, S, S) bool, True inside the organ
    confound: float  # P(site == label) used to draw the sites

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> SiteData:
        """The images at ``index`` (an int array or a boolean mask), same confound."""
        return SiteData(self.images[index], self.labels[index], self.sites[index], self.roi[index], self.confound)


def _check(n: int, confound: float, cfg: SiteConfig) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    if not 0.0 <= float(confound) <= 1.0:
        raise ValueError(f"`confound` must lie in [0, 1] (P(site == label)), got {confound!r}")
    unknown = set(cfg.artefacts) - set(ARTEFACTS)
    if unknown:
        raise ValueError(f"`artefacts` must be drawn from {ARTEFACTS}, got unknown {sorted(unknown)}")
    if not 2 * (cfg.roi_radius + cfg.roi_jitter) + 8 <= cfg.size:
        raise ValueError(f"`roi_radius` {cfg.roi_radius} (+ jitter {cfg.roi_jitter}) leaves no 4 px margin for "
                         f"the artefacts in a {cfg.size} px image")


def _organ(rng: np.random.Generator, cfg: SiteConfig) -> tuple[np.ndarray, np.ndarray, tuple[float, float], float]:
    """One organ: (image (S, S), roi (S, S) bool, centre (row, col), radius)."""
    s = cfg.size
    centre = (s / 2 - 0.5 + rng.uniform(-cfg.roi_jitter, cfg.roi_jitter),
              s / 2 - 0.5 + rng.uniform(-cfg.roi_jitter, cfg.roi_jitter))
    radius = cfg.roi_radius + rng.uniform(-cfg.roi_jitter, cfg.roi_jitter)
    rows, cols = np.mgrid[:s, :s]  # (S, S) each
    roi = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    texture = ndimage.gaussian_filter(rng.normal(size=(s, s)), sigma=1.5)  # lesion-sized bumps
    texture *= cfg.texture_sd / texture.std()
    image = np.where(roi, 0.5 + texture, 0.1)
    return image, roi, centre, radius


def _lesion(rng: np.random.Generator, centre, radius: float, cfg: SiteConfig) -> np.ndarray:
    """A Gaussian blob of peak ``lesion_contrast`` fully inside the organ, (S, S)."""
    s = cfg.size
    distance = rng.uniform(0, max(radius - 3 * cfg.lesion_sigma, 0.0))
    angle = rng.uniform(0, 2 * np.pi)
    r0, c0 = centre[0] + distance * np.sin(angle), centre[1] + distance * np.cos(angle)
    rows, cols = np.mgrid[:s, :s]
    return cfg.lesion_contrast * np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * cfg.lesion_sigma**2))


def _site_artefacts(image: np.ndarray, roi: np.ndarray, rng: np.random.Generator, cfg: SiteConfig) -> np.ndarray:
    """Site 1's artefacts, written outside the ROI only."""
    s, k = cfg.size, cfg.artefact_strength
    outside = ~roi
    art = np.zeros_like(image)
    if "intensity" in cfg.artefacts:
        art += 0.15 * k  # a brighter background: another scanner's intensity profile
    if "border" in cfg.artefacts:
        frame = np.zeros((s, s), dtype=bool)
        frame[:2, :] = frame[-2:, :] = frame[:, :2] = frame[:, -2:] = True
        art[frame] += 0.3 * k  # collimation frame
    if "marker" in cfg.artefacts:
        art[3:7, 3:7] += 0.8 * k  # the technician's letter, top left
    if "texture" in cfg.artefacts:
        art += k * 0.12 * rng.normal(size=(s, s))  # coarse, strong background noise
    return image + np.where(outside, art, 0.0)


def site_dataset(n: int, confound: float, seed: int, config: SiteConfig | None = None) -> SiteData:
    """``n`` images with balanced labels and sites drawn so that ``P(site == label) = confound``.

    Parameters
    ----------
    n : int
        Number of images; labels alternate 0, 1, ... and are then shuffled (balanced to within one).
    confound : float in [0, 1]
        Probability that an image's site equals its label (0.5: none; 1: the site gives the label away).
    seed : int
        Seed of the generator; the same arguments give the same images.
    config : SiteConfig, optional
        Image appearance (default :class:`SiteConfig`).

    Returns
    -------
    SiteData
        ``images`` (N, 1, S, S) float32, ``labels`` and ``sites`` (N,) int64, ``roi`` (N, 1, S, S) bool.

    Raises
    ------
    ValueError
        If ``n`` is not positive, ``confound`` is outside [0, 1], an artefact is unknown, or the organ does not fit.
    """
    cfg = config or SiteConfig()
    _check(n, confound, cfg)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)  # (N,) balanced
    agree = rng.random(n) < confound
    sites = np.where(agree, labels, 1 - labels).astype(np.int64)  # (N,)
    images = np.empty((n, 1, cfg.size, cfg.size), dtype=np.float32)
    rois = np.empty((n, 1, cfg.size, cfg.size), dtype=bool)
    for i in range(n):
        image, roi, centre, radius = _organ(rng, cfg)
        if labels[i]:
            image = image + _lesion(rng, centre, radius, cfg)
        if sites[i]:
            image = _site_artefacts(image, roi, rng, cfg)
        else:
            image = image + np.where(roi, 0.0, 0.04 * rng.normal(size=image.shape))  # site 0: fine background grain
        image = image + cfg.noise_sd * rng.normal(size=image.shape)
        images[i, 0], rois[i, 0] = image, roi
    return SiteData(images, labels, sites, rois, float(confound))


def shifted_test_sets(n: int, train_confound: float, seed: int, config: SiteConfig | None = None
                      ) -> dict[str, SiteData]:
    """Three test sets for a model trained at ``train_confound``: the correlation kept, removed and reversed.

    Returns
    -------
    dict
        ``{"kept": P(site == label) = train_confound, "removed": 0.5, "reversed": 1 - train_confound}``,
        each of ``n`` images drawn with its own seed (``seed``, ``seed + 1``, ``seed + 2``).
    """
    confounds = {"kept": train_confound, "removed": 0.5, "reversed": 1.0 - train_confound}
    return {name: site_dataset(n, c, seed + k, config) for k, (name, c) in enumerate(confounds.items())}
