"""Synthetic nuclei: round-ish objects that touch and overlap, with an instance label map.

The data behind the chapter's *edge prediction* lesson. A net that predicts only
"foreground vs background" turns two touching nuclei into one connected blob; a net that also
predicts the *border* class can cut them apart. So a controlled share of the objects is placed
against an earlier one (``touching``), slightly overlapping (``overlap``); the others keep a
clear gap, so every contact in the image is one we put there on purpose.

How an image is drawn
---------------------
1. Each object is an ellipse (long/short axis ratio up to ``aspect``) with a small 3-lobed
   wobble of its outline, described by a *normalised radius* :math:`\\rho(x)`: 1 on the
   outline, 0 at the centre.
2. A pixel belongs to the object with the smallest :math:`\\rho` among those that cover it,
   so overlapping objects are cut along a line between their centres, as touching nuclei are.
3. Intensity inside object :math:`k` is :math:`b_k (1 - e \\rho^2)` (``edge_darkening`` e):
   bright centres, darker rims, hence a faint dark line where two nuclei meet — the only cue
   a net gets. Then Gaussian blur (optics) and Gaussian noise (sensor).

Everything comes from one ``numpy.random.Generator(seed)``: the same seed gives the same data.
The real counterpart that ships with the course is stardist's ``img2d.tif`` / ``mask2d.tif``.

References
----------
Caicedo et al. (2019). Nucleus segmentation across imaging experiments: the 2018 Data Science
Bowl. Nature Methods — the touching-nuclei problem this generator imitates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["InstanceConfig", "make_instance_image", "make_instance_images"]


@dataclass(frozen=True)
class InstanceConfig:
    size: int = 64  # image side in px: 64 keeps a U-Net fast on a CPU, 256 looks like a microscope tile
    n_objects: tuple[int, int] = (6, 10)  # objects per image, drawn uniformly (inclusive); fewer if no room
    radius: tuple[float, float] = (5.0, 8.0)  # mean object radius in px; keep > 2 * border width so interiors survive
    aspect: float = 1.3  # largest long/short axis ratio: nuclei are round-ish, not circles
    touching: float = 0.5  # chance a new object is placed against an earlier one: the hard case for plain CC
    overlap: float = 0.15  # largest overlap of touching objects, as a share of the summed radii (0: just touching)
    gap: float = 2.0  # smallest free distance (px) between objects not placed to touch, so they stay apart
    edge_darkening: float = 0.4  # intensity drop from centre to rim: the faint dark line between touching nuclei
    brightness: tuple[float, float] = (0.6, 1.0)  # per-object intensity range: staining varies between nuclei
    background: float = 0.1  # background intensity
    noise: float = 0.08  # std of the Gaussian sensor noise, added after the blur
    blur: float = 1.0  # Gaussian blur sigma in px (optics); larger hides the line between touching objects
    max_tries: int = 50  # placement attempts per object before it is skipped (crowded images get fewer objects)


def _validate(config: InstanceConfig) -> None:
    if not isinstance(config, InstanceConfig):
        raise TypeError(f"`config` must be an InstanceConfig, got {type(config).__name__}")
    lo, hi = config.radius
    if not 1.0 <= lo <= hi:
        raise ValueError(f"`radius` must be (low, high) with 1 <= low <= high, got {config.radius}")
    if config.size < 4 * hi:
        raise ValueError(f"`size` ({config.size}) must be at least 4 x the largest radius ({hi})")
    if not 0 <= config.n_objects[0] <= config.n_objects[1]:
        raise ValueError(f"`n_objects` must be (low, high) with 0 <= low <= high, got {config.n_objects}")
    if not 0.0 <= config.touching <= 1.0:
        raise ValueError(f"`touching` must lie in [0, 1], got {config.touching}")
    if not 0.0 <= config.overlap < 0.5:
        raise ValueError(f"`overlap` must lie in [0, 0.5), got {config.overlap}")
    if config.aspect < 1.0:
        raise ValueError(f"`aspect` must be >= 1, got {config.aspect}")


def _outline_radius(obj: dict, angle: np.ndarray) -> np.ndarray:
    """Distance from the centre of ``obj`` to its outline along ``angle`` (radians)."""
    local = angle - obj["theta"]
    ellipse = 1.0 / np.sqrt((np.cos(local) / obj["a"]) ** 2 + (np.sin(local) / obj["b"]) ** 2)
    return ellipse * (1.0 + obj["wobble"] * np.sin(3 * local + obj["phase"]))


def _rho(obj: dict, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Normalised radius of every pixel: 0 at the centre, 1 on the outline."""
    dy, dx = yy - obj["cy"], xx - obj["cx"]
    return np.hypot(dy, dx) / _outline_radius(obj, np.arctan2(dy, dx))


def _fits(obj: dict, placed: list[dict], size: int, gap: float, partner: int | None) -> bool:
    """Inside the image, and at least ``gap`` away from every placed object except ``partner``."""
    r = obj["a"] * 1.1  # a bound on the outline radius (wobble <= 0.1)
    if not (r <= obj["cy"] <= size - 1 - r and r <= obj["cx"] <= size - 1 - r):
        return False
    for j, other in enumerate(placed):
        if j == partner:
            continue
        angle = np.arctan2(other["cy"] - obj["cy"], other["cx"] - obj["cx"])
        reach = _outline_radius(obj, angle) + _outline_radius(other, angle + np.pi)
        if np.hypot(other["cy"] - obj["cy"], other["cx"] - obj["cx"]) < reach + gap:
            return False
    return True


def _place_objects(rng: np.random.Generator, config: InstanceConfig) -> list[dict]:
    placed: list[dict] = []
    for _ in range(rng.integers(config.n_objects[0], config.n_objects[1] + 1)):
        r = rng.uniform(*config.radius)
        ratio = np.sqrt(rng.uniform(1.0, config.aspect))
        obj = {"a": r * ratio, "b": r / ratio, "theta": rng.uniform(0, np.pi),
               "wobble": rng.uniform(0.0, 0.1), "phase": rng.uniform(0, 2 * np.pi)}
        touch = bool(placed) and rng.random() < config.touching
        for _ in range(config.max_tries):
            if touch:  # centre on the line from a partner's centre, overlapping by a random share
                partner = int(rng.integers(len(placed)))
                p = placed[partner]
                angle = rng.uniform(0, 2 * np.pi)
                reach = _outline_radius(p, angle) + _outline_radius(obj, angle + np.pi)
                dist = reach * (1.0 - rng.uniform(0.05, 0.05 + config.overlap))
                obj["cy"], obj["cx"] = p["cy"] + dist * np.sin(angle), p["cx"] + dist * np.cos(angle)
            else:
                partner = None
                obj["cy"], obj["cx"] = rng.uniform(0, config.size - 1, size=2)
            if _fits(obj, placed, config.size, config.gap, partner):
                placed.append(obj)
                break
    return placed


def make_instance_image(config: InstanceConfig = InstanceConfig(), seed: int | np.random.Generator = 0):
    """Draw one image of round-ish, partly touching objects and its instance labels.

    Parameters
    ----------
    config : InstanceConfig
    seed : int or numpy.random.Generator

    Returns
    -------
    image : (S, S) float32 ndarray
        Intensities, roughly ``background`` outside objects and up to about 1 inside.
    labels : (S, S) int32 ndarray
        0 background, 1..N one id per object (in placement order, no gaps).

    Raises
    ------
    ValueError, TypeError
        A config value out of range, or not an ``InstanceConfig``.

    Examples
    --------
    >>> image, labels = make_instance_image(InstanceConfig(size=64), seed=0)
    >>> image.shape, labels.shape, labels.dtype
    ((64, 64), (64, 64), dtype('int32'))
    >>> bool(labels.max() >= 6)
    True
    """
    _validate(config)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    s = config.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    objects = _place_objects(rng, config)
    labels = np.zeros((s, s), np.int32)
    clean = np.full((s, s), config.background, np.float64)
    if objects:
        rho = np.stack([_rho(obj, yy, xx) for obj in objects])  # (N, S, S)
        nearest = rho.argmin(axis=0)  # (N, S, S) -> (S, S): the object whose outline is relatively closest
        rho_min = rho.min(axis=0)
        inside = rho_min <= 1.0
        labels[inside] = nearest[inside] + 1
        bright = rng.uniform(*config.brightness, size=len(objects))
        shade = bright[nearest] * (1.0 - config.edge_darkening * rho_min**2)
        clean = np.where(inside, shade, clean)
    image = ndimage.gaussian_filter(clean, config.blur) if config.blur > 0 else clean
    image = image + config.noise * rng.standard_normal((s, s))
    return image.astype(np.float32), labels


def make_instance_images(n: int, config: InstanceConfig = InstanceConfig(), seed: int = 0):
    """Draw ``n`` images with :func:`make_instance_image` from one seeded generator.

    Returns
    -------
    images : (n, S, S) float32 ndarray
    labels : (n, S, S) int32 ndarray
        Instance ids per image (ids restart at 1 in every image).

    Examples
    --------
    >>> x, y = make_instance_images(3, seed=1)
    >>> x.shape, y.shape
    ((3, 64, 64), (3, 64, 64))
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    rng = np.random.default_rng(seed)
    pairs = [make_instance_image(config, rng) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
