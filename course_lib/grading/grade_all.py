"""Autograde a class in parallel, write feedback, export grades (``make grade``).

What it grades (one *submission* = one student's folder for one assignment):

* ``submitted/<student>/<assignment>/`` in the course folder (nbgrader's ``collect`` puts them there);
* or ``--from DIR``: an LMS export, ``DIR/<student>/<assignment>/*.ipynb`` or ``DIR/<student>/<notebook>.ipynb``;
* or ``--self [NOTEBOOK ...]``: a self-learner's own notebooks, graded as student ``me``
  (default: the notebooks in ``assignments/``, which are only read).

Every run registers the assignments it grades in ``gradebook.db`` (no ``generate_assignment``
step; ``assignments/`` is never written), grades the submissions that are new or changed since
the last run (``--force``: all of them) in ``--jobs`` worker processes (default: the number of
cores), each in a sandbox with a per-cell timeout, a per-notebook budget and a per-submission time
limit (see :mod:`course_lib.grading`), and always ends with ``grades.csv``,
``grading_summary.csv`` and a printed list of the submissions it could not grade and why.

Written answers still need ``nbgrader formgrader`` (or the Formgrader tab) before their points count.

Usage::

    python -m course_lib.grading.grade_all [--jobs N] [--force] [--from DIR] [--assignment ID ...]
                                         [--student ID ...] [--timeout S] [--time-limit S] [--self [NB ...]]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ".grading"  # scratch folder of a run inside the course folder (git-ignored)


@dataclass
class Report:
    csv: Path
    summary_csv: Path
    outcomes: list
    table: list[dict]
    isolation: str


def course_assignments(course_dir: Path) -> dict[str, list[str]]:
    """assignment id -> the names of its notebooks (from ``solutions/``)."""
    return {p.name: sorted(nb.stem for nb in p.glob("*.ipynb"))
            for p in sorted((course_dir / "solutions").glob("*")) if p.is_dir()}


def _stage(notebook: Path, work: Path, student: str, assignment: str) -> str:
    """A folder of its own for a loose notebook; the copy is made only from a plain file (:mod:`.files`)."""
    from course_lib.grading import files

    folder = work / "staging" / student / assignment
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / notebook.name).write_bytes(files.read_regular(notebook))
    return str(folder)


def discover(source: Path, known: dict[str, list[str]], work: Path) -> tuple[list, list]:
    """Jobs for every submission under ``source``, and outcomes for folders that are no assignment."""
    from course_lib.grading import files
    from course_lib.grading.pool import Job, Outcome

    by_notebook = {name: a for a, names in known.items() for name in names}
    jobs, rejected = [], []
    if not source.is_dir():
        return jobs, rejected
    for student_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = student_dir.name
        if student_dir.is_symlink():  # another student's folder, solutions/, ...: never graded through a link
            rejected.append(Outcome(student, "(all)", "rejected", f"{student}/ is a symbolic link, not a folder: "
                                    "the grader never follows a link"))
            continue
        for entry in sorted(student_dir.iterdir()):
            if entry.name.startswith("."):
                continue
            name = entry.stem if entry.suffix == ".ipynb" else entry.name
            if entry.is_symlink() and (entry.name in known or name in by_notebook):
                rejected.append(Outcome(student, by_notebook.get(name, name), "rejected",
                                        f"{entry.name} is a symbolic link: the grader never follows a link"))
            elif entry.is_dir() and entry.name in known:
                jobs.append(Job(student, entry.name, str(entry)))
            elif entry.suffix == ".ipynb" and entry.stem in by_notebook:
                assignment = by_notebook[entry.stem]
                try:
                    jobs.append(Job(student, assignment, _stage(entry, work, student, assignment)))
                except files.NotRegular as error:
                    rejected.append(Outcome(student, assignment, "rejected",
                                            f"{error}: the grader reads only plain files"))
            elif entry.is_dir():
                rejected.append(Outcome(student, entry.name, "rejected", f"no assignment called {entry.name!r}"))
            elif entry.suffix == ".ipynb":
                rejected.append(Outcome(student, entry.stem, "rejected",
                                        f"{entry.name}: no assignment has a notebook of that name"))
    return jobs, rejected


def self_jobs(notebooks: list[Path], known: dict[str, list[str]], work: Path, course_dir: Path) -> list:
    from course_lib.grading.pool import Job

    by_notebook = {name: a for a, names in known.items() for name in names}
    if not notebooks:
        notebooks = sorted((course_dir / "assignments").glob("*/*.ipynb"))
    jobs = []
    for nb in notebooks:
        nb = Path(nb).resolve()
        assignment = by_notebook.get(nb.stem) or (nb.parent.name if nb.parent.name in known else None)
        if assignment is None:
            raise FileNotFoundError(f"{nb}: its name matches no assignment ({', '.join(by_notebook)})")
        jobs.append(Job("me", assignment, _stage(nb, work, "me", assignment)))
    return jobs


def fingerprint(job, course_dir: Path) -> str:
    """A hash of the submission's plain files and of its source; a link or fifo counts by name, never read."""
    digest = hashlib.sha256()
    paths = [Path(root) / name for root, dirs, names in os.walk(job.folder) for name in names + dirs]
    for path in sorted(paths) + sorted((course_dir / "solutions" / job.assignment).glob("*")):
        digest.update(path.name.encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def grade_class(course_dir: Path = ROOT, assignments: list[str] | None = None, *, students: list[str] | None = None,
                source: Path | None = None, self_notebooks: list[Path] | None = None, jobs: int | None = None,
                force: bool = False, timeout: int | None = None, time_limit: float = 900,
                progress: bool = True, quiet: bool = False) -> Report:
    """Grade every (new or changed; ``force``: every) submission; see the module docstring."""
    from course_lib.grading import gradebook, pool, sandbox, summary

    course_dir = Path(course_dir).resolve()
    if not (course_dir / "nbgrader_config.py").is_file():
        raise FileNotFoundError(f"no nbgrader_config.py in {course_dir}: is it the course folder?")
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls alembic from PATH
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    if timeout is not None:
        os.environ["NBGRADER_TIMEOUT"] = str(int(timeout))
    jobs = jobs or os.cpu_count() or 1
    known = course_assignments(course_dir)
    unknown = sorted(set(assignments or []) - set(known))
    if unknown:
        raise ValueError(f"assignments must be among {sorted(known)}, got {unknown}")
    work = course_dir / WORK
    work.mkdir(exist_ok=True)
    if self_notebooks is not None:
        todo, rejected = self_jobs(self_notebooks, known, work, course_dir), []
    else:
        todo, rejected = discover(Path(source) if source else course_dir / "submitted", known, work)
    todo = [j for j in todo
            if (not assignments or j.assignment in assignments) and (not students or j.student in students)]
    rejected = [o for o in rejected if not students or o.student in students]
    if not todo and not rejected:
        where = "the given notebooks" if self_notebooks is not None else (source or course_dir / "submitted")
        raise FileNotFoundError(f"no submissions in {where} (expected <student>/<assignment>/)")
    # refuses unless the sandbox runs or GRADER_SANDBOX=off was asked for (a self-learner's own work excepted)
    isolation = sandbox.check(own_work=self_notebooks is not None)

    course_db = gradebook.db_url(course_dir)
    release_dir = work / "release"
    gradebook.register(course_dir, sorted({j.assignment for j in todo}) or sorted(known), release_dir)
    shutil.copy(course_dir / "gradebook.db", work / "template.db")

    state_path = work / "graded.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    skipped = []
    if not force:
        fresh = []
        for job in todo:
            key = f"{job.student}/{job.assignment}"
            done = (course_dir / "autograded" / job.student / job.assignment).is_dir()
            if done and state.get(key) == fingerprint(job, course_dir):
                skipped.append(pool.Outcome(job.student, job.assignment, "skipped",
                                            "unchanged since it was graded (FORCE=1 regrades)"))
            else:
                fresh.append(job)
        todo = fresh
    if not quiet:
        print(f"grading {len(todo)} submission(s) in {min(jobs, max(len(todo), 1))} worker(s), {isolation}; "
              f"{len(skipped)} unchanged, {len(rejected)} rejected before grading", flush=True)

    fingerprints = {f"{j.student}/{j.assignment}": fingerprint(j, course_dir) for j in todo}

    def remember(outcome):
        key = f"{outcome.student}/{outcome.assignment}"
        if outcome.status == "graded":
            state[key] = fingerprints[key]
        else:
            state.pop(key, None)
        state_path.write_text(json.dumps(state, indent=1, sort_keys=True))

    outcomes = pool.run(todo, course_dir, jobs_n=jobs, time_limit=time_limit, work_root=work,
                        release_dir=release_dir, on_outcome=remember, progress=progress) if todo else []
    for outcome in rejected:
        gradebook.remove_submission(course_db, outcome.assignment, outcome.student)
        gradebook.ensure_student(course_db, outcome.student)
    outcomes = outcomes + rejected + skipped

    csv_path = gradebook.export_csv(course_db, course_dir / "grades.csv")
    table = summary.rows(outcomes, gradebook.scores(course_db), gradebook.max_scores(course_db))
    summary_csv = summary.write_csv(table, course_dir / "grading_summary.csv")
    if not quiet:
        print(summary.render(table, isolation, gradebook.written_scores(course_db)))
        print(f"grades written to {csv_path}; summary in {summary_csv}; feedback in {course_dir / 'feedback'}")
    return Report(csv_path, summary_csv, outcomes, table, isolation)


def grade(course_dir: Path, assignments: list[str] | None = None, *, timeout: int | None = None, **kwargs) -> Path:
    """Grade and return the path of ``grades.csv`` (see :func:`grade_class`)."""
    return grade_class(course_dir, assignments, timeout=timeout, **kwargs).csv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course-dir", type=Path, default=ROOT)
    parser.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    parser.add_argument("--student", action="append", help="grade only this student (repeatable)")
    parser.add_argument("--from", dest="source", type=Path, help="folder of submissions, one folder per student")
    parser.add_argument("--self", dest="self_notebooks", nargs="*", type=Path,
                        help="grade your own notebooks as student 'me' (default: those in assignments/)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS") or 0) or None,
                        help="worker processes (default: the number of cores)")
    parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE", "") not in ("", "0"),
                        help="regrade submissions that were already graded")
    parser.add_argument("--timeout", type=int, help="seconds one cell may run (default NBGRADER_TIMEOUT or 60)")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds one submission may take in all")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    try:
        grade_class(args.course_dir, args.assignment, students=args.student, source=args.source,
                    self_notebooks=args.self_notebooks, jobs=args.jobs, force=args.force, timeout=args.timeout,
                    time_limit=args.time_limit, progress=not args.no_progress)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
