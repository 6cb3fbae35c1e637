"""The referee-free measure against the truth (true T1 and tumour mask), validated on controls with known answers:
the truth itself scores 0 erased and 0 hallucinated, a tumour painted out is erased, a tumour painted in is
hallucinated, and harmless changes (a global shift, a scale, a slight blur) are neither."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from course_lib.translation.bias import (
    TruthThresholds,
    bias_rates,
    contrast_recovered,
    dark_spot_area,
    fit_truth_thresholds,
    paint_in,
    paint_out,
    truth_calls,
    white_level,
)
from course_lib.translation.synthetic_brain import brain_slices


@pytest.fixture(scope="module")
def data():
    val = brain_slices(120, 0.5, seed=41)  # validation subjects: they fix the thresholds
    test = brain_slices(80, 0.5, seed=42)  # other subjects: the controls are scored here
    return fit_truth_thresholds(val.t1, val.mask), test


def _rates(translated, test, thresholds):
    return bias_rates(truth_calls(translated, test.t1, test.mask, thresholds), test.tumour)


def _square(value_in=0.4, value_out=0.8):
    # (1, 15, 15): a 5 x 5 tumour at value_in inside tissue at value_out
    truth = np.full((1, 15, 15), value_out)
    mask = np.zeros((1, 15, 15), bool)
    mask[0, 5:10, 5:10] = True
    truth[mask] = value_in
    return truth, mask


@pytest.mark.parametrize(("inside", "recovered"), [
    (0.4, 1.0),  # the truth: all of the 0.8 - 0.4 contrast
    (0.6, 0.5),  # (0.8 - 0.6) / (0.8 - 0.4)
    (0.8, 0.0),  # painted like the tissue around it
    (1.0, -0.5),  # bright, as in FLAIR: (0.8 - 1.0) / 0.4
])
def test_contrast_recovered_hand_cases(inside, recovered):
    truth, mask = _square()
    translated = np.where(mask, inside, truth)
    assert contrast_recovered(translated, truth, mask)[0] == pytest.approx(recovered)


def test_contrast_recovered_is_nan_for_healthy_slices_and_ignores_a_global_shift():
    truth, mask = _square()
    assert np.isnan(contrast_recovered(truth, truth, np.zeros_like(mask))[0]), "nothing to recover: nan"
    assert contrast_recovered(truth - 0.1, truth, mask)[0] == pytest.approx(1.0), "same contrast, darker image"


def test_white_level_leaves_the_tumour_out():
    truth, mask = _square()
    assert white_level(truth, mask)[0] == pytest.approx(0.8)


def test_dark_spot_area_finds_a_painted_square_and_not_a_shift():
    truth, _ = _square(value_in=0.8)  # (1, 15, 15) healthy: all 0.8
    spotted = truth.copy()
    spotted[0, 5:10, 5:10] = 0.3  # a 5 x 5 dark spot of depth 0.5
    area = dark_spot_area(spotted, truth, delta=0.1)[0]
    assert 15 <= area <= 40, f"the smoothed 25 px spot should cover roughly 25 px, got {area}"
    assert dark_spot_area(truth - 0.2, truth, delta=0.1)[0] == 0, "a global shift is no spot"


def test_the_truth_scores_zero(data):
    thresholds, test = data
    rates = _rates(test.t1, test, thresholds)
    assert rates.erased == 0.0 and rates.hallucinated == 0.0


def test_painted_out_tumours_are_erased(data):
    thresholds, test = data
    rates = _rates(paint_out(test.t1, test.mask), test, thresholds)
    assert rates.erased == 1.0 and rates.hallucinated == 0.0


def test_painted_in_tumours_are_hallucinated(data):
    thresholds, test = data
    healthy, tumour = np.flatnonzero(~test.tumour), np.flatnonzero(test.tumour)
    translated = test.t1.astype(np.float64)
    translated[healthy] = paint_in(test.t1[healthy], test.t1[tumour], test.mask[tumour])
    rates = _rates(translated, test, thresholds)
    assert rates.hallucinated >= 0.95 and rates.erased == 0.0


@pytest.mark.parametrize("harmless", [
    lambda t: t - 0.1,  # darker everywhere
    lambda t: 0.8 * t,  # lower contrast everywhere
    lambda t: ndimage.gaussian_filter(t, (0, 0.7, 0.7)),  # a slightly smoother image, as a regression gives
])
def test_harmless_changes_neither_erase_nor_hallucinate(data, harmless):
    thresholds, test = data
    rates = _rates(harmless(test.t1.astype(np.float64)), test, thresholds)
    assert rates.erased <= 0.05 and rates.hallucinated <= 0.05


def test_thresholds_come_from_the_validation_tumours(data):
    thresholds, _ = data
    assert 0.05 < thresholds.delta < 0.5, "half a tumour's peak darkening on T1 (white matter 0.85, core 0.38)"
    assert 1 <= thresholds.min_area < 100, "px: half of a small tumour at 32 px"


def test_ill_inputs_name_the_argument():
    truth, mask = _square()
    with pytest.raises(ValueError, match="`translated`"):
        contrast_recovered(truth[:, :5], truth, mask)
    with pytest.raises(TypeError, match="`mask` must be boolean"):
        contrast_recovered(truth, truth, mask.astype(int))
    with pytest.raises(ValueError, match="`truth` must be"):
        white_level(truth[0], mask[0])
    with pytest.raises(ValueError, match="`delta` must be > 0"):
        dark_spot_area(truth, truth, delta=0.0)
    with pytest.raises(TypeError, match="`thresholds` must be a TruthThresholds"):
        truth_calls(truth, truth, mask, {"delta": 0.1})
    with pytest.raises(ValueError, match="marks no tumour"):
        fit_truth_thresholds(truth, np.zeros_like(mask))
    with pytest.raises(ValueError, match="every `donor_mask` slice must hold a tumour"):
        paint_in(truth, truth, np.zeros_like(mask))
    assert isinstance(TruthThresholds(0.1, 5.0), TruthThresholds)
