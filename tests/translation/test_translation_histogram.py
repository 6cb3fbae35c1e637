"""Histogram matching against scikit-image's ``exposure.match_histograms`` (the oracle) and its stated properties."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.exposure import match_histograms as skimage_match

from course_lib.translation.histogram import match_histograms
from course_lib.translation.synthetic_brain import brain_slices


@pytest.mark.parametrize("source_shape, reference_shape, levels", [
    ((6, 9), (4, 13), None),        # continuous values, sizes differ
    ((3, 8, 8), (5, 7, 7), None),   # stacks of slices
    ((2, 10, 10), (3, 6, 6), 5),    # many ties in the source
    ((50,), (7,), 3),               # a short reference with ties
])
def test_agrees_with_scikit_image(source_shape, reference_shape, levels):
    rng = np.random.default_rng(sum(source_shape))
    source = rng.random(source_shape)
    if levels:
        source = np.floor(source * levels)
    reference = rng.gamma(2.0, size=reference_shape)
    np.testing.assert_allclose(match_histograms(source, reference), skimage_match(source, reference), atol=1e-12)


def test_monotone_tie_preserving_within_range_and_distribution_matched():
    rng = np.random.default_rng(3)
    source = np.round(rng.normal(size=4000), 1)  # ties
    reference = rng.exponential(size=3000)
    matched = match_histograms(source, reference)
    order = np.argsort(source, kind="stable")
    assert np.all(np.diff(matched[order]) >= 0), "a larger source value never maps to a smaller one"
    for value in np.unique(source)[:20]:
        assert np.ptp(matched[source == value]) == 0, "equal source values map to one value"
    assert reference.min() <= matched.min() and matched.max() <= reference.max()
    continuous = match_histograms(rng.normal(size=4000), reference)  # without ties the histograms agree
    quantiles = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(np.quantile(continuous, quantiles), np.quantile(reference, quantiles), atol=0.02)


def test_cannot_reverse_the_order_of_two_tissues():
    # FLAIR -> T1 swaps grey and white matter (and tumour and tissue): no monotone curve can do that
    slices = brain_slices(6, 0.5, seed=0)
    matched = match_histograms(slices.flair, slices.t1)
    flair_order = np.sign(np.subtract.outer(slices.flair.ravel()[:400], slices.flair.ravel()[:400]))
    matched_order = np.sign(np.subtract.outer(matched.ravel()[:400], matched.ravel()[:400]))
    assert np.all(matched_order * flair_order >= 0), "the matched image keeps the FLAIR's order of intensities"


@pytest.mark.parametrize("source, reference, error, words", [
    (np.array([]), np.ones(3), ValueError, "`source` is empty"),
    (np.ones(3), np.zeros((0, 2)), ValueError, "`reference` is empty"),
    (np.array([1.0, np.nan]), np.ones(3), ValueError, "`source` holds NaN"),
    (np.ones(3), np.array(["a", "b"]), TypeError, "`reference` must hold real numbers"),
])
def test_bad_input_names_the_argument(source, reference, error, words):
    with pytest.raises(error, match=words):
        match_histograms(source, reference)
