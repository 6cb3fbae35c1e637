"""Tests of course_lib.histology.synthetic_instances: touching round-ish objects with instance labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from course_lib.histology.synthetic_instances import InstanceConfig, make_instance_image, make_instance_images


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different object ids that are 4-neighbours somewhere (independent of the generator)."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        hit = (a > 0) & (b > 0) & (a != b)
        pairs |= {tuple(sorted(p)) for p in zip(a[hit].tolist(), b[hit].tolist(), strict=True)}
    return pairs


def test_shapes_dtypes_and_ids():
    images, labels = make_instance_images(5, InstanceConfig(size=48, radius=(4.0, 6.0)), seed=3)
    assert images.shape == labels.shape == (5, 48, 48)  # (n, S, S)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    for lab in labels:
        ids = np.unique(lab)
        assert ids[0] == 0 and np.array_equal(ids, np.arange(lab.max() + 1)), "ids must be 0, 1..N without gaps"


def test_same_seed_same_data_other_seed_other_data():
    a, la = make_instance_images(3, seed=7)
    b, lb = make_instance_images(3, seed=7)
    c, _ = make_instance_images(3, seed=8)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("seed", range(5))
def test_every_object_is_one_connected_region(seed):
    _, labels = make_instance_images(10, InstanceConfig(touching=1.0, overlap=0.3), seed=seed)
    for lab in labels:
        for k in range(1, lab.max() + 1):
            assert ndimage.label(lab == k)[1] == 1, f"object {k} is split into several pieces"


def test_touching_zero_gives_separate_objects():
    # gap=2 px between objects placed freely: no two objects are neighbours, so plain CC finds every object
    _, labels = make_instance_images(20, InstanceConfig(touching=0.0), seed=0)
    for lab in labels:
        assert touching_pairs(lab) == set()
        assert ndimage.label(lab > 0)[1] == lab.max()


def test_touching_share_controls_contacts():
    """The expected number of touching pairs per image grows with `touching` (statistical, 40 images each)."""
    means = []
    for touching in (0.0, 0.5, 1.0):
        _, labels = make_instance_images(40, InstanceConfig(touching=touching), seed=1)
        means.append(np.mean([len(touching_pairs(lab)) for lab in labels]))
    assert means[0] == 0 and 0 < means[1] < means[2]
    # with touching=1 every object after the first is placed against an earlier one: N - 1 contacts at least
    _, labels = make_instance_images(10, InstanceConfig(touching=1.0), seed=2)
    assert all(len(touching_pairs(lab)) >= lab.max() - 1 for lab in labels)


def test_number_and_size_of_objects():
    config = InstanceConfig(size=96, n_objects=(4, 6), radius=(5.0, 7.0), touching=0.0, aspect=1.0)
    _, labels = make_instance_images(10, config, seed=0)
    counts = labels.max(axis=(1, 2))
    assert counts.min() >= 1 and counts.max() <= 6
    # circles with a wobble of at most 10 %: the equivalent radius sqrt(area / pi) stays in [0.9 lo, 1.1 hi]
    areas = np.concatenate([np.bincount(lab.ravel())[1:] for lab in labels])
    radii = np.sqrt(areas / np.pi)
    assert radii.min() >= 0.9 * 5.0 - 0.5 and radii.max() <= 1.1 * 7.0 + 0.5


def test_clean_intensities_without_blur_and_noise():
    config = InstanceConfig(blur=0.0, noise=0.0, background=0.1, brightness=(0.6, 1.0), edge_darkening=0.4)
    image, labels = make_instance_image(config, seed=4)
    assert np.allclose(image[labels == 0], 0.1)
    inside = image[labels > 0]
    # b (1 - e rho^2) with b in [0.6, 1] and rho in [0, 1]: between 0.6 * 0.6 and 1
    assert inside.min() >= 0.6 * (1 - 0.4) - 1e-6 and inside.max() <= 1.0 + 1e-6


def test_generator_is_accepted_as_seed():
    rng = np.random.default_rng(0)
    first = make_instance_image(seed=rng)[0]
    second = make_instance_image(seed=rng)[0]
    assert not np.array_equal(first, second), "a shared Generator must advance between images"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"radius": (0.5, 3.0)}, "radius"),
        ({"radius": (6.0, 4.0)}, "radius"),
        ({"size": 20, "radius": (5.0, 8.0)}, "size"),
        ({"touching": 1.5}, "touching"),
        ({"overlap": 0.6}, "overlap"),
        ({"aspect": 0.5}, "aspect"),
        ({"n_objects": (5, 2)}, "n_objects"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        make_instance_image(dataclasses.replace(InstanceConfig(), **change))


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="InstanceConfig"):
        make_instance_image({"size": 64})
    with pytest.raises(ValueError, match="`n` must be a positive int"):
        make_instance_images(0)
