"""Measuring what a translator did to the tumours: erased and hallucinated shares, and the error inside the tumour.

A classifier trained on real target-domain slices reads every translation (``called_tumour``); the truth comes from
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

__all__ = ["BiasRates", "bias_rates", "tumour_intensity_error"]


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
