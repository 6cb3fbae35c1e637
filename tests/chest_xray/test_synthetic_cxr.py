"""Synthetic two-view chest X-rays: determinism, format, missing views, label noise, per-view visibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

from course_lib.chest_xray.synthetic import (
    LABELS,
    VISIBLE_IN,
    TwoViewConfig,
    TwoViewDataset,
    make_studies,
    make_study,
)

SMALL = TwoViewConfig(size=32)


def test_labels_and_visibility_cover_each_other():
    assert set(VISIBLE_IN) == set(LABELS)
    assert set(VISIBLE_IN.values()) == {"pa", "lateral", "both"}  # each kind of finding exists


def test_study_format():
    study = make_study(0, TwoViewConfig(size=64))
    assert study["pa"].shape == study["lateral"].shape == (1, 64, 64)
    assert study["pa"].dtype == study["lateral"].dtype == np.float32
    for view in ("pa", "lateral"):
        assert 0.0 <= study[view].min() and study[view].max() <= 1.0, f"{view} must lie in [0, 1]"
        assert study[view].std() > 0.1, f"{view} should show anatomy, not a flat image"
    assert study["present"].dtype == np.bool_ and study["present"].tolist() == [True, True]
    assert study["labels"].shape == study["label_mask"].shape == (len(LABELS),)
    assert set(np.unique(study["labels"])) <= {0.0, 1.0}
    np.testing.assert_array_equal(study["label_mask"], 1.0)


def test_same_seed_same_study_and_different_seed_differs():
    a, b, c = make_study(7, SMALL), make_study(7, SMALL), make_study(8, SMALL)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["pa"], c["pa"])


def test_dataset_is_deterministic_per_index_and_matches_cache_and_batch():
    lazy, cached = TwoViewDataset(6, SMALL, seed=3), TwoViewDataset(6, SMALL, seed=3, cache=True)
    batch = make_studies(6, SMALL, seed=3)
    for i in (5, 0, 3):  # any order
        x, y = lazy[i], cached[i]
        for key in TwoViewDataset.keys:
            torch.testing.assert_close(x[key], y[key])
            np.testing.assert_array_equal(x[key].numpy(), batch[key][i])
    assert not torch.equal(lazy[0]["pa"], TwoViewDataset(6, SMALL, seed=4)[0]["pa"])


def test_default_collate_batches_the_shared_format():
    batch = next(iter(DataLoader(TwoViewDataset(5, SMALL, seed=0), batch_size=4)))
    assert batch["pa"].shape == batch["lateral"].shape == (4, 1, 32, 32)
    assert batch["present"].shape == (4, 2) and batch["present"].dtype == torch.bool
    assert batch["labels"].shape == batch["label_mask"].shape == (4, len(LABELS))
    assert batch["labels"].dtype == torch.float32


@pytest.mark.parametrize("p_pa, p_lat", [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.3, 0.2)])
def test_missing_views_have_the_configured_rates_and_never_both(p_pa, p_lat):
    studies = make_studies(1500, TwoViewConfig(size=16, p_missing_pa=p_pa, p_missing_lateral=p_lat), seed=0)
    present = studies["present"]  # (n, 2)
    assert present.any(axis=1).all(), "a study must keep at least one view"
    assert abs((~present[:, 0]).mean() - p_pa) < 0.04
    assert abs((~present[:, 1]).mean() - p_lat) < 0.04
    for k, view in enumerate(("pa", "lateral")):
        assert (studies[view][~present[:, k]] == 0).all(), f"a missing {view} must be a zero image"
        assert (studies[view][present[:, k]].max(axis=(1, 2, 3)) > 0).all(), f"a present {view} must be an image"


def test_label_noise_flips_labels_but_not_images():
    clean = make_studies(2000, TwoViewConfig(size=16), seed=1)
    noisy = make_studies(2000, TwoViewConfig(size=16, label_noise=0.2), seed=1)
    np.testing.assert_array_equal(clean["pa"], noisy["pa"])  # the images keep the true findings
    np.testing.assert_array_equal(clean["labels"], clean["clean_labels"])
    np.testing.assert_array_equal(noisy["clean_labels"], clean["labels"])
    flipped = (noisy["labels"] != noisy["clean_labels"]).mean()
    assert abs(flipped - 0.2) < 0.02, f"share of flipped labels {flipped:.3f}, expected 0.2"


def test_prevalence_per_label():
    prevalence = (0.1, 0.2, 0.3, 0.4, 0.5)
    labels = make_studies(3000, TwoViewConfig(size=16, prevalence=prevalence), seed=2)["labels"]
    np.testing.assert_allclose(labels.mean(axis=0), prevalence, atol=0.03)


def _effect(label: str, view: str, n: int = 24) -> float:
    """Mean absolute change of ``view`` when only ``label`` is added to the same patients (counterfactual)."""
    k = LABELS.index(label)
    with_finding = np.eye(len(LABELS))[k]
    total = 0.0
    for seed in range(n):
        total += np.abs(make_study(seed, labels=with_finding)[view]
                        - make_study(seed, labels=np.zeros(len(LABELS)))[view]).mean()
    return total / n


@pytest.mark.parametrize("label", LABELS)
def test_each_finding_changes_the_views_it_is_visible_in(label):
    pa, lateral = _effect(label, "pa"), _effect(label, "lateral")
    ratio = pa / max(lateral, 1e-12)  # > 1: the PA shows more of the finding
    if label == "cardiomegaly":
        assert lateral == 0.0, "cardiomegaly is a PA-only finding: the lateral must not change at all"
    expected = {"pa": (2.5, np.inf), "lateral": (0.0, 1 / 2.5), "both": (1 / 2.5, 2.5)}[VISIBLE_IN[label]]
    assert expected[0] < ratio < expected[1], f"{label}: PA/lateral effect ratio {ratio:.2f}, expected {expected}"


def test_a_linear_model_reads_each_finding_best_from_its_own_view():
    # the oracle is learned, not drawn: a logistic regression on 16 x 16 pooled pixels of one view
    train, test = make_studies(700, TwoViewConfig(size=32), seed=10), make_studies(400, TwoViewConfig(size=32), seed=11)

    def pooled(images):  # (n, 1, 32, 32) -> (n, 256): 2 x 2 mean pooling
        return images.reshape(len(images), 16, 2, 16, 2).mean(axis=(2, 4)).reshape(len(images), -1)

    auc = {}
    for view in ("pa", "lateral"):
        x_train, x_test = pooled(train[view]), pooled(test[view])
        for k, label in enumerate(LABELS):
            clf = LogisticRegression(C=0.1, max_iter=2000).fit(x_train, train["labels"][:, k])
            auc[label, view] = roc_auc_score(test["labels"][:, k], clf.decision_function(x_test))
    for label in ("cardiomegaly", "emphysema", "retrocardiac_opacity"):
        own = "pa" if VISIBLE_IN[label] == "pa" else "lateral"
        other = "lateral" if own == "pa" else "pa"
        assert auc[label, own] > auc[label, other] + 0.1, \
            f"{label}: AUROC {auc[label, own]:.2f} from the {own} view vs {auc[label, other]:.2f} from the {other}"
    for view in ("pa", "lateral"):  # effusion blunts the costophrenic angles of both views
        assert auc["effusion", view] > 0.6, f"effusion: AUROC {auc['effusion', view]:.2f} from the {view} view"


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 8}, "size"),
    ({"p_missing_pa": 1.5}, "p_missing_pa"),
    ({"p_missing_pa": 0.6, "p_missing_lateral": 0.6}, "at least one view"),
    ({"label_noise": -0.1}, "label_noise"),
    ({"prevalence": (0.1, 0.2)}, "prevalence"),
    ({"finding_strength": -1.0}, "finding_strength"),
])
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_study(0, TwoViewConfig(**kwargs))


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="TwoViewConfig"):
        make_study(0, {"size": 64})
    with pytest.raises(ValueError, match="labels"):
        make_study(0, labels=[1, 0])
    with pytest.raises(ValueError, match="`n`"):
        TwoViewDataset(0)
    with pytest.raises(IndexError, match="out of range"):
        TwoViewDataset(3, SMALL)[3]
