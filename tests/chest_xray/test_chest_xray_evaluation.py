"""Per-label AUROC with CIs, paired differences, simulated readers (CheXNet procedure), and the experiment."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from course_lib.chest_xray.evaluation import (
    auroc_of_resamples,
    auroc_table,
    best_f1_threshold,
    compare_with_readers,
    majority_vote,
    paired_auroc_difference,
    per_label_auroc,
    simulate_readers,
)
from course_lib.metrics import bootstrap_ci, paired_f1_difference


def _scored(n=80, labels=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random((n, labels)) < 0.4
    y[:2] = [True] * labels, [False] * labels  # both classes in every column
    scores = np.round(y + rng.normal(0, 0.8, size=y.shape), 1)  # rounding makes ties
    return y.astype(int), scores


def test_auroc_of_resamples_equals_sklearn_row_by_row():
    y, s = _scored(50, 6, seed=1)
    got = auroc_of_resamples(y.T.astype(bool), s.T)  # (6, 50): six rows
    np.testing.assert_allclose(got, [roc_auc_score(y[:, j], s[:, j]) for j in range(6)])
    one_class = auroc_of_resamples(np.ones((1, 5), bool), np.arange(5.0)[None])
    assert np.isnan(one_class[0]), "AUROC of a single class is undefined"


def test_per_label_auroc_hand_case():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of the 4 pairs ordered right -> 0.75
    result = per_label_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], labels=["effusion"], n_resamples=100)
    assert result["effusion"].estimate == 0.75


def test_per_label_auroc_matches_sklearn_and_a_looped_bootstrap():
    y, s = _scored()
    result = per_label_auroc(y, s, labels=["a", "b", "c"], n_resamples=300, seed=4)
    for j, name in enumerate("abc"):
        ci = result[name]
        assert ci.estimate == pytest.approx(roc_auc_score(y[:, j], s[:, j]))
        looped = bootstrap_ci(roc_auc_score, y[:, j], s[:, j], n_resamples=300, seed=4)  # same resamples
        assert (ci.low, ci.high) == pytest.approx((looped.low, looped.high))
        assert ci.low <= ci.estimate <= ci.high


def test_per_label_auroc_leaves_out_unknown_labels():
    y, s = _scored(60, 2)
    mask = np.ones_like(y)
    mask[::3, 1] = 0  # a third of label 1 unknown
    result = per_label_auroc(y, s, label_mask=mask, n_resamples=50)
    keep = mask[:, 1] == 1
    assert result["label_1"].estimate == pytest.approx(roc_auc_score(y[keep, 1], s[keep, 1]))
    assert result["label_0"].estimate == pytest.approx(roc_auc_score(y[:, 0], s[:, 0]))


def test_per_label_auroc_errors():
    with pytest.raises(ValueError, match="both positive and negative"):
        per_label_auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="same shape"):
        per_label_auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="names"):
        per_label_auroc([[0, 1], [1, 0]], [[0.1, 0.2], [0.3, 0.4]], labels=["only_one"])


def test_paired_auroc_difference():
    y, s = _scored(70, 2, seed=2)
    other = s + np.random.default_rng(5).normal(0, 1.0, size=s.shape)
    result = paired_auroc_difference(y, s, other, n_resamples=300, seed=1)
    for j in range(2):
        ci = result[f"label_{j}"]
        assert ci.estimate == pytest.approx(roc_auc_score(y[:, j], s[:, j]) - roc_auc_score(y[:, j], other[:, j]))

        def difference(t, a, b):
            return roc_auc_score(t, a) - roc_auc_score(t, b)

        looped = bootstrap_ci(difference, y[:, j], s[:, j], other[:, j], n_resamples=300, seed=1)
        assert (ci.low, ci.high) == pytest.approx((looped.low, looped.high))
    same = paired_auroc_difference(y, s, s, n_resamples=100)["label_0"]
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0), "a model minus itself is exactly 0"


def test_auroc_table():
    y, s = _scored(40, 2)
    results = {"pa": per_label_auroc(y, s, labels=["x", "y"], n_resamples=50),
               "dualnet": per_label_auroc(y, -s, labels=["x", "y"], n_resamples=50)}
    table = auroc_table(results)
    assert list(table.index) == ["pa", "dualnet"] and list(table.columns) == ["x", "y", "mean"]
    assert table.loc["pa", "x"].startswith(f"{results['pa']['x'].estimate:.3f} (")
    numbers = auroc_table(results, with_ci=False)
    assert numbers.loc["dualnet", "mean"] == pytest.approx(1 - numbers.loc["pa", "mean"], abs=2e-3)


def test_simulated_readers_have_the_requested_rates():
    y = np.arange(40_000) % 2
    reads = simulate_readers(y, 3, sensitivity=[0.6, 0.7, 0.8], specificity=0.9, seed=0)
    assert reads.shape == (3, 40_000) and reads.dtype == bool
    np.testing.assert_allclose(reads[:, y == 1].mean(axis=1), [0.6, 0.7, 0.8], atol=0.015)
    np.testing.assert_allclose(1 - reads[:, y == 0].mean(axis=1), 0.9, atol=0.015)
    np.testing.assert_array_equal(reads, simulate_readers(y, 3, [0.6, 0.7, 0.8], 0.9, seed=0))
    with pytest.raises(ValueError, match="sensitivity"):
        simulate_readers(y, 3, sensitivity=[0.5, 0.6])
    with pytest.raises(ValueError, match="specificity"):
        simulate_readers(y, 2, specificity=1.2)


def test_majority_vote():
    reads = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 0, 1]])
    np.testing.assert_array_equal(majority_vote(reads), [True, True, False, True])
    np.testing.assert_array_equal(majority_vote(reads[:2]), [True, False, False, False])  # ties are negative


def test_best_f1_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    y = rng.random(200) < 0.3
    s = np.round(y + rng.normal(0, 0.7, 200), 2)
    best = best_f1_threshold(y, s)
    brute = max(np.unique(s), key=lambda t: (f1_score(y, s >= t), -t))
    assert f1_score(y, s >= best) == pytest.approx(f1_score(y, s >= brute))


def test_compare_with_readers_follows_the_chexnet_procedure():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    reads = simulate_readers(y, 4, sensitivity=0.65, specificity=0.9, seed=1)
    model = np.where(rng.random(300) < 0.9, y, ~y)  # 90 % agreement with the truth
    table = compare_with_readers(model, reads, y_true=y, n_resamples=500, seed=2)
    assert isinstance(table, pd.DataFrame)
    refs = [majority_vote(np.delete(reads, i, axis=0)) for i in range(4)]  # the other three readers
    for i in range(4):
        assert table.loc[f"Reader {i + 1}", "f1"] == pytest.approx(f1_score(refs[i], reads[i]))
        paired = paired_f1_difference(refs[i], model, reads[i], n_resamples=500, seed=2)
        assert tuple(table.loc[f"Model - Reader {i + 1}", ["f1", "low", "high"]]) == pytest.approx(tuple(paired))
    model_f1 = np.mean([f1_score(refs[i], model) for i in range(4)])
    reader_avg = np.mean([f1_score(refs[i], reads[i]) for i in range(4)])
    assert table.loc["Model", "f1"] == pytest.approx(model_f1)
    assert table.loc["Reader avg.", "f1"] == pytest.approx(reader_avg)
    assert table.loc["Model - Reader avg.", "f1"] == pytest.approx(model_f1 - reader_avg)
    assert table.loc["Model", "f1_vs_truth"] == pytest.approx(f1_score(y, model))
    assert (table["low"] <= table["f1"]).all() and (table["f1"] <= table["high"]).all()
    assert table.loc["Model - Reader avg.", "low"] > 0, "a model right 90 % of the time beats these readers"


def test_compare_with_readers_rejects_bad_shapes():
    with pytest.raises(ValueError, match="reader_preds"):
        compare_with_readers([0, 1, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="reader_preds"):
        compare_with_readers([0, 1, 1], [[0, 1], [1, 1]])


def test_tiny_experiment_fusion_beats_pa_only_on_lateral_findings(one_thread):
    from course_lib.chest_xray.experiment import QUICK, lateral_benefit, robustness_table, run_fusion_experiment
    from course_lib.chest_xray.synthetic import LABELS, VISIBLE_IN

    # about 7 s on one core: 48 px, a width-8 CNN, 600 training studies, 8 epochs
    tiny = replace(QUICK, n_train=600, n_val=150, n_test=300, epochs=8, size=48, width=8, n_resamples=200)
    results = run_fusion_experiment(("pa", "dualnet"), tiny, view_dropout=0.0, seed=0)
    pa, fusion = results["models"]["pa"], results["models"]["dualnet"]
    assert set(pa["test_auroc"]) == set(LABELS) and results["y_test"].shape == (300, len(LABELS))
    assert results["present_test"].shape == (300, 2) and results["present_test"].all()
    assert pa["history"].best_epoch is not None and 0.5 < pa["val_auroc_mean"] <= 1.0
    for label in LABELS:
        if VISIBLE_IN[label] == "lateral":
            gain = fusion["test_auroc"][label].estimate - pa["test_auroc"][label].estimate
            assert gain > 0.15, f"{label}: the lateral view should help, AUROC gain {gain:.3f}"
    # a PA-only model without its PA sees the same black image for every study: one score for all (chance)
    assert np.ptp(pa["scores"]["no_pa"], axis=0).max() < 1e-4
    table = robustness_table(results)
    assert list(table.index) == ["pa", "dualnet"]
    assert table.loc["pa", "both"] == table.loc["pa", "no_lateral"], "a PA-only model does not read the lateral"
    assert table.loc["dualnet", "no_lateral (lateral findings)"] < table.loc["dualnet", "both (lateral findings)"] - 0.1
    benefit = lateral_benefit(results, n_resamples=200)
    assert benefit["model"] == "dualnet"
    assert {"emphysema", "retrocardiac_opacity"} <= set(benefit["helps"])


def test_experiment_settings_and_errors(monkeypatch):
    from course_lib.chest_xray.experiment import FULL, QUICK, FusionSettings, run_fusion_experiment, settings

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)  # it would force quick mode
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert settings() is QUICK and isinstance(QUICK, FusionSettings)
    assert len(QUICK.seeds) >= 3 and QUICK.class_weighted and FULL.imagenet
    with pytest.raises(FrozenInstanceError):
        QUICK.epochs = 3  # settings are fixed; replace() makes a variant
    monkeypatch.setenv("COURSE_MODE", "full")
    assert settings() is FULL and FULL.size >= 128
    with pytest.raises(ValueError, match="unknown names"):
        run_fusion_experiment(("pa", "triplenet"), QUICK)
    with pytest.raises(TypeError, match="FusionSettings"):
        run_fusion_experiment(("pa",), {"epochs": 3})


def test_class_weighted_bce_and_the_capacity_control():
    import torch

    from course_lib.chest_xray import SameViewTwice, class_weights, make_model, masked_bce_with_logits

    y = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    w = class_weights(y)  # finding 0: 1 positive of 4 -> w+ = 3/4, w- = 1/4
    assert torch.allclose(w, torch.tensor([[0.75, 0.75], [0.25, 0.25]]))
    logits = torch.zeros(4, 2)
    expected = torch.tensor(float(np.log(2)) * (0.75 + 3 * 0.25) / 4)  # mean over 8 entries of w * log 2
    assert torch.isclose(masked_bce_with_logits(logits, y, weights=w), expected)
    with pytest.raises(ValueError, match="weights"):
        masked_bce_with_logits(logits, y, weights=torch.ones(2, 3))
    control = SameViewTwice(make_model("auxloss", 2, width=4)).eval()
    x, other = torch.rand(3, 1, 32, 32), torch.rand(3, 1, 32, 32)
    present = torch.tensor([[True, True], [True, False], [True, True]])
    assert torch.equal(control(x, other, present), control(x, torch.zeros_like(x), present)), "never reads the lateral"
    control.class_weights = w
    assert control.model.class_weights is w
    batch = {"pa": x, "lateral": other, "present": present, "labels": y[:3], "label_mask": torch.ones(3, 2)}
    assert torch.isfinite(control.loss(batch))


def test_seed_summaries_pool_gains_and_regimes(one_thread):
    from course_lib.chest_xray.comparison import (
        auroc_summary,
        gain_summary,
        mean_sd,
        robustness_summary,
        run_comparison,
    )
    from course_lib.chest_xray.experiment import CONTROL, QUICK

    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0) and mean_sd([4.0])[0] == 4.0 and math.isnan(mean_sd([4.0])[1])
    tiny = replace(QUICK, n_train=96, n_val=48, n_test=64, epochs=1, size=32, width=4, n_resamples=50)
    comparison = run_comparison(tiny, seeds=(0,))
    assert run_comparison(tiny, seeds=(1,), into=comparison) is comparison and comparison["seeds"] == [0, 1]
    with pytest.raises(ValueError, match="into"):
        run_comparison(tiny, seeds=(1,), into=comparison)
    assert [r["view_dropout"] for r in comparison["dropout"]] == [tiny.view_dropout] * 2
    none = comparison["none"]
    assert set(none[0]["models"]) == {"pa", "lateral", "stacked", "hemis", "dualnet", "auxloss", CONTROL}
    assert none[0]["models"]["pa"] is comparison["dropout"][0]["models"]["pa"], "single-view models are shared"
    summary = auroc_summary(none)
    assert {"mean", "sd", "seed 0", "seed 1"} <= set(summary.columns)
    gains = gain_summary(none, n_resamples=50)
    assert {"fusion_vs_pa_mean", "fusion_vs_control_sd", "control_vs_pa_ci_low_min"} <= set(gains.columns)
    robust = robustness_summary(comparison)
    assert ("dropout", "hemis") in robust.index and "no_pa (lateral findings)_sd" in robust.columns
