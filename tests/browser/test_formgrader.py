"""The instructor's path, in a real browser: after ``make grade``, grade a written answer in the Formgrader.

Two submissions of the frozen metrics assignment (``tests/grading/fixtures/``: five exercises and one written answer,
no training cell, so grading them is cheap) are graded with the course's grader, the function ``make grade`` runs.
JupyterLab then runs in the instructor's role in that course folder; the test opens the Formgrader from the *Nbgrader*
menu, finds the assignment with its 2 submissions, enters a score and a comment for one student's written answer,
and finds both in ``gradebook.db`` (nbgrader's Gradebook API) and in the ``grades.csv`` that ``make grade`` writes
again (it regrades nothing unchanged, and keeps the hand-entered score).
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader_harness import make_course, make_submission, solution_bodies, submit

from course_lib.grading import grade_all, sandbox

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "grading" / "fixtures" / "solutions"
ASSIGNMENT = NOTEBOOK = "metrics_fixture"
WRITTEN = "written_answer"  # grade id of the answer graded by hand (2 points)
STUDENTS = ("ada", "ben")  # ada hands in the solution and a written answer, ben the untouched release
ANSWER = "The overlap counts twice in the numerator, so a prediction that misses small targets costs more."
SCORE, COMMENT = 1.5, "Right about the numerator; say what happens to an empty target."

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """A course folder with the two submissions graded by ``make grade``'s function; the seconds grading took."""
    with pytest.MonkeyPatch.context() as env:
        if "GRADER_SANDBOX" not in os.environ and not sandbox.available()[0]:
            # As tests/grading does: where bubblewrap cannot run, grade these trusted notebooks unisolated on purpose.
            env.setenv("GRADER_SANDBOX", "off")
        course = make_course(tmp_path_factory.mktemp("formgrader"), ASSIGNMENT, sources=FIXTURES)
        # The course's exchange, as README's hub step 1 makes it; without it the Formgrader shows a warning.
        (course / "exchange").mkdir()
        (course / "exchange").chmod(0o1777)
        release = nbformat.read(course / "assignments" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
        source = nbformat.read(FIXTURES / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
        solved = make_submission(release, solution_bodies(source))
        [written] = [c for c in solved.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN]
        written.source = ANSWER
        submit(course, STUDENTS[0], ASSIGNMENT, {NOTEBOOK: solved})
        submit(course, STUDENTS[1], ASSIGNMENT, {NOTEBOOK: release})
        start = time.monotonic()
        grade_all.grade_class(course, jobs=2, progress=False, quiet=True)
        yield course, time.monotonic() - start  # the test grades again, under the same setting


def read_written_grade(course: Path, student: str) -> tuple[float | None, str | None]:
    """The manual score and comment of ``student``'s written answer, as nbgrader's Gradebook API reads them."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        nb = gradebook.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
        grade = next(g for g in nb.grades if g.name == WRITTEN)
        comment = next(c for c in nb.comments if c.name == WRITTEN)
        return grade.manual_score, comment.manual_comment


def wait_for_written_grade(course: Path, student: str, expected: tuple, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while (found := read_written_grade(course, student)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"gradebook.db holds {found} for {student}'s written answer after {seconds:.0f} s, "
                                 f"expected {expected}")
        time.sleep(0.5)


def grades_csv(course: Path) -> dict[str, dict[str, str]]:
    with (course / "grades.csv").open() as f:
        return {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == ASSIGNMENT}


def test_the_instructor_grades_a_written_answer_in_the_formgrader(graded_course, labs, page, screenshot):
    course, grading_s = graded_course
    print(f"make grade of {len(STUDENTS)} submissions: {grading_s:.1f} s")
    before = grades_csv(course)
    assert set(before) == set(STUDENTS), f"grades.csv lists {sorted(before)}, expected {STUDENTS}"
    assert read_written_grade(course, STUDENTS[0]) == (None, None), "the written answer was graded before the test"

    lab = labs(course, "instructor")
    page.goto(f"{lab.url}/lab?reset&token={lab.token}")
    page.locator("#jp-MainMenu").get_by_text("Nbgrader", exact=True).click()
    page.locator(".lm-Menu").get_by_text("Formgrader", exact=True).click()
    formgrader = page.frame_locator(".jp-MainAreaWidget iframe")

    # Manage Assignments: the assignment, with its two (collected and autograded) submissions.
    row = formgrader.locator("tr", has=formgrader.locator("td.name", has_text=ASSIGNMENT))
    row.locator("td.num-submissions").wait_for(timeout=120_000)
    assert row.locator("td.num-submissions").inner_text().strip() == str(len(STUDENTS)), row.inner_text()
    screenshot(page, "instructor-formgrader-assignments")

    # Manual Grading -> the assignment -> its notebook -> ada's submission.
    formgrader.get_by_role("link", name="Manual Grading").click()
    formgrader.get_by_role("link", name=ASSIGNMENT, exact=True).click()
    formgrader.get_by_role("link", name=NOTEBOOK, exact=True).click()
    submissions = formgrader.locator("tbody tr")
    submissions.nth(len(STUDENTS) - 1).wait_for(timeout=60_000)
    assert submissions.count() == len(STUDENTS), submissions.all_inner_texts()
    # The list shows "Submission #n" until the instructor reveals the names.
    formgrader.get_by_role("button", name="Show All Names").click()
    formgrader.get_by_role("link", name=STUDENTS[0], exact=True).click()

    score = formgrader.locator(f"input.score#{WRITTEN}")
    score.wait_for(timeout=60_000)
    score.fill(str(SCORE))
    score.press("Tab")  # the change event saves the score, as the comment's below
    comment = formgrader.locator(f"textarea#{WRITTEN}-comment")
    comment.fill(COMMENT)
    comment.press("Tab")
    # Saved means in the gradebook: the page's own "saved" tick shows for a second only.
    wait_for_written_grade(course, STUDENTS[0], (SCORE, COMMENT))
    comment.scroll_into_view_if_needed()
    screenshot(page, "instructor-formgrader-written-answer")

    # What `make grade` writes at the end of every run, even when it regrades nothing.
    start = time.monotonic()
    report = grade_all.grade_class(course, jobs=2, progress=False, quiet=True)
    print(f"make grade again (nothing to regrade): {time.monotonic() - start:.1f} s")
    assert {o.status for o in report.outcomes} == {"skipped"}, [(o.student, o.status) for o in report.outcomes]
    after = grades_csv(course)
    assert float(after[STUDENTS[0]]["score"]) == float(before[STUDENTS[0]]["score"]) + SCORE, (before, after)
    assert after[STUDENTS[1]] == before[STUDENTS[1]], "the other student's grade changed"
    assert read_written_grade(course, STUDENTS[0]) == (SCORE, COMMENT), "the regrade run lost the hand grade"
