"""Tests of course_lib.counting.synthetic_wells: a 96-well proliferation assay with growth curves and well images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from course_lib.counting.synthetic_cells import SHIFTED
from course_lib.counting.synthetic_wells import (
    WELLS,
    PlateConfig,
    doubling_time,
    growth_curves,
    make_plate,
    well_image,
)


@pytest.fixture(scope="module")
def plate():
    return make_plate(seed=0)


def by_treatment(plate, values):
    """Rows of ``values`` (96, ...) grouped by treatment name."""
    treatments = np.asarray(plate.treatments)
    return {name: values[treatments == name] for name in plate.treatment_names()}


def test_layout(plate):
    assert len(WELLS) == 96 and WELLS[:3] == ("A1", "A2", "A3") and WELLS[12] == "B1" and WELLS[-1] == "H12"
    assert plate.wells == WELLS and len(plate.treatments) == 96
    assert plate.treatment_names() == ("control", "cytostatic_low", "cytostatic_high", "cytotoxic")
    # three replicate columns per treatment, so 24 wells each, and every row holds every treatment
    assert {name: plate.treatments.count(name) for name in plate.treatment_names()} == dict.fromkeys(
        plate.treatment_names(), 24)
    treatment = dict(zip(plate.wells, plate.treatments, strict=True))
    assert treatment["A1"] == treatment["H3"] == "control" and treatment["A4"] == treatment["D6"] == "cytostatic_low"
    assert treatment["E7"] == "cytostatic_high" and treatment["B10"] == treatment["H12"] == "cytotoxic"


def test_shapes_and_dtypes(plate):
    np.testing.assert_array_equal(plate.hours, [0, 12, 24, 36, 48, 60, 72])
    assert plate.counts.shape == plate.expected.shape == (96, 7)
    assert plate.counts.dtype == np.int64 and (plate.counts >= 0).all()
    other = make_plate(seed=0, hours=[0, 6, 24])
    assert other.counts.shape == (96, 3)


def test_same_seed_same_plate_other_seed_other_plate(plate):
    again, other = make_plate(seed=0), make_plate(seed=1)
    assert np.array_equal(plate.counts, again.counts) and np.array_equal(plate.expected, again.expected)
    assert not np.array_equal(plate.counts, other.counts)


def test_control_grows_cytostatic_slows_cytotoxic_kills(plate):
    fold = {name: curve[:, -1] / curve[:, 0] for name, curve in by_treatment(plate, plate.expected).items()}
    assert (fold["control"] > 3).all(), "untreated cells grow about 5-fold in 3 days"
    assert (fold["cytotoxic"] < 0.5).all(), "a cytotoxic compound kills most cells"
    assert (0.8 < fold["cytostatic_high"]).all() and (fold["cytostatic_high"] < 2.5).all(), "high dose: near flat"
    means = [np.median(fold[name]) for name in plate.treatment_names()]
    assert means == sorted(means, reverse=True), f"more drug, less growth: {means}"
    # the same holds for the observed (Poisson-sampled) counts, summarised per treatment
    curves = growth_curves(plate)
    assert curves["control"][0][-1] > 3 * curves["control"][0][0]
    assert curves["cytotoxic"][0][-1] < 0.5 * curves["cytotoxic"][0][0]


def test_expected_curves_are_logistic(plate):
    """logit(N / K) = log(N / (K - N)) is a straight line in t with slope r for the logistic model."""
    config = PlateConfig()
    spread = config.rate_cv * max(abs(r) for _, r in config.rates)  # sd of a well's rate around its treatment's
    logit = np.log(plate.expected / (config.capacity - plate.expected))  # (96, T)
    for name, rows in by_treatment(plate, logit).items():
        rate = dict(config.rates)[name]
        for row in rows:
            fit = stats.linregress(plate.hours, row)
            assert fit.rvalue**2 > 1 - 1e-9 or abs(fit.slope) < 1e-3, "not a straight line"
            assert abs(fit.slope - rate) < 4 * spread, (name, fit.slope, rate)


def test_counts_are_poisson_around_the_curves(plate):
    # standardised residuals (count - N) / sqrt(N) of a Poisson draw have mean 0 and sd 1 (672 draws)
    z = (plate.counts - plate.expected) / np.sqrt(plate.expected)
    assert abs(z.mean()) < 0.15 and 0.85 < z.std() < 1.15


def test_growth_curves_match_pandas(plate):
    frame = pd.DataFrame(plate.counts, columns=plate.hours)
    frame["treatment"] = plate.treatments
    grouped = frame.groupby("treatment", sort=False)
    mean, sd = grouped.mean(), grouped.std()  # pandas' std has ddof=1
    curves = growth_curves(plate)
    assert list(curves) == list(mean.index)
    for name, (m, s) in curves.items():
        np.testing.assert_allclose(m, mean.loc[name].to_numpy())
        np.testing.assert_allclose(s, sd.loc[name].to_numpy())
    doubled = growth_curves(plate, 2 * plate.counts)  # counts from elsewhere, e.g. a counting method
    np.testing.assert_allclose(doubled["control"][0], 2 * curves["control"][0])
    with pytest.raises(ValueError, match="shape"):
        growth_curves(plate, plate.counts[:, :3])


@pytest.mark.parametrize("doubling", [10.0, 19.8, 40.0])
def test_doubling_time_of_exponential_growth_is_exact(doubling):
    hours = np.array([0.0, 12, 24, 36])
    counts = 20 * 2 ** (hours / doubling)
    assert doubling_time(hours, counts) == pytest.approx(doubling)


def test_doubling_time_matches_scipy_linregress_and_handles_many_wells():
    rng = np.random.default_rng(0)
    hours = np.arange(0, 49, 12.0)
    counts = rng.integers(5, 80, size=(6, hours.size)).astype(float)  # (W, T) any positive counts
    slopes = np.array([stats.linregress(hours, np.log(row)).slope for row in counts])
    expected = np.where(slopes > 0, np.log(2) / np.where(slopes > 0, slopes, 1), np.inf)
    result = doubling_time(hours, counts)
    assert result.shape == (6,) and (slopes <= 0).any() and (slopes > 0).any(), "cover both cases"
    np.testing.assert_allclose(result, expected)
    assert doubling_time([0, 10, 20], [30, 20, 10]) == np.inf, "declining cells never double"


def test_doubling_time_orders_the_treatments(plate):
    # exponential phase (first 24 h) of the noise-free curves: control ~ ln 2 / 0.035 = 19.8 h, slowed a little
    # by the logistic brake; more drug, longer doubling
    early = plate.hours <= 24
    median = {name: np.median(doubling_time(plate.hours[early], curve[:, early]))
              for name, curve in by_treatment(plate, plate.expected).items()}
    assert 18 < median["control"] < 26
    assert median["control"] < median["cytostatic_low"] < median["cytostatic_high"] < median["cytotoxic"] == np.inf


@pytest.mark.parametrize(("hours", "counts", "match"), [
    ([0, 0], [1, 2], "distinct"),
    ([[0, 1]], [1, 2], "1-D"),
    ([0, 1, 2], [1, 2], "counts"),
    ([0, 1], [0, 2], "> 0"),
    ([0, 1], [np.nan, 2], "finite"),
])
def test_doubling_time_rejects_bad_input(hours, counts, match):
    with pytest.raises(ValueError, match=match):
        doubling_time(hours, counts)


@pytest.mark.parametrize(("well", "t"), [("A1", 0), ("c5", 3), (95, 6), ("B12", 6)])
def test_well_image_has_the_plates_count(plate, well, t):
    field = well_image(plate, well, t)
    index = well if isinstance(well, int) else WELLS.index(well.upper())
    assert len(field.dots) == plate.counts[index, t] == field.labels.max()
    assert field.image.shape == (256, 256) and field.image.dtype == np.float32


def test_well_images_are_deterministic_and_distinct(plate):
    a, b = well_image(plate, "A1", 6), well_image(plate, "A1", 6)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.dots, b.dots)
    assert not np.array_equal(a.image, well_image(plate, "A2", 6).image)
    assert not np.array_equal(a.image, well_image(plate, "A1", 5).image)
    shifted = well_image(plate, "A1", 6, dataclasses.replace(SHIFTED, size=256))  # another microscope, same cells
    assert len(shifted.dots) == len(a.dots) and not np.allclose(shifted.image, a.image)


@pytest.mark.parametrize(("well", "t", "match"), [("I1", 0, "well"), ("A13", 0, "well"), (96, 0, "well"),
                                                  (True, 0, "well"), ("A1", 7, "`t`"), ("A1", -1, "`t`"),
                                                  ("A1", 1.0, "`t`")])
def test_well_image_rejects_bad_input(plate, well, t, match):
    with pytest.raises(ValueError, match=match):
        well_image(plate, well, t)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"hours": []}, ValueError, "hours"),
    ({"hours": [0, -12]}, ValueError, "hours"),
    ({"config": PlateConfig(columns_per_treatment=2)}, ValueError, "columns"),
    ({"config": PlateConfig(seeding=200.0)}, ValueError, "seeding"),
    ({"config": PlateConfig(rate_cv=-0.1)}, ValueError, "rate_cv"),
    ({"seed": 1.5}, TypeError, "seed"),
])
def test_make_plate_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_plate(**kwargs)
