"""Erased / hallucinated shares, the tumour intensity error and the referee's threshold, on hand-checkable cases
and against scikit-learn's ROC curve."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve

from course_lib.translation.bias import bias_rates, tumour_intensity_error
from course_lib.translation.classifier import (
    TumourClassifier,
    augment,
    threshold_at_false_positive_rate,
    train_tumour_classifier,
    youden_threshold,
)
from course_lib.translation.synthetic_brain import brain_slices


@pytest.mark.parametrize(("called", "truth", "erased", "hallucinated"), [
    ([True, True, False, False], [True, True, False, False], 0.0, 0.0),  # a faithful translator
    ([False, False, False, False], [True, True, False, False], 1.0, 0.0),  # every tumour erased
    ([True, True, True, True], [True, True, False, False], 0.0, 1.0),  # tumours added to every healthy slice
    ([False, True, True, False, False, False], [True, True, True, False, False, False], 1 / 3, 0.0),
])
def test_bias_rates_hand_cases(called, truth, erased, hallucinated):
    rates = bias_rates(np.array(called), np.array(truth))
    assert rates.erased == pytest.approx(erased) and rates.hallucinated == pytest.approx(hallucinated)
    assert rates.n_tumour == sum(truth) and rates.n_healthy == len(truth) - sum(truth)


def test_rates_are_within_each_group_not_over_all_slices():
    # 1 tumour slice erased out of 2, 0 healthy called tumour out of 98: erased is 1/2, not 1/100
    truth = np.zeros(100, bool)
    truth[:2] = True
    called = truth.copy()
    called[0] = False
    assert bias_rates(called, truth).erased == 0.5


def test_an_absent_group_gives_nan_not_zero():
    rates = bias_rates(np.array([True, False]), np.array([False, False]))
    assert math.isnan(rates.erased) and rates.hallucinated == 0.5
    assert math.isnan(bias_rates(np.array([True]), np.array([True])).hallucinated)


def test_bias_rates_refuses_scores_and_mismatched_lengths():
    with pytest.raises(TypeError, match="`called_tumour` must be boolean .*got dtype float64"):
        bias_rates(np.array([0.2, 0.9]), np.array([True, False]))
    with pytest.raises(ValueError, match=r"`called_tumour` \(shape \(3,\)\) and `has_tumour` \(shape \(2,\)\)"):
        bias_rates(np.array([True, False, True]), np.array([True, False]))


def test_tumour_intensity_error_counts_only_tumour_pixels():
    truth = np.zeros((2, 2, 2))
    translated = np.array([[[0.5, 9.0], [9.0, 9.0]], [[0.0, 9.0], [9.0, 9.0]]])  # 9 = outside the tumour
    mask = np.zeros((2, 2, 2), bool)
    mask[:, 0, 0] = True
    assert tumour_intensity_error(translated, truth, mask) == pytest.approx(0.25)  # (0.5 + 0) / 2
    assert math.isnan(tumour_intensity_error(translated, truth, np.zeros_like(mask)))
    with pytest.raises(ValueError, match="must have the same shape"):
        tumour_intensity_error(translated, truth[:1], mask)
    with pytest.raises(TypeError, match="`mask` must be boolean"):
        tumour_intensity_error(translated, truth, mask.astype(float))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_youden_threshold_reaches_the_best_j_of_the_roc_curve(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(60) < 0.4
    scores = rng.normal(labels * 1.0, 1.0)
    fpr, tpr, _ = roc_curve(labels, scores)  # oracle
    t = youden_threshold(scores, labels)
    sensitivity, specificity = (scores[labels] > t).mean(), (scores[~labels] <= t).mean()
    assert sensitivity + specificity - 1 == pytest.approx((tpr - fpr).max())


def test_youden_threshold_needs_both_classes():
    with pytest.raises(ValueError, match="both tumour and healthy"):
        youden_threshold(np.array([0.1, 0.2]), np.array([True, True]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2])
def test_false_positive_threshold_is_the_lowest_within_the_rate(seed, rate):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(60), 1 + seed % 2)  # ties when rounded to one decimal
    t = threshold_at_false_positive_rate(scores, rate)
    assert (scores > t).mean() <= rate, "at most the allowed share of healthy slices is called tumour"
    # oracle: any lower threshold at a distinct score calls more than the allowed share
    lower = np.unique(scores)[np.unique(scores) < t]
    if len(lower):
        assert (scores > lower.max() - 1e-9).mean() > rate, "not the lowest threshold within the rate"


def test_false_positive_threshold_refuses_bad_input():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        threshold_at_false_positive_rate(np.array([]), 0.05)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        threshold_at_false_positive_rate(np.array([0.2, 0.3]), 1.0)


def test_augment_keeps_shape_and_range():
    x = torch.rand(4, 1, 16, 16)
    y = augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_referee_learns_tumour_from_real_t1(one_thread):
    train, val, test = (brain_slices(n, 0.5, seed=s) for n, s in ((240, 0), (60, 1), (60, 2)))
    result = train_tumour_classifier(train.t1, train.tumour, val.t1, val.tumour, epochs=6, width=16)
    assert isinstance(result.model, TumourClassifier) and 0 <= result.best_epoch < 6
    assert result.val_auroc > 0.9
    from course_lib.translation.classifier import tumour_scores

    called = tumour_scores(result.model, test.t1) > result.threshold
    rates = bias_rates(called, test.tumour)
    assert rates.erased < 0.2 and rates.hallucinated < 0.2, "the referee reads real T1 well"
