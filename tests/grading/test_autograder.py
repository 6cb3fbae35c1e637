"""The autograder is itself tested: expected scores of named submissions, timeouts, feedback that
names the mistake without leaking hidden tests, exported grades, and repeatable scores.

All submissions are graded by one call of ``course_lib.tools.grade_all.grade`` (what ``make grade`` runs).
"""

from __future__ import annotations

import csv
import time

import nbformat
import pytest
from nbgrader_harness import (
    cell_scores,
    hidden_test_lines,
    html_text,
    make_course,
    make_submission,
    run_nbgrader,
    solution_bodies,
    submit,
)

from course_lib.tools.grade_all import grade

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder")]  # one graded batch

TIMEOUT = 120  # seconds per cell while grading: a training cell needs ~15 s of CPU, far more wall on a busy machine;
# the looping submission costs this once (then 10 s per cell)

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
    # a wrong loop loses its convention cell and, trained for real, the held-out Dice too
    "training_without_zero_grad": (
        {"train_one_epoch": [("        optimizer.zero_grad()\n", "")]},
        {"test_zero_grad": 0, "test_training_heldout": 0},
        ["gradients left over from before were added to this step", "held-out test Dice of"],
    ),
    "training_never_calls_model_train": (
        {"train_one_epoch": [("    model.train()\n", "")]},
        {"test_train_mode": 0, "test_training_heldout": 0},
        ["call model.train() first"],
    ),
    "scoring_in_training_mode": (
        {"heldout_dice": [("    model.eval()\n", "")]},
        {"test_train_mode": 0},
        ["call model.eval()"],
    ),
    "precision_loops_forever": (
        {"precision": [("tp = np.sum(pred & target)", "while True:\n        pass")]},
        {"test_precision": 0, "test_precision_empty": 0},
        ["CellTimeoutError"],
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
        {"test_patch_zero_grad": 0},
        ["gradients left over from before were added to this step"],
    ),
    "patch_training_never_calls_model_train": (
        {"train_one_epoch": [("    model.train()\n", "")]},
        {"test_patch_train_mode": 0},
        ["call model.train() first"],
    ),
    "untouched_release": (None, dict.fromkeys(FCN_FULL, 0), ["NotImplementedError"]),
}


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


# ---- ch03_density_counting -----------------------------------------------------------------------
COUNTING_FULL = {"test_density_target_sums_to_count": 1, "test_density_target_row_col": 1,
                 "test_density_target_border": 1, "test_density_target_subpixel": 1, "test_density_target_hidden": 1,
                 "test_count_from_density": 1, "test_count_from_density_torch": 1, "test_count_from_density_hidden": 1,
                 "test_loop_loss": 1, "test_loop_zero_grad": 1, "test_loop_modes": 1, "test_loop_keeps_best": 1,
                 "test_counter_learns": 3,
                 "test_classify_skips_any_nucleus": 1, "test_classify_row_col": 1, "test_classify_hidden": 1}
DENSITY_CELLS = [k for k in COUNTING_FULL if k.startswith("test_density_target")]
LOOP_CELLS = ["test_loop_loss", "test_loop_zero_grad", "test_loop_modes", "test_loop_keeps_best", "test_counter_learns"]
# what each wrong training loop loses (the held-out run of test_counter_learns is seeded: the same every regrade);
# without zero_grad the accumulated gradients also spoil the real run (held-out MAE 1.47 cells, threshold 1.0)
LOOP_WITHOUT_ZERO_GRAD = {"test_loop_zero_grad": 0, "test_loop_keeps_best": 0, "test_counter_learns": 0}
LOOP_SELECTS_ON_TRAINING = {"test_loop_modes": 0}
LOOP_NEVER_SWITCHES_MODES = {"test_loop_modes": 0}
LOOP_TRAIN_MODE_ONCE = {"test_loop_modes": 0}
LOOP_WITH_SQUARED_ERROR = {"test_loop_loss": 0, "test_loop_keeps_best": 0}
COUNTING_SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed"]),
    "gaussian_not_normalised": (
        {"density_target": [("g / g.sum()", "g")]},
        {"test_density_target_sums_to_count": 0, "test_density_target_border": 0, "test_density_target_hidden": 0},
        ["got 25.133 — did you forget to normalise each Gaussian?"],
    ),
    "gaussian_cut_at_border": (
        {"density_target": [("g / g.sum()", "g / (2 * np.pi * sigma**2)")]},
        {"test_density_target_border": 0, "test_density_target_hidden": 0},
        ["got 0.642: a Gaussian cut by the border must be renormalised over the image"],
    ),
    "dots_read_as_x_y": (
        {"density_target": [("for r, c in", "for c, r in")]},
        {"test_density_target_row_col": 0, "test_density_target_subpixel": 0, "test_density_target_hidden": 0},
        ["got (12, 10): dots are (row, col) — did you swap x and y?"],
    ),
    # passes every visible check but the sub-pixel one, and the hidden random cases
    "dots_rounded_to_pixels": (
        {"density_target": [("np.asarray(dots, dtype=np.float64).reshape", "np.round(np.asarray(dots)).reshape")]},
        {"test_density_target_subpixel": 0, "test_density_target_hidden": 0},
        ["did you round the dot to a pixel?"],
    ),
    # imports the course's reference: every cell of the exercise scores 0, and the feedback says why
    "density_imports_the_reference": (
        {"density_target": [("    rows = np.arange(shape[0])[:, None]  # (H, 1)\n",
                             "    from course_lib.counting.density import density_map\n"
                             "    return density_map(dots, shape, sigma)\n")]},
        dict.fromkeys(DENSITY_CELLS, 0),
        ["calls the course's reference implementation", "write it yourself"],
    ),
    "count_sums_the_whole_batch": (
        {"count_from_density": [("density.sum(axis=(-2, -1))", "density.sum()")]},
        {"test_count_from_density": 0, "test_count_from_density_torch": 0, "test_count_from_density_hidden": 0},
        ["got shape (): sum over the last two axes only"],
    ),
    # the graded training exercise: wrong loops lose the cells of the convention they break
    "loop_without_zero_grad": (
        {"train_density_counter": [("            optimizer.zero_grad()\n", "")]},
        LOOP_WITHOUT_ZERO_GRAD,
        ["call optimizer.zero_grad() before each loss.backward()"],
    ),
    "loop_selects_on_training_batches": (
        {"train_density_counter": [
            ("model(val_images).sum(dim=(1, 2, 3)) / target_scale", "model(images).sum(dim=(1, 2, 3)) / target_scale"),
            ("(counts - val_counts)", "(counts - targets.sum(dim=(1, 2, 3)) / target_scale)")]},
        LOOP_SELECTS_ON_TRAINING,
        ["the model saw the validation images 0 times in 3 epochs", "not on the training batches"],
    ),
    "loop_never_switches_modes": (
        {"train_density_counter": [("        model.train()\n", ""), ("        model.eval()\n", "")]},
        LOOP_NEVER_SWITCHES_MODES,
        ["call model.eval() and use torch.no_grad() for validation"],
    ),
    "loop_train_mode_set_once": (
        {"train_density_counter": [("        model.train()\n", ""),
                                   ("    for _ in range(epochs):\n",
                                    "    model.train()\n    for _ in range(epochs):\n")]},
        LOOP_TRAIN_MODE_ONCE,
        ["call model.train() at the START of every epoch"],
    ),
    "loop_with_squared_error": (
        {"train_density_counter": [("(model(images) - targets).abs()", "((model(images) - targets) ** 2)")]},
        LOOP_WITH_SQUARED_ERROR,
        ["SUMMED over the pixels of each image", "not a squared error"],
    ),
    "loop_imports_the_reference": (
        {"train_density_counter": [
            ("    history = {", "    from course_lib.counting.density import l1_density_loss\n\n    history = {"),
            ("(model(images) - targets).abs().flatten(1).sum(dim=1).mean()",
             "l1_density_loss(model(images), targets)")]},
        dict.fromkeys(LOOP_CELLS, 0),
        ["calls the course's reference implementation", "write it yourself"],
    ),
    "argmax_includes_any_nucleus_channel": (
        {"classify_detections": [("np.asarray(maps)[1:, rows, cols]", "np.asarray(maps)[:, rows, cols]"),
                                 ("np.argmax(scores, axis=0) + 1", "np.argmax(scores, axis=0)")]},
        {"test_classify_skips_any_nucleus": 0, "test_classify_row_col": 0, "test_classify_hidden": 0},
        ["got [0], expected [3]: channel 0 is the probability of any nucleus, not a cell type"],
    ),
    "detections_read_as_x_y": (
        {"classify_detections": [("rows, cols = points[:, 0], points[:, 1]",
                                  "rows, cols = points[:, 1], points[:, 0]")]},
        {"test_classify_row_col": 0, "test_classify_hidden": 0},
        ["got [2, 3]: points are (row, col) — did you swap them?"],
    ),
    "untouched_release": (None, dict.fromkeys(COUNTING_FULL, 0), ["NotImplementedError"]),
}

SPECS = {
    "ch02_segmentation_metrics": (METRICS_FULL, METRICS_SUBMISSIONS),
    "ch02_fcn_and_cased": (FCN_FULL, FCN_SUBMISSIONS),
    "ch01_multiview_fusion": (MULTIVIEW_FULL, MULTIVIEW_SUBMISSIONS),
    "ch03_density_counting": (COUNTING_FULL, COUNTING_SUBMISSIONS),
}
CASES = [(a, student) for a, (_, submissions) in SPECS.items() for student in submissions]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release every assignment into one temp course, submit every fixture, grade each assignment in one call."""
    course = make_course(tmp_path_factory.mktemp("nbgrader"), *SPECS)
    out = {"course": course, "source": {}, "scores": {}}
    start = time.perf_counter()
    for assignment, (_, submissions) in SPECS.items():
        source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        release = nbformat.read(course / "assignments" / assignment / f"{assignment}.ipynb", as_version=4)
        bodies = solution_bodies(source)
        for student, (edits, _, _) in submissions.items():
            submit(course, student, assignment,
                   {assignment: make_submission(release, None if edits is None else bodies, edits)})
        out["source"][assignment] = source
    out["csv"] = grade(course, list(SPECS), timeout=TIMEOUT)
    seconds = time.perf_counter() - start
    print(f"\nautograded {len(CASES)} submissions in {seconds:.1f} s ({seconds / len(CASES):.1f} s each, "
          f"one of them looping for {TIMEOUT} s)")
    for assignment, (full, submissions) in SPECS.items():
        for student in submissions:
            cells = cell_scores(course, assignment, assignment, student)
            out["scores"][assignment, student] = cells
            print(f"  {assignment:28s} {student:40s} "
                  f"{sum(v or 0 for k, v in cells.items() if k in full):4.1f} / {sum(full.values())}")
    return out


@pytest.mark.parametrize(("assignment", "student"), CASES)
def test_autograded_scores(graded, assignment, student):
    full, submissions = SPECS[assignment]
    expected = {**full, **submissions[student][1]}
    got = {k: v for k, v in graded["scores"][assignment, student].items() if k in full}
    assert got == expected, f"{assignment}/{student}: autograded cell scores {got}, expected {expected}"


@pytest.mark.parametrize("assignment", list(SPECS))
def test_written_answer_waits_for_a_human(graded, assignment):
    assert graded["scores"][assignment, "correct"]["written_answer"] in (None, 0), "written answers are hand-graded"


@pytest.mark.parametrize(("assignment", "student"), CASES)
def test_feedback_names_the_mistake_and_hides_hidden_tests(graded, assignment, student):
    text = html_text((graded["course"] / "feedback" / student / assignment / f"{assignment}.html").read_text())
    for words in SPECS[assignment][1][student][2]:
        assert words in text, f"feedback of {assignment}/{student} lacks {words!r}"
    leaked = [line for line in hidden_test_lines(graded["source"][assignment]) if line in text]
    assert not leaked, f"feedback of {assignment}/{student} shows hidden test code: {leaked[:3]}"
    assert "BEGIN HIDDEN TESTS" not in text


@pytest.mark.parametrize("assignment", list(SPECS))
def test_leak_check_sees_hidden_tests_when_they_are_shown(graded, assignment):
    """Positive control: the autograded notebook itself contains the hidden tests, and the check finds them."""
    from nbconvert import HTMLExporter

    autograded = nbformat.read(graded["course"] / "autograded" / "correct" / assignment / f"{assignment}.ipynb",
                               as_version=4)
    text = html_text(HTMLExporter().from_notebook_node(autograded)[0])
    lines = hidden_test_lines(graded["source"][assignment])
    assert lines and all(line in text for line in lines), "the leak check could not detect a leak"


def test_grades_csv_lists_every_student(graded):
    with open(graded["csv"]) as f:
        rows = {(row["assignment"], row["student_id"]): row for row in csv.DictReader(f)}
    assert set(CASES) <= set(rows), "every graded submission has a row"
    for assignment, (full, _) in SPECS.items():
        assert float(rows[assignment, "correct"]["raw_score"]) == sum(full.values())
        assert float(rows[assignment, "untouched_release"]["raw_score"]) == 0


def test_regrading_gives_the_same_scores(graded):
    course = graded["course"]
    for assignment, student in [("ch02_segmentation_metrics", "correct"),
                                ("ch02_segmentation_metrics", "dice_without_factor_2"),
                                ("ch02_fcn_and_cased", "linear_weights_channels_last"),
                                ("ch01_multiview_fusion", "bootstrap_normal_approximation"),
                                ("ch03_density_counting", "loop_without_zero_grad")]:
        run_nbgrader(["autograde", assignment, "--student", student, "--force"], course, timeout=TIMEOUT)
        assert cell_scores(course, assignment, assignment, student) == graded["scores"][assignment, student]
