"""A grading worker: autogrades one submission at a time in a private copy of the course.

Started by :mod:`.pool` as ``python -m course_lib.grading.worker COURSE WORKDIR RELEASE_DIR``.
``WORKDIR`` becomes a course folder of its own: ``solutions`` links to the course's, the gradebook
is a copy of the course's (taken after registration), and ``submitted/``, ``autograded/`` and
``feedback/`` hold only the submissions this worker graded. Jobs arrive as JSON lines on stdin
(``{"student", "assignment", "folder"}``); each answer is one JSON line on the original stdout
(everything nbgrader and the kernels print goes to stderr):

``{"status": "graded" | "rejected" | "error", "reason", "notes", "flags", "problems", "seconds"}``
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbgrader.converters.base import BaseConverter

from . import execute, files, intake
from . import feedback as feedback_html
from .gradebook import api_for


def set_permissions_without_links(converter, assignment_id: str, student_id: str) -> None:
    """nbgrader's ``BaseConverter.set_permissions``, except that a link is skipped, never followed.

    nbgrader chmods every entry of the output folder with ``os.chmod``, which follows a link: a student's
    link to ``solutions/`` or ``gradebook.db`` there would make that file read-only (or writable).
    """
    dest = os.path.normpath(converter._format_dest(assignment_id, student_id))
    permissions = int(str(converter.permissions), 8)
    for dirname, _, filenames in os.walk(dest, followlinks=False):
        for filename in filenames:
            path = os.path.join(dirname, filename)
            if not os.path.islink(path):
                os.chmod(path, permissions)


BaseConverter.set_permissions = set_permissions_without_links  # every converter this worker runs


def prepare(course: Path, workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "solutions").symlink_to(course / "solutions", target_is_directory=True)
    # the course's gradebook as it was right after registration (the main process writes the live one)
    shutil.copy(workdir.parent / "template.db", workdir / "gradebook.db")


class Worker:
    def __init__(self, course: Path, workdir: Path, release_dir: Path):
        self.course, self.workdir, self.release_dir = course, workdir, release_dir
        prepare(course, workdir)
        self.api = api_for(course, root=str(workdir), db_url=f"sqlite:///{workdir / 'gradebook.db'}",
                           release_directory=str(release_dir))
        self._releases: dict[str, dict] = {}

    def releases(self, assignment: str) -> dict[str, nbformat.NotebookNode]:
        if assignment not in self._releases:
            folder = self.release_dir / assignment
            self._releases[assignment] = {p.stem: nbformat.read(p, as_version=4)
                                          for p in sorted(folder.glob("*.ipynb"))}
        return self._releases[assignment]

    def grade(self, student: str, assignment: str, folder: str) -> dict:
        start = time.monotonic()
        reply = {"notes": [], "flags": [], "problems": []}
        try:
            taken = intake.take(Path(folder), self.releases(assignment))
        except intake.Rejected as error:
            return {**reply, "status": "rejected", "reason": str(error), "seconds": time.monotonic() - start}
        reply["notes"], reply["flags"] = taken.notes, taken.flags
        for sub in ("submitted", "autograded", "feedback"):
            shutil.rmtree(self.workdir / sub / student / assignment, ignore_errors=True)
        target = self.workdir / "submitted" / student / assignment
        target.mkdir(parents=True)
        for name, nb in taken.notebooks.items():
            nbformat.write(nb, target / f"{name}.ipynb")
        # the secret names the student's feedback in the exchange (`nbgrader release_feedback` needs it); like the
        # notebooks, it is copied only from a plain file of its own, never through a link
        for extra in ("timestamp.txt", "submission_secret.txt"):
            if os.path.lexists(Path(folder) / extra):
                try:
                    (target / extra).write_bytes(files.read_regular(Path(folder) / extra, 4096))
                except files.NotRegular as error:
                    reply["flags"].append(f"{error}: not copied")
        execute.RUN_LOG.clear()
        result = self.api.autograde(assignment, student, force=True, create=True)
        reply["problems"] = [p for run in execute.RUN_LOG for p in run["problems"]]
        if not result["success"]:
            log = (result.get("log", "") + result.get("error", "")).strip().splitlines()
            errors = [line for line in log if "ERROR" in line or "Error" in line] or log
            return {**reply, "status": "error", "reason": "autograde failed: " + " | ".join(errors[-3:])[-500:],
                    "seconds": time.monotonic() - start}
        feedback = self.api.generate_feedback(assignment, student, force=True)
        if not feedback["success"]:
            reply["problems"].append("feedback could not be generated: "
                                     + feedback.get("error", "").strip().splitlines()[-1][-300:])
        # released to the student: the graded notebooks' feedback and nothing else, with no script in it
        kept = {f"{name}.html" for name in taken.notebooks} | {"timestamp.txt", "submission_secret.txt"}
        for sub, keep in (("feedback", kept), ("autograded", {f"{name}.ipynb" for name in taken.notebooks} | kept)):
            reply["problems"] += files.prune(self.workdir / sub / student / assignment, keep)
        feedback_html.sanitise_folder(self.workdir / "feedback" / student / assignment)
        return {**reply, "status": "graded", "seconds": time.monotonic() - start}


def main(argv: list[str]) -> int:
    course, workdir, release_dir = (Path(a).resolve() for a in argv[:3])
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed to stdout goes to stderr
    sys.stdout = sys.stderr
    worker = Worker(course, workdir, release_dir)
    answers.write(json.dumps({"status": "ready"}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        try:
            reply = worker.grade(job["student"], job["assignment"], job["folder"])
        except Exception as error:  # noqa: BLE001 - one submission must never stop the worker
            reply = {"status": "error", "reason": f"{type(error).__name__}: {error}"[-500:], "notes": [],
                     "flags": [], "problems": [], "seconds": 0.0}
        answers.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
