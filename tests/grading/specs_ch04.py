"""Expected autograder outcomes of chapter 4: per assignment, FULL (grade id -> points) and SUBMISSIONS
(student -> (solution edits or None for the untouched release, scores that differ from FULL, words the feedback
must contain)). Read by ``test_autograder.py``, which grades every assignment's submissions in one batch.
"""

CH04_ASSIGNMENT = "ch04_cyclegan"
CH04_FULL = {"test_lsgan_discriminator_loss": 1, "test_lsgan_generator_loss": 1, "test_cycle_consistency_loss": 2,
        "test_step_generators": 2, "test_step_discriminators": 1, "test_training_step_trains": 3,
        "test_bias_rates": 1, "test_bias_rates_empty_groups": 1}
STEP_CELLS = ("test_step_generators", "test_step_discriminators", "test_training_step_trains")

CH04_SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed", "after 150 steps"]),
    # the discriminators' backward runs through the generators' freed graph: the step raises
    "fakes_not_detached_for_d": (
        {"cyclegan_training_step": [("d_t(fake_t.detach())", "d_t(fake_t)"), ("d_f(fake_f.detach())", "d_f(fake_f)")]},
        dict.fromkeys(STEP_CELLS, 0),
        ["did you forget .detach() on the fakes for D?"],
    ),
    "d_trained_on_generator_loss": (
        {"cyclegan_training_step": [(
            "(lsgan_discriminator_loss(d_t(real_t), d_t(fake_t.detach()))\n"
            "                     + lsgan_discriminator_loss(d_f(real_f), d_f(fake_f.detach())))",
            "(lsgan_generator_loss(d_t(fake_t.detach()))\n"
            "                     + lsgan_generator_loss(d_f(fake_f.detach())))")]},
        {"test_step_discriminators": 0, "test_training_step_trains": 0},
        ["not with the generators' loss", "below 60 % of it"],
    ),
    "cycle_loss_wrong_direction": (
        {"cycle_consistency_loss": [("h(g(real_f))", "g(h(real_f))"), ("g(h(real_t))", "h(g(real_t))")]},
        {"test_cycle_consistency_loss": 0, "test_step_generators": 0, "test_training_step_trains": 0},
        ["did you apply the generators in the wrong order"],
    ),
    "identity_on_the_wrong_domain": (
        {"cyclegan_training_step": [(
            "identity = (g(real_t) - real_t).abs().mean() + (h(real_f) - real_f).abs().mean()",
            "identity = (g(real_f) - real_f).abs().mean() + (h(real_t) - real_t).abs().mean()")]},
        # the training cell uses the chapter's setting, identity off: only the step's check sees this mistake
        {"test_step_generators": 0},
        ["a real image of its own OUTPUT domain"],
    ),
    "generator_optimiser_not_zeroed": (
        {"cyclegan_training_step": [("    opt_g.zero_grad()\n", "")]},
        {"test_step_generators": 0, "test_training_step_trains": 0},
        ["call opt_g.zero_grad() before generator.backward()"],
    ),
    # passes the visible check; the hidden test watches the calls
    "cycle_loss_calls_the_course_reference": (
        {"cycle_consistency_loss": [(
            "    forward = (h(g(real_f)) - real_f).abs().mean()  # FLAIR -> T1 -> FLAIR\n"
            "    backward = (g(h(real_t)) - real_t).abs().mean()  # T1 -> FLAIR -> T1\n"
            "    return forward + backward",
            "    from course_lib.translation.losses import cycle_consistency_loss as reference\n"
            "    return reference(h(g(real_f)), real_f) + reference(g(h(real_t)), real_t)")]},
        {"test_cycle_consistency_loss": 0},
        ["calls the course's reference implementation"],
    ),
    "rates_over_all_slices": (
        {"bias_rates": [('float(np.mean(~called[truth])) if truth.any() else float("nan")',
                         "float(np.mean(~called & truth))"),
                        ('float(np.mean(called[~truth])) if (~truth).any() else float("nan")',
                         "float(np.mean(called & ~truth))")]},
        {"test_bias_rates": 0, "test_bias_rates_empty_groups": 0},
        ["a share of the tumour slices, not of all slices"],
    ),
    # passes the visible check; an empty group must give nan
    "empty_group_gives_zero": (
        {"bias_rates": [('else float("nan")', "else 0.0")]},
        {"test_bias_rates_empty_groups": 0},
        ["erased must be nan (nothing to erase)"],
    ),
    "untouched_release": (None, dict.fromkeys(CH04_FULL, 0), ["NotImplementedError"]),
}
