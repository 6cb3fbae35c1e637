"""Chapter 2's experiments: one settings convention (frozen QUICK / FULL, a reason per field, >= 3 seeds), per-seed
results, and the two CASED schedules under their own names."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
from dataclasses import replace

import numpy as np
import pytest

from course_lib import config
from course_lib.histology import balancing_experiment, experiments, loss_experiment, sampling_experiment
from course_lib.histology.cased import extract_candidates
from course_lib.histology.synthetic_lesions import LesionConfig, make_lesion_images
from course_lib.histology.viz import mean_sd, record_seeds, summary_table

MODULES = [experiments, sampling_experiment, loss_experiment, balancing_experiment]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_settings_are_frozen_quick_and_full_with_a_reason_per_field(module, monkeypatch):
    quick, full = module.QUICK, module.FULL
    assert dataclasses.is_dataclass(quick) and type(quick) is type(full)
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.seeds = (0,)
    assert len(quick.seeds) >= 3 and len(full.seeds) >= 3, "every comparison is reported over >= 3 seeds"
    monkeypatch.setenv("COURSE_MODE", "quick")
    assert module.settings() is quick
    monkeypatch.setenv("COURSE_MODE", "full")
    assert module.settings() is full
    # a reason per field: a comment on the field's line or the line above it
    lines, start = inspect.getsourcelines(type(quick))
    tree = ast.parse("".join(lines))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            k = node.lineno - 1
            reason = "#" in lines[k] or lines[k - 1].strip().startswith("#")
            assert reason, (
                f"{type(quick).__name__}.{node.target.id} has no reason")


def test_nuclei_comparisons_return_one_value_per_seed():
    tiny = replace(experiments.QUICK, n_train=4, n_val=2, n_test=2, size=32, epochs=1, depth=2, width=4, seeds=(0, 1))
    skips = experiments.compare_skip_connections(tiny)
    assert set(skips) == {"unet", "bottleneck"}
    assert all(len(v) == 2 for scores in skips.values() for v in scores.values())
    assert all(0 <= d <= 1 for d in skips["unet"]["dice"])
    edges = experiments.compare_edge_prediction(tiny)
    assert set(edges) == {"foreground", "three_class"} and len(edges["three_class"]["separated_fraction"]) == 2
    assert edges["foreground"]["n_objects"] == edges["three_class"]["n_objects"], "both arms see the same test set"


def test_the_papers_cased_arm_anneals_to_the_empirical_share_and_the_other_to_balanced():
    s = replace(sampling_experiment.QUICK, n_train=6, size=64, patch_size=16, patches=64, epochs=2)
    images, masks = make_lesion_images(6, LesionConfig(size=64, fg_fraction=0.003), seed=0)
    candidates = extract_candidates(masks, 16, per_lesion=4, seed=0)
    empirical = candidates.labels[~candidates.centred].mean()
    paper = sampling_experiment._loader("cased", s, images, masks, candidates, 0)[0].sampler
    to_balanced = sampling_experiment._loader("cased_to_balanced", s, images, masks, candidates, 0)[0].sampler
    balanced = sampling_experiment._loader("balanced", s, images, masks, candidates, 0)[0].sampler
    assert paper.positive_share(0) == 1.0 and to_balanced.positive_share(0) == 1.0
    assert paper.positive_share(s.curriculum_epochs) == pytest.approx(empirical) and empirical < 0.2
    assert to_balanced.positive_share(s.curriculum_epochs) == pytest.approx(s.pos_fraction)
    assert balanced.positive_share(0) == pytest.approx(s.pos_fraction) and not balanced.adaptive
    with pytest.raises(ValueError, match="arms"):
        sampling_experiment.compare_sampling(s, arms=("uniform", "importance"))


def test_sampling_comparison_scores_every_arm_per_seed():
    s = replace(sampling_experiment.QUICK, n_train=6, n_val=2, n_test=2, size=64, patch_size=16, patches=64, epochs=2,
                curriculum_epochs=1, fg_fraction=0.003, seeds=(0,))
    results = sampling_experiment.compare_sampling(s, arms=("uniform", "cased"))
    assert set(results) == {"uniform", "cased"}
    assert all(len(v) == 1 for v in results["cased"].values())
    assert results["cased"]["threshold"][0] in s.thresholds


def test_loss_comparison_chooses_checkpoint_and_threshold_on_validation():
    s = replace(loss_experiment.QUICK, n_train=8, n_val=4, n_test=4, epochs=2, width=4, seeds=(0, 1))
    out = loss_experiment.compare_losses(s, losses={"BCE": loss_experiment.LOSSES["BCE"]})
    scores = out.scores["BCE"]
    assert all(len(v) == 2 for v in scores.values())
    assert all(t in s.thresholds for t in scores["threshold"])
    history = out.histories["BCE"]
    best = history.best_epoch
    assert scores["val_dice"][0] == pytest.approx(max(history["val_dice"])) == history["val_dice"][best]
    assert out.per_image["BCE"].shape == (4,)


def test_balancing_comparison_reports_both_recalls_per_seed():
    from course_lib.histology.synthetic_tiles import HistologyConfig, histology_patch_dataset

    tiles = HistologyConfig(size=64, tumour_fraction=0.3)
    sets = [histology_patch_dataset(n, tiles, seed=k, patch_size=16) for k, n in ((1, 2), (2, 1), (3, 1))]
    s = replace(balancing_experiment.QUICK, epochs=1, widths=(4,), seeds=(0, 1, 2))
    out = balancing_experiment.compare_balancing(*sets, sets[0].tensors[1].numpy(), 16, s)
    assert set(out.recall) == {"shuffled", "balanced"} and len(out.recall["balanced"]["tumour"]) == 3
    with pytest.raises(ValueError, match="labels"):
        balancing_experiment.compare_balancing(*sets, np.zeros(3), 16, s)


def test_seed_helpers_report_mean_and_sample_sd(tmp_path, monkeypatch):
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_sd([0.5])[0] == 0.5 and math.isnan(mean_sd([0.5])[1])  # no spread from one seed
    with pytest.raises(ValueError, match="seed"):
        mean_sd([])
    results = {"a": {"dice": [0.5, 0.7]}, "b": {"dice": [0.1, 0.1]}}
    assert "0.600 ± 0.141" in summary_table(results, ["dice"])
    with pytest.raises(ValueError, match="has no"):
        summary_table(results, ["recall"])
    recorded = record_seeds(2, results, ["dice"], name="x_{method}_{metric}")
    assert recorded["x_a_dice_mean"] == pytest.approx(0.6) and recorded["x_b_dice_sd"] == 0.0
    assert config.is_quick() in (True, False)
