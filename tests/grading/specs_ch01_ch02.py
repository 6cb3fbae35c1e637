"""Expected autograder outcomes of chapters 1 and 2: per assignment, FULL (grade id -> points) and SUBMISSIONS
(student -> (solution edits or None for the untouched release, scores that differ from FULL, words the feedback
must contain)). Read by ``test_autograder.py``, which grades every assignment's submissions in one batch.
"""

# A looping submission is not here: the torture suite (test_grading_torture.py) grades one, with its timeouts.

# ---- ch01_multiview_fusion -----------------------------------------------------------------------
MULTIVIEW_FULL = {"test_f1_score": 1, "test_f1_score_hidden": 1, "test_bootstrap_f1_ci": 2,
                  "test_bootstrap_f1_ci_hidden": 1, "test_hemis_fuse": 2, "test_hemis_no_view": 1,
                  "test_hemis_fuse_hidden": 1, "test_hemis_no_view_hidden": 1, "test_auxloss": 2,
                  "test_auxloss_no_lateral": 1, "test_auxloss_hidden": 1, "test_auxloss_no_lateral_hidden": 1,
                  "test_train_zero_grad": 1, "test_train_modes": 1, "test_train_selects_on_validation": 1,
                  "test_train_heldout_hidden": 2}
HEMIS_CELLS = ("test_hemis_fuse", "test_hemis_no_view", "test_hemis_fuse_hidden", "test_hemis_no_view_hidden")
MULTIVIEW_SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed"]),
    "f1_imports_the_reference": (
        {"f1_score": [("t, p = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)",
                       "from course_lib.metrics import f1_score as reference\n    return reference(y_true, y_pred)")]},
        {"test_f1_score": 0, "test_f1_score_hidden": 0},
        ["calls the course's reference implementation", "write it yourself"],
    ),
    "bootstrap_resamples_arrays_independently": (
        {"bootstrap_f1_ci": [("y_pred[rows]", "y_pred[rng.integers(0, n, n)]")]},
        {"test_bootstrap_f1_ci": 0, "test_bootstrap_f1_ci_hidden": 0},
        ["resample the (truth, prediction) pairs, not each array on its own"],
    ),
    "bootstrap_normal_approximation": (
        {"bootstrap_f1_ci": [(
            "low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])",
            "f1 = f1_score(y_true, y_pred)\n    sd = np.sqrt(f1 * (1 - f1) / n)\n"
            "    low, high = f1 - 1.96 * sd, f1 + 1.96 * sd",
        )]},
        {"test_bootstrap_f1_ci": 0, "test_bootstrap_f1_ci_hidden": 0},
        ["the CI (0.878, 1.017) leaves [0, 1]", "instead of F1 ± 1.96 sd"],
    ),
    # passes the visible checks (95 % only) and fails only the hidden cell
    "bootstrap_ignores_confidence": (
        {"bootstrap_f1_ci": [("[100 * alpha, 100 * (1 - alpha)]", "[2.5, 97.5]")]},
        {"test_bootstrap_f1_ci_hidden": 0},
        ["n=200, n_resamples=1000, confidence=0.9, seed=7: got"],
    ),
    "hemis_imports_the_reference": (
        {"hemis_fuse": [("w = present.to(features.dtype).unsqueeze(-1)  # (B, V, 1): 1 for a present view, 0 for a "
                         "missing one", "from course_lib.chest_xray import hemis_moments"),
                        ("count = w.sum(dim=1)  # (B, 1) number of present views",
                         "mean, var = hemis_moments(features, present)"),
                        ("mean = (w * features).sum(dim=1) / count  # (B, V, F) -> (B, F)", "pass"),
                        ("var = (w * (features - mean.unsqueeze(1)) ** 2).sum(dim=1) / count  # (B, F) population "
                         "variance", "pass")]},
        dict.fromkeys(HEMIS_CELLS, 0),
        ["calls the course's reference implementation (course_lib.chest_xray.hemis.hemis_moments)"],
    ),
    "hemis_averages_missing_views": (
        {"hemis_fuse": [("w = present.to(features.dtype).unsqueeze(-1)", "w = torch.ones_like(features[..., :1])")]},
        {"test_hemis_fuse": 0, "test_hemis_fuse_hidden": 0},
        ["got [2.0, 2.5, 3.0] — did you average in the missing (zero) lateral view?"],
    ),
    "hemis_sample_variance": (
        {"hemis_fuse": [("** 2).sum(dim=1) / count", "** 2).sum(dim=1) / (count - 1)")]},
        {"test_hemis_fuse": 0, "test_hemis_fuse_hidden": 0},
        ["got [nan, nan, nan]: use the population variance", "not the sample variance"],
    ),
    # only the no-view convention is missed: its visible and hidden cells score 0, the rest full marks
    "hemis_never_raises": (
        {"hemis_fuse": [("if not bool(present.any(dim=1).all()):", "if False:")]},
        {"test_hemis_no_view": 0, "test_hemis_no_view_hidden": 0},
        ["a sample without any present view must raise ValueError"],
    ),
    "auxloss_averages_over_missing_views": (
        {"auxloss": [("logits[rows], labels[rows]", "logits, labels")]},
        {"test_auxloss": 0, "test_auxloss_hidden": 0},
        ["have a lateral view only (here patient 0)", "the junk logit of the missing view"],
    ),
    "auxloss_returns_python_float": (
        {"auxloss": [("return loss", "return loss.item()")]},
        {"test_auxloss": 0, "test_auxloss_no_lateral": 0, "test_auxloss_hidden": 0,
         "test_auxloss_no_lateral_hidden": 0},
        ["got float — did you call .item()?"],
    ),
    # the mean over an empty batch of laterals is NaN: only the no-lateral cells score 0
    "auxloss_nan_without_lateral": (
        {"auxloss": [("if rows.any():", "if True:")]},
        {"test_auxloss_no_lateral": 0, "test_auxloss_no_lateral_hidden": 0},
        ["a batch without any lateral view must give a finite loss"],
    ),
    # wrong training loops: each loses the points of the rule it breaks (the toy still trains well enough)
    "training_without_zero_grad": (
        {"train_fusion": [("            optimizer.zero_grad()  # gradients of the previous batch must not add up\n",
                           "")]},
        {"test_train_zero_grad": 0},
        ["the gradients of the previous batch were still in .grad"],
    ),
    "training_selects_on_the_training_set": (
        {"train_fusion": [('scores = net(val["views"], val["present"])[:, 0]',
                           'scores = net(train["views"], train["present"])[:, 0]'),
                          ('value = auroc(val["labels"]', 'value = auroc(train["labels"]')]},
        {"test_train_selects_on_validation": 0},
        ["choose the epoch on `val`, not on `train`"],
    ),
    "training_never_calls_eval": (
        {"train_fusion": [("        net.eval()  # dropout off for scoring\n", ""), ("    net.eval()\n", "")]},
        {"test_train_modes": 0},
        ["call net.eval() before scoring them"],
    ),
    "training_never_calls_train": (
        {"train_fusion": [("        net.train()  # dropout on\n", "")]},
        {"test_train_modes": 0},
        ["call net.train() at the start of every epoch"],
    ),
    "untouched_release": (None, dict.fromkeys(MULTIVIEW_FULL, 0), ["NotImplementedError"]),
}


# ---- ch02_segmentation_metrics -------------------------------------------------------------------
METRICS_FULL = {"test_precision": 1, "test_precision_empty": 1, "test_iou": 2, "test_iou_empty": 1, "test_dice": 2,
                "test_dice_empty": 1, "test_soft_dice_loss": 2, "test_soft_dice_per_image": 1,
                "test_soft_dice_empty": 1, "test_mean_dice": 2, "test_mean_dice_absent_class": 1,
                "test_train_mode": 1, "test_zero_grad": 1, "test_training_heldout": 2}
# the loss feeds the training exercise: a loss that cannot backpropagate fails it too
LOSS_BROKEN = {"test_soft_dice_loss": 0, "test_train_mode": 0, "test_zero_grad": 0, "test_training_heldout": 0}

# student -> (solution edits or None for the untouched release, scores that differ from FULL,
#             words the feedback must contain)
METRICS_SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed"]),
    "dice_without_factor_2": (
        {"dice": [("2 * np.sum(pred & target)", "np.sum(pred & target)")]},
        {"test_dice": 0},
        ["did you forget the factor 2?"],
    ),
    "iou_union_counts_intersection_twice": (
        {"iou": [("np.sum(pred) + np.sum(target) - intersection", "np.sum(pred) + np.sum(target)")]},
        {"test_iou": 0},
        ["counts the intersection twice"],
    ),
    "loss_detached_from_graph": (
        {"soft_dice_loss": [("(denominator + smooth))", "(denominator + smooth)).detach()")]},
        LOSS_BROKEN,
        ["did you .detach() it"],
    ),
    "loss_returns_python_float": (
        {"soft_dice_loss": [("(denominator + smooth))", "(denominator + smooth)).item()")]},
        {**LOSS_BROKEN, "test_soft_dice_per_image": 0, "test_soft_dice_empty": 0},
        ["did you call .item() or .numpy()?"],
    ),
    # the empty-mask convention has its own visible cell: missing it costs that cell only
    "precision_ignores_empty_convention": (
        {"precision": [("return 1.0 if not target.any() else 0.0", "return 0.0")]},
        {"test_precision_empty": 0},
        ["both masks empty: the convention says 1.0"],
    ),
    "dice_misses_only_the_empty_mask_convention": (
        {"dice": [("return 1.0", "return 0.0")]},
        {"test_dice_empty": 0},
        ["both masks empty: the convention says 1.0"],
    ),
    # passes the visible checks (pooled and per image agree on them) and fails the hidden random batches
    "soft_dice_pooled_over_the_batch": (
        {"soft_dice_loss": [("dims = tuple(range(1, logits.ndim))", "dims = tuple(range(logits.ndim))")]},
        {"test_soft_dice_loss": 0, "test_soft_dice_per_image": 0},
        ["compute 1 - DL for each image"],
    ),
    "dice_imports_the_reference": (
        {"dice": [("    total = np.sum(pred) + np.sum(target)\n",
                   "    from course_lib.metrics import dice as reference\n    return reference(pred, target)\n")]},
        {"test_dice": 0, "test_dice_empty": 0},
        ["calls the course's reference implementation", "write it yourself"],
    ),
    # a wrong loop loses its convention cell and the held-out cell, which fails a run the locked training cell saw
    # break the convention (course_lib.tools.training_watch) on every machine, whatever the Dice
    "training_without_zero_grad": (
        {"train_one_epoch": [("        optimizer.zero_grad()\n", "")]},
        {"test_zero_grad": 0, "test_training_heldout": 0},
        ["gradients left over from before were added to this step", "gradients left over from the step before"],
    ),
    "training_never_calls_model_train": (
        {"train_one_epoch": [("    model.train()\n", "")]},
        {"test_train_mode": 0, "test_training_heldout": 0},
        ["call model.train() first", "training passes above ran in evaluation mode"],
    ),
    "scoring_in_training_mode": (
        {"heldout_dice": [("    model.eval()\n", "")]},
        {"test_train_mode": 0},
        ["call model.eval()"],
    ),
    "untouched_release": (None, dict.fromkeys(METRICS_FULL, 0), ["NotImplementedError"]),
}


# ---- ch02_fcn_and_cased ---------------------------------------------------------------------------
FCN_FULL = {"test_receptive_field": 2, "test_multiplications_saved": 2, "test_linear_to_conv": 3,
            "test_cased_probabilities": 2, "test_cased_smoothing": 1, "test_patch_train_mode": 1,
            "test_patch_zero_grad": 1, "test_patch_training_heldout": 2}
FCN_SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed"]),
    "receptive_field_ignores_stride": (
        {"receptive_field": [("r += (k - 1) * jump", "r += k - 1")]},
        {"test_receptive_field": 0},
        ["Did you multiply (k - 1) by the jump of the layer before?"],
    ),
    "receptive_field_imports_the_reference": (
        {"receptive_field": [("    r, jump = 1, 1\n", "    from course_lib.histology.receptive_field import Layer, "
                              "receptive_fields\n    return receptive_fields([Layer(k, s) for k, s in "
                              "zip(kernels, strides)])[-1].size\n")]},
        {"test_receptive_field": 0},
        ["calls the course's reference implementation", "write it yourself"],
    ),
    "non_overlapping_windows": (
        {"multiplications_saved": [("(input_size - r + 1) * cost(r)", "(input_size // r) * cost(r)")]},
        {"test_multiplications_saved": 0},
        ["lecture quiz"],
    ),
    "linear_weights_channels_last": (
        {"linear_to_conv": [(
            "linear.weight.reshape(linear.out_features, in_channels, side, side)",
            "linear.weight.reshape(linear.out_features, side, side, in_channels).permute(0, 3, 1, 2)",
        )]},
        {"test_linear_to_conv": 0},
        ["PyTorch flattens channels first"],
    ),
    "cased_not_stratified": (
        {"cased_probabilities": [(
            "p[members] = share * ((1 - smoothing) * loss / loss.sum() + smoothing / members.sum())",
            "p[members] = (1 - smoothing) * loss / losses.sum() + smoothing / len(losses)",
        )]},
        {"test_cased_probabilities": 0, "test_cased_smoothing": 0},
        ["normalise the losses within each class"],
    ),
    # the smoothing convention has its own visible cell; the hidden random cases fail too
    "cased_drops_smoothing": (
        {"cased_probabilities": [("(1 - smoothing) * loss / loss.sum() + smoothing / members.sum()",
                                  "loss / loss.sum()")]},
        {"test_cased_probabilities": 0, "test_cased_smoothing": 0},
        ["did you drop eps?"],
    ),
    "patch_training_without_zero_grad": (
        {"train_one_epoch": [("        optimizer.zero_grad()\n", "")]},
        {"test_patch_zero_grad": 0, "test_patch_training_heldout": 0},
        ["gradients left over from before were added to this step", "gradients left over from the step before"],
    ),
    "patch_training_never_calls_model_train": (
        {"train_one_epoch": [("    model.train()\n", "")]},
        {"test_patch_train_mode": 0, "test_patch_training_heldout": 0},
        ["call model.train() first", "training passes above ran in evaluation mode"],
    ),
    "untouched_release": (None, dict.fromkeys(FCN_FULL, 0), ["NotImplementedError"]),
}
