r"""A synthetic 96-well proliferation assay: treatments, growth curves and one image per well and time point.

The chapter's use case: cells are seeded in a 96-well plate (rows A–H, columns 1–12), each column gets a
treatment, and one field per well is imaged every few hours. Counting the cells in every image gives a
growth curve per well, and the curves of replicate wells show what a compound does: a *cytostatic* compound
slows growth (more so at a higher dose), a *cytotoxic* one kills cells.

Growth model
------------
Cells in a well grow logistically towards the field's capacity :math:`K` (confluence):

.. math::  N(t) = \frac{K}{1 + (K / N_0 - 1)\, e^{-r t}}

with rate :math:`r` set by the treatment (negative: cells die). Early on this is exponential growth with
doubling time :math:`\ln 2 / r`. Wells differ: the seeding :math:`N_0` and the rate vary from well to well
(``seeding_cv``, ``rate_cv``), and the imaged field is a random sample of the well, so the true count in the
image is :math:`\mathrm{Poisson}(N(t))`.

:func:`well_image` renders the field of a well at a time point with exactly that many cells, with
:func:`course_lib.counting.synthetic_cells.make_cell_image`; a counting method turns the images back into counts,
and :func:`growth_curves` / :func:`doubling_time` into the assay's read-out.

Everything comes from ``numpy.random.SeedSequence(seed)``: the same seed gives the same plate and images.

References
----------
Bachstetter et al. (2017). MW151 inhibited IL-1β levels after traumatic brain injury with no effect on
microglia physiological responses. PLOS ONE — the lecture's BV2 growth curves and time-lapse images.
Hafner et al. (2016). Growth rate inhibition metrics correct for confounders in measuring sensitivity to
cancer drugs. Nature Methods — why rates, not end-point counts, describe a drug's effect.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from course_lib.counting.synthetic_cells import EASY, CellConfig, CellImage, make_cell_image

__all__ = ["ROWS", "COLUMNS", "WELLS", "PlateConfig", "Plate", "make_plate", "well_image", "growth_curves",
           "doubling_time", "WELL_CONFIG"]

ROWS = tuple("ABCDEFGH")
COLUMNS = tuple(range(1, 13))
WELLS = tuple(f"{row}{col}" for row in ROWS for col in COLUMNS)  # row-major: A1, A2, ..., A12, B1, ..., H12

# 256 px fields of EASY-looking cells hold a confluent well (~150 cells) without squeezing cells on top of each other
WELL_CONFIG = dataclasses.replace(EASY, size=256)


@dataclass(frozen=True)
class PlateConfig:
    # growth rate r per hour of each treatment; ln 2 / 0.035 = 19.8 h doubling time for untreated cells
    rates: tuple[tuple[str, float], ...] = (("control", 0.035), ("cytostatic_low", 0.02),
                                            ("cytostatic_high", 0.006), ("cytotoxic", -0.025))
    columns_per_treatment: int = 3  # columns 1-3 get the first treatment, 4-6 the second, ...: 24 replicate wells each
    seeding: float = 20.0  # mean cells per imaged field at t = 0
    capacity: float = 150.0  # cells per field at confluence (logistic K)
    seeding_cv: float = 0.15  # well-to-well variation of the seeding (coefficient of variation)
    rate_cv: float = 0.1  # well-to-well variation of the growth rate, as a share of the largest |rate|


@dataclass(frozen=True)
class Plate:
    hours: np.ndarray  # (T,) float64 imaging times in hours
    counts: np.ndarray  # (96, T) int64 true number of cells in the imaged field of each well
    expected: np.ndarray  # (96, T) float64 the well's growth curve N(t) before the field's Poisson sampling
    treatments: tuple[str, ...]  # (96,) treatment of each well, in the order of WELLS
    wells: tuple[str, ...]  # (96,) well names, "A1" ... "H12"
    seed: int  # seeds the images of the wells too

    def treatment_names(self) -> tuple[str, ...]:
        """The treatments in plate order (first column first)."""
        return tuple(dict.fromkeys(self.treatments))


def _validate(config: PlateConfig, hours: np.ndarray) -> None:
    if not isinstance(config, PlateConfig):
        raise TypeError(f"`config` must be a PlateConfig, got {type(config).__name__}")
    if len(config.rates) * config.columns_per_treatment != len(COLUMNS):
        raise ValueError(f"{len(config.rates)} treatments x `columns_per_treatment` ({config.columns_per_treatment}) "
                         f"must fill the plate's {len(COLUMNS)} columns")
    if not 0 < config.seeding < config.capacity:
        raise ValueError(f"need 0 < `seeding` < `capacity`, got {config.seeding} and {config.capacity}")
    if config.seeding_cv < 0 or config.rate_cv < 0:
        raise ValueError(f"`seeding_cv` and `rate_cv` must be >= 0, got {config.seeding_cv}, {config.rate_cv}")
    if hours.ndim != 1 or hours.size == 0 or not np.isfinite(hours).all() or (hours < 0).any():
        raise ValueError(f"`hours` must be a non-empty 1-D array of finite times >= 0, got {hours!r}")


def make_plate(seed: int = 0, hours=None, config: PlateConfig = PlateConfig()) -> Plate:
    """Simulate a 96-well proliferation assay: a treatment per column and the true cell count per well and time.

    Parameters
    ----------
    seed : int
        Same seed, same plate (and same images from :func:`well_image`).
    hours : (T,) array_like, optional
        Imaging times in hours, >= 0; default ``np.arange(0, 73, 12)``, every 12 h for 3 days.
    config : PlateConfig
        Treatments and their growth rates, seeding, capacity, well-to-well variation.

    Returns
    -------
    Plate
        ``counts`` (96, T) int64 true counts, ``expected`` (96, T) the wells' growth curves, ``treatments``
        and ``wells`` (96,) in row-major well order (A1, A2, ..., H12), ``hours`` (T,).

    Examples
    --------
    >>> plate = make_plate(seed=0)
    >>> plate.counts.shape, plate.wells[:2], plate.treatments[0], plate.treatments[11]
    ((96, 7), ('A1', 'A2'), 'control', 'cytotoxic')
    """
    hours = np.arange(0.0, 73.0, 12.0) if hours is None else np.asarray(hours, np.float64)
    _validate(config, hours)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))  # stream 0: the plate; images use others
    names = [name for name, _ in config.rates for _ in range(config.columns_per_treatment)]  # (12,) one per column
    treatments = tuple(names[col - 1] for _row in ROWS for col in COLUMNS)  # (96,) row-major like WELLS
    rate_of = dict(config.rates)
    spread = config.rate_cv * max(abs(r) for r in rate_of.values())
    rate = np.array([rate_of[t] for t in treatments]) + spread * rng.standard_normal(len(WELLS))  # (96,)
    n0 = config.seeding * np.exp(config.seeding_cv * rng.standard_normal(len(WELLS)))  # (96,) lognormal seeding
    k = config.capacity
    # (96, 1) and (1, T) -> (96, T): the logistic curve of each well
    expected = k / (1.0 + (k / n0[:, None] - 1.0) * np.exp(-rate[:, None] * hours[None, :]))
    counts = rng.poisson(expected).astype(np.int64)
    return Plate(hours, counts, expected, treatments, WELLS, int(seed))


def _well_index(well) -> int:
    if isinstance(well, str):
        if well.upper() not in WELLS:
            raise ValueError(f"`well` must be a name 'A1' ... 'H12' or an index 0 ... 95, got {well!r}")
        return WELLS.index(well.upper())
    if isinstance(well, int | np.integer) and not isinstance(well, bool) and 0 <= well < len(WELLS):
        return int(well)
    raise ValueError(f"`well` must be a name 'A1' ... 'H12' or an index 0 ... 95, got {well!r}")


def well_image(plate: Plate, well: str | int, t: int, config: CellConfig = WELL_CONFIG) -> CellImage:
    """Render the imaged field of one well at one time point, with exactly the plate's count of cells.

    Parameters
    ----------
    plate : Plate
    well : str or int
        Well name (``"B7"``) or row-major index (0 = A1, 95 = H12).
    t : int
        Index of the time point (``plate.hours[t]`` hours), not the hour itself.
    config : CellConfig
        How the field looks (its ``count`` is replaced by the well's count). ``WELL_CONFIG`` is ``EASY``
        at 256 px; pass e.g. ``dataclasses.replace(SHIFTED, size=256)`` for another microscope.

    Returns
    -------
    CellImage
        ``image`` (S, S) float32, ``dots`` (N, 2), ``labels`` (S, S) with N = ``plate.counts[well, t]``
        (unless the field is too small to hold them: use a larger ``size``).

    Examples
    --------
    >>> plate = make_plate(seed=0)
    >>> field = well_image(plate, "A1", 0)
    >>> len(field.dots) == int(plate.counts[0, 0]), field.image.shape
    (True, (256, 256))
    """
    if not isinstance(plate, Plate):
        raise TypeError(f"`plate` must be a Plate, got {type(plate).__name__}")
    index = _well_index(well)
    if not isinstance(t, int | np.integer) or isinstance(t, bool) or not 0 <= t < len(plate.hours):
        raise ValueError(f"`t` must be a time-point index in [0, {len(plate.hours) - 1}], got {t!r}")
    n = int(plate.counts[index, t])
    # stream (seed, 1, well, t): the same field every call, independent of which other fields were rendered
    return make_cell_image(dataclasses.replace(config, count=(n, n)),
                           np.random.SeedSequence([plate.seed, 1, index, int(t)]))


def growth_curves(plate: Plate, counts=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and standard deviation of the counts over the replicate wells of each treatment.

    Parameters
    ----------
    plate : Plate
        Gives the treatment of each well.
    counts : (96, T) array_like, optional
        Counts to summarise, e.g. those a counting method found in the well images; default the true counts.

    Returns
    -------
    dict
        ``{treatment: (mean (T,), sd (T,))}`` in plate order; sd with ``ddof=1`` (replicates are a sample).

    Examples
    --------
    >>> curves = growth_curves(make_plate(seed=0))
    >>> list(curves)
    ['control', 'cytostatic_low', 'cytostatic_high', 'cytotoxic']
    >>> mean, sd = curves["control"]; bool(mean[-1] > 2 * mean[0])
    True
    """
    counts = plate.counts if counts is None else np.asarray(counts, np.float64)
    if counts.shape != plate.counts.shape:
        raise ValueError(f"`counts` (shape {counts.shape}) must have the plate's shape {plate.counts.shape}")
    treatments = np.asarray(plate.treatments)
    curves = {}
    for name in plate.treatment_names():
        replicates = counts[treatments == name]  # (R, T)
        curves[name] = (replicates.mean(axis=0), replicates.std(axis=0, ddof=1))
    return curves


def doubling_time(hours, counts):
    """Doubling time in hours from a least-squares line through log(count) versus time.

    Pass the exponential phase only (e.g. the first 36 h): near confluence growth slows and the
    estimate grows.

    Parameters
    ----------
    hours : (T,) array_like
        At least two distinct times.
    counts : (T,) or (W, T) array_like
        Counts, all > 0 (the logarithm of 0 is undefined), one row per well.

    Returns
    -------
    float or (W,) ndarray
        :math:`\\ln 2 / \\text{slope}`; ``inf`` where the counts do not grow (slope <= 0).

    Examples
    --------
    >>> round(doubling_time([0, 10, 20, 30], [5, 10, 20, 40]), 6)   # doubles every 10 h
    10.0
    """
    hours = np.asarray(hours, np.float64)
    counts = np.asarray(counts, np.float64)
    if hours.ndim != 1 or np.unique(hours).size < 2:
        raise ValueError(f"`hours` must be 1-D with at least two distinct times, got {hours!r}")
    if counts.ndim not in (1, 2) or counts.shape[-1] != hours.size:
        raise ValueError(f"`counts` (shape {counts.shape}) must be (T,) or (W, T) with T = {hours.size} (`hours`)")
    if not (np.isfinite(counts).all() and (counts > 0).all()):
        raise ValueError("`counts` must be finite and > 0 to take their logarithm")
    slope = np.polyfit(hours, np.log(counts).T, 1)[0]  # (T,) or (T, W) -> slope () or (W,)
    doubling = np.where(slope > 0, np.log(2.0) / np.where(slope > 0, slope, 1.0), np.inf)
    return float(doubling) if counts.ndim == 1 else doubling
