"""Tests of course_lib.histology.edges: 3-class targets, instances back from them, and object matching.

Oracle for the matching: IoU of every pair computed from boolean masks, one pair at a time; above
IoU 0.5 a match is unique, so counting true objects with some prediction above the threshold must
give the same number as the Hungarian matching.
"""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.histology.edges import (
    BORDER,
    INTERIOR,
    count_separated,
    foreground_to_instances,
    instance_to_three_class,
    match_instances,
    three_class_to_instances,
)
from course_lib.histology.synthetic_instances import InstanceConfig, make_instance_images

TWO_SQUARES = np.zeros((7, 12), np.int64)  # (7, 12): two 5x5 squares touching between columns 5 and 6
TWO_SQUARES[1:6, 1:6] = 1
TWO_SQUARES[1:6, 6:11] = 2


def brute_count(pred: np.ndarray, true: np.ndarray, threshold: float) -> int:
    """True objects that some predicted instance overlaps with IoU >= threshold (threshold > 0.5: one-to-one)."""
    found = 0
    for t in np.unique(true[true > 0]):
        for p in np.unique(pred[pred > 0]):
            a, b = true == t, pred == p
            if (a & b).sum() / (a | b).sum() >= threshold:
                found += 1
                break
    return found


def test_two_touching_squares_three_class_target():
    target = instance_to_three_class(TWO_SQUARES)
    # each 5x5 square: 16 outline pixels are border, its 3x3 centre is interior. The contact columns 5 and 6
    # are already outline pixels of the squares, so the border is the two outlines.
    expected = np.zeros((7, 12), np.int64)
    expected[1:6, 1:11] = BORDER
    expected[2:5, 2:5] = INTERIOR
    expected[2:5, 7:10] = INTERIOR
    assert np.array_equal(target, expected)
    assert np.array_equal(target > 0, TWO_SQUARES > 0), "border pixels must stay inside the objects"


def test_border_between_touching_objects_separates_interiors():
    labels = np.zeros((9, 14), np.int64)  # (9, 14): two 7x6 blocks side by side
    labels[1:8, 1:7], labels[1:8, 7:13] = 1, 2
    target = instance_to_three_class(labels)
    # row 4 crosses both: border, 4 interior, border | border, 4 interior, border -- the contact is 2 px thick
    assert target[4].tolist() == [0, 2, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2, 0]
    as_one = instance_to_three_class(labels > 0)  # the same pixels as one binary object: no contact line
    assert as_one[4].tolist() == [0, 2] + [1] * 10 + [2, 0]


@pytest.mark.parametrize(("width", "interior_side"), [(1, 7), (2, 5), (3, 3)])
def test_border_width_shrinks_the_interior(width, interior_side):
    labels = np.zeros((13, 13), np.int64)
    labels[2:11, 2:11] = 1  # a 9x9 square: interior side 9 - 2 * width
    target = instance_to_three_class(labels, border_width=width)
    assert (target == INTERIOR).sum() == interior_side**2
    assert (target == BORDER).sum() == 81 - interior_side**2


def test_three_class_separates_what_foreground_merges():
    assert foreground_to_instances(TWO_SQUARES > 0).max() == 1
    instances = three_class_to_instances(instance_to_three_class(TWO_SQUARES))
    assert instances.max() == 2
    assert np.array_equal(instances, TWO_SQUARES), "the border pixels must be given back to their own square"
    assert count_separated(instances, TWO_SQUARES) == 2
    # the merged blob has IoU 25/50 = 0.5 with each square: it matches one of them at 0.5, none above
    assert count_separated(foreground_to_instances(TWO_SQUARES > 0), TWO_SQUARES) == 1
    assert count_separated(foreground_to_instances(TWO_SQUARES > 0), TWO_SQUARES, 0.51) == 0


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_on_synthetic_nuclei(seed):
    _, labels = make_instance_images(6, InstanceConfig(touching=0.7), seed=seed)
    for lab in labels:
        target = instance_to_three_class(lab)
        assert np.array_equal(target > 0, lab > 0)
        assert count_separated(three_class_to_instances(target), lab, 0.9) == lab.max()
        assert count_separated(foreground_to_instances(lab > 0), lab) <= lab.max()
    merged = sum(count_separated(foreground_to_instances(lab > 0), lab, 0.9) for lab in labels)
    assert merged < labels.max(axis=(1, 2)).sum(), "touching nuclei must defeat plain connected components"


def test_object_predicted_as_border_only_is_kept():
    pred = np.zeros((6, 8), np.int64)
    pred[1:5, 1:4] = [[2, 2, 2], [2, 1, 2], [2, 1, 2], [2, 2, 2]]  # an object with an interior
    pred[2:4, 5:7] = BORDER  # a small blob without interior
    instances = three_class_to_instances(pred)
    assert instances.max() == 2 and np.array_equal(instances > 0, pred > 0)


def test_min_interior_drops_specks():
    pred = np.zeros((7, 9), np.int64)
    pred[1:6, 1:8] = BORDER
    pred[2:5, 2:4] = INTERIOR  # 6-pixel interior
    pred[3, 6] = INTERIOR  # 1-pixel speck that would split the object
    assert three_class_to_instances(pred).max() == 2
    assert three_class_to_instances(pred, min_interior=2).max() == 1


def test_match_instances_hand_case():
    true = np.array([[1, 1, 1, 0, 2, 2]])
    pred = np.array([[7, 7, 0, 0, 3, 3]])  # ids need not be consecutive
    pairs, ious = match_instances(pred, true, 0.5)
    # pred 7 vs true 1: 2 / 3; pred 3 vs true 2: 2 / 2
    assert pairs.tolist() == [[1, 7], [2, 3]]
    assert ious == pytest.approx([2 / 3, 1.0])
    assert count_separated(pred, true, 0.7) == 1


def test_hungarian_matching_is_one_to_one_below_half():
    true = np.array([[1, 1, 1, 1, 0, 0]])
    pred = np.array([[1, 1, 2, 2, 0, 0]])  # one object split in two halves: IoU 0.5 each, but only one match
    assert count_separated(pred, true, 0.3) == 1


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("threshold", [0.51, 0.7, 0.9])
def test_count_matches_brute_force(seed, threshold):
    _, labels = make_instance_images(2, InstanceConfig(size=48, radius=(4.0, 6.0)), seed=seed)
    true = labels[0]
    pred = np.roll(labels[0], (seed + 1) % 3, axis=1)  # shifted copy: IoUs spread around the thresholds
    pred[foreground_to_instances(labels[1] > 0) == 1] = 0  # and a chunk removed
    assert count_separated(pred, true, threshold) == brute_count(pred, true, threshold)


def test_count_is_invariant_to_relabelling():
    rng = np.random.default_rng(0)
    _, labels = make_instance_images(1, seed=5)
    lab = labels[0]
    perm = np.r_[0, rng.permutation(np.arange(1, lab.max() + 1)) * 10]
    assert count_separated(perm[lab], lab) == lab.max()


def test_empty_inputs():
    empty = np.zeros((5, 5), int)
    assert count_separated(empty, empty) == 0
    assert count_separated(empty, TWO_SQUARES[:5, :5]) == 0
    assert three_class_to_instances(empty).max() == 0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: instance_to_three_class(TWO_SQUARES, border_width=0), ValueError, "`border_width` must be an int"),
        (lambda: instance_to_three_class(-TWO_SQUARES), ValueError, "non-negative"),
        (lambda: instance_to_three_class(TWO_SQUARES[0]), ValueError, r"2-D or 3-D image, got shape \(12,\)"),
        (lambda: three_class_to_instances(TWO_SQUARES * 2), ValueError, r"values in \[0, 2\]"),
        (lambda: foreground_to_instances(TWO_SQUARES), ValueError, r"`fg_mask`.*values in \[0, 1\]"),
        (lambda: foreground_to_instances(np.full((3, 3), 0.5)), ValueError, "integers, found fractions"),
        (lambda: count_separated(TWO_SQUARES, TWO_SQUARES[:, :5]), ValueError, "same shape"),
        (lambda: count_separated(TWO_SQUARES, TWO_SQUARES, 0.0), ValueError, r"`iou_threshold` must lie in \(0, 1\]"),
        (lambda: count_separated("labels", TWO_SQUARES), TypeError, "`pred_instances` must be a NumPy array"),
    ],
)
def test_bad_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()
