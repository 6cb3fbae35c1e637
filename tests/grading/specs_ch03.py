"""Expected autograder outcomes of chapter 3: per assignment, FULL (grade id -> points) and SUBMISSIONS
(student -> (solution edits or None for the untouched release, scores that differ from FULL, words the feedback
must contain)). Read by ``test_autograder.py``, which grades every assignment's submissions in one batch.
"""

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
