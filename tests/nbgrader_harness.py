"""Helpers to build a throw-away nbgrader course and fake student submissions from it.

A submission is the student release with each solution stub replaced by code: the
reference solution (from ``solutions/``), optionally edited by exact string replacements
that reproduce a common mistake. Each replacement must match, so a fixture can never
silently turn into a correct submission when the solution changes.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION\n?", re.S | re.M)


def nbgrader_env(timeout: int | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # nbgrader calls alembic
    env.pop("COURSE_RESULTS", None)
    if timeout is not None:
        env["NBGRADER_TIMEOUT"] = str(timeout)
    return env


def run_nbgrader(args: list[str], course_dir: Path, timeout: int | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=nbgrader_env(timeout),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def make_course(tmp: Path, *assignments: str, sources: Path = ROOT / "solutions") -> Path:
    """A course folder with this repository's config and the assignments' sources (from ``sources``), released with
    a gradebook."""
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for assignment in assignments:
        shutil.copytree(sources / assignment, course / "solutions" / assignment)
        run_nbgrader(["generate_assignment", assignment, "--force"], course)
    return course


def solution_bodies(source_nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the code between BEGIN/END SOLUTION of each solution code cell (indent kept)."""
    bodies = {}
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            match = SOLUTION_REGION.search(cell.source)
            assert match, f"solution cell {meta['grade_id']} has no BEGIN/END SOLUTION region"
            bodies[meta["grade_id"]] = match.group(2)
    return bodies


def make_submission(release_nb: nbformat.NotebookNode, bodies: dict[str, str] | None,
                    edits: dict[str, list[tuple[str, str]]] | None = None) -> nbformat.NotebookNode:
    """Fill the release's stubs with ``bodies`` (None: leave the release untouched), applying ``edits``."""
    nb = nbformat.from_dict(release_nb)
    if bodies is None:
        return nb
    edits = edits or {}
    unknown = set(edits) - set(bodies)
    assert not unknown, f"edits name cells without a solution: {unknown}"
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or grade_id not in bodies:
            continue
        body = bodies[grade_id]
        for old, new in edits.get(grade_id, []):
            assert old in body, f"mistake fixture for {grade_id!r}: {old!r} not found in the solution"
            body = body.replace(old, new)
        indent = re.search(r"^([ \t]*)# YOUR CODE HERE", cell.source, re.M).group(1)
        stub = "\n".join(indent + line for line in STUB.split("\n"))
        assert stub in cell.source, f"release cell {grade_id!r} lost its stub"
        cell.source = cell.source.replace(stub, body.rstrip("\n"))
    return nb


def submit(course: Path, student: str, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / f"{name}.ipynb")


def cell_scores(course: Path, assignment: str, notebook: str, student: str) -> dict[str, float | None]:
    """grade_id -> score of every graded cell of a student's autograded notebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        nb = gradebook.find_submission_notebook(notebook, assignment, student)
        return {grade.name: grade.score for grade in nb.grades}


def html_text(page: str) -> str:
    """The visible text of an HTML page: tags removed (code is split into highlighting spans), entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def hidden_test_lines(source_nb: nbformat.NotebookNode) -> list[str]:
    """The hidden test lines the grader scrubs from feedback: the grader's own definition, so the tests check
    exactly the lines that protect students (:func:`course_lib.grading.feedback.hidden_lines`)."""
    from course_lib.grading.feedback import hidden_lines

    return hidden_lines(source_nb)


Spec = tuple  # (edits or None, score differences from FULL, words the feedback must contain)


def bundle_mistakes(submissions: dict[str, Spec], alone: tuple[str, ...] = ("correct", "untouched_release")
                    ) -> dict[str, tuple[Spec, tuple[str, ...]]]:
    """Pack independent mistakes into fewer submissions, so a batch grades (and trains) fewer notebooks.

    Two mistakes share a submission only when they edit different exercises and change disjoint sets of graded
    cells: each cell's score then depends on one mistake at most, and the bundle's expected scores are the union
    of its members'. Greedy, in the order given (first bundle that fits), so the packing is deterministic. Names
    in ``alone`` and the untouched release (edits None) always stay alone.

    Returns
    -------
    dict
        bundle name (its members joined by ``+``) -> ((edits, score differences, feedback words), members).
    """
    bundles: list[tuple[list[str], dict, dict, list]] = []
    out: dict[str, tuple[Spec, tuple[str, ...]]] = {}
    for student, (edits, diff, words) in submissions.items():
        if edits is None or student in alone:
            out[student] = ((edits, diff, words), (student,))
            continue
        for members, b_edits, b_diff, b_words in bundles:
            if not set(edits) & set(b_edits) and not set(diff) & set(b_diff):
                members.append(student)
                b_edits.update(edits)
                b_diff.update(diff)
                b_words.extend(words)
                break
        else:
            bundles.append(([student], dict(edits), dict(diff), list(words)))
    for members, b_edits, b_diff, b_words in bundles:
        out["+".join(members)] = ((b_edits, b_diff, b_words), tuple(members))
    return out
