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
    make_course,
    make_submission,
    run_nbgrader,
    solution_bodies,
    submit,
)

from course_lib.tools.grade_all import grade

pytestmark = pytest.mark.slow

ASSIGNMENT = NOTEBOOK = "ch02_segmentation_metrics"
TIMEOUT = 20  # seconds per cell while grading; the looping submission costs this once
FULL = {"test_precision": 1, "test_iou": 2, "test_dice": 2, "test_soft_dice_loss": 3, "test_mean_dice": 2}

# student -> (solution edits or None for the untouched release, scores that differ from FULL,
#             words the feedback must contain)
SUBMISSIONS = {
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
        {"test_soft_dice_loss": 0},
        ["did you .detach() it"],
    ),
    "loss_returns_python_float": (
        {"soft_dice_loss": [("(denominator + smooth))", "(denominator + smooth)).item()")]},
        {"test_soft_dice_loss": 0},
        ["did you call .item() or .numpy()?"],
    ),
    # passes the visible checks and fails a hidden one: its feedback must not show hidden test code
    "precision_ignores_empty_convention": (
        {"precision": [("return 1.0 if not target.any() else 0.0", "return 0.0")]},
        {"test_precision": 0},
        ["both masks empty: the convention says 1.0"],
    ),
    "precision_loops_forever": (
        {"precision": [("tp = np.sum(pred & target)", "while True:\n        pass")]},
        {"test_precision": 0},
        ["CellTimeoutError"],
    ),
    "untouched_release": (None, dict.fromkeys(FULL, 0), ["NotImplementedError"]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release into a temp course, submit every fixture, grade them all in one call."""
    course = make_course(tmp_path_factory.mktemp("nbgrader"), ASSIGNMENT)
    source = nbformat.read(course / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    release = nbformat.read(course / "assignments" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    bodies = solution_bodies(source)
    for student, (edits, _, _) in SUBMISSIONS.items():
        submit(course, student, ASSIGNMENT, {NOTEBOOK: make_submission(release, None if edits is None else bodies,
                                                                      edits)})
    start = time.perf_counter()
    csv_path = grade(course, [ASSIGNMENT], timeout=TIMEOUT)
    seconds = time.perf_counter() - start
    print(f"\nautograded {len(SUBMISSIONS)} submissions in {seconds:.1f} s "
          f"({seconds / len(SUBMISSIONS):.1f} s each, one of them looping for {TIMEOUT} s)")
    scores = {student: cell_scores(course, ASSIGNMENT, NOTEBOOK, student) for student in SUBMISSIONS}
    for student, cells in scores.items():
        print(f"  {student:40s} {sum(v or 0 for k, v in cells.items() if k in FULL):4.1f} / {sum(FULL.values())}")
    return {"course": course, "source": source, "csv": csv_path, "scores": scores}


@pytest.mark.parametrize("student", list(SUBMISSIONS))
def test_autograded_scores(graded, student):
    _, different, _ = SUBMISSIONS[student]
    expected = {**FULL, **different}
    got = {k: v for k, v in graded["scores"][student].items() if k in FULL}
    assert got == expected, f"{student}: autograded cell scores {got}, expected {expected}"


def test_written_answer_waits_for_a_human(graded):
    assert graded["scores"]["correct"]["written_answer"] in (None, 0), "the written answer is graded by hand"


@pytest.mark.parametrize("student", list(SUBMISSIONS))
def test_feedback_names_the_mistake_and_hides_hidden_tests(graded, student):
    html = (graded["course"] / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
    for words in SUBMISSIONS[student][2]:
        assert words in html.replace("&#39;", "'").replace("&quot;", '"'), f"feedback of {student} lacks {words!r}"
    leaked = [line for line in hidden_test_lines(graded["source"]) if line in html]
    assert not leaked, f"feedback of {student} shows hidden test code: {leaked[:3]}"
    assert "BEGIN HIDDEN TESTS" not in html


def test_grades_csv_lists_every_student(graded):
    with open(graded["csv"]) as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(SUBMISSIONS)
    assert float(rows["correct"]["raw_score"]) == sum(FULL.values())
    assert float(rows["untouched_release"]["raw_score"]) == 0


def test_regrading_gives_the_same_scores(graded):
    course = graded["course"]
    for student in ("correct", "dice_without_factor_2"):
        run_nbgrader(["autograde", ASSIGNMENT, "--student", student, "--force"], course, timeout=TIMEOUT)
        assert cell_scores(course, ASSIGNMENT, NOTEBOOK, student) == graded["scores"][student]
