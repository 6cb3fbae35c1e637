"""Tests of course_lib.metrics.boundary: boundary pixels, boundary precision / recall and BF score.

Oracle: a brute-force version that finds boundary pixels by comparing each pixel with its four
neighbours and matches them by all pairwise distances (``scipy.spatial.distance.cdist``) instead of
a distance transform.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from course_lib.histology.synthetic_instances import InstanceConfig, make_instance_images
from course_lib.metrics.boundary import boundary_f1, boundary_pixels, boundary_precision_recall


def brute_boundary(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour *inside the image* that carries another label."""
    out = np.zeros(labels.shape, bool)
    h, w = labels.shape
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        for y in range(h):
            for x in range(w):
                ny, nx = y + dy, x + dx
                if labels[y, x] > 0 and 0 <= ny < h and 0 <= nx < w and labels[ny, nx] != labels[y, x]:
                    out[y, x] = True
    return out


def brute_bf(pred: np.ndarray, target: np.ndarray, tolerance: float) -> tuple[float, float, float]:
    bp, bt = np.argwhere(brute_boundary(pred)), np.argwhere(brute_boundary(target))
    d = cdist(bp, bt)  # (|dA|, |dB|) all pairwise Euclidean distances
    precision = float(np.mean(d.min(axis=1) <= tolerance))
    recall = float(np.mean(d.min(axis=0) <= tolerance))
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def square(size: int = 30, top: int = 5, side: int = 10, shift: int = 0) -> np.ndarray:
    m = np.zeros((size, size), np.int64)
    m[top:top + side, top + shift:top + side + shift] = 1
    return m


TWO_TOUCHING = np.zeros((7, 10), np.int64)  # (7, 10): two 5x4 objects meeting between columns 4 and 5
TWO_TOUCHING[1:6, 1:5] = 1
TWO_TOUCHING[1:6, 5:9] = 2


def test_boundary_pixels_of_a_square_and_of_touching_objects():
    # 10x10 square: 4 * 10 - 4 = 36 outline pixels, the 8x8 inside is not boundary
    assert boundary_pixels(square()).sum() == 36
    # two touching objects: 22 outline pixels of the 5x8 block + both sides of the contact (2 columns x 3 rows)
    assert boundary_pixels(TWO_TOUCHING).sum() == 22 + 6
    assert boundary_pixels(TWO_TOUCHING > 0).sum() == 22  # as one binary mask the contact line is gone


@pytest.mark.parametrize("seed", range(3))
def test_boundary_pixels_match_brute_force(seed):
    _, labels = make_instance_images(1, InstanceConfig(size=40, radius=(4.0, 6.0)), seed=seed)
    assert np.array_equal(boundary_pixels(labels[0]), brute_boundary(labels[0]))


def test_object_cut_by_the_image_border_has_no_outline_there():
    m = np.zeros((6, 6), int)
    m[:, :3] = 1  # touches the top, bottom and left image edges
    assert np.array_equal(np.argwhere(boundary_pixels(m))[:, 1], np.full(6, 2)), "only column 2 is boundary"


@pytest.mark.parametrize("mask", [square(), TWO_TOUCHING, TWO_TOUCHING > 0], ids=["square", "labels", "binary"])
@pytest.mark.parametrize("tolerance", [0, 2])
def test_identical_inputs_score_one(mask, tolerance):
    assert boundary_f1(mask, mask, tolerance) == 1.0
    assert boundary_precision_recall(mask, mask, tolerance) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("shift", "tolerance", "expected"),
    [
        # shift 1, exact match: only the top and bottom rows overlap, 9 + 9 of 36 pixels -> P = R = 0.5
        (1, 0, 0.5),
        # shift 1, tolerance 1: every outline pixel is at most 1 px from the other outline -> 1
        (1, 1, 1.0),
        # shift 3, tolerance 2: top/bottom rows 9 of 10 each (the far corner is 3 px away); of the 8 side pixels of
        # the near column, the 2 nearest the top and 2 nearest the bottom row are within 2 px; far column none.
        # (18 + 4) / 36 for precision and, by symmetry, for recall
        (3, 2, 22 / 36),
    ],
)
def test_shifted_square_known_values(shift, tolerance, expected):
    pred, target = square(shift=shift), square()
    p, r = boundary_precision_recall(pred, target, tolerance)
    assert p == pytest.approx(expected) and r == pytest.approx(expected)
    assert boundary_f1(pred, target, tolerance) == pytest.approx(expected)


def test_merged_prediction_loses_recall_on_the_contact_line():
    merged = (TWO_TOUCHING > 0).astype(int)
    # all 22 predicted outline pixels lie on the true boundary: precision 1; the 6 contact pixels are missed
    assert boundary_precision_recall(merged, TWO_TOUCHING, 0) == (1.0, pytest.approx(22 / 28))
    # within 1 px the contact pixels of rows 2 and 4 are next to the top/bottom outline, row 3 is 2 px away
    assert boundary_precision_recall(merged, TWO_TOUCHING, 1)[1] == pytest.approx(26 / 28)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tolerance", [0, 1, 1.5, 3])
def test_matches_brute_force_oracle(seed, tolerance):
    _, labels = make_instance_images(2, InstanceConfig(size=40, radius=(4.0, 6.0)), seed=seed)
    pred, target = labels[0], labels[1]
    expected = brute_bf(pred, target, tolerance)
    assert boundary_precision_recall(pred, target, tolerance) == pytest.approx(expected[:2])
    assert boundary_f1(pred, target, tolerance) == pytest.approx(expected[2])
    assert boundary_f1(pred > 0, target > 0, tolerance) == pytest.approx(brute_bf(pred > 0, target > 0, tolerance)[2])


def test_empty_masks():
    empty, full = np.zeros((8, 8), int), square(size=8, top=2, side=4)
    assert boundary_f1(empty, empty) == 1.0
    assert np.isnan(boundary_f1(empty, empty, empty_score=np.nan))
    assert boundary_f1(empty, full) == 0.0 and boundary_f1(full, empty) == 0.0
    assert boundary_precision_recall(empty, full) == (0.0, 0.0)


def test_torch_and_bool_inputs():
    torch = pytest.importorskip("torch")
    assert boundary_f1(torch.from_numpy(square() > 0), square().astype(bool)) == 1.0


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "error", "match"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, ValueError, r"shape \(4, 4\).*same shape.*\(4, 5\)"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"tolerance": -1}, ValueError, "`tolerance` must be a number >= 0"),
        (np.full((4, 4), 0.3), np.zeros((4, 4)), {}, ValueError, "threshold probabilities first"),
        (np.zeros(5), np.zeros(5), {}, ValueError, "2-D or 3-D"),
        (-np.ones((4, 4), int), np.zeros((4, 4), int), {}, ValueError, "negative labels"),
        ("mask", np.zeros((4, 4)), {}, TypeError, "`pred` must be a NumPy array"),
    ],
)
def test_bad_inputs_raise(pred, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        boundary_f1(pred, target, **kwargs)
