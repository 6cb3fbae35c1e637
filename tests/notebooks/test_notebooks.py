"""Every notebook runs top to bottom in quick mode and records real numbers; the runner reports failures."""

from __future__ import annotations

import json
import math

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader_harness import ROOT

from course_lib.tools import run_course

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The lesson each notebook claims, checked on the numbers it records: (larger, smaller);
# "zero", "half" and "one" stand for constants.
CLAIMS = {
    "ch01a_chest_xray_data": [
        ("nih_patients_in_train_and_test_image_split", "nih_patients_in_train_and_test_patient_split"),  # leakage
        ("padchest_pa_lateral_pairs", "one"),  # PadChest and CheXpert have PA + lateral studies (NIH has none)
        ("chexpert_pa_lateral_pairs", "one"),
        ("synthetic_emphysema_lateral_signal_share", "half"),  # the flattened diaphragm shows on the lateral
        ("half", "synthetic_nodule_lateral_signal_share"),  # a nodule on the PA
        ("one", "auroc_ceiling_at_20pct_label_noise"),  # label noise caps even a perfect model's AUROC
        ("auroc_ceiling_at_20pct_label_noise", "auroc_ceiling_at_30pct_label_noise"),  # more noise, lower cap
        ("one", "nih_pneumothorax_auroc_ceiling_against_nih_labels"),  # real: radiologists vs NIH's mined labels
    ],
    "ch01b_baseline_and_fusion": [  # model comparisons on the mean of 3 seeds (the sd is recorded beside it)
        ("model_f1_vs_truth", "model_f1"),  # a majority of imperfect readers is a noisy reference
        ("mean_reader_f1_vs_truth", "mean_reader_f1"),
        ("mean_auroc_auxloss_mean", "mean_auroc_pa_mean"),  # fusing the lateral beats PA-only
        ("mean_auroc_hemis_mean", "mean_auroc_pa_mean"),
        ("mean_auroc_dualnet_mean", "mean_auroc_pa_mean"),
        ("mean_auroc_auxloss_mean", "mean_auroc_pa_twice_mean"),  # and beats its capacity-matched control
        # the lateral's own gain (fusion - control): above 0 in every seed's CI on the lateral findings (built into
        # the generator), no gain beyond 2 sd of the seed noise on the PA-only findings
        ("emphysema_auroc_gain_vs_control_ci_low_min", "zero"),
        ("retrocardiac_opacity_auroc_gain_vs_control_ci_low_min", "zero"),
        ("zero", "cardiomegaly_auroc_gain_vs_control_mean_minus_2sd"),
        ("zero", "nodule_auroc_gain_vs_control_mean_minus_2sd"),
        # missing views, same training regime (no view dropout): AuxLoss's per-view heads vs Stacked's entangled input
        ("auroc_lateral_findings_no_pa_auxloss_mean", "auroc_lateral_findings_no_pa_stacked_mean"),
        ("auroc_pa_findings_no_lateral_auxloss_mean", "auroc_pa_findings_no_lateral_stacked_mean"),
        # and the training regime: view dropout rescues Stacked with the PA removed
        ("auroc_lateral_findings_no_pa_stacked_view_dropout_mean", "auroc_lateral_findings_no_pa_stacked_mean"),
        ("emphysema_saliency_share_lateral", "half"),  # saliency falls on the view that shows the finding
        ("half", "nodule_saliency_share_lateral"),
    ],
    "ch02b_segmentation_metrics": [
        # with checkpoint and threshold chosen on validation per loss, soft Dice still beats BCE at 1 % foreground:
        # the mean paired gain over seeds exceeds its sd, with a threshold and without one (average precision)
        ("lesion_test_dice_gain_soft_dice_vs_bce_mean", "lesion_test_dice_gain_soft_dice_vs_bce_sd"),
        ("lesion_test_ap_gain_soft_dice_vs_bce_mean", "lesion_test_ap_gain_soft_dice_vs_bce_sd"),
        ("lesion_test_dice_gain_bce_plus_dice_vs_bce_mean", "lesion_test_dice_gain_bce_plus_dice_vs_bce_sd"),
        ("per_image_dice_gain_soft_dice_vs_bce_ci_low", "zero"),  # the paired bootstrap CI excludes 0
        # a fixed threshold of 0.5 overstates the gain (it measures BCE's calibration)
        ("lesion_test_dice_at_half_gain_soft_dice_vs_bce_mean", "lesion_test_dice_gain_soft_dice_vs_bce_mean"),
        ("gradient_share_on_lesions_dice_vs_bce", "one"),  # Dice sends more gradient to the lesions than BCE
    ],
    "ch02a_wsi_patches_fcn": [
        ("fcn_speedup_vs_patchwise_in_notebook", "one"),  # the FCN is faster than patch-by-patch inference
        ("fcn_heatmap_dice_synthetic_tile", "half"),  # and its heat-map finds the tumour region
        # balancing raised neither recall by more than the spread of the gain over seeds (mean gain < its sd)
        ("patch_tumour_recall_gain_balanced_vs_shuffled_sd", "patch_tumour_recall_gain_balanced_vs_shuffled_mean"),
        ("patch_normal_recall_gain_balanced_vs_shuffled_sd", "patch_normal_recall_gain_balanced_vs_shuffled_mean"),
    ],
    # every comparison on seeds paired by data and initial weights: "<gain>_mean > <gain>_sd" is a gain beyond the
    # spread over seeds; "<gain>_sd > <gain>_mean" says there is none (as the prose does)
    "ch02c_unet_edges_cased": [
        ("skip_gain_dice_mean", "skip_gain_dice_sd"),  # skips help
        ("skip_gain_boundary_f1_mean", "skip_gain_boundary_f1_sd"),
        ("skip_gain_boundary_f1_mean", "skip_gain_dice_mean"),  # most at the boundaries
        ("edge_gain_separated_fraction_mean", "edge_gain_separated_fraction_sd"),  # borders separate touching nuclei
        ("edge_gain_separated_fraction_mean", "edge_gain_boundary_f1_mean"),  # more than they move boundary F1
        # uniform patches teach "nothing is there": both CASED schedules find more lesions, beyond the spread
        ("nodule_recall_gain_cased_vs_uniform_mean", "nodule_recall_gain_cased_vs_uniform_sd"),
        ("nodule_recall_gain_cased_to_balanced_vs_uniform_mean", "nodule_recall_gain_cased_to_balanced_vs_uniform_sd"),
        # ... but at the quick budget neither beats class-balanced sampling beyond the spread
        ("nodule_dice_gain_cased_vs_balanced_sd", "nodule_dice_gain_cased_vs_balanced_mean"),
        ("nodule_dice_gain_cased_to_balanced_vs_balanced_sd", "nodule_dice_gain_cased_to_balanced_vs_balanced_mean"),
    ],
    "ch03a_counting_classic_pipeline": [
        ("classic_mae_clustered", "classic_mae_easy"),  # colonies merge: the EASY-tuned pipeline breaks
        ("classic_mae_shifted", "classic_mae_easy"),  # and breaks under another lamp and stain (same cells)
        ("connected_components_mae_easy", "classic_mae_easy"),  # the watershed splits touching cells
        ("classic_abs_error_real_nuclei_easy_params", "classic_abs_error_real_nuclei_retuned"),  # new microscope
        ("classic_control_undercount_at_72h_colonies", "classic_control_undercount_at_0h_colonies"),  # more cells
        ("half", "density_target_sum_error_real_nuclei"),  # the density target sums to the count
    ],
    "ch03b_density_counting": [  # comparisons on the means over three training seeds (the sds are recorded too)
        ("short_run_count_mae_target_scale_1_mean", "short_run_count_mae_target_scale_100_mean"),  # unscaled: dead ReLU
        ("classic_mae_clustered_mean", "density_mae_clustered_mean"),  # colonies merge for the EASY-tuned pipeline
        ("classic_tuned_mae_clustered_mean", "density_mae_clustered_mean"),  # also when re-tuned on the same data
        ("classic_tuned_mae_shifted_mean", "density_mae_shifted_mean"),  # dim, defocused cells (lamp imitated)
        ("density_mae_easy_mean", "classic_mae_easy_mean"),  # but the EASY-tuned pipeline still wins on EASY
        ("localisation_f1_density_clustered_mean", "localisation_f1_classic_clustered_mean"),  # peaks split colonies
        ("density_abs_error_real_nuclei_as_is_mean", "density_abs_error_real_nuclei_resized_mean"),  # px cell size
        ("multiclass_accuracy", "half"),  # max over class channels classifies the cells
        ("classic_wells_mae_in_colonies", "density_wells_mae_in_colonies_mean"),  # the assay's counts in colonies
        ("empty_field_count_classic", "empty_field_count_density_mean"),  # Otsu counts noise in an empty well
    ],
    "ch04a_cyclegan_translation": [
        ("flair_l1_to_true_t1", "cyclegan_l1_to_true_t1_seed0"),  # the contrast map is learnt (one seed; see ch04b)
    ],
    "ch04b_translation_bias": [  # means over 3 seeds per target fraction
        ("cyclegan_0pct_erased_mean", "cyclegan_100pct_erased_mean"),  # few target tumours: more erased
        ("cyclegan_100pct_hallucinated_mean", "cyclegan_0pct_hallucinated_mean"),  # many: more hallucinated
        ("cyclegan_0pct_erased_mean", "paired_erased_mean"),  # the paired control keeps the tumours
        ("cyclegan_100pct_hallucinated_mean", "paired_hallucinated_mean"),  # and adds fewer
        ("cyclegan_50pct_tumour_error_mean", "paired_tumour_error_mean"),  # even at a matched 50 %
    ],
    "ch05a_confounders_and_saliency": [
        ("nih_edema_auroc_of_view_alone", "half"),  # real NIH table: the AP view alone predicts edema
        ("baseline_kept_auroc_mean", "baseline_reversed_auroc_mean"),  # the baseline reads the site
        ("baseline_removed_auroc_trained_at_confound_50", "baseline_removed_auroc_trained_at_confound_90"),
        ("baseline_share_in_roi_trained_at_confound_50", "baseline_share_in_roi_trained_at_confound_90"),
        ("site_probe_accuracy_raw_pixels", "site_probe_accuracy_aligned_d32"),  # per-site centring hides the site
        ("subspace_reversed_auroc_mean", "baseline_reversed_auroc_mean"),  # and the aligned model generalises better
    ],
    "ch05b_right_for_the_right_reasons": [
        ("actdiff_reversed_auroc_mean", "baseline_rerun_reversed_auroc_mean"),  # ActDiff moves off the site
        ("rrr_saliency_in_roi_mean", "baseline_rerun_saliency_in_roi_mean"),  # RRR moves saliency into the ROI
        ("actdiff_reversed_auroc_shifted_val_mean", "actdiff_reversed_auroc_mean"),  # a shifted val set picks better
        ("decoy_digits_test_accuracy_rrr_mean", "decoy_digits_test_accuracy_baseline_mean"),  # RRR beats the decoy
        # saliency share tracks shifted AUROC across all models more than within the gradient penalties
        ("spearman_saliency_in_roi_vs_reversed_auroc", "spearman_saliency_in_roi_vs_reversed_auroc_gradient_penalties"),
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path, tmp_path):
    run = run_course.execute_notebook(path, mode="quick", exercises="verify")  # each blank fails its check
    print(f"{path.name}: {run.seconds:.1f} s, {len(run.results)} results")
    assert run.results, f"{path.name} records no results"
    for result in run.results:
        assert math.isfinite(result["value"]) and result["mode"] == "quick"
        assert result["chapter"] == int(path.name[2:4])
    values = {r["name"]: r["value"] for r in run.results} | {"zero": 0.0, "half": 0.5, "one": 1.0}
    for larger, smaller in CLAIMS.get(path.stem, []):
        assert values[larger] > values[smaller], f"{path.name}: expected {larger} > {smaller}, got {values}"
    run_course.write_outputs(run, tmp_path)
    assert (tmp_path / path.name).is_file() and (tmp_path / path.with_suffix(".html").name).is_file()


def test_runner_names_the_failing_notebook_and_cell(tmp_path, capsys):
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("raise ValueError('broken on purpose')")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    assert run_course.main(["--out", str(tmp_path / "build"), str(path)]) == 1
    err = capsys.readouterr().err
    assert "broken.ipynb" in err and "cell 1" in err and "broken on purpose" in err


def test_runner_writes_results_json_and_md(tmp_path):
    nb = new_notebook(cells=[new_code_cell(
        "from course_lib.results import record\nrecord(2, 'answer_value', 42.0, unit='x', note='test')")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "ch02_tiny.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "build"
    assert run_course.main(["--out", str(out), str(path)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results == [{"chapter": 2, "name": "answer_value", "value": 42.0, "unit": "x", "mode": "quick",
                        "higher_is_better": True, "note": "test"}]
    assert "`answer_value`" in (out / "results.md").read_text()
    assert (out / "ch02_tiny.html").is_file()


def test_runner_runs_notebooks_in_parallel_and_keeps_their_order(tmp_path, capsys):
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    paths = []
    for k, name in enumerate(["ch02_slow", "ch03_fast", "ch04_broken"]):
        code = (f"import time\ntime.sleep({2 - k})\nfrom course_lib.results import record\n"
                f"record({k + 2}, '{name}_value', {k}.0)")
        cells = [new_code_cell(code)] + ([new_code_cell("raise ValueError('broken on purpose')")] if k == 2 else [])
        nbformat.write(new_notebook(cells=cells, metadata=meta), tmp_path / f"{name}.ipynb")
        paths.append(tmp_path / f"{name}.ipynb")
    out = tmp_path / "build"
    assert run_course.main(["--out", str(out), "--jobs", "2", *map(str, paths[:2])]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results] == ["ch02_slow_value", "ch03_fast_value"]  # notebook order, not finish order
    assert run_course.main(["--out", str(tmp_path / "b2"), "--jobs", "2", *map(str, paths)]) == 1
    assert "ch04_broken.ipynb" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_course.main(["--jobs", "0", str(paths[0])])


def test_a_stalled_cell_is_retried_once_on_a_fresh_kernel(tmp_path, capsys):
    marker = tmp_path / "first_attempt_done"
    stall_once = (f"import pathlib, time\nmarker = pathlib.Path({str(marker)!r})\n"
                  "if not marker.exists():\n    marker.touch()\n    time.sleep(60)  # a kernel that stopped answering")
    # the second cell writes its result line itself: importing course_lib can take over 10 s on a busy machine
    record_line = ("import json, os\nwith open(os.environ['COURSE_RESULTS'], 'a') as f:\n"
                   "    f.write(json.dumps({'name': 'after_the_stall', 'value': 1.0}) + '\\n')")
    nb = new_notebook(cells=[new_code_cell(stall_once), new_code_cell(record_line)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "ch02_stall.ipynb"
    nbformat.write(nb, path)
    run = run_course.execute_notebook(path, timeout=10, mode="quick")
    assert [r["name"] for r in run.results] == ["after_the_stall"]
    assert "retrying on a fresh kernel" in capsys.readouterr().err
    marker.unlink()
    timed_out = r"ch02_stall.ipynb: cell 0 \('import pathlib, time'\).*timed out"  # names the cell left running
    with pytest.raises(run_course.NotebookFailed, match=timed_out):
        run_course.execute_notebook(path, timeout=10, mode="quick", retries=0)
