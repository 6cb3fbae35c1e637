"""Synthetic axial brain-MRI slices in two contrasts, FLAIR-like and T1-like, with a tumour mask.

Each subject gets its own anatomy, drawn from one ``numpy.random.Generator``: head shape and tilt (an ellipse with
a wavy outline), a scalp ring, a cortical grey-matter band whose inner edge is folded (sulci), two lateral
ventricles (size and spacing vary) and white matter in between. A tumour slice also holds a tumour: a solid core
inside a ring of oedema, somewhere in the white matter.

The same anatomy is rendered in two contrasts, as the two sequences of one MRI session would show it:

==============  ==========  ==========
tissue          FLAIR-like  T1-like
==============  ==========  ==========
background      0           0
scalp           0.35        0.80
CSF             0.08        0.15
grey matter     0.55        0.55
white matter    0.42        0.85
oedema          0.80        0.62  (mildly hypo-intense)
tumour core     0.95        0.30  (hypo-intense)
==============  ==========  ==========

FLAIR suppresses CSF and shows lesion and oedema bright; T1 shows white matter bright and the tumour dark. Slices
are blurred by a point-spread function, multiplied by a smooth bias field and get Rician-like noise. Values lie in
``[0, 1]``.

Two views of the data:

* :func:`brain_slices` — **paired**: both contrasts of the same subjects (a supervised translator learns from these;
  the held-out pairs give the true T1 of every FLAIR, so a translation can be scored pixel by pixel).
* :func:`unpaired_domains` — a FLAIR domain and a T1 domain from **different** subjects, each with its own share of
  tumour slices (``source_fraction``, ``target_fraction``): what CycleGAN sees. This is the lever of the chapter's
  experiment (Cohen, Luck & Honari, *Distribution Matching Losses Can Hallucinate Features in Medical Image
  Translation*, MICCAI 2018).

The tumour is visible in both contrasts by construction (bright in FLAIR, dark in T1): whatever a translator does
with it is the translator's doing, not the data's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["BrainConfig", "BrainSlices", "brain_slices", "unpaired_domains", "CONTRASTS"]

# intensities per tissue: background, scalp, CSF, grey matter, white matter, oedema, tumour core
CONTRASTS = {
    "flair": np.array([0.0, 0.35, 0.08, 0.55, 0.42, 0.80, 0.95], np.float32),
    "t1": np.array([0.0, 0.80, 0.08, 0.55, 0.85, 0.62, 0.38], np.float32),
}
BACKGROUND, SCALP, CSF, GREY, WHITE, OEDEMA, CORE = range(7)


@dataclass(frozen=True)
class BrainConfig:
    size: int = 32  # image side in px; 32 px keeps a CycleGAN step near 20 ms on one CPU core
    head_radius: tuple[float, float] = (0.36, 0.46)  # head half-axes as a share of the side
    cortex: float = 0.11  # grey-matter band thickness as a share of the head radius... and sulci fold it
    ventricle: tuple[float, float] = (0.10, 0.22)  # ventricle half-length as a share of the side
    tumour_radius: tuple[float, float] = (0.10, 0.16)  # tumour core radius as a share of the side (3-5 px at 32)
    oedema_scale: tuple[float, float] = (1.4, 1.9)  # oedema radius / core radius
    blur: float = 0.6  # point-spread function sigma in px
    bias_field: float = 0.10  # peak-to-peak amplitude of the smooth multiplicative bias field
    noise: float = 0.025  # noise sigma (Rician-like: magnitude of a complex Gaussian)


@dataclass(frozen=True)
class BrainSlices:
    """Slices in two contrasts. ``flair``, ``t1``: (n, S, S) float32 in [0, 1]; ``mask``: (n, S, S) bool tumour
    (core and oedema); ``tumour``: (n,) bool, True for tumour slices; ``subject``: (n,) int, whose slice it is
    (split by subject, never by slice: two slices of one brain are near copies)."""

    flair: np.ndarray
    t1: np.ndarray
    mask: np.ndarray
    tumour: np.ndarray
    subject: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tumour)

    def subset(self, rows) -> BrainSlices:
        """The slices at ``rows`` (indices or a boolean mask)."""
        subject = None if self.subject is None else self.subject[rows]
        return BrainSlices(self.flair[rows], self.t1[rows], self.mask[rows], self.tumour[rows], subject)


def _ellipse(yy, xx, centre, axes, angle):
    """Signed radius of an ellipse: < 1 inside. ``yy``, ``xx``: (S, S)."""
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - centre[0], xx - centre[1]
    u, v = c * dx + s * dy, -s * dx + c * dy
    return np.sqrt((u / axes[1]) ** 2 + (v / axes[0]) ** 2)


def _tissue_map(rng: np.random.Generator, config: BrainConfig, tumour: bool) -> tuple[np.ndarray, np.ndarray]:
    """Label map (S, S) int8 of one subject's slice (tissue codes above) and its tumour mask (S, S) bool."""
    s = config.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    centre = s / 2 - 0.5 + rng.normal(0, 0.02 * s, 2)
    axes = rng.uniform(*config.head_radius, 2) * s
    angle = rng.uniform(-0.25, 0.25)
    theta = np.arctan2(yy - centre[0], xx - centre[1])  # (S, S) polar angle
    # a wavy outline (the head is not an ellipse) and a folded inner cortex edge (sulci)
    wobble = sum(rng.normal(0, 0.025) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    radius = _ellipse(yy, xx, centre, axes, angle) * (1 + wobble)
    n_folds = int(rng.integers(7, 12))
    folds = 0.5 + 0.5 * np.cos(n_folds * theta + rng.uniform(0, 2 * np.pi))
    scalp_in = 1 - 0.07 * s / axes.mean()
    labels = np.full((s, s), BACKGROUND, np.int8)
    labels[radius < 1] = SCALP
    labels[radius < scalp_in - 0.04] = CSF  # a thin CSF rim under the skull
    cortex_in = scalp_in - 0.04 - config.cortex * (1.0 + 1.2 * folds)
    labels[radius < scalp_in - 0.07] = GREY
    labels[radius < cortex_in] = WHITE
    # two lateral ventricles, mirrored about the midline, varying in size and spacing
    half_length = rng.uniform(*config.ventricle) * s
    spread = rng.uniform(0.05, 0.11) * s
    for side in (-1, 1):
        v_centre = centre + np.array([rng.normal(0, 0.02 * s), side * spread])
        v_axes = (half_length, half_length * rng.uniform(0.30, 0.45))
        labels[_ellipse(yy, xx, v_centre, v_axes, angle + side * rng.uniform(0.1, 0.35)) < 1] = CSF
    mask = np.zeros((s, s), bool)
    if tumour:
        white = np.argwhere(labels == WHITE)
        if len(white) == 0:  # tiny heads: fall back to anywhere inside the brain
            white = np.argwhere(labels >= CSF)
        t_centre = white[rng.integers(len(white))] + rng.uniform(-0.5, 0.5, 2)
        core_r = rng.uniform(*config.tumour_radius) * s
        t_angle = rng.uniform(0, np.pi)
        lumpy = 1 + 0.15 * np.cos(3 * theta + rng.uniform(0, 2 * np.pi))
        core_dist = _ellipse(yy, xx, t_centre, (core_r, core_r * rng.uniform(0.7, 1.0)), t_angle) * lumpy
        oedema_dist = core_dist / rng.uniform(*config.oedema_scale)
        inside_head = labels >= CSF
        labels[(oedema_dist < 1) & inside_head] = OEDEMA
        labels[(core_dist < 1) & inside_head] = CORE
        mask = (labels == OEDEMA) | (labels == CORE)
    return labels, mask


def _render(labels: np.ndarray, contrast: str, rng: np.random.Generator, config: BrainConfig,
            field: np.ndarray) -> np.ndarray:
    """(S, S) float32 image of a label map in one contrast: PSF blur, bias field, Rician-like noise, clip to [0, 1]."""
    image = CONTRASTS[contrast][labels].astype(np.float64)
    image = ndimage.gaussian_filter(image, config.blur) * field
    real = image + rng.normal(0, config.noise, image.shape)
    imag = rng.normal(0, config.noise, image.shape)
    return np.clip(np.hypot(real, imag), 0, 1).astype(np.float32)


def brain_slices(n: int, tumour_fraction: float = 0.5, *, config: BrainConfig = BrainConfig(),
                 seed: int = 0) -> BrainSlices:
    """``n`` subjects' slices in both contrasts (paired), ``round(n * tumour_fraction)`` of them with a tumour.

    Parameters
    ----------
    n : int
        Number of slices (one per subject).
    tumour_fraction : float in [0, 1]
        Share of tumour slices; the tumour slices are shuffled among the healthy ones.
    config : BrainConfig
    seed : int
        Everything comes from ``numpy.random.default_rng(seed)``.

    Returns
    -------
    BrainSlices
        ``flair``, ``t1`` (n, S, S) float32 in [0, 1]; ``mask`` (n, S, S) bool; ``tumour`` (n,) bool.

    Raises
    ------
    ValueError
        If ``n`` is not a positive int or ``tumour_fraction`` is outside [0, 1].

    Examples
    --------
    >>> data = brain_slices(4, 0.5, seed=0)
    >>> data.flair.shape, int(data.tumour.sum()), bool(data.mask[data.tumour].any())
    ((4, 32, 32), 2, True)
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    if not 0.0 <= float(tumour_fraction) <= 1.0:
        raise ValueError(f"`tumour_fraction` must lie in [0, 1], got {tumour_fraction!r}")
    rng = np.random.default_rng(seed)
    s = config.size
    tumour = np.zeros(n, bool)
    tumour[: int(round(n * tumour_fraction))] = True
    rng.shuffle(tumour)
    flair = np.empty((n, s, s), np.float32)
    t1 = np.empty((n, s, s), np.float32)
    mask = np.zeros((n, s, s), bool)
    yy, xx = np.mgrid[0:s, 0:s] / s
    for i in range(n):
        labels, mask[i] = _tissue_map(rng, config, bool(tumour[i]))
        gy, gx = rng.normal(0, 1, 2)  # a linear bias field across the head, same for both sequences
        field = 1 + config.bias_field * (gy * (yy - 0.5) + gx * (xx - 0.5))
        flair[i] = _render(labels, "flair", rng, config, field)
        t1[i] = _render(labels, "t1", rng, config, field)
    return BrainSlices(flair, t1, mask, tumour, np.arange(n))


def unpaired_domains(n_source: int, n_target: int, *, source_fraction: float = 0.5, target_fraction: float,
                     config: BrainConfig = BrainConfig(), seed: int = 0) -> tuple[BrainSlices, BrainSlices]:
    """A FLAIR domain and a T1 domain of different subjects, each with its own share of tumour slices.

    Parameters
    ----------
    n_source, n_target : int
        Slices in the source (FLAIR) and target (T1) domain.
    source_fraction, target_fraction : float in [0, 1]
        Share of tumour slices in each domain.
    config : BrainConfig
    seed : int
        Source and target subjects come from distinct generator streams: no subject is in both.

    Returns
    -------
    source, target : BrainSlices
        Read ``source.flair`` and ``target.t1``; the other contrast and the masks are kept for evaluation only
        (an unpaired translator never sees them).

    Examples
    --------
    >>> src, tgt = unpaired_domains(10, 10, target_fraction=0.0, seed=1)
    >>> float(src.tumour.mean()), float(tgt.tumour.mean())
    (0.5, 0.0)
    """
    seeds = np.random.SeedSequence(seed).spawn(2)
    source = brain_slices(n_source, source_fraction, config=config, seed=int(seeds[0].generate_state(1)[0]))
    target = brain_slices(n_target, target_fraction, config=config, seed=int(seeds[1].generate_state(1)[0]))
    return source, target
