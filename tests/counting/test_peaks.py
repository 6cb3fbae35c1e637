"""Tests of course_lib.counting.peaks: peaks of a density map and optimal one-to-one point matching.

Oracle for the matching: every one-to-one assignment enumerated by brute force on small cases; the best has the
most pairs within the radius and, among those, the smallest total distance.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from course_lib.counting.density import density_map, peak_height
from course_lib.counting.peaks import find_cells, localisation_f1, localisation_scores, match_points


def brute_force_matching(pred, true, radius):
    """(number of pairs, total distance) of the best one-to-one matching, by enumerating all of them."""
    pred, true = np.asarray(pred, float).reshape(-1, 2), np.asarray(true, float).reshape(-1, 2)
    best = (0, 0.0)
    small, large = (pred, true) if len(pred) <= len(true) else (true, pred)  # assign every point of the smaller set
    for perm in itertools.permutations(range(len(large)), len(small)):
        dist = [np.hypot(*(small[i] - large[j])) for i, j in enumerate(perm)]
        ok = [d for d in dist if d <= radius]
        candidate = (len(ok), sum(ok))
        if candidate[0] > best[0] or (candidate[0] == best[0] and candidate[1] < best[1] - 1e-12):
            best = candidate
    return best


@pytest.mark.parametrize("dots", [
    [[5.0, 5.0], [5.0, 14.0]],
    [[0.0, 0.0], [15.0, 19.0], [8.0, 10.0]],  # corner cells count too (exclude_border=False)
    [[3.0, 3.0]],
])
def test_find_cells_recovers_separated_dots(dots):
    d = density_map(dots, (16, 20), 2.0)
    found = find_cells(d, min_distance=3, threshold=0.3 * peak_height(2.0))
    assert sorted(map(tuple, found.tolist())) == sorted(map(tuple, dots))


def test_find_cells_threshold_min_distance_and_num_peaks():
    # two cells and, > 7 px from both, a faint blob of 0.3 cell: a local maximum in its 7 x 7 neighbourhood
    d = density_map([[3, 3], [3, 18]], (14, 22), 2.0) + 0.3 * density_map([[9, 10]], (14, 22), 2.0)
    h = peak_height(2.0)
    assert len(find_cells(d, 3, threshold=0.2 * h)) == 3
    assert len(find_cells(d, 3, threshold=0.5 * h)) == 2, "the faint peak (0.3 of a cell) is below the threshold"
    assert find_cells(d, 3, threshold=0.2 * h, num_peaks=1).shape == (1, 2)
    assert find_cells(d, 3, num_peaks=0).shape == (0, 2)
    close = density_map([[5, 5], [5, 9]], (12, 16), 1.0)  # two peaks 4 px apart
    assert len(find_cells(close, min_distance=2, threshold=0.01)) == 2
    assert len(find_cells(close, min_distance=5, threshold=0.01)) == 1
    assert find_cells(np.zeros((8, 8)), 2, threshold=0.0).shape == (0, 2), "a flat map has no cells"


@pytest.mark.parametrize("density, min_distance, match", [(np.zeros((2, 8, 8)), 2, "single"),
                                                         (np.zeros((8, 8)), 0, "min_distance")])
def test_find_cells_bad_inputs(density, min_distance, match):
    with pytest.raises(ValueError, match=match):
        find_cells(density, min_distance)


def test_match_points_beats_greedy_on_a_chain():
    # pred 0 sits between dots 0 and 1 and is nearest to dot 1; greedy nearest-first gives it dot 1 and leaves
    # pred 1 (only near dot 1) unmatched. The optimum gives pred 0 -> dot 0 and pred 1 -> dot 1.
    pred = [[0.0, 1.2], [0.0, 3.5]]
    true = [[0.0, 0.0], [0.0, 2.0]]
    m = match_points(pred, true, radius=1.6)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert m.pairs.tolist() == [[0, 0], [1, 1]]


@pytest.mark.parametrize("seed", range(12))
def test_match_points_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 10, size=(rng.integers(0, 6), 2))
    true = rng.uniform(0, 10, size=(rng.integers(0, 6), 2))
    radius = float(rng.uniform(1.0, 4.0))
    m = match_points(pred, true, radius)
    n_pairs, total = brute_force_matching(pred, true, radius)
    assert m.tp == n_pairs and m.fp == len(pred) - n_pairs and m.fn == len(true) - n_pairs
    dist = np.hypot(*(pred[m.pairs[:, 0]] - true[m.pairs[:, 1]]).T) if m.tp else np.zeros(0)
    assert (dist <= radius).all()
    assert dist.sum() == pytest.approx(total, abs=1e-9)
    assert len(set(m.pairs[:, 0])) == m.tp and len(set(m.pairs[:, 1])) == m.tp, "one-to-one"


def test_localisation_f1_edge_cases():
    assert localisation_f1([], [], 3.0) == 1.0, "no cells and none found: perfect"
    assert localisation_f1([[1, 1]], [], 3.0) == 0.0
    assert localisation_f1([], [[1, 1]], 3.0) == 0.0
    # tp 1 (first pair), fp 1, fn 1 -> 2 / 4
    assert localisation_f1([[0, 0], [9, 9]], [[0, 1], [20, 20]], 2.0) == pytest.approx(0.5)


def test_localisation_scores_pool_over_images():
    scores = localisation_scores([[[0, 0]], [[5, 5], [9, 9]]], [[[0, 1]], [[5, 6]]], radius=2.0)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2, 1, 0)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="equal length"):
        localisation_scores([[[0, 0]]], [], 2.0)


@pytest.mark.parametrize("pred, radius, match", [([[1, 2, 3]], 2.0, "pred"), ([[1, 2]], 0.0, "radius")])
def test_match_points_bad_inputs(pred, radius, match):
    with pytest.raises(ValueError, match=match):
        match_points(pred, [[1, 1]], radius)
