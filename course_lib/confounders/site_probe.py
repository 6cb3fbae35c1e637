"""Can the site be read off the images? The average image of each site, and a held-out site classifier.

Viviano et al. (2019) trained emphysema detectors on chest X-rays merged from several datasets and found that the
**average image of each dataset differs** systematically (patient position, collimation, processing, markers): a
network can tell the datasets apart, and where one dataset has more emphysema than another, the dataset predicts
the label. The lecture's advice follows: before trusting a model trained on merged sources, look at the average
image of each source, and ask whether a classifier can tell the sources apart.

:func:`mean_images`
    The average image of site 0 and of site 1, and so their difference.
:func:`site_auroc`
    How well a classifier tells source b from source a, on images it was **not fitted on**. Scored on the images it
    was fitted on, a classifier with a weight per pixel separates any two sets of a few hundred images, even two
    halves of one source: the held-out split is what makes "the sources differ" a finding.

The classifier is a logistic regression on each pixel **and its square**. The pixels see a difference of the
average images (a marker, a brighter background, a frame); the squares see a difference in how much the pixels vary
around the average (a coarser noise), which leaves the average images equal. Two sources drawn from one distribution
score about 0.5; the synthetic sites of :mod:`~course_lib.confounders.synthetic_sites` score about 1 with any of
their four artefacts, by construction of that data.

Example
-------
>>> from course_lib.confounders.synthetic_sites import site_dataset
>>> data = site_dataset(200, confound=0.5, seed=0)
>>> mean_images(data).shape  # (site, 1, S, S)
(2, 1, 32, 32)
>>> site_auroc(data.images[data.sites == 0], data.images[data.sites == 1], seed=0) > 0.9
True
"""

from __future__ import annotations

import numpy as np

from course_lib.confounders.synthetic_sites import SiteData
from course_lib.metrics import auroc

__all__ = ["mean_images", "site_features", "site_auroc"]


def mean_images(data: SiteData) -> np.ndarray:
    """The average image of each site: ``(2, C, S, S)``, site 0 first.

    Raises
    ------
    ValueError
        If ``data`` has no image of one of the two sites.
    """
    counts = [int(np.sum(data.sites == site)) for site in (0, 1)]
    if min(counts) == 0:
        raise ValueError(f"`data` needs images of both sites to average, got {counts[0]} of site 0 and {counts[1]} "
                         "of site 1")
    return np.stack([data.images[data.sites == site].mean(axis=0) for site in (0, 1)])  # (2, C, S, S)


def site_features(images: np.ndarray) -> np.ndarray:
    """Each pixel and its square: ``(N, ...)`` -> ``(N, 2 P)`` float64, ``P`` pixels per image.

    A linear classifier on the pixels compares an image with the sources' average images; the squares let it
    compare how much the pixels vary as well (a noise level, a texture), which the average images do not show.
    """
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)  # (N, ...) -> (N, P)
    return np.hstack([flat, flat**2])  # (N, 2 P)


def _check_sources(images_a: np.ndarray, images_b: np.ndarray, test_fraction: float) -> None:
    for name, images in (("images_a", images_a), ("images_b", images_b)):
        if images.ndim < 2 or len(images) < 4:
            raise ValueError(f"`{name}` must be (N, ...) images with N >= 4 (two to fit on, two held out), "
                             f"got shape {images.shape}")
    if images_a.shape[1:] != images_b.shape[1:]:
        raise ValueError(f"the sources' images must have one shape: `images_a` {images_a.shape[1:]}, "
                         f"`images_b` {images_b.shape[1:]}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must lie in (0, 1), got {test_fraction!r}")


def site_auroc(images_a, images_b, seed: int, *, test_fraction: float = 0.5) -> float:
    """Held-out AUROC of a classifier that tells source b from source a.

    The images of both sources are split at random (seeded, stratified by source) into a part the classifier is
    fitted on and a held-out part it scores; the AUROC is measured on the held-out part only, with source b as the
    positive class.

    Parameters
    ----------
    images_a, images_b : (N_a, ...) and (N_b, ...) array_like
        The images of each source, e.g. (N, 1, S, S); the same image shape, N >= 4 each; sizes may differ.
    seed : int
        Seed of the split; the same arguments give the same number.
    test_fraction : float in (0, 1)
        Share of each source held out.

    Returns
    -------
    float
        AUROC of "this image comes from source b" on the held-out images: about 0.5 when the sources cannot be told
        apart (at ``N`` held-out images per source its sd under that null is about ``sqrt(1 / (6 N))``), 1 when
        they always can.

    Raises
    ------
    ValueError
        If a source has fewer than 4 images, the image shapes differ, or ``test_fraction`` is outside (0, 1).
    """
    # scikit-learn is imported here, as in decoy_digits: course_lib's other modules do without it
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    images_a, images_b = np.asarray(images_a), np.asarray(images_b)
    _check_sources(images_a, images_b, test_fraction)
    features = site_features(np.concatenate([images_a, images_b]))  # (N_a + N_b, 2 P)
    source = np.concatenate([np.zeros(len(images_a)), np.ones(len(images_b))])  # (N,) 1 = source b
    fit_index, test_index = train_test_split(np.arange(len(source)), test_size=test_fraction, stratify=source,
                                             random_state=seed)
    # standardised features: one L2 penalty treats every pixel and square alike, whatever its scale
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(features[fit_index], source[fit_index])
    return float(auroc(source[test_index], probe.decision_function(features[test_index])))
