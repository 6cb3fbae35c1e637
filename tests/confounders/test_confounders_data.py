"""The synthetic two-site task and decoy digits: the confound rate, artefacts outside the ROI, the decoy swatch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.datasets import load_digits

from course_lib.confounders.decoy_digits import decoy_digits, swatch_shade
from course_lib.confounders.synthetic_sites import ARTEFACTS, SiteConfig, shifted_test_sets, site_dataset


def test_shapes_types_and_balance():
    data = site_dataset(50, confound=0.8, seed=1)
    assert data.images.shape == (50, 1, 32, 32) and data.images.dtype == np.float32  # (N, 1, S, S)
    assert data.roi.shape == (50, 1, 32, 32) and data.roi.dtype == bool
    assert data.labels.dtype == np.int64 and data.sites.dtype == np.int64
    assert data.labels.sum() == 25  # balanced labels: 50 // 2 positives
    assert len(data.subset(np.arange(10))) == 10


@pytest.mark.parametrize("confound", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_site_agrees_with_label_at_the_confound_rate(confound):
    data = site_dataset(2000, confound=confound, seed=2)
    agree = np.mean(data.sites == data.labels)
    # binomial sd at n = 2000 is at most 0.011: 4 sd
    assert abs(agree - confound) < 0.045, f"P(site == label) = {agree:.3f}, asked {confound}"


def test_same_seed_same_images_other_seed_other_images():
    a, b, c = site_dataset(6, 0.9, seed=3), site_dataset(6, 0.9, seed=3), site_dataset(6, 0.9, seed=4)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)


def test_artefacts_lie_outside_the_roi_only():
    # The same seed without the (non-random) artefacts draws the same organ, lesion and noise: the difference is
    # the artefact alone, zero inside every ROI, present outside for site-1 images, absent for site 0.
    kinds = ("marker", "intensity", "border")
    with_art = site_dataset(40, 0.5, seed=5, config=SiteConfig(artefacts=kinds))
    without = site_dataset(40, 0.5, seed=5, config=SiteConfig(artefacts=()))
    diff = with_art.images - without.images  # (N, 1, S, S)
    assert np.all(diff[with_art.roi] == 0), "an artefact leaked into the region of interest"
    site1 = with_art.sites == 1
    assert site1.any() and (~site1).any()
    assert np.all(np.abs(diff[site1]).reshape(site1.sum(), -1).max(axis=1) > 0.5)  # the marker (0.8) is there
    assert np.all(diff[~site1] == 0), "site 0 images must not carry site 1's artefacts"


def test_lesion_is_inside_the_roi():
    cfg = SiteConfig(artefacts=(), noise_sd=0.0, texture_sd=1e-6)
    data = site_dataset(30, 0.5, seed=6, config=cfg)
    positives = data.labels == 1
    peak_inside = [img[0][roi[0]].max() for img, roi in zip(data.images[positives], data.roi[positives], strict=True)]
    # organ level 0.5 + lesion peak 0.8 (minus at most a half-pixel offset of the Gaussian centre)
    assert min(peak_inside) > 0.5 + 0.6 * cfg.lesion_contrast
    negatives_max = data.images[~positives].max()
    assert negatives_max < 0.5 + 0.1, "negatives have no lesion"


def test_shifted_test_sets_keep_remove_and_reverse_the_correlation():
    sets = shifted_test_sets(1000, train_confound=0.9, seed=7)
    rates = {name: np.mean(d.sites == d.labels) for name, d in sets.items()}
    assert abs(rates["kept"] - 0.9) < 0.04 and abs(rates["removed"] - 0.5) < 0.06
    assert abs(rates["reversed"] - 0.1) < 0.04


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": 0, "confound": 0.5}, "`n` must be a positive int"),
    ({"n": 4, "confound": 1.5}, r"`confound` must lie in \[0, 1\]"),
    ({"n": 4, "confound": 0.5, "config": SiteConfig(artefacts=("stamp",))}, "unknown"),
    ({"n": 4, "confound": 0.5, "config": SiteConfig(roi_radius=14.0)}, "no 4 px margin"),
])
def test_ill_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        site_dataset(seed=0, **kwargs)


def test_every_artefact_name_is_handled():
    for kind in ARTEFACTS:
        data = site_dataset(8, 1.0, seed=8, config=dataclasses.replace(SiteConfig(), artefacts=(kind,)))
        assert np.isfinite(data.images).all()


# ---- decoy digits --------------------------------------------------------------------------------------------

def test_decoy_digits_follow_the_protocol():
    data = decoy_digits(seed=0)
    digits = load_digits()
    assert len(data["train"]) + len(data["val"]) + len(data["test"]) == len(digits.target)
    train = data["train"]
    assert train.images.shape[1:] == (1, 12, 12)
    # the digit sits in the centre, unchanged but for the scale 16 -> 1, and that is the ROI
    inner = train.images[:, 0, 2:10, 2:10] * 16
    assert np.allclose(inner[0], digits.images[np.flatnonzero(digits.target == train.labels[0])].reshape(-1, 8, 8)[
        np.argmin([np.abs(d - inner[0]).sum() for d in digits.images[digits.target == train.labels[0]]])])
    assert train.roi[:, 0, 2:10, 2:10].all() and train.roi.sum() == len(train) * 64
    # training and validation swatches encode the class; 1 - y / 10 is Ross et al.'s 255 - 25 y scaled
    for split in ("train", "val"):
        assert np.allclose(data[split].shades, 1 - data[split].labels / 10)
    test = data["test"]
    agree = np.mean(np.isclose(test.shades, 1 - test.labels / 10))
    assert agree < 0.2, f"the test swatch must say nothing about the class; it agrees {agree:.2f} of the time"
    # exactly one 2x2 swatch per image, outside the ROI, with the recorded shade
    for split in data.values():
        outside = np.where(split.roi, 0, split.images)  # (N, 1, 12, 12)
        assert np.all((outside > 0).reshape(len(split), -1).sum(axis=1) == np.where(split.shades > 0, 4, 0))
        assert np.allclose(outside.reshape(len(split), -1).max(axis=1), split.shades)


def test_decoy_ill_inputs():
    with pytest.raises(ValueError, match="must leave test images"):
        decoy_digits(n_train=1500, n_val=400)
    with pytest.raises(ValueError, match="digits 0..9"):
        swatch_shade([3, 12])


# ---- full mode: the confounded chest X-ray mix (tables only; images are read by chest_xray) --------------------

def _sites(n=40):
    import pandas as pd

    site0 = pd.DataFrame({"path": [f"nih/{i}.png" for i in range(n)], "patient_id": [f"n{i}" for i in range(n)],
                          "view": ["PA", "AP"] * (n // 2), "Effusion": [0.0, 1.0, float("nan"), 0.0] * (n // 4)})
    site1 = pd.DataFrame({"path": [f"chexpert/{i}.jpg" for i in range(n)], "patient_id": [f"c{i}" for i in range(n)],
                          "view": "AP", "Effusion": [1.0, 0.0] * (n // 2)})
    return site0, site1


def _sites_with_repeat_patients(n=40):
    """Every patient has two films per source (pairs of rows), and patients p0 .. p9 are in both sources."""
    site0, site1 = _sites(n)
    site0["patient_id"] = [f"p{i // 2}" for i in range(n)]  # (n,) -> n / 2 patients, two films each
    site1["patient_id"] = [f"p{i // 2}" if i < 20 else f"q{i // 2}" for i in range(n)]  # p0 .. p9 in both
    return site0, site1


def test_confounded_table_has_the_asked_confound_and_balance():
    from course_lib.confounders.cxr_mix import confounded_table

    site0, site1 = _sites()
    mix = confounded_table(site0, site1, "Effusion", n=16, confound=0.75, seed=0)
    assert len(mix) == 16 and mix.label.sum() == 8  # half positive
    assert (mix.site == mix.label).mean() == 0.75  # 6 of 8 positives from site 1, 6 of 8 negatives from site 0
    assert mix.path.is_unique
    known = set(site0.path[site0.Effusion.notna()]) | set(site1.path)
    assert set(mix.path) <= known, "an image with an unknown (NaN) label was drawn"


def test_shifted_tables_are_disjoint_and_shifted():
    from course_lib.confounders.cxr_mix import confounded_table, shifted_tables

    site0, site1 = _sites(80)
    train = confounded_table(site0, site1, "Effusion", n=12, confound=0.8, seed=1)  # 5 of 6 agree per class
    tests = shifted_tables(site0, site1, "Effusion", n=20, train_confound=0.8, seed=2, exclude=train.patient_id)
    rates = {k: (t.site == t.label).mean() for k, t in tests.items()}
    assert rates == {"kept": 0.8, "removed": 0.5, "reversed": 0.2}  # 8, 5 and 2 of the 10 per class agree
    paths = [set(train.path)] + [set(t.path) for t in tests.values()]
    assert sum(len(p) for p in paths) == len(set().union(*paths)), "train and test mixes must not share images"


def test_no_patient_is_in_both_training_and_test_mixes():
    from course_lib.confounders.cxr_mix import confounded_table, shifted_tables

    site0, site1 = _sites_with_repeat_patients(80)  # 40 + 40 films; p0 .. p9 have films in both sources
    tests = shifted_tables(site0, site1, "Effusion", n=8, train_confound=0.75, seed=0)
    test_patients = set().union(*(set(t.patient_id) for t in tests.values()))
    train = confounded_table(site0, site1, "Effusion", n=8, confound=0.75, seed=1, exclude=test_patients)
    assert not set(train.patient_id) & test_patients, "a test patient's other film was drawn for training"
    per_mix = [set(t.patient_id) for t in tests.values()]
    assert sum(len(p) for p in per_mix) == len(test_patients), "two test mixes share a patient"
    # an image-level exclusion would have let p0's second film, or its film in the other source, through:
    films_of = {p: set(site0.path[site0.patient_id == p]) | set(site1.path[site1.patient_id == p]) for p in
                test_patients}
    assert all(len(films) >= 2 for films in films_of.values()), "the fixture gives every patient several films"
    assert all(not films & set(train.path) for films in films_of.values())


def test_the_same_patient_id_in_both_sources_is_one_patient():
    from course_lib.confounders.cxr_mix import confounded_table

    site0, site1 = _sites_with_repeat_patients(80)
    both = {f"p{i}" for i in range(10)}  # these ids have films in site 0 and site 1
    mix = confounded_table(site0, site1, "Effusion", n=8, confound=0.5, seed=0, exclude=both)
    assert not set(mix.patient_id) & both, "excluding a patient must exclude its films in both sources"
    with pytest.raises(ValueError, match="need a `patient_id` column"):
        confounded_table(site0.drop(columns="patient_id"), site1, "Effusion", n=4, confound=0.5, seed=0)


def test_cxr_mix_ill_inputs_and_roi():
    from course_lib.confounders.cxr_mix import central_roi, confounded_table

    site0, site1 = _sites()
    with pytest.raises(ValueError, match="site 1 has 20 images with Effusion = 1, the mix needs 30"):
        confounded_table(site0, site1, "Effusion", n=60, confound=1.0, seed=0)
    with pytest.raises(ValueError, match="positive even int"):
        confounded_table(site0, site1, "Effusion", n=7, confound=0.5, seed=0)
    with pytest.raises(ValueError, match="is not a column"):
        confounded_table(site0, site1, "Edema", n=4, confound=0.5, seed=0)
    roi = central_roi(64)
    assert roi.shape == (64, 64) and roi[32, 32] and not roi[0, 0] and not roi[2, 60]
    assert 0.4 < roi.mean() < 0.6  # pi/4 * 0.8 * 0.85 = 0.53 of the image


def test_mix_images_reads_each_site_from_its_root():
    from course_lib.confounders.cxr_mix import confounded_table, mix_images

    site0, site1 = _sites()
    mix = confounded_table(site0, site1, "Effusion", n=8, confound=0.75, seed=0)
    seen = []

    def reader(path, size):  # a fake radiograph: brightness says which root it came from
        seen.append(str(path))
        return np.full((size, size), 0.2 if str(path).startswith("/site0") else 0.8)

    data = mix_images(mix, {0: "/site0", 1: "/site1"}, size=16, confound=0.75, reader=reader)
    assert data.images.shape == (8, 1, 16, 16) and data.roi.shape == (8, 1, 16, 16)
    assert np.allclose(data.images[:, 0, 0, 0], np.where(data.sites == 1, 0.8, 0.2))
    assert np.array_equal(data.labels, mix.label.to_numpy()) and len(seen) == 8
    with pytest.raises(ValueError, match=r"no folder for site\(s\) \[1\]"):
        mix_images(mix, {0: "/site0"}, size=16, confound=0.75, reader=reader)


def test_run_sweep_accepts_real_data_through_make_data():
    import dataclasses

    from course_lib.confounders.experiment import QUICK, SPLITS, run_sweep
    from course_lib.confounders.methods import TrainSettings

    tiny = dataclasses.replace(QUICK, seeds=(0,), train=TrainSettings(width=2, epochs=1), saliency_images=4)
    made = {split: site_dataset(12, 0.5, seed=k) for k, split in enumerate(SPLITS)}
    table = run_sweep(tiny, methods=("baseline",), progress=False,
                      make_data=lambda seed: (site_dataset(16, 0.9, seed), made))
    assert len(table) == len(SPLITS)
    with pytest.raises(ValueError, match="must return the splits"):
        run_sweep(tiny, methods=("baseline",), progress=False,
                  make_data=lambda seed: (site_dataset(16, 0.9, seed), {"kept": made["kept"]}))
