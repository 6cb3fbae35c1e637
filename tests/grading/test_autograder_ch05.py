"""The chapter 5 assignment's autograder, tested: full marks for the solution, 0 for the release, and the classic
mistakes of gradient reversal, RRR, GradMask and ActDiff scored with their expected partial marks and feedback.

Same pattern as ``test_autograder.py``; a module of its own so that chapter 5 can be graded and timed alone.
"""

from __future__ import annotations

import csv
import os
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

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder_ch05")]

ASSIGNMENT = "ch05_right_reasons"
TIMEOUT = 120  # seconds per cell while grading: the training cell needs a few seconds of CPU, far more wall when
# make test runs two workers beside the grader
FULL = {"test_grad_reverse": 2, "test_lambda_schedule": 1, "test_rrr_loss": 3, "test_gradmask_loss": 2,
        "test_actdiff_loss": 2, "test_train_rrr": 2}
TRAINING_LOST = {"test_rrr_loss": 0, "test_train_rrr": 0}  # a wrong RRR loss also fails the training exercise

# student -> (solution edits or None for the untouched release, scores that differ from FULL,
#             words the feedback must contain)
SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed", "decoy-free test accuracy after RRR training"]),
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
    "actdiff_blanks_the_roi": (
        {"actdiff_loss": [("torch.where(roi, x, torch.zeros_like(x))", "torch.where(roi, torch.zeros_like(x), x)")]},
        {"test_actdiff_loss": 0},
        ["set the pixels OUTSIDE the ROI to 0"],
    ),
    "untouched_release": (None, dict.fromkeys(FULL, 0), ["NotImplementedError"]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release the assignment into a temp course, submit every fixture, grade them in one call."""
    course = make_course(tmp_path_factory.mktemp("nbgrader_ch05"), ASSIGNMENT)
    source = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    release = nbformat.read(course / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    bodies = solution_bodies(source)
    for student, (edits, _, _) in SUBMISSIONS.items():
        submit(course, student, ASSIGNMENT, {ASSIGNMENT: make_submission(release, None if edits is None else bodies,
                                                                         edits)})
    start = time.perf_counter()
    csv_path = grade(course, [ASSIGNMENT], timeout=TIMEOUT)
    seconds = time.perf_counter() - start
    scores = {student: cell_scores(course, ASSIGNMENT, ASSIGNMENT, student) for student in SUBMISSIONS}
    print(f"\nautograded {len(SUBMISSIONS)} {ASSIGNMENT} submissions in {seconds:.1f} s "
          f"({seconds / len(SUBMISSIONS):.1f} s each, load {os.getloadavg()[0]:.1f})")
    for student, cells in scores.items():
        print(f"  {student:36s} {sum(v or 0 for k, v in cells.items() if k in FULL):4.1f} / {sum(FULL.values())}")
    return {"course": course, "source": source, "scores": scores, "csv": csv_path, "seconds": seconds}


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


def test_autograde_time_per_submission(graded):
    # the grader's own per-submission wall time; the budget (30 s on 2 cores) is only meaningful on a machine that is
    # not running other jobs, so a heavily loaded machine skips the check and says so
    with open(graded["course"] / "grading_summary.csv") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f) if row["assignment"] == ASSIGNMENT]
    assert len(seconds) == len(SUBMISSIONS)
    mean = sum(seconds) / len(seconds)
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    if load > 1.5:
        pytest.skip(f"machine busy (load {load:.1f} per core): {mean:.1f} s per submission says little about "
                    "the budget")
    assert mean <= 30, f"autograding took {mean:.1f} s per submission (budget 30 s on 2 cores)"


def test_regrading_gives_the_same_scores(graded):
    for student in ("correct", "rrr_gradient_without_create_graph"):
        run_nbgrader(["autograde", ASSIGNMENT, "--student", student, "--force"], graded["course"], timeout=TIMEOUT)
        assert cell_scores(graded["course"], ASSIGNMENT, ASSIGNMENT, student) == graded["scores"][student]
