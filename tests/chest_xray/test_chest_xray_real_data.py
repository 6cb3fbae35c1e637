"""ch01b's full-mode path on real-layout data: CheXpert-small and PadChest trees written by the test, read by the
real readers, split by patient, trained and scored by the same experiment code as the synthetic runs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from cxr_trees import write_chexpert_studies, write_padchest_studies

from course_lib.chest_xray.experiment import CONTROL
from course_lib.chest_xray.real_data import FULL, QUICK, RealSettings, real_pair_splits, run_real_experiment, settings


@pytest.mark.parametrize(("name", "write"), [("chexpert", write_chexpert_studies),
                                             ("padchest", write_padchest_studies)])
def test_real_experiment_runs_on_a_fixture_tree(tmp_path, one_thread, name, write):
    root = write(tmp_path / name)
    train, val, test = real_pair_splits(name, root, QUICK)
    patients = [set(d.frame["patient_id"]) for d in (train, val, test)]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2]), "by patient"
    assert train.labels == val.labels == test.labels and len(train.labels) >= 2
    assert (~test.present.all(axis=1)).any() and test.present.any(axis=1).all(), "studies with one view stay in"
    out = run_real_experiment(name, root, QUICK)
    assert out["sizes"] == (len(train), len(val), len(test)) and out["imagenet"] is False
    assert set(out["results"]["models"]) == {"pa", "auxloss", CONTROL}
    assert set(out["gain"]) == set(out["gain_vs_control"]) == set(train.labels)
    complete = out["results"]["present_test"].all(axis=1)
    assert 0 < out["complete_share"] == complete.mean() < 1
    for model, row in out["robust"].items():
        assert set(row) == {"both", "no_lateral", "no_pa"} and np.isfinite(row["both"]), model
    # PA-only never reads the lateral: removing it changes nothing
    pa = out["results"]["models"]["pa"]["scores"]
    assert np.array_equal(pa["both"], pa["no_lateral"])


def test_real_settings(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("COURSE_MODE", "full")
    assert settings() is FULL and FULL.recipe.backbone == "densenet121" and FULL.recipe.size == 224
    assert FULL.recipe.imagenet and FULL.recipe.class_weighted, "CheXNet's start and loss in full mode"
    with pytest.raises(ValueError, match="name"):
        real_pair_splits("nih", None, QUICK)
    with pytest.raises(TypeError, match="RealSettings"):
        run_real_experiment("chexpert", None, QUICK.recipe)
    assert isinstance(replace(QUICK, max_studies=10), RealSettings)


def test_imagenet_weights_are_only_used_when_cached(tmp_path, monkeypatch):
    import torch

    from course_lib.chest_xray.experiment import DENSENET121_FILE, imagenet_weights_cached

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not imagenet_weights_cached()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / DENSENET121_FILE).write_bytes(b"")
    assert imagenet_weights_cached()
