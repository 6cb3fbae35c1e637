"""Tests of course_lib.counting.cell_size: the cell size of a microscope from its images and dots.

Oracle: the true instance masks of ``synthetic_cells`` images, measured with scikit-image's ``regionprops``
(``equivalent_diameter_area / 2``), which the measurement never sees: it reads only the image and the dots.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.measure import regionprops

from course_lib.counting.cell_size import cell_radii, cell_radius_from_dots, cell_regions
from course_lib.counting.synthetic_cells import CLUSTERED, EASY, make_cell_image

# Microscopes other than the training one: other cell sizes, stains, backgrounds and exposures.
CONFIGS = {
    "small_2_3px": dataclasses.replace(EASY, size=64, radius=(2.0, 3.0), count=(10, 25)),
    "easy_4_6px": EASY,
    "large_9_13px": dataclasses.replace(EASY, size=192, radius=(9.0, 13.0)),
    "wide_3_9px_dim_cells": dataclasses.replace(EASY, size=160, radius=(3.0, 9.0), brightness=(0.3, 1.0),
                                                background=(0.1, 0.2)),
    "colonies_6_8px": dataclasses.replace(CLUSTERED, size=160, radius=(6.0, 8.0)),
    "bright_background": dataclasses.replace(EASY, background=(0.2, 0.3), gain=(2.0, 3.0), brightness=(0.5, 1.0)),
}


def discs(shape, centres, radius, values) -> np.ndarray:
    """(H, W) float image: ``values[k]`` inside the disc of ``radius`` around ``centres[k]``, 0 elsewhere (summed)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    inside = [v * (np.hypot(rows - r, cols - c) <= radius) for (r, c), v in zip(centres, values, strict=True)]
    return np.sum(inside, axis=0).astype(float)


def true_radii(cells) -> np.ndarray:
    """(N,) equivalent radius of each cell's true mask, row k for dot k (label k + 1)."""
    radii = np.zeros(len(cells.dots))
    for region in regionprops(cells.labels):
        radii[region.label - 1] = region.equivalent_diameter_area / 2
    return radii


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smallest_cells_match_the_true_masks(name, seed):
    cells = make_cell_image(CONFIGS[name], seed=seed)
    truth = float(np.percentile(true_radii(cells), 10))
    got = cell_radius_from_dots(cells.image, cells.dots)
    # a cell's half maximum lies inside its outline by up to ~12 % (its brightness falls off towards the edge)
    assert got == pytest.approx(truth, rel=0.15), f"{name}, seed {seed}: {got:.2f} px, true masks {truth:.2f} px"


@pytest.mark.parametrize("name", CONFIGS)
def test_each_cell_is_measured_and_ranked_like_its_true_mask(name):
    cells = make_cell_image(CONFIGS[name], seed=3)
    truth, got = true_radii(cells), cell_radii(cells.image, cells.dots)
    assert np.isfinite(got).all(), f"{name}: every synthetic cell stands out of the background"
    assert np.median(np.abs(got / truth - 1)) < 0.12, f"{name}: per-cell radii {got.round(1)} vs {truth.round(1)}"
    ranks = np.argsort(np.argsort(got)), np.argsort(np.argsort(truth))
    assert np.corrcoef(*ranks)[0, 1] > 0.8, f"{name}: larger cells must measure larger (Spearman)"


@pytest.mark.parametrize(("scale", "offset"), [(3.0, 10.0), (0.05, 0.0), (1000.0, -7.0)])
def test_exposure_and_offset_do_not_change_the_radii(scale, offset):
    cells = make_cell_image(CONFIGS["wide_3_9px_dim_cells"], seed=4)
    np.testing.assert_allclose(cell_radii(scale * cells.image + offset, cells.dots),
                               cell_radii(cells.image, cells.dots), rtol=1e-6)


def test_integer_images_are_measured_as_floats():
    # a 12-bit camera: unsigned integers would wrap round below the background if subtracted as they are
    cells = make_cell_image(EASY, seed=5)
    counts = np.round(1000 * cells.image.clip(0) + 100).astype(np.uint16)  # (128, 128) uint16
    np.testing.assert_array_equal(cell_radii(counts, cells.dots), cell_radii(counts.astype(np.float64), cells.dots))


def test_a_dim_cell_measures_as_large_as_a_bright_one():
    # (40, 60): two separate discs of radius 6 px, one 5 x brighter; a single (Otsu) level would drop the dim one
    image = 0.1 + discs((40, 60), [(20, 15), (20, 42)], 6, [1.0, 5.0])
    dim, bright = cell_radii(image, [[20, 15], [20, 42]], sigma=0)
    assert dim == bright == pytest.approx(np.sqrt(113 / np.pi)), "a disc of radius 6 px holds 113 pixels"


def test_touching_cells_are_split_between_their_dots():
    # (30, 44): discs of radius 6 px 10 px apart overlap in a lens; each pixel goes to the nearer dot
    image = discs((30, 44), [(15, 17), (15, 27)], 6, [1.0, 1.0])
    labels = cell_regions(image, [[15, 17], [15, 27]], sigma=0)
    rows, cols = np.nonzero(labels)
    nearer = np.where(np.abs(cols - 17) <= np.abs(cols - 27), 1, 2)  # a tie (col 22) goes to the first dot
    np.testing.assert_array_equal(labels[rows, cols], nearer)
    assert (labels > 0).sum() == (image > 0).sum(), "the union of the two discs, nothing outside it"


def test_a_dot_on_the_background_measures_nothing():
    image = 0.1 + discs((30, 30), [(10, 10)], 4, [1.0])
    radii = cell_radii(image, [[10, 10], [25, 25]], sigma=0)
    assert radii[0] == pytest.approx(np.sqrt(49 / np.pi)) and np.isnan(radii[1])
    assert cell_radius_from_dots(image, [[10, 10], [25, 25]], sigma=0) == pytest.approx(radii[0])


@pytest.mark.parametrize(("image", "dots", "kwargs", "match"), [
    (np.ones((8, 8)), np.zeros((0, 2)), {}, "without a dot"),
    (np.ones((8, 8)), [[1.0, 2.0, 3.0]], {}, r"\(N, 2\)"),
    (np.ones((8, 8)), [[3.0, 8.0]], {}, "inside the image"),
    (np.ones((8, 8)), [[3.0, np.nan]], {}, "finite"),
    (np.ones((2, 8, 8)), [[3.0, 3.0]], {}, "2-D"),
    (np.ones((8, 8)), [[3.0, 3.0]], {"sigma": -1.0}, "sigma"),
    (np.ones((8, 8)), [[3.0, 3.0]], {"percentile": 120.0}, "percentile"),
    (np.ones((8, 8)), [[3.0, 3.0]], {}, "stands out"),  # a flat image: no cell at all
])
def test_ill_inputs_raise_naming_the_problem(image, dots, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cell_radius_from_dots(image, dots, **kwargs)


def test_a_boolean_image_is_refused():
    with pytest.raises(TypeError, match="real-valued"):
        cell_radii(np.ones((8, 8), bool), [[3.0, 3.0]])
