"""Tests of course_lib.counting.density: Gaussian density targets, Count-ception targets, counts from maps.

Oracles: ``scipy.ndimage.gaussian_filter`` of a dot image (the textbook way to make a density map, exact for dots
on pixel centres), the slow per-pixel loop ``naive_density_map`` for sub-pixel dots and border renormalisation,
and a brute-force window count for Count-ception.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from course_lib.counting.density import (
    count_from_density,
    countception_target,
    density_map,
    multiclass_density_maps,
    naive_density_map,
    peak_height,
)

BORDER_CASES = {
    "interior": [[10.0, 12.0], [20.0, 5.0]],
    "corners": [[0.0, 0.0], [0.0, 31.0], [23.0, 0.0], [23.0, 31.0]],
    "edges_subpixel": [[0.4, 15.2], [-0.5, 7.0], [23.5, 20.3], [11.7, 31.5]],  # on the far pixel edges too
    "stacked": [[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]],  # three cells on one pixel still count 3
}


def dot_image(dots, shape) -> np.ndarray:
    image = np.zeros(shape)
    for r, c in np.asarray(dots, int):
        image[r, c] += 1.0
    return image


@pytest.mark.parametrize("case", BORDER_CASES)
@pytest.mark.parametrize("sigma", [0.7, 2.0, 5.0])
def test_sum_is_the_count_even_at_the_border(case, sigma):
    dots = BORDER_CASES[case]
    d = density_map(dots, (24, 32), sigma)  # (24, 32)
    assert d.shape == (24, 32) and d.dtype == np.float32
    assert abs(d.sum(dtype=np.float64) - len(dots)) < 1e-4, "each dot must hold exactly one unit of mass"
    assert (d >= 0).all()


def test_plain_kernel_loses_mass_at_the_border_which_is_why_we_renormalise():
    corner = density_map([[0.0, 0.0]], (32, 32), 2.0, normalize="kernel").sum()
    # a dot on the corner pixel keeps the quadrant rows/cols >= 0 of its Gaussian: (1/2 + half the centre row)^2
    g = np.exp(-np.arange(-8, 9) ** 2 / 8.0)
    g /= g.sum()
    assert corner == pytest.approx(g[8:].sum() ** 2, abs=1e-5)
    assert corner < 0.4


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.5])
def test_matches_gaussian_filter_of_a_dot_image_away_from_the_border(sigma):
    rng = np.random.default_rng(1)
    dots = rng.integers(20, 44, size=(12, 2)).astype(float)  # integer dots, >= 20 px from the border of 64
    ours = density_map(dots, (64, 64), sigma)
    oracle = ndimage.gaussian_filter(dot_image(dots, (64, 64)), sigma, mode="constant", truncate=4.0)
    np.testing.assert_allclose(ours, oracle, atol=1e-6)


def test_kernel_mode_matches_gaussian_filter_everywhere_including_the_border():
    dots = [[0, 0], [0, 17], [5, 30], [23, 31], [12, 12]]  # (5, 2) integer dots, four on the border
    ours = density_map(dots, (24, 32), 2.0, normalize="kernel")
    oracle = ndimage.gaussian_filter(dot_image(dots, (24, 32)), 2.0, mode="constant", truncate=4.0)
    np.testing.assert_allclose(ours, oracle, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separable_matrix_product_equals_the_per_pixel_loop(seed):
    rng = np.random.default_rng(seed)
    dots = rng.uniform(-0.5, 19.5, size=(6, 2))  # sub-pixel dots anywhere, border included
    np.testing.assert_allclose(density_map(dots, (20, 20), 1.5), naive_density_map(dots, (20, 20), 1.5), atol=1e-6)


def test_small_sigma_peaks_on_the_dots():
    dots = np.array([[3.2, 4.9], [10.0, 2.0], [7.6, 12.4]])
    d = density_map(dots, (16, 16), 0.3)
    # sigma 0.3 px: almost all of each cell's mass sits on the pixel holding its dot
    for r, c in np.floor(dots + 0.5).astype(int):
        assert d[r, c] > 0.5
        assert d[r, c] == d[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].max()
    tiny = density_map([[5.0, 5.0]], (11, 11), 1e-3)  # no underflow to 0/0 for a vanishing sigma
    assert tiny[5, 5] == pytest.approx(1.0) and tiny.sum() == pytest.approx(1.0)


def test_peak_height_is_the_maximum_of_an_isolated_cell():
    d = density_map([[20.0, 20.0]], (41, 41), 3.0)
    assert d.max() == pytest.approx(peak_height(3.0), rel=0.01)  # discretely sampled, truncated Gaussian


def test_empty_dots_give_zeros():
    assert not density_map(np.zeros((0, 2)), (5, 7)).any()
    assert density_map([], (5, 7)).shape == (5, 7)


def test_deterministic():
    dots = np.random.default_rng(0).uniform(0, 31, (20, 2))
    assert np.array_equal(density_map(dots, (32, 32)), density_map(dots, (32, 32)))


def test_dots_outside_raise_or_are_dropped():
    dots = [[2.0, 2.0], [10.0, 3.0], [-1.0, 4.0]]  # rows 1 (row 10 >= 8 - 0.5) and 2 (row < -0.5) are outside
    with pytest.raises(ValueError, match=r"rows \[1, 2\].*outside the image of shape \(8, 8\)"):
        density_map(dots, (8, 8))
    dropped = density_map(dots, (8, 8), outside="drop")
    assert dropped.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"dots": [[1.0, np.nan]]}, "finite"),
    ({"dots": [[1.0, 2.0, 3.0]]}, r"\(N, 2\)"),
    ({"shape": (8,)}, "shape"),
    ({"shape": (0, 8)}, "shape"),
    ({"sigma": 0.0}, "sigma"),
    ({"normalize": "area"}, "normalize"),
    ({"outside": "clip"}, "outside"),
])
def test_bad_inputs(kwargs, match):
    args = {"dots": [[1.0, 1.0]], "shape": (8, 8), "sigma": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        density_map(args.pop("dots"), args.pop("shape"), args.pop("sigma"), **args)


def test_multiclass_maps_channel_zero_is_any_nucleus():
    dots = np.array([[3.0, 3.0], [10.0, 10.0], [12.0, 2.0], [0.0, 15.0]])
    classes = np.array([0, 2, 2, 1])
    maps = multiclass_density_maps(dots, classes, 3, (16, 16), 1.5)  # (1 + 3, 16, 16)
    assert maps.shape == (4, 16, 16)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), [4, 1, 1, 2], atol=1e-4)  # any, class 0, 1, 2
    np.testing.assert_allclose(maps[0], maps[1:].sum(0), atol=1e-6)
    np.testing.assert_allclose(maps[3], density_map(dots[classes == 2], (16, 16), 1.5), atol=1e-7)


@pytest.mark.parametrize("classes, match", [([0, 3], r"ints in \[0, 3\)"), ([0], "one entry per dot"),
                                            ([0.0, 1.0], "ints")])
def test_multiclass_bad_classes(classes, match):
    with pytest.raises(ValueError, match=match):
        multiclass_density_maps([[1, 1], [2, 2]], np.array(classes), 3, (8, 8))


def brute_countception(dots, shape, window):
    """Output (i, j) counts the dots in rows i - w + 1 .. i, cols j - w + 1 .. j of the image."""
    idx = np.floor(np.asarray(dots, float) + 0.5).astype(int).reshape(-1, 2)
    out = np.zeros((shape[0] + window - 1, shape[1] + window - 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            rows_ok = (idx[:, 0] >= i - window + 1) & (idx[:, 0] <= i)
            cols_ok = (idx[:, 1] >= j - window + 1) & (idx[:, 1] <= j)
            out[i, j] = np.sum(rows_ok & cols_ok)
    return out


@pytest.mark.parametrize("window", [1, 3, 4, 7])
def test_countception_target_counts_each_cell_window_squared_times(window):
    dots = [[0, 0], [0.4, 9.0], [5.0, 5.0], [5.2, 5.3], [9.0, 11.0]]  # (5, 2) border, stacked and interior cells
    t = countception_target(dots, (10, 12), window)  # (10 + w - 1, 12 + w - 1)
    assert t.shape == (10 + window - 1, 12 + window - 1)
    np.testing.assert_array_equal(t, brute_countception(dots, (10, 12), window))
    assert t.sum() / window**2 == len(dots)
    assert count_from_density(t, scale=window**2) == pytest.approx(5.0)


def test_countception_bad_window():
    with pytest.raises(ValueError, match="window"):
        countception_target([[1, 1]], (8, 8), window=0)


def test_count_from_density_batched_numpy_and_torch():
    maps = np.stack([density_map([[2, 2]] * k, (8, 8)) for k in range(4)]).reshape(2, 2, 8, 8)  # (B, C, H, W)
    np.testing.assert_allclose(count_from_density(maps), [[0, 1], [2, 3]], atol=1e-5)
    torch_counts = count_from_density(torch.from_numpy(maps) * 100, scale=100.0)
    assert isinstance(torch_counts, torch.Tensor) and torch_counts.shape == (2, 2)
    np.testing.assert_allclose(torch_counts.numpy(), [[0, 1], [2, 3]], atol=1e-4)
    assert isinstance(count_from_density(maps[1, 1]), float)
    with pytest.raises(ValueError, match="density"):
        count_from_density(np.ones(5))
