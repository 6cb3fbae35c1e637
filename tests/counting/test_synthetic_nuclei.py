"""Tests of course_lib.counting.synthetic_nuclei: H&E-like tiles of three nucleus classes with dots."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from skimage.color import rgb2hed
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops

from course_lib.counting.synthetic_nuclei import CLASSES, NucleiConfig, make_nuclei_image, nuclei_dataset

# fixed stain and light, no noise: the morphology tests measure the nuclei, not the jitter
STEADY = NucleiConfig(stain_jitter=0.0, lighting_jitter=0.0, noise=0.0)


@pytest.fixture(scope="module")
def measured():
    """Per class: area and solidity of the nucleus found at each dot, and hematoxylin at the dot.

    Independent of the generator: scikit-image's colour deconvolution (``rgb2hed``) recovers hematoxylin,
    Otsu's threshold and connected components find the nuclei.
    """
    out = {k: {"area": [], "solidity": [], "centre": []} for k in range(len(CLASSES))}
    images, dots, classes = nuclei_dataset(12, STEADY, seed=0)
    for image, points, kinds in zip(images, dots, classes, strict=True):
        hema = ndimage.gaussian_filter(rgb2hed(image)[..., 0], 0.5)  # (S, S) hematoxylin optical density
        regions = label(ndimage.binary_fill_holes(hema > threshold_otsu(hema)))
        props = {p.label: p for p in regionprops(regions)}
        for (row, col), k in zip(np.round(points).astype(int), kinds, strict=True):
            out[k]["centre"].append(hema[row, col])
            if regions[row, col]:
                out[k]["area"].append(props[regions[row, col]].area)
                out[k]["solidity"].append(props[regions[row, col]].solidity)
    return {k: {name: np.median(v) for name, v in d.items()} for k, d in out.items()}


def test_classes():
    assert CLASSES == ("lymphocyte", "normal_epithelial", "malignant_epithelial")


def test_shapes_dtypes_and_ranges():
    for seed in range(5):
        tile = make_nuclei_image(seed=seed)
        n = len(tile.dots)
        assert tile.image.shape == (128, 128, 3) and tile.image.dtype == np.float32  # (S, S, RGB)
        assert tile.image.min() >= 0.0 and tile.image.max() <= 1.0
        assert tile.dots.shape == (n, 2) and tile.dots.dtype == np.float32
        assert tile.classes.shape == (n,) and tile.classes.dtype == np.int64
        assert set(tile.classes.tolist()) <= {0, 1, 2} and 10 <= n <= 35
        assert (tile.dots >= 0).all() and (tile.dots <= 127).all()


def test_same_seed_same_tile_and_dataset_prefix():
    a, b, c = make_nuclei_image(seed=4), make_nuclei_image(seed=4), make_nuclei_image(seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a.image, c.image)
    images, dots, classes = nuclei_dataset(4, seed=9)
    prefix, dots3, classes3 = nuclei_dataset(3, seed=9)
    assert images.shape == (4, 128, 128, 3) and np.array_equal(images[:3], prefix)
    assert all(map(np.array_equal, dots[:3], dots3)) and all(map(np.array_equal, classes[:3], classes3))


def test_nuclei_do_not_overlap():
    # centres are further apart than the two nuclei's radii: at least two small lymphocytes (2 x 2.5 px)
    for seed in range(5):
        dots = make_nuclei_image(seed=seed).dots
        distance = np.hypot(*(dots[:, None] - dots[None]).transpose(2, 0, 1))  # (N, N)
        assert distance[~np.eye(len(dots), dtype=bool)].min() > 5.0


def test_class_mix_varies_between_images_unless_concentrated():
    def lymphocyte_share(config):
        _, _, classes = nuclei_dataset(20, config, seed=1)
        return np.array([np.mean(c == 0) for c in classes])

    varied, even = lymphocyte_share(NucleiConfig()), lymphocyte_share(NucleiConfig(mix_concentration=200.0))
    # Dirichlet(1, 1, 1): a share's sd is sqrt(2 / 36) ~ 0.24; Dirichlet(200, ...) leaves only the multinomial sd
    assert varied.std() > 0.15 and varied.min() < 0.15 and varied.max() > 0.5
    assert even.std() < 0.12 and abs(even.mean() - 1 / 3) < 0.08


def test_classes_differ_in_size(measured):
    areas = [measured[k]["area"] for k in range(3)]
    assert areas[0] < areas[1] < areas[2], f"lymphocyte < normal < malignant by area, got {areas}"
    assert areas[2] > 1.8 * areas[1], "malignant nuclei are markedly enlarged"


def test_lymphocytes_darkest_malignant_palest_at_the_centre(measured):
    centre = [measured[k]["centre"] for k in range(3)]
    assert centre[0] > centre[1] > centre[2], f"hematoxylin at the centre: dense to vesicular, got {centre}"


def test_malignant_outlines_are_irregular(measured):
    # solidity = area / convex hull area: 1 for a convex outline, lower for bumps and notches
    assert measured[2]["solidity"] < measured[1]["solidity"] - 0.005


def test_stain_jitter_changes_colour_not_nuclei():
    plain = make_nuclei_image(STEADY, seed=3)
    jittered = make_nuclei_image(dataclasses.replace(STEADY, stain_jitter=0.2), seed=3)
    assert np.array_equal(plain.dots, jittered.dots) and np.array_equal(plain.classes, jittered.classes)
    assert np.abs(plain.image - jittered.image).mean() > 0.01


@pytest.mark.parametrize(("change", "match"), [
    ({"count": (5, 2)}, "count"),
    ({"size": 20}, "size"),
    ({"scale": 0.0}, "scale"),
    ({"mix_concentration": 0.0}, "mix_concentration"),
    ({"noise": -1.0}, "noise"),
])
def test_invalid_config(change, match):
    with pytest.raises(ValueError, match=match):
        make_nuclei_image(dataclasses.replace(NucleiConfig(), **change))


def test_invalid_arguments():
    with pytest.raises(TypeError, match="NucleiConfig"):
        make_nuclei_image({"size": 128})
    with pytest.raises(ValueError, match="`n`"):
        nuclei_dataset(0)
