"""Expected autograder outcomes of chapter 5: per assignment, FULL (grade id -> points) and SUBMISSIONS
(student -> (solution edits or None for the untouched release, scores that differ from FULL, words the feedback
must contain)). Read by ``test_autograder.py``, which grades every assignment's submissions in one batch.
"""

CH05_ASSIGNMENT = "ch05_right_reasons"
CH05_FULL = {"test_grad_reverse": 2, "test_lambda_schedule": 1, "test_rrr_loss": 3, "test_gradmask_loss": 2,
        "test_actdiff_loss": 2, "test_train_rrr": 2}
TRAINING_LOST = {"test_rrr_loss": 0, "test_train_rrr": 0}  # a wrong RRR loss also fails the training exercise

CH05_SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed", "decoy-free test accuracy after RRR training"]),
    # the course's ramp under the exercise's name: the hidden checks call it through the guard (issue 20)
    "lambda_schedule_imports_the_reference": (
        {"lambda_schedule": [("    if not 0.0 <= progress <= 1.0:\n",
                              "    from course_lib.confounders.gradient_reversal import lambda_schedule as reference\n"
                              "    return reference(progress, lambda_max)\n    if not 0.0 <= progress <= 1.0:\n")]},
        {"test_lambda_schedule": 0},
        ["calls the course's reference implementation (course_lib.confounders.gradient_reversal.lambda_schedule)"],
    ),
    "reversal_on_the_forward_pass": (
        {"grad_reverse": [("return x.view_as(x)", "return -ctx.lambda_ * x"),
                          ("return -ctx.lambda_ * grad_output, None", "return grad_output, None")]},
        {"test_grad_reverse": 0},
        ["the forward pass must return the features unchanged"],
    ),
    "rrr_mask_inverted": (
        {"rrr_loss": [("outside = (~roi).to(grad.dtype)", "outside = roi.to(grad.dtype)")]},
        TRAINING_LOST,
        ["the mask is inverted", "decoy-free test accuracy"],
    ),
    "rrr_gradient_without_create_graph": (
        {"rrr_loss": [("create_graph=True)  # (B, C, H, W)", "retain_graph=True)  # (B, C, H, W)")]},
        TRAINING_LOST,
        ["take the gradient with create_graph=True, or it trains nothing", "decoy-free test accuracy"],
    ),
    "rrr_penalty_on_the_loss": (
        {"rrr_loss": [("torch.autograd.grad(log_probs.sum(), x", "torch.autograd.grad(F.cross_entropy(logits, y), x")]},
        TRAINING_LOST,
        ["not the cross-entropy loss", "decoy-free test accuracy"],
    ),
    # passes every visible check; the hidden test watches the calls
    "rrr_calls_the_course_reference": (
        {"rrr_loss": [("    x = x.detach().requires_grad_(True)\n    logits = model(x)  # (B, K)\n",
                       "    from course_lib.confounders.rrr import rrr_loss as reference\n"
                       "    total, _, penalty = reference(model, x, y, roi, lam)\n    return total, penalty\n"
                       "    logits = model(x)  # (B, K)\n")]},
        {"test_rrr_loss": 0},
        ["calls the course's reference implementation"],
    ),
    "actdiff_replaces_the_roi": (
        {"actdiff_loss": [("torch.where(roi, x, torch.roll(x, shifts=-1, dims=0))",
                           "torch.where(roi, torch.roll(x, shifts=-1, dims=0), x)")]},
        {"test_actdiff_loss": 0},
        ["with everything inside the ROI nothing is replaced"],
    ),
    # blanking the outside is another fill than the course's (ch05b, course_lib.confounders.actdiff)
    "actdiff_blanks_the_outside": (
        {"actdiff_loss": [("torch.roll(x, shifts=-1, dims=0)", "torch.zeros_like(x)")]},
        {"test_actdiff_loss": 0},
        ["take the pixels OUTSIDE the ROI from the next image of the batch"],
    ),
    "actdiff_takes_the_previous_image": (
        {"actdiff_loss": [("shifts=-1", "shifts=1")]},
        {"test_actdiff_loss": 0},
        ["from the PREVIOUS image"],
    ),
    "untouched_release": (None, dict.fromkeys(CH05_FULL, 0), ["NotImplementedError"]),
}
