"""The course's gradebook: register assignments, merge what workers graded, export grades.

Each worker grades in its own course copy with its own SQLite gradebook (a copy of the course's
taken after registration), so no two processes ever write one database. After each submission
the main process copies that submission's rows into the course's gradebook, one at a time.
Hand-graded scores already in the course's gradebook are kept on a regrade.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import warnings
from pathlib import Path

import sqlalchemy.exc
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.plugins import CsvExportPlugin
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader


def load_config(course_dir: Path, **overrides) -> Config:
    """The course's ``nbgrader_config.py`` with ``CourseDirectory`` overrides (root, db_url, ...)."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    for key, value in overrides.items():
        setattr(config.CourseDirectory, key, value)
    return config


def api_for(course_dir: Path, **overrides) -> NbGraderAPI:
    config = load_config(course_dir, **overrides)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def db_url(course_dir: Path) -> str:
    return f"sqlite:///{Path(course_dir) / 'gradebook.db'}"


def register(course_dir: Path, assignments: list[str], release_dir: Path) -> None:
    """Write each assignment into the course's gradebook (and its release into ``release_dir``, never assignments/).

    This is ``nbgrader generate_assignment --force`` pointed at a scratch release folder: it records
    the assignment, its notebooks and graded cells, which ``autograde`` needs, on every run, so a
    changed source is picked up and a fresh clone needs no manual step.
    """
    release_dir = Path(release_dir)
    shutil.rmtree(release_dir, ignore_errors=True)
    release_dir.mkdir(parents=True)
    api = api_for(course_dir, release_directory=str(release_dir), db_url=db_url(course_dir))
    for assignment in assignments:
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"could not register {assignment}:\n{result.get('log', '')[-2000:]}"
                               f"\n{result.get('error', '')[-2000:]}")


def merge_submission(course_db: str, worker_db: str, assignment: str, student: str) -> None:
    """Copy one graded submission from a worker's gradebook into the course's."""
    with warnings.catch_warnings():  # nbgrader's own autoflush warnings while it creates a submission
        warnings.simplefilter("ignore", sqlalchemy.exc.SAWarning)
        _merge(course_db, worker_db, assignment, student)


def _merge(course_db: str, worker_db: str, assignment: str, student: str) -> None:
    with Gradebook(worker_db) as source, Gradebook(course_db) as target:
        graded = source.find_submission(assignment, student)
        target.update_or_create_student(student)
        kwargs = {"timestamp": graded.timestamp} if graded.timestamp else {}
        target.update_or_create_submission(assignment, student, **kwargs)
        for nb in graded.notebooks:
            mine = target.find_submission_notebook(nb.name, assignment, student)
            mine.late_submission_penalty = nb.late_submission_penalty
            mine.flagged = nb.flagged
            grades = {g.name: g for g in mine.grades}
            for grade in nb.grades:
                into = grades[grade.name]
                into.auto_score = grade.auto_score
                into.needs_manual_grade = grade.needs_manual_grade and into.manual_score is None
            comments = {c.name: c for c in mine.comments}
            for comment in nb.comments:
                comments[comment.name].auto_comment = comment.auto_comment
        target.db.commit()


def ensure_student(course_db: str, student: str) -> None:
    with Gradebook(course_db) as gb:
        gb.update_or_create_student(student)


def remove_submission(course_db: str, assignment: str, student: str) -> None:
    """Forget a previous grade of a submission that can no longer be graded (it scores 0)."""
    with Gradebook(course_db) as gb, contextlib.suppress(MissingEntry):
        gb.remove_submission(assignment, student)


def scores(course_db: str) -> dict[tuple[str, str], tuple[float, float, bool]]:
    """(student, assignment) -> (score, max score, needs manual grading) of every submission."""
    out = {}
    with Gradebook(course_db) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                out[submission.student.id, assignment.name] = (
                    submission.score, assignment.max_score, bool(submission.needs_manual_grade))
    return out


def max_scores(course_db: str) -> dict[str, float]:
    with Gradebook(course_db) as gb:
        return {a.name: a.max_score for a in gb.assignments}


def written_scores(course_db: str) -> dict[str, float]:
    """assignment -> the points of its written answers (graded by hand), for assignments that have any."""
    with Gradebook(course_db) as gb:
        return {a.name: a.max_written_score for a in gb.assignments if a.max_written_score}


def export_csv(course_db: str, path: Path) -> Path:
    """``nbgrader export``: one row per student and assignment of the gradebook."""
    plugin = CsvExportPlugin()
    plugin.to = str(path)
    with Gradebook(course_db) as gb, contextlib.redirect_stdout(io.StringIO()):
        plugin.export(gb)
    return Path(path)
