"""The experiment's plumbing on tiny settings: every method trains, selection uses validation only, tables have
means and spreads over seeds, runs are deterministic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib.confounders.experiment import (
    DECOY_QUICK,
    QUICK,
    per_seed,
    run_confound_sweep,
    run_decoy,
    run_sweep,
    select,
    summarise,
)
from course_lib.confounders.methods import (
    METHODS,
    SITE_LABEL_USE,
    TrainSettings,
    accuracy_threshold,
    evaluate,
    predict_proba,
    train_method,
)
from course_lib.confounders.synthetic_sites import site_dataset
from course_lib.confounders.viz import format_table

TINY = dataclasses.replace(QUICK, n_train=48, n_val=24, n_val_shifted=12, n_test=30, seeds=(0, 1, 2),
                           train=TrainSettings(width=2, epochs=1, batch_size=16), saliency_images=8,
                           confounds=(0.5, 1.0))


@pytest.fixture(scope="module")
def tiny_models():
    return {}


@pytest.fixture(scope="module")
def tiny_table(tiny_models):
    return run_sweep(TINY, methods=("baseline", "rrr"), progress=False, models=tiny_models)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_and_predicts(method, one_thread):
    data = site_dataset(32, 0.9, seed=0)
    hyper = {"subspace": 4.0, "grl": 1.0, "rrr": 10.0, "gradmask": 10.0, "actdiff": 1.0}.get(method)
    model = train_method(method, data, hyper=hyper, seed=0, settings=TINY.train)
    proba = predict_proba(model, data)
    assert proba.shape == (32,) and np.all((proba >= 0) & (proba <= 1))
    scores = evaluate(model, data, saliency_images=4)
    assert set(scores) == {"accuracy", "auroc", "saliency_in_roi"} and 0 <= scores["saliency_in_roi"] <= 1


def test_training_is_deterministic(one_thread):
    data = site_dataset(32, 0.9, seed=1)
    a, b = (predict_proba(train_method("rrr", data, hyper=10.0, seed=3, settings=TINY.train), data) for _ in range(2))
    assert np.array_equal(a, b)


def test_hyper_parameter_is_required_exactly_where_the_method_has_one():
    data = site_dataset(8, 0.9, seed=2)
    with pytest.raises(ValueError, match="`hyper` must be a number for method 'rrr'"):
        train_method("rrr", data)
    with pytest.raises(ValueError, match="`hyper` must be None for method 'baseline'"):
        train_method("baseline", data, hyper=1.0)
    with pytest.raises(ValueError, match="`method` must be one of"):
        train_method("dropout", data)


def test_sweep_table_has_one_row_per_method_hyper_seed_split(tiny_table, tiny_models):
    # baseline: 1 candidate, rrr: 3 candidates; 3 seeds; 5 splits
    assert len(tiny_table) == (1 + 3) * 3 * 5
    assert len(tiny_models) == (1 + 3) * 3 and ("baseline", None, 0) in tiny_models
    assert tiny_table.accuracy_val_threshold.between(0, 1).all()
    assert set(tiny_table.split) == {"val_kept", "val_shifted", "kept", "removed", "reversed"}
    assert tiny_table.loc[tiny_table.method == "baseline", "hyper"].isna().all()
    assert set(tiny_table.loc[tiny_table.method == "rrr", "hyper"]) == set(dict(TINY.grids)["rrr"])


def test_select_uses_validation_only(tiny_table):
    chosen = select(tiny_table, by="val_kept")
    assert np.isnan(chosen["baseline"]) and chosen["rrr"] in dict(TINY.grids)["rrr"]
    # a hand-made table where the two validation splits disagree
    rows = [("rrr", h, s, split, auc) for s in (0, 1) for h, split, auc in
            [(10.0, "val_kept", 0.9), (1000.0, "val_kept", 0.8), (10.0, "val_shifted", 0.5),
             (1000.0, "val_shifted", 0.7), (10.0, "reversed", 0.99), (1000.0, "reversed", 0.1)]]
    toy = pd.DataFrame(rows, columns=["method", "hyper", "seed", "split", "auroc"])
    assert select(toy, "val_kept") == {"rrr": 10.0} and select(toy, "val_shifted") == {"rrr": 1000.0}
    with pytest.raises(ValueError, match="must be a validation split"):
        select(toy, "reversed")


def test_summary_has_mean_and_sd_over_seeds(tiny_table):
    chosen = select(tiny_table)
    summary = summarise(tiny_table, chosen)
    assert list(summary.index) == ["baseline", "rrr"]
    rows = tiny_table[(tiny_table.method == "baseline") & (tiny_table.split == "reversed")]
    assert summary.loc["baseline", ("reversed", "auroc", "mean")] == pytest.approx(rows.auroc.mean())
    assert summary.loc["baseline", ("reversed", "auroc", "sd")] == pytest.approx(rows.auroc.std())
    assert summary.loc["rrr", ("site label", "", "")] == SITE_LABEL_USE["rrr"] == "never"
    text = format_table(summary, grids=TINY.grids)
    assert "±" in text.loc["rrr", "reversed auroc"]
    assert text.loc["baseline", "candidates"] == "—" and f"[{chosen['rrr']:g}]" in text.loc["rrr", "candidates"]


@pytest.mark.parametrize("chosen, expected", [(1e4, "1000 · [10000] · 100000"),
                                              (1e3, "[1000] · 10000 · 100000 (edge)"),
                                              (1e5, "1000 · 10000 · [100000] (edge)")])
def test_format_table_marks_a_choice_on_the_edge_of_its_grid(chosen, expected):
    summary = pd.DataFrame({("hyper", "", ""): [chosen]}, index=["rrr"])
    summary[("site label", "", "")] = "never"
    for split in ("kept", "removed", "reversed"):
        summary[(split, "auroc", "mean")], summary[(split, "auroc", "sd")] = 0.5, 0.1
    text = format_table(summary, metrics=("auroc",), grids=(("rrr", (1e3, 1e4, 1e5)),))
    assert text.loc["rrr", "candidates"] == expected and text.loc["rrr", "site label"] == "never"


def test_per_seed_pairs_the_seeds(tiny_table):
    a = per_seed(tiny_table, "baseline", np.nan, "reversed", "auroc")  # (3,) in seed order
    rows = tiny_table[(tiny_table.method == "baseline") & (tiny_table.split == "reversed")].sort_values("seed")
    assert a.shape == (3,) and np.array_equal(a, rows.auroc.to_numpy())
    with pytest.raises(ValueError, match="no rows of method 'rrr' at hyper 7.0"):
        per_seed(tiny_table, "rrr", 7.0, "reversed", "auroc")


@pytest.mark.parametrize("labels, proba, expected", [
    ([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 0.25),  # all below 0.5 but perfectly ranked: cut between 0.2 and 0.3
    ([0, 0, 1, 1], [0.6, 0.7, 0.8, 0.9], 0.75),  # all above
    ([0, 1, 0, 1], [0.2, 0.4, 0.55, 0.8], 0.675),  # cuts 0.3 and 0.675 both reach 3/4: the one nearer 0.5
])
def test_accuracy_threshold_by_hand(labels, proba, expected):
    assert accuracy_threshold(np.array(labels), np.array(proba)) == pytest.approx(expected)


def test_accuracy_threshold_ill_inputs():
    with pytest.raises(ValueError, match=r"`labels` \(shape \(3,\)\) and `proba` \(shape \(2,\)\)"):
        accuracy_threshold(np.array([0, 1, 1]), np.array([0.1, 0.2]))


def test_evaluate_adds_the_accuracy_at_a_validation_threshold(one_thread):
    data = site_dataset(32, 0.9, seed=0)
    model = train_method("baseline", data, seed=0, settings=TINY.train)
    proba = predict_proba(model, data)
    scores = evaluate(model, data, saliency_images=4, threshold=float(np.median(proba)))
    assert scores["accuracy_val_threshold"] == pytest.approx(np.mean((proba > np.median(proba)) == data.labels))


def test_confound_sweep_and_decoy_run(one_thread):
    results = run_confound_sweep(TINY, n_maps=2, progress=False)
    assert results["removed"].shape == (2, 3) and results["saliency"].shape == (2, 2, 1, 32, 32)
    decoy = run_decoy(dataclasses.replace(DECOY_QUICK, epochs=1, seeds=(0,)), progress=False)
    assert list(decoy.method) == ["baseline", "rrr"] and decoy.test_accuracy.between(0, 1).all()
    assert torch.get_num_threads() >= 1
