"""Tests of course_lib.counting.multiclass: the lambda-weighted loss, max-over-channels classification, counts and
the confusion matrix of matched cells.

Oracles: ``torch.nn.functional.l1_loss`` per channel for the loss, ``sklearn.metrics.confusion_matrix`` for the
confusion matrix, and perfect density maps made from known dots and classes for classification.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from course_lib.counting.density import multiclass_density_maps
from course_lib.counting.multiclass import (
    MultiClassDensityLoss,
    classify_cells,
    confusion_matrix,
    match_and_classify,
    per_class_counts,
)

# four well separated cells of classes lymphocyte 0, normal 1, malignant 2, malignant 2, on a 32 x 32 tile
DOTS = np.array([[6.0, 6.0], [6.0, 25.0], [25.0, 6.0], [24.3, 24.8]])
CLASSES = np.array([0, 1, 2, 2])


@pytest.mark.parametrize("lambdas, any_weight", [((1.0, 1.0, 1.0), 1.0), ((0.5, 2.0, 3.0), 0.0), ((1.0,), 2.0)])
def test_loss_is_the_weighted_sum_of_per_channel_l1(lambdas, any_weight):
    g = torch.Generator().manual_seed(0)
    k = 1 + len(lambdas)
    pred, target = torch.rand(3, k, 8, 8, generator=g), torch.rand(3, k, 8, 8, generator=g)  # (B, 1 + C, H, W)
    loss = MultiClassDensityLoss(lambdas, any_weight=any_weight)
    # per channel: L = sum over pixels of |diff| per image, mean over the batch = l1_loss(sum) / B
    per_channel = torch.stack([F.l1_loss(pred[:, c], target[:, c], reduction="sum") / 3 for c in range(k)])
    weights = torch.tensor([any_weight, *lambdas])
    torch.testing.assert_close(loss.components(pred, target), per_channel)
    torch.testing.assert_close(loss(pred, target), (weights * per_channel).sum())
    summed = MultiClassDensityLoss(lambdas, any_weight=any_weight, reduction="sum")
    torch.testing.assert_close(summed(pred, target), 3 * loss(pred, target))


def test_loss_has_gradients_only_through_weighted_channels():
    pred = torch.ones(1, 3, 4, 4, requires_grad=True)
    MultiClassDensityLoss([0.0, 1.0], any_weight=0.0)(pred, torch.zeros(1, 3, 4, 4)).backward()
    assert pred.grad[0, :2].abs().sum() == 0 and pred.grad[0, 2].abs().sum() > 0


@pytest.mark.parametrize("shape, lambdas, match", [((1, 3, 4, 4), (1.0, 1.0, 1.0), r"\(B, 4, H, W\)"),
                                                   ((1, 3, 4), (1.0, 1.0), r"\(B, 3, H, W\)")])
def test_loss_bad_shapes(shape, lambdas, match):
    with pytest.raises(ValueError, match=match):
        MultiClassDensityLoss(lambdas)(torch.zeros(shape), torch.zeros(shape))


def test_loss_bad_weights_and_mismatched_target():
    with pytest.raises(ValueError, match="lambdas"):
        MultiClassDensityLoss([1.0, -1.0])
    with pytest.raises(ValueError, match="must match"):
        MultiClassDensityLoss([1.0, 1.0])(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_classify_cells_recovers_classes_from_perfect_maps(radius):
    maps = multiclass_density_maps(DOTS, CLASSES, 3, (32, 32), 2.0)  # (4, 32, 32)
    maps[0] += 10.0  # channel 0 (any nucleus) is not a class: a huge value there must not matter
    assert classify_cells(maps, DOTS, radius=radius).tolist() == CLASSES.tolist()
    assert classify_cells(torch.from_numpy(maps), DOTS, radius=radius).tolist() == CLASSES.tolist()


def test_classify_cells_takes_the_max_over_channels_at_the_point():
    maps = np.zeros((4, 5, 5))  # (1 + 3, 5, 5)
    maps[1:, 2, 2] = [0.2, 0.5, 0.3]  # at (2, 2) class 1 wins
    maps[3, 2, 3] = 0.9  # ... but one pixel to the right class 2 is much stronger
    assert classify_cells(maps, [[2, 2]], radius=0).tolist() == [1]
    assert classify_cells(maps, [[2, 2]], radius=1).tolist() == [2], "3 x 3 sums: class 2 has 0.3 + 0.9"
    assert classify_cells(maps, np.zeros((0, 2))).shape == (0,)


@pytest.mark.parametrize("maps, points, match", [(np.zeros((1, 5, 5)), [[1, 1]], "class channels"),
                                                 (np.zeros((3, 5, 5)), [[7, 1]], "inside"),
                                                 (np.zeros((3, 5)), [[1, 1]], r"\(1 \+ C, H, W\)")])
def test_classify_cells_bad_inputs(maps, points, match):
    with pytest.raises(ValueError, match=match):
        classify_cells(maps, points)


def test_per_class_counts_of_target_maps_are_the_class_counts():
    maps = multiclass_density_maps(DOTS, CLASSES, 3, (32, 32), 2.0)
    np.testing.assert_allclose(per_class_counts(maps), [1, 1, 2], atol=1e-4)
    batch = torch.from_numpy(np.stack([maps, 2 * maps]))  # (2, 4, 32, 32)
    torch.testing.assert_close(per_class_counts(batch * 100, scale=100.0),
                               torch.tensor([[1.0, 1.0, 2.0], [2.0, 2.0, 4.0]]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="1 \\+ C"):
        per_class_counts(np.zeros((1, 8, 8)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    t, p = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    np.testing.assert_array_equal(confusion_matrix(t, p, 3), sk_confusion_matrix(t, p, labels=[0, 1, 2]))
    absent = np.zeros(4, np.int64)  # classes 1 and 2 never occur: rows and columns of zeros, not a 1 x 1 matrix
    np.testing.assert_array_equal(confusion_matrix(absent, absent, 3), sk_confusion_matrix(absent, absent,
                                                                                           labels=[0, 1, 2]))


@pytest.mark.parametrize("t, p, match", [([0, 1], [0], "must match"), ([0, 3], [0, 1], "true_classes"),
                                         ([0, 1], [0, -1], "pred_classes")])
def test_confusion_matrix_bad_inputs(t, p, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(np.array(t), np.array(p), 3)


def test_match_and_classify_on_perfect_maps_gives_a_diagonal_confusion_matrix():
    maps = multiclass_density_maps(DOTS, CLASSES, 3, (32, 32), 2.0)
    matching, true_cls, pred_cls = match_and_classify(maps, DOTS, CLASSES, radius=3.0, threshold=0.01)
    assert (matching.tp, matching.fp, matching.fn) == (4, 0, 0)
    np.testing.assert_array_equal(confusion_matrix(true_cls, pred_cls, 3), np.diag([1, 1, 2]))


@pytest.mark.slow
def test_a_second_lambda_reuses_the_seed_tiles_read_only(one_thread):
    from course_lib.counting.experiment import MULTICLASS_QUICK, _nuclei_splits, run_multiclass_experiment

    tiny = dataclasses.replace(MULTICLASS_QUICK, n_train=4, n_val=2, n_test=2, epochs=1, width=4, crop=32)
    first = run_multiclass_experiment(tiny, seed=3, device="cpu")
    tiles = _nuclei_splits(4, 2, 2, 3)
    assert _nuclei_splits(4, 2, 2, 3) is tiles, "the same seed and sizes: the tiles are drawn once"
    with pytest.raises(ValueError, match="read-only"):
        tiles[0][0][0, 0, 0] = 0.0  # training must never change the shared tiles
    again = run_multiclass_experiment(tiny, seed=3, device="cpu")  # from the cache: the same result
    np.testing.assert_allclose(again["table"]["mae"], first["table"]["mae"], rtol=1e-6)
    other = run_multiclass_experiment(dataclasses.replace(tiny, lambdas=(1.0, 1.0, 3.0)), seed=3, device="cpu")
    assert other["history"]["train_loss"] != first["history"]["train_loss"], "λ changes the loss that is trained"
