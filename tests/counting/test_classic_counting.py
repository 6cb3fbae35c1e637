"""Tests of course_lib.counting.classic: threshold -> watershed -> count, and count errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import mean_absolute_error

from course_lib.counting.classic import ClassicResult, classic_count, count_errors
from course_lib.counting.synthetic_cells import CLUSTERED, EASY, SHIFTED, cell_dataset, make_cell_image


def discs(shape, centres, radius) -> np.ndarray:
    """A float image with value 1 inside discs of ``radius`` around ``centres`` (list of (row, col)), 0 elsewhere."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.any([np.hypot(yy - r, xx - c) <= radius for r, c in centres], axis=0).astype(np.float64)


@pytest.fixture(scope="module")
def preset_errors():
    """Classic-pipeline count errors on 20 images of each preset (seed 0; the defaults were tuned on other seeds)."""
    errors = {}
    for name, config in {"EASY": EASY, "CLUSTERED": CLUSTERED, "SHIFTED": SHIFTED}.items():
        images, dots = cell_dataset(20, config, seed=0)
        errors[name] = count_errors([classic_count(im).count for im in images], [len(d) for d in dots])
    return errors


@pytest.mark.parametrize("gap", [13, 15, 16])  # centre distance of two radius-8 discs: overlapping ... touching
def test_two_touching_discs_threshold_gives_one_region_watershed_two(gap):
    # (40, 60) image, discs of radius 8 at columns 22 and 22 + gap: one connected blob with a neck
    image = discs((40, 60), [(20, 22), (20, 22 + gap)], 8)
    assert ndimage.label(image > 0.5)[1] == 1, "the discs must touch for this test to mean anything"
    result = classic_count(image, sigma=0)
    assert ndimage.label(result.binary)[1] == 1, "threshold only: one region"
    assert result.count == 2, "watershed on the distance transform cuts the neck"
    # each region's centroid lies on its own disc's side of the neck
    cols = np.sort(result.centroids[:, 1])
    assert cols[0] < 22 + gap / 2 < cols[1]


def test_intermediate_shapes_and_dtypes():
    image = make_cell_image(EASY, seed=1).image  # (128, 128) float32
    result = classic_count(image)
    assert isinstance(result, ClassicResult)
    for name in ("smoothed", "binary", "distance", "markers", "labels"):
        assert getattr(result, name).shape == (128, 128), name
    assert result.smoothed.dtype == np.float64 and result.distance.dtype == np.float64
    assert result.binary.dtype == bool
    assert result.markers.dtype == np.int32 and result.labels.dtype == np.int32
    assert isinstance(result.threshold, float) and isinstance(result.count, int)
    assert result.centroids.shape == (result.count, 2)
    # the steps fit together: one marker per region, regions inside the mask, distance zero outside it
    assert result.markers.max() == result.count == len(np.unique(result.labels)) - 1
    assert np.array_equal(result.labels > 0, result.binary)
    assert (result.distance[~result.binary] == 0).all() and (result.distance[result.binary] >= 1).all()
    assert np.array_equal(result.binary, ndimage.binary_fill_holes(result.binary))


def test_separated_cells_count_equals_connected_components():
    """Oracle: scipy.ndimage.label. Round, separated cells need no watershed cut."""
    image = discs((80, 80), [(10, 10), (10, 50), (40, 30), (65, 12), (70, 70)], 6)
    result = classic_count(image, sigma=0)
    assert result.count == ndimage.label(image > 0.5)[1] == 5
    round_apart = dataclasses.replace(EASY, clustering=0.0, aspect=1.0)
    for seed in range(10):
        cells = make_cell_image(round_apart, seed)
        assert classic_count(cells.image).count == ndimage.label(cells.labels > 0)[1] == len(cells.dots)


def test_centroids_land_on_the_true_dots():
    cells = make_cell_image(dataclasses.replace(EASY, clustering=0.0), seed=2)
    result = classic_count(cells.image)
    # distance from each true dot to its nearest detection: sub-pixel-ish for clean, separate cells
    nearest = np.min(np.hypot(*(cells.dots[:, None, :] - result.centroids[None, :, :]).transpose(2, 0, 1)), axis=1)
    assert np.median(nearest) < 1.0 and nearest.max() < 3.0, nearest


def test_otsu_is_invariant_to_exposure_a_fixed_threshold_is_not():
    image = make_cell_image(EASY, seed=3).image
    tuned = classic_count(image)  # the level Otsu finds on this image, then kept fixed like a lab protocol
    dimmer = 0.4 * image  # the same field at 40 % exposure
    assert classic_count(dimmer).count == tuned.count
    assert classic_count(image, threshold=tuned.threshold).count == tuned.count
    assert classic_count(dimmer, threshold=tuned.threshold).count < tuned.count / 2


def test_empty_and_flat_images_count_zero():
    for image in (np.zeros((32, 32)), np.full((32, 32), 5.0)):
        result = classic_count(image)
        assert result.count == 0 and result.centroids.shape == (0, 2) and not result.binary.any()
    result = classic_count(discs((40, 40), [(20, 20)], 6), threshold=2.0)  # above every value
    assert result.count == 0


def test_min_size_removes_specks():
    image = discs((60, 60), [(30, 30)], 8)
    image[5, 5] = image[50, 8] = 1.0  # two one-pixel specks
    assert classic_count(image, sigma=0, min_size=0).count == 3
    assert classic_count(image, sigma=0, min_size=10).count == 1


def test_integer_image_gives_the_float_result():
    image = (discs((40, 60), [(20, 22), (20, 36)], 8) * 200).astype(np.uint16)
    assert classic_count(image, sigma=0).count == classic_count(image.astype(float), sigma=0).count == 2


def test_tuned_on_easy_it_counts_easy_images_well(preset_errors):
    # measured: MAE 0.15 cells (1 % relative) on these 20 images
    assert preset_errors["EASY"]["mae"] <= 0.5 and preset_errors["EASY"]["relative_error"] <= 0.03


def test_clustered_cells_merge_into_an_undercount(preset_errors):
    # measured: MAE 6.55, bias -6.55 (30 % relative): merged colonies, never split cells
    easy, clustered = preset_errors["EASY"], preset_errors["CLUSTERED"]
    assert clustered["mae"] >= max(2 * easy["mae"], 3.0)
    assert clustered["bias"] <= -0.9 * clustered["mae"], "the errors must be undercounts"
    assert clustered["relative_error"] >= 0.15


def test_shifted_lighting_and_stain_break_the_pipeline(preset_errors):
    # measured: MAE 3.7, bias -3.7 (17 % relative): dim and out-of-focus cells fall below Otsu's level
    easy, shifted = preset_errors["EASY"], preset_errors["SHIFTED"]
    assert shifted["mae"] >= max(2 * easy["mae"], 1.5)
    assert shifted["relative_error"] >= 0.08


@pytest.mark.parametrize(("image", "kwargs", "error", "match"), [
    (np.zeros((2, 8, 8)), {}, ValueError, "2-D"),
    (np.zeros(8), {}, ValueError, "2-D"),
    (np.full((8, 8), np.nan), {}, ValueError, "NaN"),
    (np.zeros((8, 8), complex), {}, TypeError, "real-valued"),
    (np.zeros((8, 8), bool), {}, TypeError, "real-valued"),
    (np.zeros((8, 8)), {"threshold": "mean"}, ValueError, "threshold"),
    (np.zeros((8, 8)), {"threshold": float("nan")}, ValueError, "threshold"),
    (np.zeros((8, 8)), {"threshold": True}, ValueError, "threshold"),
    (np.zeros((8, 8)), {"sigma": -1.0}, ValueError, "sigma"),
    (np.zeros((8, 8)), {"min_distance": 0}, ValueError, "min_distance"),
    (np.zeros((8, 8)), {"min_distance": 2.5}, ValueError, "min_distance"),
    (np.zeros((8, 8)), {"min_size": -1}, ValueError, "min_size"),
    (np.zeros((8, 8)), {"footprint": np.ones(3)}, ValueError, "footprint"),
])
def test_classic_count_rejects_bad_input(image, kwargs, error, match):
    with pytest.raises(error, match=match):
        classic_count(image, **kwargs)


def test_count_errors_by_hand_and_against_sklearn():
    pred, true = [12, 18, 30, 0], [10, 20, 30, 4]
    # errors +2, -2, 0, -4: MAE 8 / 4 = 2; bias -4 / 4 = -1; relative (0.2 + 0.1 + 0 + 1) / 4 = 0.325
    errors = count_errors(pred, true)
    assert errors == pytest.approx({"mae": 2.0, "bias": -1.0, "relative_error": 0.325})
    assert errors["mae"] == pytest.approx(mean_absolute_error(true, pred))


def test_count_errors_skips_zero_truths_in_the_relative_error():
    errors = count_errors([1.5, 11.0], [0, 10])  # relative error over the second image only: 1 / 10
    assert errors["relative_error"] == pytest.approx(0.1) and errors["mae"] == pytest.approx(1.25)
    assert np.isnan(count_errors([1, 2], [0, 0])["relative_error"])


@pytest.mark.parametrize(("pred", "true", "match"), [
    ([1, 2], [1, 2, 3], "same"),
    ([[1, 2]], [[1, 2]], "1-D"),
    ([], [], "non-zero"),
    ([1, np.nan], [1, 2], "finite"),
    ([1, 2], [1, -2], ">= 0"),
])
def test_count_errors_rejects_bad_input(pred, true, match):
    with pytest.raises(ValueError, match=match):
        count_errors(pred, true)


def test_tune_classic_shares_step_1_and_counts_as_classic_count():
    # tune_classic runs step 1 once per sigma and the watershed once per min_distance: the grid must be the MAE of
    # classic_count itself on every image (the oracle), here on 3 crowded 128 px images and the default grid
    from course_lib.counting.classic import tune_classic

    images, dots = cell_dataset(3, CLUSTERED, seed=11)
    true = np.array([len(d) for d in dots])
    sigmas, min_distances = (0.5, 1.0, 2.0), (3, 4, 5, 7)
    tuned = tune_classic(images, dots)
    expected = np.array([[np.abs([classic_count(im, sigma=s, min_distance=m).count for im in images] - true).mean()
                          for m in min_distances] for s in sigmas])  # (3, 4)
    np.testing.assert_array_equal(tuned["grid"], expected)
    with pytest.raises(ValueError, match="`min_distance` must be an int >= 1"):
        tune_classic(images, dots, min_distances=(0, 4))
