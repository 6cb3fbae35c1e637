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

pytestmark = pytest.mark.slow

TIMEOUT = 20  # seconds per cell while grading; the looping submission costs this once

# ---- ch02_segmentation_metrics -------------------------------------------------------------------
METRICS_FULL = {"test_precision": 1, "test_iou": 2, "test_dice": 2, "test_soft_dice_loss": 3, "test_mean_dice": 2}

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
    "untouched_release": (None, dict.fromkeys(METRICS_FULL, 0), ["NotImplementedError"]),
}


# ---- ch02_fcn_and_cased ---------------------------------------------------------------------------
FCN_FULL = {"test_receptive_field": 2, "test_multiplications_saved": 2, "test_linear_to_conv": 3,
            "test_cased_probabilities": 2}
FCN_SUBMISSIONS = {
    "correct": ({}, {}, ["visible checks passed"]),
    "receptive_field_ignores_stride": (
        {"receptive_field": [("r += (k - 1) * jump", "r += k - 1")]},
        {"test_receptive_field": 0},
        ["Did you multiply (k - 1) by the jump of the layer before?"],
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
        {"test_cased_probabilities": 0},
        ["normalise the losses within each class"],
    ),
    "untouched_release": (None, dict.fromkeys(FCN_FULL, 0), ["NotImplementedError"]),
}

SPECS = {
    "ch02_segmentation_metrics": (METRICS_FULL, METRICS_SUBMISSIONS),
    "ch02_fcn_and_cased": (FCN_FULL, FCN_SUBMISSIONS),
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
                                ("ch02_fcn_and_cased", "linear_weights_channels_last")]:
        run_nbgrader(["autograde", assignment, "--student", student, "--force"], course, timeout=TIMEOUT)
        assert cell_scores(course, assignment, assignment, student) == graded["scores"][assignment, student]
