"""Measuring what a translator did to the tumours: erased and hallucinated shares, and the error inside the tumour.

Something decides, per translated slice, whether it shows a tumour (``called_tumour``): a referee classifier
trained on real target-domain slices (as one must without masks), or, where the true T1 and tumour mask of every
translated slice are known, the image itself against that truth (:func:`truth_calls`, below). The truth comes from
the source slice (``has_tumour``). Two error rates, as in Cohen, Luck & Honari (MICCAI 2018):

* **erased** — the share of *tumour* slices whose translation is called healthy: ``P(called healthy | tumour)``;
* **hallucinated** — the share of *healthy* slices whose translation is called tumour: ``P(called tumour | healthy)``.

Each is a rate within its own group (a false-negative and a false-positive rate), so neither depends on how many
tumour slices the test set holds. A group that is absent gives ``nan`` (there is nothing to erase in a set without
tumours), never 0.

The **tumour intensity error** is the mean absolute difference between the translation and the true target image
(the same slice acquired in the target contrast) over the pixels of the true tumour mask: it is large when a tumour
was erased *or* painted with the wrong intensity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["BiasRates", "bias_rates", "tumour_intensity_error", "TruthThresholds", "white_level", "contrast_recovered",
           "darkening", "dark_spot_area", "fit_truth_thresholds", "truth_calls", "paint_out", "paint_in"]


@dataclass(frozen=True)
class BiasRates:
    erased: float  # share of tumour slices called healthy (nan without tumour slices)
    hallucinated: float  # share of healthy slices called tumour (nan without healthy slices)
    n_tumour: int
    n_healthy: int


def bias_rates(called_tumour, has_tumour) -> BiasRates:
    """Erased and hallucinated shares of translated slices.

    Parameters
    ----------
    called_tumour : (N,) bool array-like
        The classifier's decision on each translation.
    has_tumour : (N,) bool array-like
        Whether the source slice holds a tumour.

    Returns
    -------
    BiasRates

    Raises
    ------
    ValueError
        If the two differ in shape or are not 1-D.
    TypeError
        If either is not boolean (probabilities must be thresholded first).

    Examples
    --------
    >>> r = bias_rates([False, True, True, False], [True, True, False, False])
    >>> r.erased, r.hallucinated
    (0.5, 0.5)
    """
    called, truth = np.asarray(called_tumour), np.asarray(has_tumour)
    for value, name in ((called, "called_tumour"), (truth, "has_tumour")):
        if value.dtype != bool:
            raise TypeError(f"`{name}` must be boolean (threshold scores first), got dtype {value.dtype}")
    if called.ndim != 1 or called.shape != truth.shape:
        raise ValueError(f"`called_tumour` (shape {called.shape}) and `has_tumour` (shape {truth.shape}) must be "
                         "1-D of the same length")
    n_tumour, n_healthy = int(truth.sum()), int((~truth).sum())
    erased = float(np.mean(~called[truth])) if n_tumour else float("nan")
    hallucinated = float(np.mean(called[~truth])) if n_healthy else float("nan")
    return BiasRates(erased, hallucinated, n_tumour, n_healthy)


def tumour_intensity_error(translated: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean |translated - truth| over the tumour pixels of all slices (``nan`` when no pixel is tumour).

    Parameters
    ----------
    translated, truth : (N, H, W) float arrays
        Translations and the true target-contrast slices.
    mask : (N, H, W) bool array
        True tumour pixels.
    """
    translated, truth, mask = np.asarray(translated), np.asarray(truth), np.asarray(mask)
    if translated.shape != truth.shape or translated.shape != mask.shape:
        raise ValueError(f"`translated` (shape {translated.shape}), `truth` (shape {truth.shape}) and `mask` "
                         f"(shape {mask.shape}) must have the same shape")
    if mask.dtype != bool:
        raise TypeError(f"`mask` must be boolean, got dtype {mask.dtype}")
    if not mask.any():
        return float("nan")
    return float(np.abs(translated - truth)[mask].mean())


# --- against the truth: no referee -----------------------------------------------------------------------------------
# Synthetic (and annotated real) slices come with the true T1 and the true tumour mask of every translated slice, so
# the harm can be measured on the image itself. Tumours are dark in T1 (core and oedema below white matter):
#
# * a tumour slice is **erased** when its translation keeps less than half of the true tumour *contrast* (the image's
#   own white-matter level minus its mean inside the true mask, in the translation as in the truth): a translator
#   that shifts or scales every intensity keeps its tumours; one that paints them like white matter, or bright as in
#   FLAIR, does not;
# * a healthy slice is **hallucinated** when its translation holds a *dark spot* the truth does not: a connected
#   region, at least ``min_area`` px, where the smoothed darkening ``truth - translation`` (minus its slowly varying
#   part, so a global shift is no spot) exceeds ``delta``.
#
# ``delta`` and ``min_area`` come from the true T1 and masks of validation subjects (:func:`fit_truth_thresholds`):
# the detector looks at each validation tumour against the same slice with that tumour painted out. The controls
# with known answers: the true T1 scores 0 erased and 0 hallucinated, :func:`paint_out` erases every tumour and
# :func:`paint_in` adds one to every healthy slice (tests/translation/test_translation_truth_measure.py).


@dataclass(frozen=True)
class TruthThresholds:
    delta: float  # darkening (intensity) that counts as tumour-like: half the median true tumour contrast
    min_area: float  # px: a dark spot this large is a tumour: half the 5th percentile of the true tumours' areas
    recovered: float = 0.5  # a tumour keeping less than half its true contrast counts as erased


SMOOTH = 1.0  # px: dark spots are sought at this blur (noise and one-pixel edge errors are no tumour)
HEAD = 0.2  # T1 intensity above which a pixel is head (background and CSF lie below)


def _check_stack(translated, truth, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    translated, truth, mask = np.asarray(translated, np.float64), np.asarray(truth, np.float64), np.asarray(mask)
    if truth.ndim != 3:
        raise ValueError(f"`truth` must be (N, H, W), got shape {truth.shape}")
    if translated.shape != truth.shape or mask.shape != truth.shape:
        raise ValueError(f"`translated` (shape {translated.shape}) and `mask` (shape {mask.shape}) must have the "
                         f"shape of `truth` ({truth.shape})")
    if mask.dtype != bool:
        raise TypeError(f"`mask` must be boolean, got dtype {mask.dtype}")
    return translated, truth, mask


def _smooth(images: np.ndarray, sigma: float) -> np.ndarray:
    """(N, H, W) -> (N, H, W): each slice Gaussian-smoothed by ``sigma`` px (not across slices)."""
    return ndimage.gaussian_filter(images, (0, sigma, sigma)) if sigma > 0 else images


def white_level(images, mask, *, head: float = HEAD, q: float = 90.0) -> np.ndarray:
    """Per slice: the healthy white-matter level, the ``q``-th percentile of the head outside the tumour.

    Parameters
    ----------
    images : (N, H, W) float array
    mask : (N, H, W) bool array
        True tumour pixels (left out).
    head : float
        Pixels of ``images`` above it are head (T1 background and CSF lie below).
    q : float
        White matter is the brightest large tissue of T1.

    Returns
    -------
    (N,) float array
    """
    images, _, mask = _check_stack(images, images, mask)
    return np.array([np.percentile(image[(image > head) & ~m], q) if ((image > head) & ~m).any() else np.nan
                     for image, m in zip(images, mask, strict=True)])


def contrast_recovered(translated, truth, mask) -> np.ndarray:
    """Per slice: the share of the true tumour contrast the translation keeps (1: all, 0: none; nan if healthy).

    The contrast of an image is its white-matter level (:func:`white_level`, measured on each image's own head,
    outside the true tumour) minus its mean inside the true tumour: a translator that shifts every intensity by the
    same amount keeps it, one that paints the tumour like white matter or bright (as in FLAIR) does not.

    Parameters
    ----------
    translated, truth : (N, H, W) float arrays
        Translations and the true T1 of the same slices.
    mask : (N, H, W) bool array
        True tumour pixels.

    Returns
    -------
    (N,) float array
        ``(white(translated) - translated[mask].mean()) / (white(truth) - truth[mask].mean())``; negative for a
        tumour brighter than white matter; nan for slices without a tumour.

    Examples
    --------
    >>> truth = np.full((1, 15, 15), 0.8); mask = np.zeros((1, 15, 15), bool); mask[0, 5:10, 5:10] = True
    >>> truth[mask] = 0.4
    >>> faded = np.where(mask, 0.6, truth)  # half of the 0.4 contrast left
    >>> contrast_recovered(faded, truth, mask).round(2)
    array([0.5])
    """
    translated, truth, mask = _check_stack(translated, truth, mask)
    head = truth > HEAD  # the truth says where the head is, for both
    out = np.full(len(truth), np.nan)
    for i in np.flatnonzero(mask.any(axis=(1, 2))):
        outside = head[i] & ~mask[i]
        if not outside.any():
            continue
        wanted = np.percentile(truth[i][outside], 90) - truth[i][mask[i]].mean()
        got = np.percentile(translated[i][outside], 90) - translated[i][mask[i]].mean()
        out[i] = got / wanted
    return out


def darkening(translated, truth, *, smooth: float = SMOOTH, background: float = 6.0) -> np.ndarray:
    """How much darker the translation is than the truth, locally: ``truth - translated`` smoothed by ``smooth``
    minus its ``background``-smoothed part (a global or slowly varying shift is no spot).

    Parameters
    ----------
    translated, truth : (N, H, W) float arrays
    smooth, background : float
        Gaussian sigmas in px.

    Returns
    -------
    (N, H, W) float array
    """
    translated, truth, _ = _check_stack(translated, truth, np.zeros(np.shape(truth), bool))
    darker = truth - translated  # (N, H, W)
    return _smooth(darker, smooth) - _smooth(darker, background)


def dark_spot_area(translated, truth, *, delta: float, smooth: float = SMOOTH) -> np.ndarray:
    """Per slice: the area (px) of the largest connected region the translation darkens by more than ``delta``.

    Parameters
    ----------
    translated, truth : (N, H, W) float arrays
    delta : float > 0
        Darkening that counts (intensity units), see :func:`darkening`.
    smooth : float
        Gaussian sigma in px (noise and one-pixel edge errors are no tumour).

    Returns
    -------
    (N,) int array
    """
    if not delta > 0:
        raise ValueError(f"`delta` must be > 0, got {delta!r}")
    spot = darkening(translated, truth, smooth=smooth) > delta  # (N, H, W)
    areas = np.zeros(len(spot), int)
    for i, s in enumerate(spot):
        labels, n = ndimage.label(s)
        if n:
            areas[i] = np.bincount(labels.ravel())[1:].max()
    return areas


def fit_truth_thresholds(truth, mask) -> TruthThresholds:
    """``delta`` and ``min_area`` from the true T1 and masks of **validation** subjects (never the test slices).

    The detector of :func:`dark_spot_area` is run on each validation tumour against its own slice with the tumour
    painted out (:func:`paint_out`): what a real tumour looks like to it. ``delta`` is half the median peak
    darkening; ``min_area`` half the 5th percentile of the areas found at that ``delta``.

    Parameters
    ----------
    truth : (N, H, W) float array
        True T1 of validation slices, some with a tumour.
    mask : (N, H, W) bool array

    Returns
    -------
    TruthThresholds
    """
    truth, _, mask = _check_stack(truth, truth, mask)
    has = mask.any(axis=(1, 2))
    if not has.any():
        raise ValueError("`mask` marks no tumour: thresholds need validation slices with tumours")
    healthy = paint_out(truth[has], mask[has])
    peak = darkening(truth[has], healthy).max(axis=(1, 2))  # (n_tumour,)
    delta = float(0.5 * np.median(peak))
    areas = dark_spot_area(truth[has], healthy, delta=delta)
    return TruthThresholds(delta=delta, min_area=float(0.5 * np.quantile(areas, 0.05)))


def truth_calls(translated, truth, mask, thresholds: TruthThresholds) -> np.ndarray:
    """Per slice, "does the translation show a tumour?" decided against the truth, for :func:`bias_rates`.

    A tumour slice is called tumour when the translation keeps at least ``thresholds.recovered`` of the true contrast;
    a healthy slice when the translation holds a dark spot of at least ``thresholds.min_area`` px.

    Parameters
    ----------
    translated, truth : (N, H, W) float arrays
    mask : (N, H, W) bool array
        True tumour pixels; a slice without any is healthy.
    thresholds : TruthThresholds

    Returns
    -------
    (N,) bool array

    Examples
    --------
    >>> from course_lib.translation.synthetic_brain import brain_slices
    >>> val, test = brain_slices(40, 0.5, seed=1), brain_slices(10, 0.5, seed=2)
    >>> th = fit_truth_thresholds(val.t1, val.mask)
    >>> r = bias_rates(truth_calls(test.t1, test.t1, test.mask, th), test.tumour)  # the truth itself
    >>> r.erased, r.hallucinated
    (0.0, 0.0)
    """
    if not isinstance(thresholds, TruthThresholds):
        raise TypeError(f"`thresholds` must be a TruthThresholds, got {type(thresholds).__name__}")
    translated, truth, mask = _check_stack(translated, truth, mask)
    has = mask.any(axis=(1, 2))
    called = np.zeros(len(truth), bool)
    if has.any():
        called[has] = contrast_recovered(translated[has], truth[has], mask[has]) >= thresholds.recovered
    if (~has).any():
        called[~has] = dark_spot_area(translated[~has], truth[~has], delta=thresholds.delta) >= thresholds.min_area
    return called


def paint_out(truth, mask) -> np.ndarray:
    """A deliberately harmful "translation": each tumour painted over with the slice's white-matter level.

    Parameters
    ----------
    truth : (N, H, W) float array
    mask : (N, H, W) bool array

    Returns
    -------
    (N, H, W) float array
        ``truth`` with every tumour erased (a control that must score erased = 1).
    """
    truth, _, mask = _check_stack(truth, truth, mask)
    out = truth.copy()
    white = white_level(truth, mask)
    for image, m, level in zip(out, mask, white, strict=True):
        if m.any() and np.isfinite(level):
            image[m] = level
    return out


def paint_in(truth, donor_truth, donor_mask) -> np.ndarray:
    """A deliberately harmful "translation": a donor slice's tumour contrast pasted into each healthy slice.

    The donor tumour (its darkening against its white matter) is moved so that its centre lands on the brightest
    point of the smoothed slice (white matter, where tumours grow in the synthetic data) and subtracted there.

    Parameters
    ----------
    truth : (N, H, W) float array
        Healthy slices.
    donor_truth : (N, H, W) float array
        Tumour slices (one donor per slice).
    donor_mask : (N, H, W) bool array
        Their tumour masks (each non-empty).

    Returns
    -------
    (N, H, W) float array
        ``truth`` with a tumour added (a control that must score hallucinated = 1).
    """
    truth = np.asarray(truth, np.float64)
    donor_truth, _, donor_mask = _check_stack(donor_truth, donor_truth, donor_mask)
    if truth.shape != donor_truth.shape:
        raise ValueError(f"`truth` (shape {truth.shape}) and `donor_truth` (shape {donor_truth.shape}) must match")
    if not donor_mask.any(axis=(1, 2)).all():
        raise ValueError("every `donor_mask` slice must hold a tumour")
    out = truth.copy()
    white = white_level(donor_truth, donor_mask)
    for image, donor, m, level in zip(out, donor_truth, donor_mask, white, strict=True):
        darker = np.where(m, level - donor, 0.0).clip(0)  # (H, W) the donor's tumour contrast
        target = np.unravel_index(np.argmax(ndimage.gaussian_filter(image, 2.0)), image.shape)
        shift = np.array(target) - np.array(ndimage.center_of_mass(m))
        image -= ndimage.shift(darker, shift, order=0)
    return out.clip(0, 1)
