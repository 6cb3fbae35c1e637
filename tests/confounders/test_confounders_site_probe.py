"""The site probe: average images per site, and a held-out site classifier checked on sources with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.confounders.site_probe import mean_images, site_auroc, site_features
from course_lib.confounders.synthetic_sites import SiteConfig, SiteData, site_dataset


def _sources(artefacts, n=400, seed=0, strength=1.0):
    """Site 0 and site 1 images of one draw, labels balanced within each site (confound 0.5)."""
    data = site_dataset(n, 0.5, seed, SiteConfig(artefacts=artefacts, artefact_strength=strength))
    return data.images[data.sites == 0], data.images[data.sites == 1]


def test_mean_images_by_hand():
    images = np.array([1.0, 3.0, 10.0, 20.0, 30.0], dtype=np.float32)[:, None, None, None] * np.ones((5, 1, 2, 2))
    sites = np.array([0, 0, 1, 1, 1])
    data = SiteData(images, np.zeros(5, np.int64), sites, np.ones_like(images, bool), 0.5)
    means = mean_images(data)  # (2, 1, 2, 2)
    assert means.shape == (2, 1, 2, 2)
    assert np.allclose(means[0], 2.0) and np.allclose(means[1], 20.0)  # (1 + 3) / 2 and (10 + 20 + 30) / 3
    with pytest.raises(ValueError, match="both sites"):
        mean_images(data.subset(sites == 1))


def test_site_features_are_pixels_then_squares():
    images = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)  # (N, 1, 2, 2): 4 pixels each
    features = site_features(images)
    assert features.shape == (2, 8)  # (N, 2 P)
    assert np.array_equal(features[1], [4, 5, 6, 7, 16, 25, 36, 49])


def test_two_halves_of_one_site_score_near_one_half():
    # the null: two disjoint draws of one distribution. Held out: 0.5 of ~190 images per source -> sd ~0.042 per
    # seed; over 5 seeds (other images each time) the mean has sd ~0.019: 4 sd is 0.075
    scores = []
    for seed in range(5):
        site0, _ = _sources(("marker",), n=800, seed=100 + seed)
        half = len(site0) // 2
        scores.append(site_auroc(site0[:half], site0[half:], seed=seed))
    assert abs(np.mean(scores) - 0.5) < 0.075, f"two halves of one site: AUROCs {np.round(scores, 3)}"


@pytest.mark.parametrize("artefact", ["marker", "intensity", "border", "texture"])
def test_each_artefact_alone_gives_the_site_away(artefact):
    site0, site1 = _sources((artefact,), seed=7)
    assert site_auroc(site0, site1, seed=0) > 0.95


def test_a_texture_alone_leaves_the_mean_images_equal_and_is_still_found():
    # the squares are why: the coarser noise of site 1 has mean zero, so the average images hardly differ
    data = site_dataset(600, 0.5, 8, SiteConfig(artefacts=("texture",)))
    means = mean_images(data)
    outside = ~data.roi.any(axis=0)  # (1, S, S): outside every ROI
    assert np.abs(means[1] - means[0])[outside].mean() < 0.02  # standard error of a mean pixel is ~0.01
    assert site_auroc(data.images[data.sites == 0], data.images[data.sites == 1], seed=0) > 0.95


def test_unequal_sizes_seeded_and_deterministic():
    site0, site1 = _sources(("marker",), n=300, seed=9, strength=0.3)
    a, b = site0[:120], site1[:30]
    assert site_auroc(a, b, seed=3) == site_auroc(a, b, seed=3)
    assert site_auroc(a, b, seed=3) > 0.9
    same0, same1 = site0[:70], site0[70:140]
    assert site_auroc(same0, same1, seed=1) != site_auroc(same0, same1, seed=2)  # another split, another number


@pytest.mark.parametrize("a_shape, b_shape, test_fraction, match", [
    ((10, 1, 8, 8), (10, 1, 8, 9), 0.5, "one shape"),
    ((3, 1, 8, 8), (10, 1, 8, 8), 0.5, "N >= 4"),
    ((10, 1, 8, 8), (10, 1, 8, 8), 1.0, "test_fraction"),
])
def test_ill_inputs_raise(a_shape, b_shape, test_fraction, match):
    with pytest.raises(ValueError, match=match):
        site_auroc(np.zeros(a_shape), np.zeros(b_shape), seed=0, test_fraction=test_fraction)
