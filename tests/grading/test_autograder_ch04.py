"""The chapter 4 assignment's autograder, tested: full marks for the solution, 0 for the release, and the classic
mistakes of a CycleGAN step (fakes not detached for D, D trained on the generators' loss, the cycle loss in the
wrong direction, the identity loss on the wrong domain, the optimiser not zeroed), of the bias measure, and a call
of the course's reference, each scored with its expected partial marks and feedback that names it.

Same pattern as ``test_autograder.py``; a module of its own so that chapter 4 can be graded and timed alone.
"""

from __future__ import annotations

import resource
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

# ten submissions, each training a small CycleGAN: minutes of wall time on a busy machine, beyond the default limit
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600), pytest.mark.xdist_group("autograder_ch04")]

ASSIGNMENT = "ch04_cyclegan"
TIMEOUT = 120  # seconds per cell while grading; the training cell needs ~10 s of CPU, far more wall on a busy machine
FULL = {"test_lsgan_discriminator_loss": 1, "test_lsgan_generator_loss": 1, "test_cycle_consistency_loss": 2,
        "test_step_generators": 2, "test_step_discriminators": 1, "test_training_step_trains": 3,
        "test_bias_rates": 1, "test_bias_rates_empty_groups": 1}
STEP_CELLS = ("test_step_generators", "test_step_discriminators", "test_training_step_trains")

# student -> (solution edits or None for the untouched release, scores that differ from FULL,
#             words the feedback must contain)
SUBMISSIONS = {
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
        {"test_step_generators": 0, "test_training_step_trains": 0},
        ["a real image of its own OUTPUT domain", "below 60 % of it"],
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
    "untouched_release": (None, dict.fromkeys(FULL, 0), ["NotImplementedError"]),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished child processes and their waited-for children
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release the assignment into a temp course, submit every fixture, grade them in one call."""
    course = make_course(tmp_path_factory.mktemp("nbgrader_ch04"), ASSIGNMENT)
    source = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    release = nbformat.read(course / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    bodies = solution_bodies(source)
    for student, (edits, _, _) in SUBMISSIONS.items():
        submit(course, student, ASSIGNMENT, {ASSIGNMENT: make_submission(release, None if edits is None else bodies,
                                                                         edits)})
    start, cpu_start = time.perf_counter(), _children_cpu()
    csv_path = grade(course, [ASSIGNMENT], timeout=TIMEOUT)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    scores = {student: cell_scores(course, ASSIGNMENT, ASSIGNMENT, student) for student in SUBMISSIONS}
    print(f"\nautograded {len(SUBMISSIONS)} {ASSIGNMENT} submissions in {seconds:.1f} s wall, {cpu:.1f} s CPU "
          f"({seconds / len(SUBMISSIONS):.1f} s wall, {cpu / len(SUBMISSIONS):.1f} s CPU each)")
    for student, cells in scores.items():
        print(f"  {student:40s} {sum(v or 0 for k, v in cells.items() if k in FULL):4.1f} / {sum(FULL.values())}  "
              f"{ {k: v for k, v in cells.items() if k in FULL} }")
    return {"course": course, "source": source, "scores": scores, "csv": csv_path, "seconds": seconds, "cpu": cpu}


@pytest.mark.parametrize("student", list(SUBMISSIONS))
def test_autograded_scores(graded, student):
    expected = {**FULL, **SUBMISSIONS[student][1]}
    got = {k: v for k, v in graded["scores"][student].items() if k in FULL}
    assert got == expected, f"{ASSIGNMENT}/{student}: autograded cell scores {got}, expected {expected}"


def test_written_answer_waits_for_a_human(graded):
    assert graded["scores"]["correct"]["written_answer"] in (None, 0), "written answers are hand-graded"


@pytest.mark.parametrize("student", list(SUBMISSIONS))
def test_feedback_names_the_mistake_and_hides_hidden_tests(graded, student):
    page = graded["course"] / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    text = html_text(page.read_text())
    for words in SUBMISSIONS[student][2]:
        assert words in text, f"feedback of {student} lacks {words!r}"
    leaked = [line for line in hidden_test_lines(graded["source"]) if line in text]
    assert not leaked, f"feedback of {student} shows hidden test code: {leaked[:3]}"
    assert "BEGIN HIDDEN TESTS" not in text


def test_autograde_time_per_submission(graded):
    # CPU seconds of the grading processes (kernels included): the budget is 30 s per submission on 2 free cores;
    # wall time on a shared machine says more about the other jobs than about this assignment
    per_submission = graded["cpu"] / len(SUBMISSIONS)
    assert per_submission <= 30, f"autograding used {per_submission:.1f} s of CPU per submission (budget 30 s)"


def test_regrading_gives_the_same_scores(graded):
    for student in ("correct", "identity_on_the_wrong_domain"):
        run_nbgrader(["autograde", ASSIGNMENT, "--student", student, "--force"], graded["course"], timeout=TIMEOUT)
        assert cell_scores(graded["course"], ASSIGNMENT, ASSIGNMENT, student) == graded["scores"][student]
