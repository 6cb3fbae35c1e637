"""Synthetic H&E tiles: deterministic, the requested tumour fraction, labels that agree with the mask, and
tumour regions that a colour-deconvolution oracle (scikit-image ``rgb2hed``) sees as richer in hematoxylin."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2hed

from course_lib.histology.synthetic_tiles import (
    HistologyConfig,
    histology_patch_dataset,
    make_histology_tile,
    patch_labels,
)

SMALL = HistologyConfig(size=96)


def test_same_seed_same_tile_other_seed_other_tile():
    a, b, c = (make_histology_tile(SMALL, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, c.image)


def test_shapes_and_dtypes():
    tile = make_histology_tile(SMALL, seed=0, patch_size=32)
    assert tile.image.shape == (96, 96, 3) and tile.image.dtype == np.uint8
    assert tile.mask.shape == (96, 96) and tile.mask.dtype == bool
    assert tile.patch_labels.shape == (3, 3) and tile.patch_labels.dtype == np.int64
    as_float = make_histology_tile(SMALL, seed=0, patch_size=32, dtype="float32")
    assert as_float.image.dtype == np.float32 and 0.0 <= as_float.image.min() and as_float.image.max() <= 1.0
    # the same tile, only stored differently: uint8 is the float image rounded to 1/255
    assert np.abs(as_float.image * 255 - tile.image).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("fraction", [0.0, 0.005, 0.1, 0.5])
def test_tumour_fraction_is_honoured(fraction):
    # the tumour is the top `fraction` quantile of a smooth field, so the share of pixels is that quantile
    tile = make_histology_tile(HistologyConfig(size=128, tumour_fraction=fraction), seed=1)
    assert tile.mask.mean() == pytest.approx(fraction, abs=0.002)
    if fraction == 0.0:
        assert tile.patch_labels.sum() == 0


def test_patch_labels_agree_with_a_loop_over_patches():
    tile = make_histology_tile(HistologyConfig(size=100), seed=2, patch_size=16, threshold=0.3)
    expected = np.array([[tile.mask[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16].mean() > 0.3 for c in range(6)]
                         for r in range(6)])  # 100 // 16 = 6 patches per side; the last 4 px are dropped
    assert np.array_equal(tile.patch_labels, expected)


@pytest.mark.parametrize(
    "mask, patch, threshold, expected",
    [
        # (2, 2) with one tumour pixel: fraction 1/4 -> positive only when the threshold is below 0.25
        pytest.param([[1, 0], [0, 0]], 2, 0.2, [[1]], id="quarter>0.2"),
        pytest.param([[1, 0], [0, 0]], 2, 0.25, [[0]], id="quarter-not>0.25-strict"),
        # (2, 3) with patch 1: every pixel is its own patch
        pytest.param([[1, 0, 1], [0, 1, 0]], 1, 0.5, [[1, 0, 1], [0, 1, 0]], id="pixelwise"),
        # (3, 3) with patch 2: one patch, the last row and column are dropped
        pytest.param([[1, 1, 0], [1, 1, 0], [0, 0, 0]], 2, 0.5, [[1]], id="drop-border"),
    ],
)
def test_patch_labels_hand_checked(mask, patch, threshold, expected):
    assert patch_labels(np.array(mask), patch, threshold).tolist() == expected


def test_tumour_has_more_hematoxylin_than_stroma():
    # colour deconvolution (Ruifrok & Johnston, scikit-image) is an independent look at the stains:
    # crowded, large tumour nuclei mean more hematoxylin per pixel inside the tumour mask
    # (a property of the generator, so averaged over five tiles rather than read off one draw)
    gaps = []
    for seed in range(5):
        tile = make_histology_tile(HistologyConfig(size=256, tumour_fraction=0.4), seed=seed)
        hematoxylin = rgb2hed(tile.image)[..., 0]
        gaps.append(hematoxylin[tile.mask].mean() - hematoxylin[~tile.mask].mean())
    assert np.mean(gaps) > 0.02, f"hematoxylin inside minus outside the tumour, per tile: {gaps}"
    # stroma is pink: red above green on average
    stroma = tile.image[~tile.mask].astype(float)
    assert stroma[:, 0].mean() > stroma[:, 1].mean() + 20


def test_stain_and_lighting_jitter_vary_the_colour():
    def spread(cfg):  # std over tiles of each tile's mean colour
        return np.std([make_histology_tile(cfg, seed=s).image.reshape(-1, 3).mean(0) for s in range(6)], axis=0).mean()

    plain = spread(HistologyConfig(size=64, stain_jitter=0.0, lighting_jitter=0.0))
    varied = spread(HistologyConfig(size=64, stain_jitter=0.2, lighting_jitter=0.15))
    assert varied > 2 * plain, f"jitter should spread tile colours: {varied:.1f} vs {plain:.1f}"


def test_patch_dataset_matches_the_tiles():
    cfg = HistologyConfig(size=64, tumour_fraction=0.4)
    ds = histology_patch_dataset(3, cfg, seed=5, patch_size=16)
    patches, labels = ds.tensors
    assert patches.shape == (3 * 16, 3, 16, 16) and patches.dtype == torch.float32
    assert labels.dtype == torch.int64 and set(labels.unique().tolist()) <= {0, 1}
    # patch 5 of tile 0 is grid cell (1, 1): rows 16..31, cols 16..31 of the first tile, channels first
    first = make_histology_tile(cfg, np.random.SeedSequence(5).spawn(3)[0], patch_size=16, dtype="float32")
    assert torch.equal(patches[5], torch.from_numpy(first.image[16:32, 16:32].transpose(2, 0, 1).copy()))
    assert labels[:16].tolist() == first.patch_labels.reshape(-1).tolist()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"config": HistologyConfig(tumour_fraction=1.5)}, r"`tumour_fraction` must lie in \[0, 0.9\], got 1.5"),
        ({"config": HistologyConfig(size=8)}, r"`size` must be an int >= 16, got 8"),
        ({"config": HistologyConfig(stain_jitter=-0.1)}, r"`stain_jitter` must be >= 0"),
        ({"config": SMALL, "dtype": "float64"}, r"`dtype` must be 'uint8' or 'float32'"),
        ({"config": SMALL, "patch_size": 200}, r"`patch_size` must be an int in \[1, 96\]"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_histology_tile(**kwargs)


def test_config_must_be_a_config():
    with pytest.raises(TypeError, match="`config` must be a HistologyConfig, got dict"):
        make_histology_tile({"size": 64})
