"""Tests of F1, AUROC and the bootstrap CIs (course_lib.metrics.classification / .bootstrap).

Oracles: scikit-learn ``f1_score`` / ``roc_auc_score``, torchmetrics ``binary_auroc``, and
``scipy.stats.bootstrap(method="percentile")`` — statistically (its RNG differs from ours), plus
exact checks that recompute the percentiles from :func:`bootstrap_indices` with the same seed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import f1_score as sk_f1_score
from sklearn.metrics import roc_auc_score
from torchmetrics.functional.classification import binary_auroc

from course_lib.metrics import (
    ConfidenceInterval,
    auroc,
    bootstrap_ci,
    bootstrap_indices,
    f1_bootstrap_ci,
    f1_score,
    paired_f1_difference,
)


def random_labels(seed: int, n: int, p_true: float = 0.3, accuracy: float = 0.8):
    """y_true and a prediction that agrees with it on about ``accuracy`` of the items."""
    rng = np.random.default_rng(seed)
    y_true = rng.random(n) < p_true
    flip = rng.random(n) > accuracy
    return y_true, y_true ^ flip


# scipy.stats.bootstrap draws its resamples with ``rng.integers(0, n, ...)`` just as
# bootstrap_indices does, so the same seed would reproduce our resamples exactly; a different seed
# makes the comparison a genuine (statistical) check of the method rather than of the RNG.
SCIPY_SEED = 12345


def f1_along_last_axis(t, p, axis=-1):
    """Vectorised F1 for scipy.stats.bootstrap: 2 TP / (2 TP + FP + FN), 0 when undefined."""
    t, p = np.asarray(t, bool), np.asarray(p, bool)
    tp = np.sum(t & p, axis=axis)
    den = 2 * tp + np.sum(~t & p, axis=axis) + np.sum(t & ~p, axis=axis)
    return np.divide(2 * tp, den, out=np.zeros(np.shape(tp)), where=den > 0)


# --------------------------------------------------------------------------- F1


def test_f1_hand_cases():
    # y_true [1, 1, 0, 0], y_pred [1, 0, 1, 0]: TP=1, FP=1, FN=1 -> 2/(2+1+1) = 0.5
    assert f1_score([1, 1, 0, 0], [1, 0, 1, 0]) == 0.5
    # TP=2, FP=0, FN=1 -> 4/(4+0+1) = 0.8
    assert f1_score([1, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.8)
    # no positives anywhere: TP+FP+FN = 0 -> zero_division (0.0 by default, as scikit-learn)
    assert f1_score([0, 0, 0], [0, 0, 0]) == 0.0
    assert f1_score([0, 0, 0], [0, 0, 0], zero_division=1.0) == 1.0
    assert np.isnan(f1_score([0, 0, 0], [0, 0, 0], zero_division=np.nan))
    # only false positives: TP=0 -> 0, whatever zero_division says
    assert f1_score([0, 0, 0], [0, 1, 0], zero_division=1.0) == 0.0


@pytest.mark.parametrize("zero_division", [0.0, 1.0], ids=["zd0", "zd1"])
@pytest.mark.parametrize("p_true", [0.05, 0.3, 0.7], ids=["rare", "common", "frequent"])
@pytest.mark.parametrize("n", [5, 50, 500])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_matches_sklearn(seed, n, p_true, zero_division):
    y_true, y_pred = random_labels(seed, n, p_true)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = sk_f1_score(y_true, y_pred, zero_division=zero_division)
    assert f1_score(y_true, y_pred, zero_division=zero_division) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "convert",
    [lambda x: x, lambda x: x.astype(int), lambda x: x.astype(float), lambda x: torch.from_numpy(x),
     lambda x: torch.from_numpy(x).float(), lambda x: x.astype(int).tolist()],
    ids=["bool", "int", "float", "torch-bool", "torch-float", "list"],
)
def test_f1_input_types(convert):
    y_true, y_pred = random_labels(3, 40)
    assert f1_score(convert(y_true), convert(y_pred)) == f1_score(y_true, y_pred)


# --------------------------------------------------------------------------- AUROC


def test_auroc_hand_case():
    # positives score 0.35 and 0.8, negatives 0.1 and 0.4. Of the 2x2 (positive, negative) pairs the
    # positive wins (0.35, 0.1), (0.8, 0.1), (0.8, 0.4) and loses (0.35, 0.4) -> AUROC = 3/4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # a tie between a positive and a negative counts one half: pairs win, tie, win, win -> 3.5/4
    assert auroc([0, 0, 1, 1], [0.1, 0.35, 0.35, 0.8]) == 0.875
    # perfect and reversed rankings
    assert auroc([0, 0, 1, 1], [1, 2, 3, 4]) == 1.0
    assert auroc([0, 0, 1, 1], [4, 3, 2, 1]) == 0.0


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "tied-scores"])
@pytest.mark.parametrize("n", [10, 200])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_sklearn_and_torchmetrics(seed, n, ties):
    rng = np.random.default_rng(seed)
    y_true = rng.random(n) < 0.4
    y_true[:2] = [True, False]  # both classes present
    scores = y_true + rng.normal(scale=1.0, size=n)  # informative but imperfect
    if ties:
        scores = np.round(scores, 0)  # few distinct values -> many ties
    expected = roc_auc_score(y_true, scores)
    assert auroc(y_true, scores) == pytest.approx(expected, abs=1e-6)
    assert auroc(y_true, scores) == pytest.approx(
        binary_auroc(torch.from_numpy(scores), torch.from_numpy(y_true).long()).item(), abs=1e-6
    )
    # only the order of the scores matters: logits and probabilities give the same AUROC
    assert auroc(y_true, 1 / (1 + np.exp(-scores))) == pytest.approx(expected, abs=1e-6)
    assert auroc(torch.from_numpy(y_true), torch.from_numpy(scores).float()) == pytest.approx(expected, abs=1e-6)


def test_auroc_accepts_low_precision_tensors():
    # scores straight out of a model under autocast are bfloat16 / float16, which NumPy (bf16) lacks
    y_true = torch.tensor([0, 0, 1, 1])
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])  # the 3/4 case of test_auroc_hand_case
    assert auroc(y_true, scores.bfloat16()) == 0.75
    assert auroc(y_true, scores.half()) == 0.75


@pytest.mark.parametrize("seed", [0, 1])
def test_auroc_multilabel_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.random((120, 5)) < 0.3  # (N, L): 5 findings
    y_true[0], y_true[1] = True, False
    scores = y_true * rng.random(5) + rng.normal(size=(120, 5))
    per_label = auroc(y_true, scores)
    assert per_label.shape == (5,)  # (N, L) -> (L,)
    np.testing.assert_allclose(per_label, roc_auc_score(y_true, scores, average=None), atol=1e-6)
    assert auroc(y_true, scores, average="macro") == pytest.approx(
        roc_auc_score(y_true, scores, average="macro"), abs=1e-6
    )


def test_auroc_ill_inputs_raise():
    with pytest.raises(ValueError, match=r"AUROC needs both positive and negative labels; got 0 positives "
                                         r"and 3 negatives"):
        auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"AUROC needs both positive and negative labels; got 3 positives"):
        auroc([1, 1, 1], [0.1, 0.2, 0.3])
    y = np.array([[0, 1], [1, 1], [0, 1]])  # (N=3, L=2): label 1 is always positive
    with pytest.raises(ValueError, match=r"AUROC needs both positive and negative labels in column 1"):
        auroc(y, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"`scores` \(shape \(3,\)\) must have the same shape as `y_true` "
                                         r"\(shape \(4,\)\)"):
        auroc([0, 1, 0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"`y_true` must have shape \(N,\) or \(N, L\), got \(2, 2, 2\)"):
        auroc(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"`average` must be one of \('none', 'macro'\), got 'micro'"):
        auroc([0, 1], [0.1, 0.2], average="micro")
    with pytest.raises(ValueError, match=r"`scores` \(shape \(2,\)\) contains NaN"):
        auroc([0, 1], [np.nan, 0.2])
    with pytest.raises(ValueError, match=r"`y_true` .*must be binary"):
        auroc([0, 2], [0.1, 0.2])
    with pytest.raises(TypeError, match=r"`scores` must have a boolean, integer or float dtype"):
        auroc([0, 1], np.array(["low", "high"]))


def test_f1_ill_inputs_raise():
    with pytest.raises(ValueError, match=r"`y_true` must be 1-D \(one label per image\), got shape \(2, 2\)"):
        f1_score(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"`y_pred` \(shape \(3,\)\) must have the same shape as `y_true`"):
        f1_score([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match=r"`y_pred` .*must be binary .*Threshold probabilities first"):
        f1_score([0, 1], [0.3, 0.7])
    with pytest.raises(TypeError, match=r"`y_true` must be a NumPy array or torch Tensor, got str"):
        f1_score("01", [0, 1])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_indices():
    idx = bootstrap_indices(7, 500, seed=3)
    assert idx.shape == (500, 7) and idx.min() >= 0 and idx.max() == 6
    assert np.array_equal(idx, bootstrap_indices(7, 500, seed=3))  # same seed, same resamples
    assert not np.array_equal(idx, bootstrap_indices(7, 500, seed=4))
    with pytest.raises(ValueError, match=r"cannot bootstrap an empty sample \(n=0\)"):
        bootstrap_indices(0, 10)


def test_confidence_interval_str():
    # the CheXNet table's format
    assert str(ConfidenceInterval(0.435, 0.387, 0.481)) == "0.435 (0.387, 0.481)"


def test_bootstrap_ci_exact_percentiles_of_mean():
    x = np.random.default_rng(0).normal(size=50)
    ci = bootstrap_ci(np.mean, x, n_resamples=1000, confidence=0.9, seed=7)
    values = [x[rows].mean() for rows in bootstrap_indices(50, 1000, seed=7)]  # (R,)
    low, high = np.percentile(values, [5, 95])  # 90 % CI -> 5th and 95th percentiles
    assert ci == (pytest.approx(x.mean()), pytest.approx(low), pytest.approx(high))


def test_bootstrap_ci_matches_scipy_for_mean():
    x = np.random.default_rng(1).normal(loc=2.0, scale=0.5, size=200)  # SE of the mean ~ 0.035
    ci = bootstrap_ci(np.mean, x, n_resamples=5000, seed=0)
    ref = stats.bootstrap((x,), np.mean, n_resamples=5000, method="percentile", confidence_level=0.95,
                          rng=np.random.default_rng(SCIPY_SEED)).confidence_interval
    assert ci.estimate == pytest.approx(x.mean())
    # independent resamples: the endpoints agree up to Monte-Carlo error (sd of each ~ 0.002 here)
    assert ci.low == pytest.approx(ref.low, abs=0.01)
    assert ci.high == pytest.approx(ref.high, abs=0.01)


def test_bootstrap_ci_of_f1_equals_vectorised_f1_ci():
    y_true, y_pred = random_labels(2, 80)
    slow = bootstrap_ci(f1_score, y_true, y_pred, n_resamples=300, seed=5)
    fast = f1_bootstrap_ci(y_true, y_pred, n_resamples=300, seed=5)
    assert slow == pytest.approx(fast, abs=1e-12)


@pytest.mark.parametrize("confidence", [0.8, 0.95])
@pytest.mark.parametrize("seed", [0, 1])
def test_f1_bootstrap_ci_exact(seed, confidence):
    y_true, y_pred = random_labels(seed, 60)
    ci = f1_bootstrap_ci(y_true, y_pred, n_resamples=300, confidence=confidence, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = [sk_f1_score(y_true[rows], y_pred[rows], zero_division=0.0)
                  for rows in bootstrap_indices(60, 300, seed=seed)]
    alpha = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [alpha, 100 - alpha])
    assert ci.estimate == pytest.approx(sk_f1_score(y_true, y_pred), abs=1e-6)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_bootstrap_ci_matches_scipy(seed):
    y_true, y_pred = random_labels(seed, 300)
    ci = f1_bootstrap_ci(y_true, y_pred, n_resamples=5000, seed=seed)
    ref = stats.bootstrap((y_true, y_pred), f1_along_last_axis, paired=True, vectorized=True,
                          n_resamples=5000, method="percentile", rng=np.random.default_rng(SCIPY_SEED + seed))
    # independent resamples: endpoints agree up to Monte-Carlo error (sd of each ~ 0.002 here)
    assert ci.low <= ci.estimate <= ci.high
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=0.01)
    # a higher confidence gives a wider interval; the same seed gives the same interval
    narrow = f1_bootstrap_ci(y_true, y_pred, n_resamples=5000, confidence=0.5, seed=seed)
    assert ci.low < narrow.low and narrow.high < ci.high
    assert f1_bootstrap_ci(y_true, y_pred, n_resamples=5000, seed=seed) == ci


def test_paired_f1_difference_exact():
    y_true, model = random_labels(0, 70, accuracy=0.85)
    flips = np.random.default_rng(9).random((3, 70)) > [[0.8], [0.75], [0.7]]  # (R=3, N)
    readers = y_true ^ flips  # three readers, each wrong on a different ~20-30 % of the images
    ci = paired_f1_difference(y_true, model, readers, n_resamples=300, seed=11)
    # the same resampled images for the model and every reader; readers' F1 averaged per resample
    diffs = []
    for rows in bootstrap_indices(70, 300, seed=11):
        reader_avg = np.mean([f1_score(y_true[rows], r[rows]) for r in readers])
        diffs.append(f1_score(y_true[rows], model[rows]) - reader_avg)
    low, high = np.percentile(diffs, [2.5, 97.5])
    estimate = sk_f1_score(y_true, model) - np.mean([sk_f1_score(y_true, r) for r in readers])
    assert ci.estimate == pytest.approx(estimate, abs=1e-6)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


@pytest.mark.parametrize("seed", [0, 1])
def test_paired_f1_difference_matches_scipy(seed):
    y_true, model = random_labels(seed, 300, accuracy=0.9)
    reader = y_true ^ (np.random.default_rng(seed + 50).random(300) > 0.8)
    ci = paired_f1_difference(y_true, model, reader, n_resamples=5000, seed=seed)

    def difference(t, m, r, axis=-1):
        return f1_along_last_axis(t, m, axis) - f1_along_last_axis(t, r, axis)

    ref = stats.bootstrap((y_true, model, reader), difference, paired=True, vectorized=True,
                          n_resamples=5000, method="percentile", rng=np.random.default_rng(SCIPY_SEED + seed))
    assert ci.estimate == pytest.approx(difference(y_true, model, reader), abs=1e-12)
    # independent resamples: endpoints agree up to Monte-Carlo error (sd of each ~ 0.002 here)
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=0.01)
    # one reader as (N,) or as (1, N) is the same
    assert paired_f1_difference(y_true, model, reader[None], n_resamples=5000, seed=seed) == ci


def test_paired_difference_is_narrower_than_unpaired_and_zero_for_identical():
    y_true, model = random_labels(4, 200, accuracy=0.85)
    reader = model.copy()
    reader[:10] = ~reader[:10]  # the reader differs from the model on 10 of 200 images only
    paired = paired_f1_difference(y_true, model, reader, n_resamples=2000)
    m_ci = f1_bootstrap_ci(y_true, model, n_resamples=2000)
    r_ci = f1_bootstrap_ci(y_true, reader, n_resamples=2000)
    # pairing cancels the variation of which images were drawn
    assert paired.high - paired.low < 0.5 * ((m_ci.high - m_ci.low) + (r_ci.high - r_ci.low)) / 2
    same = paired_f1_difference(y_true, model, model, n_resamples=100)
    assert same == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        pytest.param({"n_resamples": 0}, r"`n_resamples` must be a positive int, got 0", id="zero-resamples"),
        pytest.param({"n_resamples": 100.0}, r"`n_resamples` must be a positive int, got 100.0", id="float"),
        pytest.param({"confidence": 1.0}, r"`confidence` must lie in \(0, 1\), got 1.0", id="confidence-1"),
        pytest.param({"confidence": 95}, r"`confidence` must lie in \(0, 1\), got 95", id="percent"),
    ],
)
def test_bootstrap_options_raise(kwargs, pattern):
    y_true, y_pred = random_labels(0, 10)
    with pytest.raises(ValueError, match=pattern):
        f1_bootstrap_ci(y_true, y_pred, **kwargs)
    with pytest.raises(ValueError, match=pattern):
        bootstrap_ci(f1_score, y_true, y_pred, **kwargs)
    with pytest.raises(ValueError, match=pattern):
        paired_f1_difference(y_true, y_pred, y_pred, **kwargs)


def test_bootstrap_ill_inputs_raise():
    y = np.array([0, 1, 1, 0, 1])
    with pytest.raises(ValueError, match=r"give at least one array to resample"):
        bootstrap_ci(np.mean)
    with pytest.raises(ValueError, match=r"`arrays\[1\]` \(shape \(4,\)\) must have 5 items along axis 0 "
                                         r"like `arrays\[0\]`"):
        bootstrap_ci(f1_score, y, y[:4])
    with pytest.raises(ValueError, match=r"cannot bootstrap an empty sample \(n=0\)"):
        bootstrap_ci(np.mean, np.array(3.0))
    with pytest.raises(TypeError, match=r"`arrays\[0\]` must be a NumPy array or torch Tensor, got str"):
        bootstrap_ci(np.mean, "01101")
    with pytest.raises(ValueError, match=r"`y_true` must be 1-D, got shape \(5, 1\)"):
        f1_bootstrap_ci(y[:, None], y[:, None])
    with pytest.raises(ValueError, match=r"`y_pred` \(shape \(4,\)\) must have the same shape as `y_true`"):
        f1_bootstrap_ci(y, y[:4])
    with pytest.raises(ValueError, match=r"`y_pred` .*must be binary"):
        f1_bootstrap_ci(y, y * 0.5)
    with pytest.raises(ValueError, match=r"`reader_preds` \(shape \(2, 4\)\) must have shape \(5,\) or \(R, 5\)"):
        paired_f1_difference(y, y, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"`model_pred` \(shape \(4,\)\) must have the same shape as `y_true`"):
        paired_f1_difference(y, y[:4], y)
    with pytest.raises(ValueError, match=r"`reader_preds` .*must be binary"):
        paired_f1_difference(y, y, 2 * y)
