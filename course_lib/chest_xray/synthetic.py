"""Synthetic two-view chest radiographs (PA + lateral) with findings that each view shows differently.

The data behind chapter 1's multi-view lesson. Radiologists read the lateral view for findings the
frontal (PA) view hides: the flattened diaphragm of emphysema, an opacity behind the heart
[Bertrand 2019]. Here every study has a PA and a lateral image of the *same* synthetic patient, and
each finding is drawn with a per-view strength, so "which view shows it" is a known property
(:data:`VISIBLE_IN`) that a PA-only model, a lateral-only model and the fusions can be measured against.

How a study is drawn
--------------------
1. Patient: body size, depth of inspiration (diaphragm level and dome height), heart size, exposure,
   noise, and per view a small rotation / shift / zoom (positioning is never perfect).
2. Anatomy as X-ray attenuation ``mu`` on a normalised grid ([-1, 1]²), summed structure by structure:

   * PA (patient's right on the image's left): soft tissue, two dark lung fields cut from below by
     the diaphragm domes (their lateral corners are the costophrenic angles), mediastinum, heart
     (apex to the image's right), spine, trachea, posterior ribs, clavicles, gastric bubble, and
     vessel-like lung markings (contour lines of smooth noise) among which a nodule must be found.
   * lateral (patient facing left): one lung field, heart in front and below, sternum in front,
     vertebral bodies behind, trachea, diaphragm sloping down to the posterior costophrenic sulcus.

3. Findings (independent Bernoulli labels, ``prevalence`` each) change the anatomy with a random
   severity; the same draw is used for both views, with the strength each view really gets:

   ==================== ========= ===================================================================
   label                visible   what changes (PA / lateral)
   ==================== ========= ===================================================================
   nodule               pa        small round opacity in a lung field / the same at a quarter contrast
   cardiomegaly         pa        heart wider (cardiothoracic ratio up) / unchanged: a PA-only finding
   emphysema            lateral   domes a little flatter, lungs a little darker / diaphragm flat and
                                  low, retrosternal space larger (the lecture's flattened diaphragm)
   retrocardiac_opacity lateral   faint opacity hidden behind the heart / clear opacity in the lower
                                  posterior lung, over the spine
   effusion             both      fluid blunts the lateral costophrenic angle / the posterior sulcus
   ==================== ========= ===================================================================

4. Display: ``image = 1 - exp(-exposure * mu)`` (dense = bright; adding density behind the heart
   changes little because that pixel is already nearly saturated), then Gaussian noise, clipped to [0, 1].
5. Labels: ``label_noise`` flips each label with that probability *after* the images are drawn — the
   images keep the true findings. That imitates report-mined labels such as NIH ChestX-ray14's, whose
   errors were discussed at length (Oakden-Rayner 2017); ``clean_labels`` keeps the truth.
6. Missing views: with probability ``p_missing_pa`` the PA is missing, with ``p_missing_lateral`` the
   lateral (never both): a missing view is a zero image with ``present`` False, as the real-data readers do.

Every random number is drawn in the same order whatever the labels, so ``make_study(seed, labels=...)``
with the same seed gives the *counterfactual* study: same patient, finding added or removed. The
difference of the two shows exactly what a finding does to each view.

References
----------
Bertrand, Hashir & Cohen (2019). Do lateral views help automated chest X-ray predictions? MIDL abstract,
arXiv:1904.08534. Hashir, Bertrand & Cohen (2020). Quantifying the value of lateral views in deep learning
for chest X-rays. MIDL, arXiv:2002.02582.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

__all__ = ["LABELS", "VISIBLE_IN", "TwoViewConfig", "make_study", "make_studies", "TwoViewDataset"]

LABELS = ("nodule", "cardiomegaly", "emphysema", "retrocardiac_opacity", "effusion")
VISIBLE_IN = {"nodule": "pa", "cardiomegaly": "pa", "emphysema": "lateral",
              "retrocardiac_opacity": "lateral", "effusion": "both"}


@dataclass(frozen=True)
class TwoViewConfig:
    size: int = 64  # image side in px: 64 trains on a CPU in seconds, 224 is CheXNet's input size
    p_missing_pa: float = 0.0  # chance a study has no PA (lateral only)
    p_missing_lateral: float = 0.0  # chance a study has no lateral (PA only); most NIH-style data is PA only
    label_noise: float = 0.0  # chance each label is flipped after drawing the images (report-mined labels)
    prevalence: float | tuple[float, ...] = 0.3  # chance of each finding, one value or one per label
    finding_strength: float = 1.0  # scales every finding's effect; < 1 makes all findings subtler
    noise: tuple[float, float] = (0.01, 0.03)  # std range of the sensor noise, drawn per view
    max_rotation: float = 6.0  # degrees; patients are never perfectly straight
    max_shift: float = 0.05  # as a share of the half-width of the image
    exposure: tuple[float, float] = (0.8, 1.2)  # range of the exposure factor (image brightness/contrast)


def _prevalences(config: TwoViewConfig) -> np.ndarray:
    p = np.broadcast_to(np.asarray(config.prevalence, dtype=np.float64), (len(LABELS),)) \
        if np.ndim(config.prevalence) == 0 else np.asarray(config.prevalence, dtype=np.float64)
    if p.shape != (len(LABELS),) or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"`prevalence` must be one value or {len(LABELS)} values in [0, 1], got {config.prevalence}")
    return p


def _validate(config: TwoViewConfig) -> None:
    if not isinstance(config, TwoViewConfig):
        raise TypeError(f"`config` must be a TwoViewConfig, got {type(config).__name__}")
    if not isinstance(config.size, int) or config.size < 16:
        raise ValueError(f"`size` must be an int >= 16, got {config.size!r}")
    for name in ("p_missing_pa", "p_missing_lateral", "label_noise"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"`{name}` must lie in [0, 1], got {getattr(config, name)}")
    if config.p_missing_pa + config.p_missing_lateral > 1.0:
        raise ValueError(f"`p_missing_pa` + `p_missing_lateral` must be <= 1 (a study keeps at least one view), "
                         f"got {config.p_missing_pa} + {config.p_missing_lateral}")
    if config.finding_strength < 0:
        raise ValueError(f"`finding_strength` must be >= 0, got {config.finding_strength}")
    _prevalences(config)


@lru_cache(maxsize=8)
def _markings(size: int, count: int = 8) -> np.ndarray:
    """A fixed bank of ``count`` vessel-like textures, (count, S, S) in [0, 1].

    Contour lines of smooth noise look like the branching bronchovascular markings of the lungs, among
    which a real nodule hides. Drawn once per size from a fixed seed, so studies only pick and shift one.
    """
    rng = np.random.default_rng(12345)
    fields = ndimage.gaussian_filter(rng.standard_normal((count, size, size)), (0, size / 24, size / 24), mode="wrap")
    fields /= fields.std(axis=(1, 2), keepdims=True)
    return np.exp(-((fields / 0.25) ** 2)).astype(np.float32)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in normalised coordinates: (S, S) ``y`` (down) and ``x`` (right), both in [-1, 1]."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    return np.meshgrid(c, c, indexing="ij")


def _posed_grid(size: int, angle: float, shift: tuple[float, float], zoom: float):
    """The grid seen through the patient's pose: anatomy is drawn in these coordinates."""
    y, x = _grid(size)
    c, s = np.cos(angle), np.sin(angle)
    y, x = y - shift[0], x - shift[1]
    return (c * y - s * x) / zoom, (s * y + c * x) / zoom


def _ellipse(y, x, cy, cx, ry, rx, edge=0.15):
    """Soft ellipse: 1 inside, 0 outside, a linear ramp of relative width ``edge`` at the outline."""
    r2 = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
    return np.clip((1.0 - r2) / edge, 0.0, 1.0)


def _blob(y, x, cy, cx, radius):
    """Gaussian blob of peak 1 and standard deviation ``radius``."""
    return np.exp(-(((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2)))


def _step(d, width):
    """Soft step: 0 for ``d < 0``, 1 for ``d > width``."""
    return np.clip(d / width, 0.0, 1.0)


def _band(y, x, y0, x0, y1, x1, half_width):
    """Soft straight band between two points (clavicles, trachea)."""
    dy, dx = y1 - y0, x1 - x0
    length2 = dy * dy + dx * dx
    t = np.clip(((y - y0) * dy + (x - x0) * dx) / length2, 0.0, 1.0)
    dist = np.sqrt((y - y0 - t * dy) ** 2 + (x - x0 - t * dx) ** 2)
    return np.clip(1.0 - dist / half_width, 0.0, 1.0)


def _draw_pa(y, x, p, f):
    """Attenuation map of the PA view. ``p``: patient, ``f``: finding effects (0 when absent)."""
    s = p["body"]
    mu = 1.1 * _ellipse(y, x, 0.15, 0.0, 1.25 * s, 0.9 * s, edge=0.1)  # soft tissue of the trunk
    heart_w = (p["ctr"] + f["cardiomegaly"] * 0.11) * 0.72 * s  # half-width: ratio x half the thorax width
    heart = _ellipse(y, x, p["dia"] - 0.14 * s, 0.11 * s, 0.27 * s, heart_w, edge=0.3)
    lungs = np.zeros_like(y)
    for side, lift in ((-1.0, 0.04), (1.0, 0.0)):  # patient's right dome (image left) sits higher
        cx, dome = side * 0.40 * s, p["dome"] * (1.0 - 0.15 * f["emphysema"])
        rel = (x - cx) / (0.31 * s)
        floor = p["dia"] - lift - dome * (1.0 - rel**2)  # diaphragm dome: lung ends here
        lung = _ellipse(y, x, -0.1 * s, cx, 0.75 * s, 0.31 * s, edge=0.08) * _step(floor - y, 0.05)
        if f["effusion"] > 0:  # fluid meniscus, highest at the lateral chest wall: blunted angle
            level = floor - f["effusion"] * 0.2 * s * (0.3 + 0.7 * np.clip(side * rel, 0.0, 1.0))
            lung = lung * (1.0 - 0.85 * _step(y - level, 0.04))
        lungs = np.maximum(lungs, lung)
    air = p["air"] * (1.0 + 0.03 * f["emphysema"])  # hyperinflated lungs are a little darker
    mu = mu - air * lungs * (1.0 - 0.8 * heart) + 0.14 * p["markings"][0] * lungs
    mu += 0.55 * heart + 0.35 * _ellipse(y, x, -0.55 * s, 0.02 * s, 0.6 * s, 0.13 * s, edge=0.3)  # mediastinum
    vertebrae = 0.6 + 0.4 * np.cos(np.pi * y / (0.085 * s)) ** 2
    mu += 0.18 * vertebrae * _step(0.07 * s - np.abs(x), 0.03)
    mu -= 0.3 * _band(y, x, -1.0, 0.0, -0.4 * s, 0.02 * s, 0.045 * s)  # trachea (air)
    ribs = np.cos(2 * np.pi * (y + 0.6 * x**2 - p["rib_phase"]) / (0.2 * s)) ** 8  # curve down laterally
    mu += 0.14 * ribs * _ellipse(y, x, -0.15 * s, 0.0, 0.75 * s, 0.78 * s, edge=0.2)
    for side in (-1.0, 1.0):
        mu += 0.3 * _band(y, x, -0.7 * s, side * 0.1 * s, -0.8 * s, side * 0.62 * s, 0.04 * s)  # clavicles
    mu -= 0.25 * _ellipse(y, x, p["dia"] + 0.12 * s, 0.45 * s, 0.07 * s, 0.12 * s)  # gastric bubble
    # findings that add density
    mu += f["nodule"] * 0.75 * _blob(y, x, p["nodule_y"] * s, p["nodule_x"] * s, p["nodule_r"] * s)
    mu += f["retrocardiac_opacity"] * 0.12 * _blob(y, x, p["dia"] - 0.16 * s, 0.18 * s, 0.12 * s)  # behind the heart
    return mu


def _draw_lateral(y, x, p, f):
    """Attenuation map of the lateral view (anterior on the image's left)."""
    s = p["body"]
    mu = 1.1 * _ellipse(y, x, 0.15, 0.0, 1.25 * s, 0.8 * s, edge=0.1)
    flat = 0.6 * f["emphysema"]
    dia = p["dia"] + 0.02 + 0.04 * s * f["emphysema"]  # hyperinflation pushes the diaphragm down
    rel = (x - 0.05 * s) / (0.55 * s)
    floor = dia - p["dome"] * (1.0 - flat) * (1.0 - rel**2) + 0.12 * s * rel  # slopes down to the back
    lung = _ellipse(y, x, -0.1 * s, 0.05 * s, 0.78 * s, 0.55 * s, edge=0.08) * _step(floor - y, 0.05)
    if f["effusion"] > 0:  # fluid fills the posterior costophrenic sulcus first
        level = floor - f["effusion"] * 0.2 * s * np.clip(rel + 0.2, 0.0, 1.2)
        lung = lung * (1.0 - 0.85 * _step(y - level, 0.04))
    # cardiomegaly leaves the lateral alone (a PA-only finding: any lateral "gain" on it is capacity or noise);
    # hyperinflation opens the retrosternal space
    heart_x = -0.22 * s + 0.04 * s * f["emphysema"]
    heart = _ellipse(y, x, dia - 0.16 * s, heart_x, 0.28 * s, 0.3 * s, edge=0.3)
    air = 0.95 * p["air"] * (1.0 + 0.06 * f["emphysema"])
    mu = mu - air * lung * (1.0 - 0.8 * heart) + 0.5 * heart + 0.1 * p["markings"][1] * lung
    mu += 0.3 * _step(0.035 * s - np.abs(x + 0.68 * s), 0.02) * _step(0.35 * s - np.abs(y + 0.2 * s), 0.05)  # sternum
    vertebrae = 0.55 + 0.45 * np.cos(np.pi * (y - p["rib_phase"]) / (0.09 * s)) ** 2  # bodies and discs
    mu += 0.45 * vertebrae * _step(0.1 * s - np.abs(x - 0.58 * s), 0.03) * _step(0.9 * s - np.abs(y + 0.1), 0.1)
    mu -= 0.25 * _band(y, x, -1.0, -0.1 * s, -0.25 * s, 0.05 * s, 0.045 * s)  # trachea
    ribs = np.cos(2 * np.pi * (y - 0.3 * x - p["rib_phase"]) / (0.22 * s)) ** 8
    mu += 0.05 * ribs * lung
    mu += f["nodule"] * 0.75 * 0.25 * _blob(y, x, p["nodule_y"] * s, p["nodule_depth"] * s, p["nodule_r"] * s)
    mu += f["retrocardiac_opacity"] * 0.22 * _blob(y, x, dia - p["rc_y"] * s, p["rc_x"] * s, 0.12 * s)  # over the spine
    return mu


def _display(mu, exposure, noise_std, noise):
    """Attenuation -> brightness in [0, 1]: dense is bright, as radiologists read films."""
    return np.clip(1.0 - np.exp(-exposure * np.maximum(mu, 0.0)) + noise_std * noise, 0.0, 1.0).astype(np.float32)


def make_study(seed: int | np.random.Generator = 0, config: TwoViewConfig = TwoViewConfig(), *,
               labels=None) -> dict[str, np.ndarray]:
    """Draw one two-view study (PA + lateral of one synthetic patient) and its labels.

    Parameters
    ----------
    seed : int or numpy.random.Generator
    config : TwoViewConfig
    labels : (L,) array_like of {0, 1}, optional
        Force the true findings (the random draws are the same either way, so changing ``labels``
        with the same ``seed`` gives the counterfactual study of the same patient).

    Returns
    -------
    dict of ndarray
        ``pa`` and ``lateral``: (1, S, S) float32 in [0, 1] (zeros when missing); ``present``: (2,) bool
        [pa, lateral]; ``labels``: (L,) float32 0/1, after ``label_noise``; ``label_mask``: (L,) float32
        ones (every synthetic label is known); ``clean_labels``: (L,) float32, the findings really drawn;
        ``severity``: (L,) float32, each finding's strength (0 when absent).

    Examples
    --------
    >>> study = make_study(0, TwoViewConfig(size=64))
    >>> study["pa"].shape, study["lateral"].dtype, study["present"].tolist(), study["labels"].shape
    ((1, 64, 64), dtype('float32'), [True, True], (5,))
    >>> healthy = make_study(0, labels=[0, 0, 0, 0, 0]); sick = make_study(0, labels=[0, 0, 1, 0, 0])
    >>> bool(abs(sick["lateral"] - healthy["lateral"]).sum() > abs(sick["pa"] - healthy["pa"]).sum())
    True
    """
    _validate(config)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n_labels, size = len(LABELS), config.size
    drawn = rng.random(n_labels) < _prevalences(config)
    if labels is not None:
        forced = np.asarray(labels)
        if forced.shape != (n_labels,) or not np.isin(forced, (0, 1)).all():
            raise ValueError(f"`labels` must be {n_labels} values in {{0, 1}} (order {LABELS}), got {labels!r}")
        drawn = forced.astype(bool)
    severity = rng.uniform(0.35, 1.0, n_labels) * config.finding_strength
    effects = dict(zip(LABELS, np.where(drawn, severity, 0.0), strict=True))
    side = rng.choice((-1.0, 1.0))
    patient = {
        "body": rng.uniform(0.88, 1.05), "dia": rng.uniform(0.28, 0.42), "dome": rng.uniform(0.12, 0.24),
        "ctr": rng.uniform(0.38, 0.48), "rib_phase": rng.uniform(0.0, 0.2), "air": rng.uniform(0.72, 0.88),
        "rc_y": rng.uniform(0.12, 0.3), "rc_x": rng.uniform(0.2, 0.45),
        "nodule_y": rng.uniform(-0.65, 0.05), "nodule_x": side * rng.uniform(0.28, 0.52),
        "nodule_depth": rng.uniform(-0.35, 0.4), "nodule_r": rng.uniform(0.045, 0.07),
        "markings": [np.roll(_markings(size)[rng.integers(8)], tuple(rng.integers(0, size, 2)), axis=(0, 1))
                     for _ in range(2)],
    }
    images = []
    for draw in (_draw_pa, _draw_lateral):
        angle = np.deg2rad(rng.uniform(-config.max_rotation, config.max_rotation))
        shift = tuple(rng.uniform(-config.max_shift, config.max_shift, 2))
        y, x = _posed_grid(size, angle, shift, rng.uniform(0.95, 1.05))
        exposure, noise_std = rng.uniform(*config.exposure), rng.uniform(*config.noise)
        images.append(_display(draw(y, x, patient, effects), exposure, noise_std, rng.standard_normal((size, size))))
    # which view is missing: one uniform draw, so the probabilities are exactly the configured ones
    u = rng.random()
    present = np.array([not u < config.p_missing_pa,
                        not config.p_missing_pa <= u < config.p_missing_pa + config.p_missing_lateral])
    flip = rng.random(n_labels) < config.label_noise
    for k in range(2):
        if not present[k]:
            images[k] = np.zeros_like(images[k])
    clean = drawn.astype(np.float32)
    return {
        "pa": images[0][None], "lateral": images[1][None], "present": present,
        "labels": np.where(flip, 1.0 - clean, clean).astype(np.float32),
        "label_mask": np.ones(n_labels, np.float32), "clean_labels": clean,
        "severity": np.where(drawn, severity, 0.0).astype(np.float32),
    }


def make_studies(n: int, config: TwoViewConfig = TwoViewConfig(), seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` studies stacked along a new first axis; study ``i`` equals ``TwoViewDataset(n, config, seed)[i]``.

    Returns
    -------
    dict of ndarray
        The keys of :func:`make_study`, each with a leading ``n`` axis (``pa``: (n, 1, S, S)).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    studies = [make_study(np.random.default_rng([seed, i]), config) for i in range(n)]
    return {key: np.stack([s[key] for s in studies]) for key in studies[0]}


class TwoViewDataset(Dataset):
    """``n`` synthetic studies as a torch Dataset of dicts, in the format the real-data readers share.

    Item ``i`` is drawn from ``numpy.random.default_rng([seed, i])``: the same for a given index whatever
    order or worker reads it. Each item is a dict of tensors: ``pa``, ``lateral`` (1, S, S) float32,
    ``present`` (2,) bool, ``labels`` and ``label_mask`` (L,) float32; the default collate batches them.

    Parameters
    ----------
    n : int
    config : TwoViewConfig
    seed : int
    cache : bool
        Draw every study once now (about 2 ms each at 64 px) instead of at every access; use it for
        training, where each study is read once per epoch.

    Examples
    --------
    >>> ds = TwoViewDataset(4, TwoViewConfig(size=32), seed=0)
    >>> item = ds[1]
    >>> sorted(item), tuple(item["pa"].shape), item["present"].dtype
    (['label_mask', 'labels', 'lateral', 'pa', 'present'], (1, 32, 32), torch.bool)
    """

    keys = ("pa", "lateral", "present", "labels", "label_mask")

    def __init__(self, n: int, config: TwoViewConfig = TwoViewConfig(), seed: int = 0, *, cache: bool = False):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"`n` must be a positive int, got {n!r}")
        _validate(config)
        self.n, self.config, self.seed = n, config, seed
        self.labels = LABELS
        self._cache = None
        if cache:
            studies = make_studies(n, config, seed)
            self._cache = {key: torch.from_numpy(studies[key]) for key in self.keys}

    def __len__(self) -> int:
        return self.n

    def label_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, label_mask)``: (N, L) float32 arrays of every study (drawn now if not cached)."""
        if self._cache is not None:
            return self._cache["labels"].numpy().copy(), self._cache["label_mask"].numpy().copy()
        items = [self[i] for i in range(self.n)]
        return (np.stack([it["labels"].numpy() for it in items]), np.stack([it["label_mask"].numpy() for it in items]))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} is out of range for a dataset of {self.n} studies")
        index = index % self.n
        if self._cache is not None:
            return {key: value[index] for key, value in self._cache.items()}
        study = make_study(np.random.default_rng([self.seed, index]), self.config)
        return {key: torch.from_numpy(study[key]) for key in self.keys}
