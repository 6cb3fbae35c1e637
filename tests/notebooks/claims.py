"""The lesson each notebook claims, checked on the numbers it records (``make test`` and
``benchmarks/claims_anywhere.py`` read this one table).

A claim is either

* ``(larger, smaller)``: the record ``larger`` exceeds the record ``smaller``; ``"zero"``, ``"half"`` and ``"one"``
  stand for constants. A comparison of two arms is stated on the paired gain: ``("<gain>_mean", "<gain>_sd")``, the
  mean gain over seeds exceeds its standard deviation.
* ``Within(gain, bound)``: "no effect detectable beyond ``bound``": the 95 % confidence interval of the mean paired
  gain over seeds (``<gain>_ci_low``, ``<gain>_ci_high``, recorded by
  :func:`course_lib.histology.viz.record_paired_difference`) lies inside ``(-bound, bound)``. This is how a "no
  effect" result is claimed: "the mean gain is smaller than its sd" flips with the processor's rounding.

:func:`margins` gives each claim's margin in units of the spread it is judged against, so a script can show how
far from failing each claim is on another machine's build.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONSTANTS = {"zero": 0.0, "half": 0.5, "one": 1.0}


@dataclass(frozen=True)
class Within:
    """The 95 % CI of the paired gain ``gain`` lies inside ``(-bound, bound)``."""

    gain: str
    bound: float


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
        # five seeds rule out a change of a quarter of either recall (balancing_experiment.QUICK.effect_bound); the
        # old "mean gain < its sd" flipped with the processor's kernels (tumour: +0.10 +- 0.06 on AVX-512)
        Within("patch_tumour_recall_gain_balanced_vs_shuffled", 0.25),
        Within("patch_normal_recall_gain_balanced_vs_shuffled", 0.25),
    ],
    # every comparison on seeds paired by data and initial weights: "<gain>_mean > <gain>_sd" is a gain beyond the
    # spread over seeds; "<gain>_sd > <gain>_mean" says there is none (as the prose does)
    "ch02c_unet_edges_cased": [
        ("skip_gain_dice_mean", "skip_gain_dice_sd"),  # skips help
        ("skip_gain_boundary_f1_mean", "skip_gain_boundary_f1_sd"),
        ("skip_gain_boundary_f1_mean", "skip_gain_dice_mean"),  # most at the boundaries
        ("edge_gain_separated_fraction_mean", "edge_gain_separated_fraction_sd"),  # borders separate touching nuclei
        ("edge_gain_separated_fraction_mean", "edge_gain_boundary_f1_mean"),  # more than they move boundary F1
        # uniform patches teach "nothing is there": CASED and balanced sampling segment the lesions better (Dice),
        # beyond the spread; not stated on recall: a uniform net read at the low threshold its validation Dice picks
        # can fire almost everywhere (one seed with the portable kernels: recall 0.88 at 459 false positives an image)
        ("nodule_dice_gain_cased_vs_uniform_mean", "nodule_dice_gain_cased_vs_uniform_sd"),
        ("nodule_dice_gain_balanced_vs_uniform_mean", "nodule_dice_gain_balanced_vs_uniform_sd"),
        # ... but three seeds cannot rank CASED against balanced sampling: only a Dice difference beyond 0.3 (about
        # three times either arm's Dice) is ruled out; "mean gain < its sd" flipped with the processor's kernels
        Within("nodule_dice_gain_cased_vs_balanced", 0.3),
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
        # also when re-tuned on the same data: the paired gain (same test images per seed) beyond its sd
        ("mae_clustered_gain_density_vs_classic_tuned_mean", "mae_clustered_gain_density_vs_classic_tuned_sd"),
        # SHIFTED (a microscope nothing was chosen on): three seeds cannot rank the density net against the re-tuned
        # pipeline; only a difference beyond 3 cells is ruled out (the paired gain's interval)
        Within("mae_shifted_gain_density_vs_classic_tuned", 3.0),
        ("density_mae_easy_mean", "classic_mae_easy_mean"),  # but the EASY-tuned pipeline still wins on EASY
        ("localisation_f1_density_clustered_mean", "localisation_f1_classic_clustered_mean"),  # peaks split colonies
        ("density_abs_error_real_nuclei_as_is_mean", "density_abs_error_real_nuclei_resized_mean"),  # px cell size
        # max over class channels classifies the cells, and the any channel finds them (ch03b trains the experiment
        # with MULTICLASS_QUICK, seed 0: tests/counting does not train it a second time)
        ("multiclass_accuracy", "half"),
        ("multiclass_detection_f1", "half"),
        ("classic_wells_mae_in_colonies", "density_wells_mae_in_colonies_mean"),  # the assay's counts in colonies
        ("empty_field_count_classic", "empty_field_count_density_mean"),  # Otsu counts noise in an empty well
    ],
    "ch04a_cyclegan_translation": [
        ("flair_l1_to_true_t1", "cyclegan_l1_to_true_t1_seed0"),  # the contrast map is learnt (one seed; see ch04b)
        # one brightness curve (no training: the same on any machine) lowers the whole-slice error, not the tumour's
        ("flair_l1_to_true_t1", "histogram_matched_l1_to_true_t1"),
        ("histogram_matched_tumour_l1_to_true_t1", "flair_tumour_l1_to_true_t1"),
    ],
    "ch04b_translation_bias": [
        # the truth measure on its controls (validation subjects): the truth scores 0, painted-out tumours are erased,
        # painted-in ones hallucinated (no training involved: the same on any machine)
        ("half", "control_true_t1_erased"),
        ("half", "control_true_t1_hallucinated"),
        ("control_tumours_painted_out_erased", "half"),
        ("control_tumours_painted_in_hallucinated", "half"),
        # each share compares CycleGAN and paired on the same data size, share and budget; a gain "holds" when the
        # 95 % t interval over 3 seeds lies above 0 (the mean gain exceeds 2.48 sd of the paired gains)
        ("erased_gain_cyclegan_vs_paired_50pct_ci_low", "zero"),  # CycleGAN erases the T1 contrast, paired keeps it
        ("erased_gain_cyclegan_vs_paired_100pct_ci_low", "zero"),
        ("zero", "recovered_gain_cyclegan_vs_paired_50pct_ci_high"),  # and keeps less of the true contrast
        ("zero", "recovered_gain_cyclegan_vs_paired_100pct_ci_high"),
        ("tumour_error_gain_cyclegan_vs_paired_50pct_ci_low", "zero"),  # with a larger error inside the tumour
        ("tumour_error_gain_cyclegan_vs_paired_100pct_ci_low", "zero"),
        ("paired_erased_gain_0pct_vs_50pct_ci_low", "zero"),  # a paired translator trained without tumours erases
        # the referees, calibrated on the faithful (paired, 50 %) translator's validation translations, score that
        # control near 0 on the test slices too (an instrument check, not a comparison)
        ("half", "paired_50pct_referee_hallucinated_mean"),
        ("half", "paired_50pct_referee_erased_mean"),
    ],
    "ch05a_confounders_and_saliency": [
        ("nih_edema_auroc_of_view_alone", "half"),  # real NIH table: the AP view alone predicts edema
        # a held-out site classifier tells the sites apart, and not two halves of one site (its control); by
        # construction of the synthetic artefacts, also when only the texture differs and the average images agree
        ("site_classifier_auroc_sites_mean", "site_classifier_auroc_same_site_control_mean"),
        ("site_classifier_auroc_texture_only_mean", "site_classifier_auroc_same_site_control_mean"),
        ("baseline_kept_auroc_mean", "baseline_reversed_auroc_mean"),  # the baseline reads the site
        ("baseline_removed_auroc_trained_at_confound_50", "baseline_removed_auroc_trained_at_confound_90"),
        ("baseline_share_in_roi_trained_at_confound_50", "baseline_share_in_roi_trained_at_confound_90"),
        ("site_probe_accuracy_raw_pixels", "site_probe_accuracy_aligned_d32"),  # per-site centring hides the site
        # gains paired by seed, d chosen on val_kept inside its grid; subspace reads the test image's site label
        ("reversed_auroc_gain_subspace_vs_baseline_mean", "reversed_auroc_gain_subspace_vs_baseline_sd"),
        # and more than its control (the baseline's CNN on per-site-centred images, which reads the site label too)
        ("reversed_auroc_gain_subspace_vs_centred_mean", "reversed_auroc_gain_subspace_vs_centred_sd"),
    ],
    "ch05b_right_for_the_right_reasons": [  # gains paired by seed; every lambda chosen on val_kept inside its grid
        ("reversed_auroc_gain_actdiff_vs_baseline_mean", "reversed_auroc_gain_actdiff_vs_baseline_sd"),  # off the site
        ("saliency_in_roi_gain_rrr_vs_baseline_mean", "saliency_in_roi_gain_rrr_vs_baseline_sd"),  # saliency moves in
        # ... but neither gradient penalty moves the model off the site: reversed-test AUROC within 0.1 of the baseline
        Within("reversed_auroc_gain_rrr_vs_baseline", 0.1),
        Within("reversed_auroc_gain_gradmask_vs_baseline", 0.1),
        # a small shifted validation set picks a better ActDiff lambda than the honest val_kept
        ("reversed_auroc_gain_actdiff_shifted_vs_kept_val_mean", "reversed_auroc_gain_actdiff_shifted_vs_kept_val_sd"),
        # GradMask ranks well but its probabilities sit on one side of 0.5: a threshold chosen on val_kept recovers the
        # accuracy (at lambda = 1000, where the accuracy at 0.5 drops towards 0.5; table 1 picks 100 or 1000 by the
        # processor's rounding, so the claim is made at a fixed lambda of the grid)
        ("gradmask_lambda1000_kept_accuracy_gain_val_threshold_vs_half_mean",
         "gradmask_lambda1000_kept_accuracy_gain_val_threshold_vs_half_sd"),
        ("decoy_digits_test_accuracy_rrr_mean", "decoy_digits_test_accuracy_baseline_mean"),  # RRR beats the decoy
        # saliency share tracks shifted AUROC across all models more than within the gradient penalties
        ("spearman_saliency_in_roi_vs_reversed_auroc", "spearman_saliency_in_roi_vs_reversed_auroc_gradient_penalties"),
    ],
}


@dataclass(frozen=True)
class Margin:
    """One claim checked on one build: ``gap`` > 0 means it holds; ``sds`` is the gap in units of its spread."""

    claim: str
    holds: bool
    gap: float
    sds: float  # NaN when the records carry no spread


def _sd_of(name: str, values: dict[str, float]) -> float:
    """The recorded sd beside ``<x>_mean`` (``<x>_sd``), 0 for constants, NaN when none was recorded."""
    if name in CONSTANTS:
        return 0.0
    if name.endswith("_mean") and f"{name[:-5]}_sd" in values:
        return values[f"{name[:-5]}_sd"]
    return math.nan


def margins(notebook: str, values: dict[str, float]) -> list[Margin]:
    """Every claim of ``notebook`` on the recorded ``values`` (``{name: value}``); a missing record raises KeyError."""
    values = {**values, **CONSTANTS}
    out = []
    for claim in CLAIMS.get(notebook, []):
        if isinstance(claim, Within):
            low, high = values[f"{claim.gain}_ci_low"], values[f"{claim.gain}_ci_high"]
            gap = min(low + claim.bound, claim.bound - high)
            sd = values.get(f"{claim.gain}_sd", math.nan)
            out.append(Margin(f"|{claim.gain}| < {claim.bound} (95 % CI)", gap > 0, gap, gap / sd if sd else math.nan))
            continue
        larger, smaller = claim
        gap = values[larger] - values[smaller]
        if larger.endswith("_mean") and smaller == f"{larger[:-5]}_sd":  # mean gain > its sd
            spread = values[smaller]
        elif smaller.endswith("_mean") and larger == f"{smaller[:-5]}_sd":  # sd > mean: the old "no effect" form
            spread = values[larger]
        else:
            spread = math.hypot(_sd_of(larger, values), _sd_of(smaller, values))
        out.append(Margin(f"{larger} > {smaller}", gap > 0, gap, gap / spread if spread else math.nan))
    return out
