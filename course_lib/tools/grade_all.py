"""Autograde every collected submission, write feedback and export grades (``make grade``).

For each assignment with submissions in ``submitted/<student>/<assignment>/``:

1. ``nbgrader autograde <assignment> --create`` — one call grades every student; students
   missing from the gradebook are added. A cell that runs past ``NBGRADER_TIMEOUT`` seconds
   is interrupted and scores 0; the rest of the notebook and of the batch is still graded.
2. ``nbgrader generate_feedback <assignment>`` — HTML feedback without hidden tests.
3. ``nbgrader export`` — ``grades.csv`` in the course folder.

Manually graded answers (the written questions) still need ``nbgrader formgrader`` or the
Formgrader tab in Jupyter before their points count.

Usage::

    python -m course_lib.tools.grade_all [--course-dir DIR] [--assignment ID ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def nbgrader(args: list[str], course_dir: Path, env: dict | None = None) -> None:
    """Run an nbgrader command in ``course_dir`` with this interpreter's bin folder on PATH (for alembic)."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env, check=True)


def submitted_assignments(course_dir: Path) -> list[str]:
    return sorted({p.name for p in (course_dir / "submitted").glob("*/*") if p.is_dir()})


def grade(course_dir: Path, assignments: list[str] | None = None, *, timeout: int | None = None) -> Path:
    """Autograde, write feedback and export; returns the path of ``grades.csv``.

    ``timeout`` overrides ``NBGRADER_TIMEOUT`` (seconds one cell may run).
    """
    course_dir = Path(course_dir).resolve()
    env = dict(os.environ)
    if timeout is not None:
        env["NBGRADER_TIMEOUT"] = str(timeout)
    if not (course_dir / "nbgrader_config.py").is_file():
        raise FileNotFoundError(f"no nbgrader_config.py in {course_dir}: is it the course folder?")
    assignments = assignments or submitted_assignments(course_dir)
    if not assignments:
        raise FileNotFoundError(f"no submissions in {course_dir / 'submitted'} (expected <student>/<assignment>/)")
    for assignment in assignments:
        print(f"== {assignment}: autograde", flush=True)
        nbgrader(["autograde", assignment, "--create"], course_dir, env)
        print(f"== {assignment}: feedback", flush=True)
        nbgrader(["generate_feedback", assignment, "--force"], course_dir, env)
    csv = course_dir / "grades.csv"
    nbgrader(["export", f"--CsvExportPlugin.to={csv}"], course_dir, env)
    print(f"grades written to {csv}")
    return csv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course-dir", type=Path, default=ROOT)
    parser.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    args = parser.parse_args(argv)
    try:
        grade(args.course_dir, args.assignment)
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
