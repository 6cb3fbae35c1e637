"""Tests of course_lib.metrics.segmentation: precision, recall, IoU, Dice and their multi-class means.

Oracles: scikit-learn (``precision_score``, ``recall_score``, ``jaccard_score``, ``f1_score`` on the
flattened pixels), MONAI (``DiceMetric``, ``MeanIoU``) and torchmetrics (multi-class Dice / IoU).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric, MeanIoU
from sklearn.metrics import confusion_matrix, f1_score, jaccard_score, precision_score, recall_score
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_jaccard_index

from course_lib.metrics import (
    confusion_counts,
    dice,
    iou,
    mean_dice,
    mean_iou,
    multiclass_counts,
    multiclass_score,
    one_hot,
    precision,
    recall,
)

BINARY = {"precision": precision, "recall": recall, "iou": iou, "dice": dice}
SKLEARN = {"precision": precision_score, "recall": recall_score, "iou": jaccard_score, "dice": f1_score}
METRICS = list(BINARY)

SHAPES = [
    pytest.param((17,), id="1d"),
    pytest.param((9, 11), id="2d"),
    pytest.param((3, 8, 8), id="B-H-W"),
    pytest.param((2, 1, 6, 7), id="B-1-H-W"),
    pytest.param((5, 6, 7), id="3d-volume"),
    pytest.param((2, 4, 5, 6), id="B-D-H-W"),
]
BATCH_SHAPES = [p for p in SHAPES if p.id not in ("1d", "2d")]
SEEDS = [0, 1, 2]


def random_masks(seed: int, shape: tuple, p_pred: float = 0.3, p_target: float = 0.3):
    rng = np.random.default_rng(seed)
    return rng.random(shape) < p_pred, rng.random(shape) < p_target


def sklearn_score(metric: str, pred: np.ndarray, target: np.ndarray, empty_score: float = 1.0) -> float:
    """scikit-learn on the flattened pixels. Its ``zero_division`` applies to any zero denominator
    (e.g. precision of an empty prediction); ours is ``empty_score`` only when both masks are empty
    and 0 otherwise, so pass the matching value."""
    both_empty = not pred.any() and not target.any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning on empty masks
        return float(
            SKLEARN[metric](
                target.ravel(), pred.ravel(), zero_division=empty_score if both_empty else 0.0
            )
        )


# --------------------------------------------------------------------------- binary, hand-checked


# (pred, target, {metric: expected}), every case (N,) = 4 or 6 pixels.
HAND_CASES = [
    pytest.param(
        [1, 1, 0, 0], [1, 0, 1, 0],
        # TP=1, FP=1, FN=1: P = 1/2, R = 1/2, IoU = 1/(1+1+1) = 1/3, Dice = 2/(2+1+1) = 1/2
        {"precision": 0.5, "recall": 0.5, "iou": 1 / 3, "dice": 0.5},
        id="TP1-FP1-FN1",
    ),
    pytest.param(
        [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0],
        # TP=2, FP=2, FN=0: P = 2/4, R = 2/2, IoU = 2/4, Dice = 4/(4+2) = 2/3
        {"precision": 0.5, "recall": 1.0, "iou": 0.5, "dice": 2 / 3},
        id="over-segmentation",
    ),
    pytest.param(
        [1, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
        # TP=1, FP=0, FN=2: P = 1/1, R = 1/3, IoU = 1/3, Dice = 2/(2+2) = 1/2
        {"precision": 1.0, "recall": 1 / 3, "iou": 1 / 3, "dice": 0.5},
        id="under-segmentation",
    ),
    pytest.param(
        [0, 0, 1, 1], [1, 1, 0, 0],
        # TP=0, FP=2, FN=2: every score is 0 (denominators are non-zero)
        {"precision": 0.0, "recall": 0.0, "iou": 0.0, "dice": 0.0},
        id="disjoint",
    ),
    pytest.param(
        [1, 1, 1, 1], [1, 1, 1, 1],
        # all foreground: TP=4, FP=FN=0 -> every score 4/4 = 1
        {"precision": 1.0, "recall": 1.0, "iou": 1.0, "dice": 1.0},
        id="all-foreground",
    ),
    pytest.param(
        [1, 1, 1, 1], [1, 1, 0, 0],
        # prediction all foreground, target half: TP=2, FP=2, FN=0 -> P=1/2, R=1, IoU=1/2, Dice=4/6
        {"precision": 0.5, "recall": 1.0, "iou": 0.5, "dice": 2 / 3},
        id="pred-all-foreground",
    ),
    pytest.param(
        [0, 0, 0, 0], [0, 0, 0, 0],
        # both empty: every denominator is 0 -> empty_score (default 1.0)
        {"precision": 1.0, "recall": 1.0, "iou": 1.0, "dice": 1.0},
        id="both-empty",
    ),
    pytest.param(
        [0, 0, 0, 0], [0, 1, 1, 0],
        # empty prediction, non-empty target: TP=0, FN=2 -> precision 0/0 is 0 (not empty_score), rest 0
        {"precision": 0.0, "recall": 0.0, "iou": 0.0, "dice": 0.0},
        id="empty-pred",
    ),
    pytest.param(
        [0, 1, 1, 0], [0, 0, 0, 0],
        # non-empty prediction, empty target: TP=0, FP=2 -> recall 0/0 is 0, rest 0
        {"precision": 0.0, "recall": 0.0, "iou": 0.0, "dice": 0.0},
        id="empty-target",
    ),
]


@pytest.mark.parametrize("pred, target, expected", HAND_CASES)
def test_binary_hand_cases(pred, target, expected):
    for metric, value in expected.items():
        assert BINARY[metric](pred, target) == pytest.approx(value, abs=1e-12), metric
        # the oracle agrees with the hand derivation
        assert sklearn_score(metric, np.array(pred, bool), np.array(target, bool)) == pytest.approx(value), metric


@pytest.mark.parametrize("metric", METRICS)
def test_both_empty_uses_empty_score(metric):
    empty = np.zeros((2, 3, 3), dtype=bool)  # (B, H, W)
    assert BINARY[metric](empty, empty) == 1.0
    assert np.isnan(BINARY[metric](empty, empty, empty_score=np.nan))
    assert BINARY[metric](empty, empty, empty_score=0.0) == 0.0
    # only *both* empty uses empty_score: a miss stays 0 even with empty_score=nan
    target = empty.copy()
    target[0, 1, 1] = True
    assert BINARY[metric](empty, target, empty_score=np.nan) == 0.0
    assert BINARY[metric](target, empty, empty_score=np.nan) == 0.0


def test_confusion_counts_hand_case():
    # pred [1, 1, 0, 0] vs target [1, 0, 1, 0]: one pixel of each kind
    assert confusion_counts([1, 1, 0, 0], [1, 0, 1, 0]) == (1, 1, 1, 1)
    counts = confusion_counts([1, 1, 0, 0], [1, 0, 1, 0])
    assert all(type(c) is int for c in counts)


# --------------------------------------------------------------------------- binary, against oracles


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("metric", METRICS)
def test_binary_matches_sklearn(metric, shape, seed):
    pred, target = random_masks(seed, shape)
    assert BINARY[metric](pred, target) == pytest.approx(sklearn_score(metric, pred, target), abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_confusion_counts_match_sklearn(shape, seed):
    pred, target = random_masks(seed, shape)
    tn, fp, fn, tp = confusion_matrix(target.ravel(), pred.ravel(), labels=[0, 1]).ravel()
    assert confusion_counts(pred, target) == (tp, fp, fn, tn)
    assert sum(confusion_counts(pred, target)) == pred.size


@pytest.mark.parametrize("shape", BATCH_SHAPES)
@pytest.mark.parametrize("metric", METRICS)
def test_per_image_matches_loop_over_images(metric, shape):
    pred, target = random_masks(3, shape)
    pred[0], target[0] = False, False  # image 0: both empty -> empty_score
    pred[1] = False  # image 1: empty prediction -> 0 for every score
    target[1].flat[0] = True
    got = BINARY[metric](pred, target, per_image=True)
    assert got.shape == (shape[0],)  # (B, ...) -> (B,)
    expected = [sklearn_score(metric, p, t) for p, t in zip(pred, target, strict=True)]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[0] == 1.0 and got[1] == 0.0
    got_nan = BINARY[metric](pred, target, per_image=True, empty_score=np.nan)
    assert np.isnan(got_nan[0]) and np.array_equal(got_nan[1:], got[1:])


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_confusion_counts_per_image(shape):
    pred, target = random_masks(4, shape)
    counts = confusion_counts(pred, target, per_image=True)
    for c in counts:
        assert c.shape == (shape[0],)
    for b in range(shape[0]):
        assert tuple(int(c[b]) for c in counts) == confusion_counts(pred[b], target[b])


def _monai_binary(metric_cls, pred: np.ndarray, target: np.ndarray, ignore_empty: bool) -> np.ndarray:
    """MONAI wants one-hot (B, C, *spatial); a binary mask is C=1 with the background included."""
    m = metric_cls(include_background=True, reduction="none", ignore_empty=ignore_empty)

    def to_t(x):  # (B, *spatial) -> (B, 1, *spatial)
        return torch.from_numpy(x[:, None].astype(np.float32))

    return m(to_t(pred), to_t(target)).numpy()[:, 0]  # (B, 1) -> (B,)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", BATCH_SHAPES)
@pytest.mark.parametrize("ours, monai_cls", [(dice, DiceMetric), (iou, MeanIoU)], ids=["dice", "iou"])
def test_per_image_matches_monai(ours, monai_cls, shape, seed):
    pred, target = random_masks(seed, shape)
    pred[0], target[0] = False, False  # both empty
    pred[-1] = False  # empty prediction on a (possibly) non-empty target
    target[-1].flat[0] = True
    # ignore_empty=False: 1 if both are empty, 0 if only the prediction is -> our default empty_score=1.0
    np.testing.assert_allclose(
        ours(pred, target, per_image=True), _monai_binary(monai_cls, pred, target, False), atol=1e-6
    )
    # ignore_empty=True: nan whenever the *target* is empty. Ours gives nan only when both are empty,
    # so the two agree here, where every image with an empty target also has an empty prediction.
    np.testing.assert_allclose(
        ours(pred, target, per_image=True, empty_score=np.nan),
        _monai_binary(monai_cls, pred, target, True),
        atol=1e-6,
    )


def test_empty_target_differs_from_monai_ignore_empty():
    # (B=1, N=4): prediction has 2 pixels, target none. MONAI's ignore_empty=True gives nan (it looks
    # at the target only); ours gives 0: something was predicted where there is nothing to find.
    pred, target = np.array([[1, 1, 0, 0]], bool), np.zeros((1, 4), bool)
    assert np.isnan(_monai_binary(DiceMetric, pred, target, True)[0])
    assert dice(pred, target, per_image=True, empty_score=np.nan)[0] == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_dice_iou_identity(seed):
    """D = 2J / (1 + J), and D >= J, for random masks of random density (per image too)."""
    rng = np.random.default_rng(seed)
    shape = (4, 5, 6)  # (B, H, W)
    pred, target = random_masks(seed, shape, rng.random(), rng.random())
    j, d = iou(pred, target), dice(pred, target)
    assert d == pytest.approx(2 * j / (1 + j), abs=1e-12)
    assert d >= j
    j_b, d_b = iou(pred, target, per_image=True), dice(pred, target, per_image=True)
    np.testing.assert_allclose(d_b, 2 * j_b / (1 + j_b), atol=1e-12)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda x: x, id="bool"),
        pytest.param(lambda x: x.astype(np.int64), id="int64"),
        pytest.param(lambda x: x.astype(np.uint8), id="uint8"),
        pytest.param(lambda x: x.astype(np.float32), id="float32"),
        pytest.param(lambda x: torch.from_numpy(x), id="torch-bool"),
        pytest.param(lambda x: torch.from_numpy(x).float(), id="torch-float"),
        pytest.param(lambda x: torch.from_numpy(x).long(), id="torch-long"),
        pytest.param(lambda x: torch.from_numpy(x).bfloat16(), id="torch-bfloat16"),  # autocast outputs
        pytest.param(lambda x: x.astype(int).tolist(), id="list"),
    ],
)
@pytest.mark.parametrize("metric", METRICS)
def test_input_types_agree(metric, convert):
    pred, target = random_masks(5, (2, 5, 5))  # (B, H, W)
    expected = BINARY[metric](pred, target)
    assert BINARY[metric](convert(pred), convert(target)) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(
        BINARY[metric](convert(pred), convert(target), per_image=True),
        BINARY[metric](pred, target, per_image=True),
        atol=1e-12,
    )


# --------------------------------------------------------------------------- one_hot


def test_one_hot_hand_case():
    # (B=1, N=2) labels [0, 2] with 3 classes -> (B=1, C=3, N=2): class 0 at pixel 0, class 2 at pixel 1
    assert one_hot([[0, 2]], 3).tolist() == [[[1, 0], [0, 0], [0, 1]]]


@pytest.mark.parametrize("axis, expected_shape", [(1, (2, 4, 3, 5)), (-1, (2, 3, 5, 4)), (0, (4, 2, 3, 5))])
def test_one_hot_shape_and_roundtrip(axis, expected_shape):
    labels = np.random.default_rng(0).integers(0, 4, size=(2, 3, 5))  # (B, H, W)
    encoded = one_hot(labels, 4, axis=axis)
    assert encoded.shape == expected_shape and encoded.dtype == np.uint8
    assert np.all(encoded.sum(axis=axis) == 1)
    assert np.array_equal(np.argmax(encoded, axis=axis), labels)
    # torch labels give the same encoding as F.one_hot
    via_torch = torch.nn.functional.one_hot(torch.from_numpy(labels), 4).movedim(-1, axis).numpy()
    assert np.array_equal(one_hot(torch.from_numpy(labels), 4, axis=axis), via_torch)


# --------------------------------------------------------------------------- multi-class


def random_labels(seed: int, shape: tuple, num_classes: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_classes, size=shape), rng.integers(0, num_classes, size=shape)


def test_multiclass_hand_case():
    # (B=1, N=4) target [0, 1, 1, 2], pred [0, 1, 2, 2]
    # class 0: TP=1, FP=0, FN=0 -> Dice 1,          IoU 1
    # class 1: TP=1, FP=0, FN=1 -> Dice 2/3,        IoU 1/2
    # class 2: TP=1, FP=1, FN=0 -> Dice 2/3,        IoU 1/2
    # class 3: absent from both -> empty_score (1.0, or nan and left out of the mean)
    target, pred = [[0, 1, 1, 2]], [[0, 1, 2, 2]]
    np.testing.assert_allclose(multiclass_score(pred, target, 3, average="none"), [1, 2 / 3, 2 / 3])
    np.testing.assert_allclose(mean_iou(pred, target, 3, average="none"), [1, 0.5, 0.5])
    assert mean_dice(pred, target, 3) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)  # 7/9
    assert mean_dice(pred, target, 3, include_background=False) == pytest.approx(2 / 3)
    np.testing.assert_allclose(mean_dice(pred, target, 4, average="none"), [1, 2 / 3, 2 / 3, 1])
    # with empty_score=nan the absent class 3 is left out: mean of 1, 2/3, 2/3 again
    assert mean_dice(pred, target, 4, empty_score=np.nan) == pytest.approx(7 / 9)
    tp, fp, fn = multiclass_counts(pred, target, 4)
    assert tp.tolist() == [1, 1, 1, 0] and fp.tolist() == [0, 0, 1, 0] and fn.tolist() == [0, 1, 0, 0]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(40,), (2, 7, 9), (2, 3, 4, 5)], ids=["1d", "B-H-W", "B-D-H-W"])
@pytest.mark.parametrize("metric", METRICS)
def test_multiclass_matches_sklearn(metric, shape, seed):
    num_classes = 5
    pred, target = random_labels(seed, shape, num_classes)
    pred[pred == 4] = 0  # class 4 never predicted: precision 0 (its target pixels exist)
    got = multiclass_score(pred, target, num_classes, metric=metric, average="none")
    labels = list(range(num_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = SKLEARN[metric](target.ravel(), pred.ravel(), labels=labels, average=None, zero_division=0.0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # the class mean is the lecture's (1/|C|) sum_c, which is sklearn's average="macro"
    assert multiclass_score(pred, target, num_classes, metric=metric) == pytest.approx(expected.mean(), abs=1e-6)
    # each class score equals the binary score of the "is class c" masks
    for c in labels:
        assert got[c] == pytest.approx(BINARY[metric](pred == c, target == c), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_matches_torchmetrics(seed):
    num_classes = 4
    pred, target = random_labels(seed, (2, 8, 8), num_classes)  # (B, H, W), every class present
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    f1 = multiclass_f1_score(p, t, num_classes, average="none", multidim_average="global")
    jac = multiclass_jaccard_index(p, t, num_classes, average="none")
    np.testing.assert_allclose(mean_dice(pred, target, num_classes, average="none"), f1.numpy(), atol=1e-6)
    np.testing.assert_allclose(mean_iou(pred, target, num_classes, average="none"), jac.numpy(), atol=1e-6)


def _monai_multiclass(metric_cls, pred, target, num_classes, include_background, ignore_empty):
    m = metric_cls(include_background=include_background, reduction="none", ignore_empty=ignore_empty)

    def to_t(x):  # (B, *spatial) labels -> (B, C, *spatial) one-hot
        return torch.from_numpy(one_hot(x, num_classes, axis=1).astype(np.float32))

    return m(to_t(pred), to_t(target)).numpy()  # (B, C) or (B, C - 1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("include_background", [True, False], ids=["with-bg", "no-bg"])
@pytest.mark.parametrize("ours, monai_cls", [(mean_dice, DiceMetric), (mean_iou, MeanIoU)], ids=["dice", "iou"])
def test_multiclass_per_image_matches_monai(ours, monai_cls, include_background, seed):
    num_classes = 4
    pred, target = random_labels(seed, (3, 6, 6, 5), num_classes)  # (B, D, H, W) volumes
    pred[0][pred[0] == 3] = 0  # image 0: class 3 predicted nowhere...
    target[0][target[0] == 3] = 0  # ...and absent from the target -> empty_score
    pred[1][pred[1] == 2] = 1  # image 1: class 2 missed -> 0
    kwargs = dict(include_background=include_background, per_image=True)
    n = num_classes - (0 if include_background else 1)

    got = ours(pred, target, num_classes, average="none", **kwargs)
    assert got.shape == (3, n)  # (B, C)
    expected = _monai_multiclass(monai_cls, pred, target, num_classes, include_background, False)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[0, -1] == 1.0 and got[1, 2 - (not include_background)] == 0.0

    got_nan = ours(pred, target, num_classes, average="none", empty_score=np.nan, **kwargs)
    expected_nan = _monai_multiclass(monai_cls, pred, target, num_classes, include_background, True)
    np.testing.assert_allclose(got_nan, expected_nan, atol=1e-6)
    # the per-image mean leaves nan classes out, like MONAI's nan-aware channel mean
    mean = ours(pred, target, num_classes, empty_score=np.nan, **kwargs)
    assert mean.shape == (3,)  # (B, C) -> (B,)
    np.testing.assert_allclose(mean, np.nanmean(expected_nan, axis=1), atol=1e-6)


@pytest.mark.parametrize("per_image", [False, True], ids=["global", "per-image"])
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    "shape, axis", [((2, 6, 7), 1), ((2, 6, 7), -1), ((2, 4, 5, 3), 1)], ids=["2d-axis1", "2d-axis-1", "3d-axis1"]
)
def test_one_hot_input_equals_labels(metric, per_image, shape, axis):
    num_classes = 3
    pred, target = random_labels(7, shape, num_classes)
    from_labels = multiclass_score(pred, target, num_classes, metric=metric, average="none", per_image=per_image)
    from_one_hot = multiclass_score(
        one_hot(pred, num_classes, axis=axis), one_hot(target, num_classes, axis=axis), num_classes,
        metric=metric, average="none", per_image=per_image, one_hot_axis=axis,
    )
    np.testing.assert_array_equal(from_one_hot, from_labels)
    # torch one-hot (bool) works too
    as_torch = torch.from_numpy(one_hot(pred, num_classes, axis=axis)).bool()
    as_torch_t = torch.from_numpy(one_hot(target, num_classes, axis=axis)).bool()
    np.testing.assert_array_equal(
        multiclass_score(as_torch, as_torch_t, num_classes, metric=metric, average="none",
                         per_image=per_image, one_hot_axis=axis),
        from_labels,
    )


def test_include_background_false_drops_class_zero():
    pred, target = random_labels(8, (2, 9, 9), 4)
    all_classes = mean_dice(pred, target, 4, average="none")
    np.testing.assert_array_equal(mean_dice(pred, target, 4, average="none", include_background=False),
                                  all_classes[1:])
    assert mean_dice(pred, target, 4, include_background=False) == pytest.approx(all_classes[1:].mean())


def test_multiclass_all_classes_empty_gives_nan_mean():
    # (B=2, N=3): image 0 only holds class 0; with the background excluded and empty_score=nan every
    # class of image 0 is nan -> its mean is nan (no RuntimeWarning); image 1 is a normal image
    pred = np.array([[0, 0, 0], [1, 2, 2]])
    target = np.array([[0, 0, 0], [1, 2, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = mean_dice(pred, target, 3, include_background=False, per_image=True, empty_score=np.nan)
        glob = mean_dice(pred[:1], target[:1], 3, include_background=False, empty_score=np.nan)
    # image 1: class 1 TP=1, FN=1 -> 2/3; class 2 TP=1, FP=1 -> 2/3; mean 2/3
    assert np.isnan(got[0]) and got[1] == pytest.approx(2 / 3)
    assert isinstance(glob, float) and np.isnan(glob)


def test_mean_dice_and_mean_iou_are_multiclass_score():
    pred, target = random_labels(9, (2, 5, 5), 3)
    assert mean_dice(pred, target, 3) == multiclass_score(pred, target, 3, metric="dice")
    assert mean_iou(pred, target, 3) == multiclass_score(pred, target, 3, metric="iou")
    # Dice/IoU identity holds per class
    d, j = mean_dice(pred, target, 3, average="none"), mean_iou(pred, target, 3, average="none")
    np.testing.assert_allclose(d, 2 * j / (1 + j), atol=1e-12)


def test_binary_labels_with_two_classes_match_binary_dice():
    pred, target = random_masks(10, (3, 6, 6))
    per_class = mean_dice(pred.astype(int), target.astype(int), 2, average="none")
    assert per_class[1] == pytest.approx(dice(pred, target))
    assert per_class[0] == pytest.approx(dice(~pred, ~target))


# --------------------------------------------------------------------------- ill inputs


@pytest.mark.parametrize("metric", METRICS)
def test_shape_mismatch_raises(metric):
    with pytest.raises(ValueError, match=r"`pred` \(shape \(2, 3\)\) must have the same shape as `target` "
                                         r"\(shape \(3, 2\)\)"):
        BINARY[metric](np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"`pred` \(shape \(1, 4\)\) must have the same shape as `target`"):
        BINARY[metric](np.zeros((1, 4)), np.zeros(4))  # never broadcast


@pytest.mark.parametrize(
    "pred, target, error, pattern",
    [
        pytest.param([0.2, 0.9], [0, 1], ValueError, r"`pred` \(shape \(2,\), dtype float64\) must be binary",
                     id="probabilities"),
        pytest.param([0, 1], [0, 2], ValueError, r"`target` .*must be binary .*found values such as \[2\]",
                     id="label-2"),
        pytest.param([0, -1], [0, 1], ValueError, r"`pred` .*must be binary", id="negative"),
        pytest.param([np.nan, 1.0], [0, 1], ValueError, r"`pred` \(shape \(2,\)\) contains NaN", id="nan-pred"),
        pytest.param([0, 1], torch.tensor([0.0, float("nan")]), ValueError, r"`target` .*contains NaN",
                     id="nan-torch-target"),
        pytest.param("01", [0, 1], TypeError, r"`pred` must be a NumPy array or torch Tensor, got str",
                     id="string"),
        pytest.param(np.array(["0", "1"]), [0, 1], TypeError, r"`pred` must have a boolean, integer or float dtype",
                     id="str-array"),
        pytest.param([0, 1], np.array([0, 1], dtype=object), TypeError,
                     r"`target` must have a boolean, integer or float dtype, got object", id="object-array"),
        pytest.param({0, 1}, [0, 1], TypeError, r"`pred` must be a NumPy array or torch Tensor, got set", id="set"),
        pytest.param(np.array([0, 1j]), [0, 1], TypeError, r"`pred` must be real-valued", id="complex"),
    ],
)
@pytest.mark.parametrize("metric", METRICS)
def test_ill_binary_inputs_raise(metric, pred, target, error, pattern):
    with pytest.raises(error, match=pattern):
        BINARY[metric](pred, target)


def test_per_image_needs_batch_axis():
    with pytest.raises(ValueError, match=r"`per_image=True` needs a batch axis: `pred` has shape \(4,\)"):
        dice([0, 1, 1, 0], [0, 1, 0, 0], per_image=True)
    with pytest.raises(ValueError, match=r"`per_image=True` needs a batch axis"):
        mean_dice([0, 1, 1, 0], [0, 1, 0, 0], 2, per_image=True)


@pytest.mark.parametrize(
    "pred, target, kwargs, pattern",
    [
        pytest.param([[0, 3]], [[0, 1]], {}, r"`pred` \(shape \(1, 2\)\) has labels in \[0, 3\], "
                                             r"outside \[0, num_classes=3\)", id="label-too-large"),
        pytest.param([[0, 1]], [[-1, 1]], {}, r"`target` .*has labels in \[-1, 1\]", id="negative-label"),
        pytest.param([[0.5, 1.0]], [[0, 1]], {}, r"`pred` .*must hold integer class labels", id="fractional"),
        pytest.param([[0, 1]], [[0, 1, 2]], {}, r"`pred` \(shape \(1, 2\)\) must have the same shape as `target`",
                     id="shape-mismatch"),
        pytest.param([[0, 1]], [[0, 1]], {"metric": "f1"}, r"`metric` must be one of .*got 'f1'", id="bad-metric"),
        pytest.param([[0, 1]], [[0, 1]], {"average": "macro"}, r"`average` must be one of .*got 'macro'",
                     id="bad-average"),
        pytest.param([[0, 1]], [[0, 1]], {"num_classes": 1}, r"`num_classes` must be an int >= 2, got 1",
                     id="one-class"),
        pytest.param([[0, 1]], [[0, 1]], {"num_classes": 3.0}, r"`num_classes` must be an int >= 2, got 3.0",
                     id="float-classes"),
        pytest.param([[0, 1]], [[0, 1]], {"num_classes": True}, r"`num_classes` must be an int >= 2, got True",
                     id="bool-classes"),
        pytest.param([["a", "b"]], [[0, 1]], {}, r"`pred` must have a boolean, integer or float dtype",
                     id="strings"),
        pytest.param([[np.nan, 1]], [[0, 1]], {}, r"`pred` \(shape \(1, 2\)\) contains NaN", id="nan"),
    ],
)
def test_ill_multiclass_inputs_raise(pred, target, kwargs, pattern):
    kwargs = {"num_classes": 3, **kwargs}
    error = TypeError if "dtype" in pattern else ValueError
    with pytest.raises(error, match=pattern):
        multiclass_score(pred, target, **kwargs)


def test_ill_one_hot_inputs_raise():
    labels = np.array([[0, 1, 2]])  # (B=1, N=3)
    good = one_hot(labels, 3)  # (B=1, C=3, N=3)
    not_one_hot = good.copy()
    not_one_hot[0, :, 0] = [1, 1, 0]  # pixel 0 in two classes
    with pytest.raises(ValueError, match=r"`pred` \(shape \(1, 3, 3\)\) is not one-hot along axis 1"):
        mean_dice(not_one_hot, good, 3, one_hot_axis=1)
    with pytest.raises(ValueError, match=r"`target` .*is not one-hot along axis 1"):
        mean_dice(good, np.zeros_like(good), 3, one_hot_axis=1)  # a pixel in no class
    with pytest.raises(ValueError, match=r"`pred` .*is not one-hot along axis 1"):
        mean_dice(good * 0.5, good, 3, one_hot_axis=1)  # soft values are not one-hot
    with pytest.raises(ValueError, match=r"`pred` .*is not one-hot along axis 1"):
        mean_dice(labels, labels, 3, one_hot_axis=1)  # label maps with one_hot_axis
    with pytest.raises(ValueError, match=r"`one_hot_axis`=3 is out of range for `pred` with shape \(1, 3, 3\)"):
        mean_dice(good, good, 3, one_hot_axis=3)
    with pytest.raises(ValueError, match=r"`labels` \(shape \(1, 3\)\) has labels in \[0, 2\], outside "
                                         r"\[0, num_classes=2\)"):
        one_hot(labels, 2)
    with pytest.raises(ValueError, match=r"`num_classes` must be an int >= 2"):
        one_hot(labels, 0)
