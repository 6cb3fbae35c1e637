"""The autograder is itself tested: expected scores of named submissions, feedback that names the mistake without
leaking hidden tests, exported grades, repeatable scores, and the grading time per submission.

Every assignment's submissions are graded by ONE call of ``course_lib.grading.grade_all.grade`` (what ``make grade``
runs). The expected outcomes live in ``specs_*.py``. Mistakes that edit different exercises and change disjoint
graded cells are bundled into one submission (``bundle_mistakes``): the batch then trains fewer notebooks, and each
mistake is still checked on the cells it alone changes. Timeouts, crashes and attacks are the torture suite's.
"""

from __future__ import annotations

import csv
import resource
import time

import nbformat
import pytest
from nbgrader_harness import (
    bundle_mistakes,
    cell_scores,
    hidden_test_lines,
    html_text,
    make_submission,
    run_nbgrader,
    solution_bodies,
    submit,
)
from specs_ch01_ch02 import (
    FCN_FULL,
    FCN_SUBMISSIONS,
    METRICS_FULL,
    METRICS_SUBMISSIONS,
    MULTIVIEW_FULL,
    MULTIVIEW_SUBMISSIONS,
)
from specs_ch03 import COUNTING_FULL, COUNTING_SUBMISSIONS
from specs_ch04 import CH04_ASSIGNMENT, CH04_FULL, CH04_SUBMISSIONS
from specs_ch05 import CH05_ASSIGNMENT, CH05_FULL, CH05_SUBMISSIONS

from course_lib.grading.grade_all import grade

# one graded batch; on a busy 2-core machine it takes minutes, beyond pytest's default limit
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600), pytest.mark.xdist_group("autograder")]

TIMEOUT = 120  # seconds per cell: a training cell needs ~10 s of CPU, far more wall when make test runs beside it
CPU_BUDGET = 30  # CPU seconds per submission (kernels included), the budget of make grade on 2 cores

SPECS = {
    "ch01_multiview_fusion": (MULTIVIEW_FULL, MULTIVIEW_SUBMISSIONS),
    "ch02_segmentation_metrics": (METRICS_FULL, METRICS_SUBMISSIONS),
    "ch02_fcn_and_cased": (FCN_FULL, FCN_SUBMISSIONS),
    "ch03_density_counting": (COUNTING_FULL, COUNTING_SUBMISSIONS),
    CH04_ASSIGNMENT: (CH04_FULL, CH04_SUBMISSIONS),
    CH05_ASSIGNMENT: (CH05_FULL, CH05_SUBMISSIONS),
}
BUNDLES = {assignment: bundle_mistakes(submissions) for assignment, (_, submissions) in SPECS.items()}
CASES = [(a, name) for a, bundles in BUNDLES.items() for name in bundles]
MISTAKES = [(a, student) for a, (_, submissions) in SPECS.items() for student in submissions]


def bundle_of(assignment: str, student: str) -> str:
    """The submission a named mistake was graded in."""
    return next(name for name, (_, members) in BUNDLES[assignment].items() if student in members)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished child processes and their waited-for children
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def graded(released_course):
    """Every assignment released into one temp course (``released_course``), every bundle submitted, all of them
    graded in one call."""
    course = released_course
    assert set(SPECS) <= {p.name for p in (course / "assignments").iterdir()}, "an assignment without a release"
    out = {"course": course, "source": {}, "scores": {}}
    for assignment, bundles in BUNDLES.items():
        source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        release = nbformat.read(course / "assignments" / assignment / f"{assignment}.ipynb", as_version=4)
        bodies = solution_bodies(source)
        for name, ((edits, _, _), _) in bundles.items():
            submit(course, name, assignment,
                   {assignment: make_submission(release, None if edits is None else bodies, edits)})
        out["source"][assignment] = source
    start, cpu_start = time.perf_counter(), _children_cpu()
    out["csv"] = grade(course, list(SPECS), timeout=TIMEOUT)
    seconds, out["cpu"] = time.perf_counter() - start, _children_cpu() - cpu_start
    print(f"\nautograded {len(MISTAKES)} named submissions as {len(CASES)} notebooks in {seconds:.1f} s wall, "
          f"{out['cpu']:.1f} s CPU ({out['cpu'] / len(CASES):.1f} s CPU per notebook)")
    for assignment, name in CASES:
        full = SPECS[assignment][0]
        cells = cell_scores(course, assignment, assignment, name)
        out["scores"][assignment, name] = cells
        print(f"  {assignment:28s} {name[:70]:70s} {sum(v or 0 for k, v in cells.items() if k in full):4.1f} / "
              f"{sum(full.values())}")
    return out


@pytest.mark.parametrize(("assignment", "name"), CASES)
def test_autograded_scores(graded, assignment, name):
    full = SPECS[assignment][0]
    (_, diff, _), members = BUNDLES[assignment][name]
    expected = {**full, **diff}
    got = {k: v for k, v in graded["scores"][assignment, name].items() if k in full}
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, f"{assignment}/{'+'.join(members)}: cell -> (scored, expected): {wrong}"


def test_bundles_keep_every_mistake_and_share_nothing():
    for assignment, (full, submissions) in SPECS.items():
        members = [m for _, ms in BUNDLES[assignment].values() for m in ms]
        assert sorted(members) == sorted(submissions), f"{assignment}: a mistake was lost or graded twice"
        for (edits, diff, _), ms in BUNDLES[assignment].values():
            if len(ms) > 1:
                assert sum(len(submissions[m][1]) for m in ms) == len(diff), f"{ms} change the same cell"
                assert sum(len(submissions[m][0]) for m in ms) == len(edits), f"{ms} edit the same exercise"
        changed = {cell for _, diff, _ in submissions.values() for cell in diff}
        assert changed <= set(full), f"{assignment}: expected scores of ungraded cells {changed - set(full)}"


@pytest.mark.parametrize("assignment", list(SPECS))
def test_written_answer_waits_for_a_human(graded, assignment):
    assert graded["scores"][assignment, "correct"]["written_answer"] in (None, 0), "written answers are hand-graded"


@pytest.mark.parametrize(("assignment", "name"), CASES)
def test_feedback_names_the_mistake_and_hides_hidden_tests(graded, assignment, name):
    text = html_text((graded["course"] / "feedback" / name / assignment / f"{assignment}.html").read_text())
    for words in BUNDLES[assignment][name][0][2]:
        assert words in text, f"feedback of {assignment}/{name} lacks {words!r}"
    submitted = nbformat.read(graded["course"] / "submitted" / name / assignment / f"{assignment}.ipynb", as_version=4)
    own = "\n".join(c.source for c in submitted.cells)  # a line the student wrote (a reference import) is theirs
    leaked = [line for line in hidden_test_lines(graded["source"][assignment]) if line in text and line not in own]
    assert not leaked, f"feedback of {assignment}/{name} shows hidden test code: {leaked[:3]}"
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


def test_grades_csv_lists_every_submission(graded):
    with open(graded["csv"]) as f:
        rows = {(row["assignment"], row["student_id"]): row for row in csv.DictReader(f)}
    assert set(CASES) <= set(rows), "every graded submission has a row"
    for assignment, (full, _) in SPECS.items():
        assert float(rows[assignment, "correct"]["raw_score"]) == sum(full.values())
        assert float(rows[assignment, "untouched_release"]["raw_score"]) == 0


def test_autograde_cpu_per_submission(graded):
    # CPU of the grading processes, kernels included: wall time on a shared machine measures the other jobs
    per_submission = graded["cpu"] / len(CASES)
    assert per_submission <= CPU_BUDGET, f"autograding used {per_submission:.1f} s of CPU per submission"


@pytest.mark.parametrize(("assignment", "student"), [
    ("ch03_density_counting", "loop_without_zero_grad"),  # trains in the graded cell; the torture suite regrades more
    (CH04_ASSIGNMENT, "identity_on_the_wrong_domain"),
])
def test_regrading_gives_the_same_scores(graded, assignment, student):
    name = bundle_of(assignment, student)
    run_nbgrader(["autograde", assignment, "--student", name, "--force"], graded["course"], timeout=TIMEOUT)
    assert cell_scores(graded["course"], assignment, assignment, name) == graded["scores"][assignment, name]
