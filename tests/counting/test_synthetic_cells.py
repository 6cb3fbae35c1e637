"""Tests of course_lib.counting.synthetic_cells: fluorescence cells with dots and instance labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from course_lib.counting.synthetic_cells import CLUSTERED, EASY, SHIFTED, CellConfig, cell_dataset, make_cell_image

PRESETS = {"EASY": EASY, "CLUSTERED": CLUSTERED, "SHIFTED": SHIFTED}
# a clean rendering: no blur, texture, noise, background or gain jitter, so intensities can be derived by hand
CLEAN = CellConfig(blur=0.0, texture=0.0, noise=0.0, background=(0.0, 0.0), gain=(1.0, 1.0), brightness=(0.5, 0.5))


@pytest.mark.parametrize("name", PRESETS)
def test_shapes_dtypes_and_dots_inside(name):
    for seed in range(5):
        cells = make_cell_image(PRESETS[name], seed=seed)
        n = len(cells.dots)
        assert cells.image.shape == cells.labels.shape == (128, 128)  # (S, S)
        assert cells.image.dtype == np.float32 and cells.labels.dtype == np.int32
        assert cells.dots.shape == (n, 2) and cells.dots.dtype == np.float32  # (N, 2) (row, col)
        assert 10 <= n <= 30, "the presets are sparse enough that every drawn cell finds a place"
        assert (cells.dots >= 0).all() and (cells.dots <= 127).all()
        assert np.isfinite(cells.image).all()


@pytest.mark.parametrize("name", PRESETS)
def test_labels_are_one_id_per_dot_and_own_their_centre(name):
    for seed in range(5):
        cells = make_cell_image(PRESETS[name], seed=seed)
        ids = np.unique(cells.labels)
        assert np.array_equal(ids, np.arange(len(cells.dots) + 1)), "ids must be 0, 1..N without gaps"
        rows, cols = np.round(cells.dots).astype(int).T
        # cell k is the relatively closest cell at its own centre (rho = 0 there), even inside a cluster
        assert np.array_equal(cells.labels[rows, cols], np.arange(1, len(cells.dots) + 1))


def test_same_seed_same_image_other_seed_other_image():
    a, b, c = make_cell_image(SHIFTED, 7), make_cell_image(SHIFTED, 7), make_cell_image(SHIFTED, 8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a.image, c.image)
    # a Generator is used as is: two draws from one generator differ, a fresh generator repeats them
    rng = np.random.default_rng(3)
    first, second = make_cell_image(EASY, rng), make_cell_image(EASY, rng)
    assert not np.array_equal(first.image, second.image)
    assert np.array_equal(make_cell_image(EASY, np.random.default_rng(3)).image, first.image)


def test_dataset_is_deterministic_and_does_not_depend_on_n():
    images, dots = cell_dataset(5, CLUSTERED, seed=2)
    again, dots_again = cell_dataset(5, CLUSTERED, seed=2)
    prefix, dots_prefix = cell_dataset(3, CLUSTERED, seed=2)
    assert images.shape == (5, 128, 128) and images.dtype == np.float32 and len(dots) == 5
    assert np.array_equal(images, again) and all(map(np.array_equal, dots, dots_again))
    assert np.array_equal(images[:3], prefix) and all(map(np.array_equal, dots[:3], dots_prefix))
    assert not np.array_equal(images[0], images[1])


def test_shifted_shows_the_cells_of_easy_under_other_light():
    for seed in range(3):
        easy, shifted = make_cell_image(EASY, seed), make_cell_image(SHIFTED, seed)
        assert np.array_equal(easy.dots, shifted.dots) and np.array_equal(easy.labels, shifted.labels)
        assert not np.allclose(easy.image, shifted.image)


def test_exact_count_is_honoured_even_when_crowded():
    # 70 cells of radius 4-6 cover ~50 % of a 128 px field: too crowded for the 2 px gap, so cells get squeezed in
    for n in (0, 1, 70):
        cells = make_cell_image(dataclasses.replace(EASY, count=(n, n)), seed=n)
        assert len(cells.dots) == n == cells.labels.max()


def test_no_clustering_keeps_cells_apart_and_clustering_merges_them():
    """Oracle: scipy's connected components of the label mask. Apart cells are one component each."""
    apart = dataclasses.replace(EASY, clustering=0.0)
    for seed in range(10):
        cells = make_cell_image(apart, seed)
        assert ndimage.label(cells.labels > 0)[1] == len(cells.dots)
    share = []  # components per cell: 1 when all apart, small when cells form colonies
    for config in (EASY, CLUSTERED, dataclasses.replace(EASY, clustering=1.0)):
        labels = [make_cell_image(config, seed).labels for seed in range(20)]
        share.append(np.mean([ndimage.label(lab > 0)[1] / lab.max() for lab in labels]))
    assert 1.0 >= share[0] > share[1] > share[2], share
    assert share[1] < 0.6, f"CLUSTERED must put most cells into colonies, components per cell {share[1]:.2f}"


def test_clean_intensities_derived_by_hand():
    # no blur, no texture, no noise, no background, gain 1, brightness 0.5, apart cells:
    # intensity is 0.5 * (1 - 0.3 rho^2) inside a cell (in [0.35, 0.5]) and exactly 0 outside
    cells = make_cell_image(dataclasses.replace(CLEAN, clustering=0.0), seed=4)
    inside = cells.labels > 0
    assert (cells.image[~inside] == 0).all()
    assert cells.image[inside].min() >= 0.35 - 1e-6 and cells.image[inside].max() <= 0.5 + 1e-6
    rows, cols = np.round(cells.dots).astype(int).T
    assert np.all(cells.image[rows, cols] > 0.45), "near the centre rho is small: intensity close to 0.5"


def test_overlapping_cells_add_up():
    cells = make_cell_image(dataclasses.replace(CLEAN, clustering=1.0, count=(30, 30)), seed=0)
    assert cells.image.max() > 0.5 + 0.3, "where two cells overlap their fluorescence adds"


@pytest.mark.parametrize("gradient", [0.0, 0.3, 0.6])
def test_illumination_gradient(gradient):
    # an empty field of background b: the image is b * (1 + g * ramp), the ramp reaching -1 and +1 in two corners
    config = dataclasses.replace(CLEAN, count=(0, 0), background=(0.2, 0.2), gradient=gradient)
    image = make_cell_image(config, seed=1).image
    assert image.min() >= 0.2 * (1 - gradient) - 1e-6 and image.max() <= 0.2 * (1 + gradient) + 1e-6
    corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]  # (4,)
    # the extreme corners sit at +-|cos + sin| / sqrt(2) of the full swing: at least 1/sqrt(2) of it
    assert corners.max() - corners.min() >= 2 * 0.2 * gradient / np.sqrt(2) - 1e-6


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_gain_scales_the_noise_free_image(gain):
    base = dataclasses.replace(CLEAN, background=(0.1, 0.1))
    one = make_cell_image(base, seed=5).image
    scaled = make_cell_image(dataclasses.replace(base, gain=(gain, gain)), seed=5).image
    np.testing.assert_allclose(scaled, gain * one, rtol=1e-5)


def test_defocus_spreads_and_dims_cells():
    sharp = make_cell_image(dataclasses.replace(EASY, noise=0.0), seed=6)
    blurred = make_cell_image(dataclasses.replace(EASY, noise=0.0, defocus=1.0), seed=6)
    assert np.array_equal(sharp.dots, blurred.dots), "defocus changes the rendering, not the cells"
    rows, cols = np.round(sharp.dots).astype(int).T
    assert np.mean(blurred.image[rows, cols]) < 0.8 * np.mean(sharp.image[rows, cols])


@pytest.mark.parametrize(("change", "match"), [
    ({"count": (5, 2)}, "count"),
    ({"radius": (0.5, 2.0)}, "radius"),
    ({"size": 16}, "size"),
    ({"clustering": 1.5}, "clustering"),
    ({"defocus": -0.1}, "defocus"),
    ({"gradient": 1.0}, "gradient"),
    ({"aspect": 0.9}, "aspect"),
    ({"noise": -0.01}, "noise"),
    ({"gain": (0.0, 1.0)}, "gain"),
    ({"brightness": (0.8, 0.5)}, "brightness"),
])
def test_invalid_config(change, match):
    with pytest.raises(ValueError, match=match):
        make_cell_image(dataclasses.replace(EASY, **change))


def test_invalid_arguments():
    with pytest.raises(TypeError, match="CellConfig"):
        make_cell_image({"size": 128})
    with pytest.raises(ValueError, match="`n`"):
        cell_dataset(0)
    with pytest.raises(ValueError, match="`n`"):
        cell_dataset(True)


