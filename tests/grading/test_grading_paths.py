"""The README's grading paths, run as written on a fresh clone of the repository.

* instructors: ``make grade JOBS=2`` on ``submitted/`` (no generate_assignment step), ``make grade FORCE=1``,
  ``make grade FROM=<LMS export>``;
* self-learners: ``make grade-me NB=<my copy>`` never writes ``assignments/``;
* students on Colab: the downloaded assignment runs its visible checks without nbgrader.

The clone uses this environment's venv (``VENV=``) and ``make -o venv`` so nothing is installed.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader_harness import ROOT, make_submission, solution_bodies

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading_paths")]

A = "ch05_right_reasons"  # the quickest assignment to grade; every path runs its small training cell


def make(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE", "JOBS", "FROM", "NB", "COURSE_RESULTS")}
    env["PYTHONPATH"] = str(clone)  # the clone's course_lib, not the one installed in the venv
    env["NBGRADER_TIMEOUT"] = "120"  # the training cell, on a machine busy with the other tests
    result = subprocess.run(["make", "-o", "venv", f"VENV={sys.prefix}", *args, "--no-print-directory"],
                            cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"make {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def grades(clone: Path) -> dict[tuple[str, str], float]:
    with open(clone / "grades.csv") as f:
        return {(r["student_id"], r["assignment"]): float(r["raw_score"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    path = tmp_path_factory.mktemp("clone") / "course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True)
    source = nbformat.read(path / "solutions" / A / f"{A}.ipynb", as_version=4)
    release = nbformat.read(path / "assignments" / A / f"{A}.ipynb", as_version=4)
    full = sum(c.metadata["nbgrader"].get("points", 0) for c in source.cells
               if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution"))
    visible = sum("visible checks passed" in c.source for c in release.cells if c.cell_type == "code")
    return {"path": path, "filled": make_submission(release, solution_bodies(source)), "release": release,
            "full": full, "visible": visible}


def test_make_grade_on_a_fresh_clone_then_force_regrade(clone):
    path = clone["path"]
    folder = path / "submitted" / "alice" / A
    folder.mkdir(parents=True)
    nbformat.write(clone["filled"], folder / f"{A}.ipynb")
    out = make(path, "grade", "JOBS=2").stdout
    assert grades(path)[("alice", A)] == clone["full"], out[-2000:]
    assert "could not be graded: 0" in out
    if shutil.which("bwrap"):
        assert "bubblewrap sandbox" in out, out[:500]
    assert (path / "feedback" / "alice" / A / f"{A}.html").is_file()
    again = make(path, "grade").stdout
    assert "1 unchanged" in again and "grading 0 submission" in again
    forced = make(path, "grade", "FORCE=1").stdout
    assert "grading 1 submission" in forced and grades(path)[("alice", A)] == clone["full"]


def test_make_grade_from_an_lms_export(clone, tmp_path):
    export = tmp_path / "lms_export"
    (export / "bob").mkdir(parents=True)
    nbformat.write(clone["release"], export / "bob" / f"{A}.ipynb")  # bob handed in the blank release
    out = make(clone["path"], "grade", f"FROM={export}", "JOBS=1").stdout
    assert grades(clone["path"])[("bob", A)] == 0, out[-2000:]
    assert "bob" in out


def test_self_learner_grades_a_copy_without_touching_assignments(clone, tmp_path):
    path = clone["path"]
    mine = tmp_path / "mywork" / f"{A}.ipynb"
    mine.parent.mkdir()
    nbformat.write(clone["filled"], mine)
    before = subprocess.run(["git", "status", "--porcelain", "assignments"], cwd=path, capture_output=True,
                            text=True).stdout
    make(path, "grade-me", f"NB={mine}")
    assert grades(path)[("me", A)] == clone["full"]
    assert (path / "feedback" / "me" / A / f"{A}.html").is_file()
    after = subprocess.run(["git", "status", "--porcelain", "assignments"], cwd=path, capture_output=True,
                           text=True).stdout
    assert before == after == ""


def test_colab_student_runs_the_visible_checks_without_nbgrader(clone, tmp_path):
    from nbclient import NotebookClient

    blocker = tmp_path / "no_nbgrader"
    blocker.mkdir()
    (blocker / "nbgrader.py").write_text("raise ImportError('nbgrader is not installed on Colab')\n")
    env = {"PYTHONPATH": f"{blocker}{os.pathsep}{clone['path']}"}
    nb = nbformat.from_dict(clone["filled"])
    nb.cells.append(nbformat.v4.new_code_cell("import importlib.util\nprint('nbgrader importable:', "
                                              "importlib.util.find_spec('nbgrader') is not None and "
                                              "__import__('nbgrader') is not None)"))
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({"PYTHONPATH": env["PYTHONPATH"]})
    try:
        client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    text = "\n".join(o.get("text", "") + o.get("evalue", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert clone["visible"] >= 4 and text.count("visible checks passed") == clone["visible"], text[-3000:]
    assert "nbgrader is not installed on Colab" in text, "the check ran with nbgrader importable"
