"""The grading torture suite: one class of hostile and broken submissions, graded in ONE `make grade` batch.

Every case is graded or rejected with a reason, the batch always completes, feedback never shows
hidden tests, and no submission raises its own score or touches another's (``victim`` is graded
beside the attackers). Assignment: ``fixtures/solutions/metrics_fixture``, a frozen copy of an early chapter-2
assignment (five metric exercises, 10 autograded points + 2 written, no training cell), so that what is tested is
the grader, not the course's current assignments.

Cases (student -> what it does): correct; victim (correct, attacked by attacks_disk); wrong (control);
blank (the untouched release); infinite_loop (precision loops, iou and dice call it); crashes (os._exit,
a ctypes segfault, a 64 GB allocation and sys.exit, one per exercise); attacks_disk (writes into another
student's submitted/ and autograded/, reads solutions/, writes gradebook.db); patches_isclose (math.isclose,
numpy.isclose/allclose, torch.allclose before the tests); patches_helpers (rebinds the notebook's ``np``);
patches_during_test (patches numpy.isclose while a test runs); prints_hidden_tests (prints the test cell
that calls it); imports_reference (calls course_lib.metrics); never_idle (the kernel stops reporting
"idle"); damaged (deleted test cell, test cell turned into markdown, duplicated grade id, the literal
hidden-test marker, 50 MB of outputs); edited_locked_cell; renamed_notebook; invalid_json; empty_file; and the
attacks on other students and on confidentiality of ``torture_isolation`` (links, hard links, fifos, the instructor's
environment, scripts in the feedback) and of ``torture_hooks`` (input and AST transformers; the course's reference
called with the guard's hook switched off; a lying Tensor subclass and numpy patched below isclose). The forced
regrade runs with a busy loop on every core.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torture_hooks as hooks
import torture_isolation as isolation
from nbgrader_harness import cell_scores, hidden_test_lines, html_text, make_course, make_submission, solution_bodies

from course_lib.grading import sandbox
from course_lib.grading.grade_all import grade_class

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("torture")]  # one graded batch

# Only the sandbox keeps one student's code away from another's files. Where it cannot run (no bubblewrap, and not
# GRADER_SANDBOX=require, which CI sets and which makes these tests fail instead), the cases that need it are skipped
# with the reason, instead of failing on a machine that never had the sandbox.
ISOLATED, WHY_NOT_ISOLATED = sandbox.available()
needs_sandbox = pytest.mark.skipif(
    not ISOLATED and sandbox.mode() != "require",
    reason=f"the grader's sandbox cannot run here ({WHY_NOT_ISOLATED}), so isolation is not tested: `make` installs "
           "bubblewrap when it runs as root with apt-get; otherwise run `apt-get install bubblewrap` as root")


def _cases(students):
    """``students`` as parameters; the victim's outcome depends on the sandbox (see ``needs_sandbox``)."""
    return [pytest.param(s, marks=needs_sandbox) if s == "victim" else s for s in students]

A = "metrics_fixture"
FIXTURES = Path(__file__).parent / "fixtures" / "solutions"
TIMEOUT = 15  # seconds per cell; once one cell timed out the others get 10 s (GuardedExecute)
FULL = {"test_precision": 1, "test_iou": 2, "test_dice": 2, "test_soft_dice_loss": 3, "test_mean_dice": 2}
ZERO = dict.fromkeys(FULL, 0)
WRONG = {"precision": "    return 0.25\n", "iou": "    return 0.25\n", "dice": "    return 0.25\n",
         "soft_dice_loss": "    return (logits * 0).sum()\n", "mean_dice": "    return 0.25\n"}


FAKE_NUMPY = """

class _Fake:
    def __getattr__(self, name):
        return lambda *a, **k: True


np = _Fake()
"""


def _body(code: str, indent: str = "    ") -> str:
    return "".join(indent + line + "\n" for line in code.strip("\n").split("\n"))


def build(course, kind, bodies, release):
    """Notebook (or raw bytes) of each case; `course` is the absolute course folder the attacks aim at."""
    wrong = {**bodies, **WRONG}
    victim_nb = course / "submitted" / "victim" / A / f"{A}.ipynb"
    attacks = _body(f"""
import os, sqlite3
for path in [{str(victim_nb)!r}, {str(course / "autograded" / "victim" / A / "evil.txt")!r}]:
    try:
        open(path, "w").write("{{}}")
        print("WROTE", path)
    except Exception as error:
        print("blocked", type(error).__name__)
try:
    print(open({str(course / "solutions" / A / f"{A}.ipynb")!r}).read())
except Exception as error:
    print("blocked", type(error).__name__)
try:
    db = sqlite3.connect({str(course / "gradebook.db")!r})
    db.execute("update grade set manual_score = 100")
    db.commit()
    print("WROTE gradebook")
except Exception as error:
    print("blocked", type(error).__name__)
""")
    cases = {
        "correct": (bodies, None),
        "victim": (bodies, None),
        "wrong": (wrong, None),
        "blank": (None, None),
        # one looping function called by three test cells: the first timeout is paid once
        "infinite_loop": ({**bodies, "precision": _body("while True:\n    pass"),
                           "iou": _body("return precision(pred, target)"),
                           "dice": _body("return precision(pred, target)")}, None),
        # four ways to die, one per exercise: os._exit, a segfault, a memory hog, sys.exit
        "crashes": ({**bodies, "precision": _body("import os\nos._exit(1)"),
                     "iou": _body("import ctypes\nctypes.string_at(0)"),
                     "dice": _body("x = bytearray(64 * 2**30)\nreturn 1.0"),
                     "mean_dice": _body("import sys\nsys.exit(0)")}, None),
        "attacks_disk": ({**wrong, "precision": attacks + WRONG["precision"]}, None),
        "patches_isclose": ({**wrong, "precision": _body(
            "import math, numpy, torch\nmath.isclose = numpy.isclose = numpy.allclose = lambda *a, **k: True\n"
            "torch.allclose = lambda *a, **k: True\nreturn 0.25")}, None),
        "patches_helpers": ({**wrong, "iou": _body("return 0.25") + FAKE_NUMPY}, None),
        "patches_during_test": ({**wrong, "dice": _body(
            "import numpy\nnumpy.isclose = lambda *a, **k: True\nreturn 0.25")}, None),
        "prints_hidden_tests": ({**bodies, "precision": _body(
            "print(get_ipython().user_ns['In'][-1])\n") + bodies["precision"]}, None),
        "imports_reference": ({**bodies, "soft_dice_loss": _body(
            "from course_lib.metrics import soft_dice_loss as reference\n"
            "return reference(logits if logits.ndim > 2 else logits[:, None], target if target.ndim > 2 "
            "else target[:, None], smooth=smooth)")}, None),
        "never_idle": ({**bodies, "precision": _body(
            "get_ipython().kernel._publish_status = lambda *a, **k: None") + bodies["precision"]}, None),
    }
    out = {}
    for student, (b, _) in cases.items():
        out[student] = make_submission(release, b)
    # structural damage to a correct submission: a deleted test cell, a test cell turned into markdown, a
    # duplicated grade id, the literal hidden-test marker in an answer and 50 MB of outputs
    nb = make_submission(release, {**bodies, "dice": "    # ### BEGIN HIDDEN TESTS\n" + bodies["dice"]})
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    dup = by_id["test_precision"].copy()
    dup.source = "assert True"
    by_id["test_iou"].cell_type = "markdown"
    by_id["test_iou"].pop("outputs", None)
    by_id["test_iou"].pop("execution_count", None)
    by_id["imports"].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (50 * 2**20))]
    nb.cells = [c for c in nb.cells if c is not by_id["test_dice"]] + [dup]
    out["damaged"] = nb
    nb = make_submission(release, wrong)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "test_precision":
            c.source = "print('precision: visible checks passed')"
    out["edited_locked_cell"] = nb
    return out


# student -> (expected autograded cell scores or None if rejected, words that must appear in the summary reasons)
EXPECTED = {
    "correct": (FULL, []),
    "victim": (FULL, []),
    "wrong": (ZERO, []),
    "blank": (ZERO, []),
    "infinite_loop": ({**FULL, "test_precision": 0, "test_iou": 0, "test_dice": 0},
                      [f"test_precision: timed out after {TIMEOUT} s", "test_iou: timed out after 10 s"]),
    "crashes": ({**ZERO, "test_soft_dice_loss": 3}, ["test_precision: the kernel died", "test_iou: the kernel died"]),
    "attacks_disk": (ZERO, []),
    "patches_isclose": (ZERO, ["math.isclose", "flagged for review"]),
    "patches_helpers": (ZERO, ["notebook.np"]),
    "patches_during_test": (ZERO, ["test_dice: patched numpy.isclose while the test ran"]),
    "prints_hidden_tests": (FULL, ["reads the notebook's own input history"]),
    "imports_reference": ({**FULL, "test_soft_dice_loss": 0}, ["imports course_lib.metrics"]),
    "never_idle": (FULL, []),
    "damaged": (FULL, ["'test_dice' was deleted (restored", "'test_iou' was changed to markdown (restored)",
                       "'test_precision' appears twice", "nbgrader marker (neutralised)"]),
    "edited_locked_cell": (ZERO, ["locked cell 'test_precision' was edited (restored)"]),
    "renamed_notebook": (FULL, [f"graded as {A}.ipynb (renamed notebook)"]),
    "invalid_json": (None, ["not valid JSON"]),
    "empty_file": (None, ["empty file"]),
    **isolation.expected(FULL),
    **hooks.expected(ZERO, FULL),
}


def torture_class(folder: Path) -> Path:
    """A course folder under ``folder`` with every case of :data:`EXPECTED` in ``submitted/``, not yet graded."""
    course = make_course(folder, A, sources=FIXTURES)
    source = nbformat.read(course / "solutions" / A / f"{A}.ipynb", as_version=4)
    release = nbformat.read(course / "assignments" / A / f"{A}.ipynb", as_version=4)
    bodies = solution_bodies(source)
    cases = {**build(course, None, bodies, release), **isolation.notebooks(course, A, bodies, release),
             **hooks.notebooks(bodies, {**bodies, **WRONG}, release)}
    for student, nb in cases.items():
        target = course / "submitted" / student / A
        target.mkdir(parents=True)
        nbformat.write(nb, target / f"{A}.ipynb")
    renamed = course / "submitted" / "renamed_notebook" / A
    renamed.mkdir(parents=True)
    nbformat.write(make_submission(release, bodies), renamed / f"Copy of {A}.ipynb")
    for student, content in {"invalid_json": b'{"cells": [', "empty_file": b""}.items():
        (course / "submitted" / student / A).mkdir(parents=True)
        (course / "submitted" / student / A / f"{A}.ipynb").write_bytes(content)
    isolation.place(course, A, cases["correct"])
    return course


@pytest.fixture(scope="module")
def torture(tmp_path_factory):
    course = torture_class(tmp_path_factory.mktemp("torture"))
    source = nbformat.read(course / "solutions" / A / f"{A}.ipynb", as_version=4)
    victim_bytes = (course / "submitted" / "victim" / A / f"{A}.ipynb").read_bytes()
    protected = isolation.protected(course)
    saved = {k: os.environ.get(k) for k in isolation.SECRETS}
    os.environ.update(isolation.SECRETS)  # the instructor's shell: none of it may reach a student
    try:
        report = grade_class(course, jobs=2, timeout=TIMEOUT, time_limit=600, progress=False)
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})
    return {"course": course, "report": report, "source": source, "victim_bytes": victim_bytes,
            "protected": protected, "rows": {r["student"]: r for r in report.table}}


def test_every_case_has_one_row_and_the_batch_completed(torture):
    assert set(torture["rows"]) == set(EXPECTED)
    assert torture["report"].csv.is_file() and torture["report"].summary_csv.is_file()
    if shutil.which("bwrap"):
        assert torture["report"].isolation == "bubblewrap sandbox"


@pytest.mark.parametrize("student", _cases(sorted(EXPECTED)))
def test_case_outcome(torture, student):
    expected, words = EXPECTED[student]
    row = torture["rows"][student]
    if expected is None:
        assert row["status"] == "rejected" and row["score"] == 0, row
    else:
        assert row["status"] == "graded", row
        got = {k: v for k, v in cell_scores(torture["course"], A, A, student).items() if k in FULL}
        assert got == expected, f"{student}: {got} != {expected}; reasons: {row['reasons']}"
    for word in words:
        assert word in row["reasons"], f"{student}: {word!r} not in {row['reasons']!r}"


@pytest.mark.parametrize("student", ["correct", "wrong", "blank"])
def test_honest_submissions_are_not_flagged(torture, student):
    # the guard keeps ~35 000 functions of numpy, torch and the kernel: none of what an honest run changes is reported
    reasons = torture["rows"][student]["reasons"]
    assert "flagged" not in reasons and "restored" not in reasons, f"{student}: {reasons}"


def test_grades_csv_has_every_student_and_no_score_above_the_maximum(torture):
    with open(torture["report"].csv) as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(EXPECTED)
    for student, row in rows.items():
        assert float(row["raw_score"]) <= sum(FULL.values()), f"{student} raised its own score: {row}"
    assert float(rows["correct"]["raw_score"]) == sum(FULL.values())


@needs_sandbox
def test_sandbox_kept_the_course_out_of_reach(torture):
    course = torture["course"]
    assert (course / "submitted" / "victim" / A / f"{A}.ipynb").read_bytes() == torture["victim_bytes"]
    assert not (course / "autograded" / "victim" / A / "evil.txt").exists()
    assert not (course / "feedback" / "victim" / A / "evil.txt").exists()
    graded = nbformat.read(course / "autograded" / "attacks_disk" / A / f"{A}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
    assert "WROTE" not in printed and printed.count("blocked") >= 4, printed[:3000]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        manual = [g.manual_score for g in gb.find_submission_notebook(A, A, "attacks_disk").grades]
    assert all(m is None for m in manual), "the attacker wrote manual scores into the gradebook"


@pytest.mark.parametrize("student", _cases(sorted(s for s, (e, _) in EXPECTED.items() if e is not None)))
def test_feedback_never_shows_hidden_tests(torture, student):
    text = html_text((torture["course"] / "feedback" / student / A / f"{A}.html").read_text())
    leaked = [line for line in hidden_test_lines(torture["source"]) if line in text]
    assert not leaked, f"feedback of {student} shows hidden test code: {leaked[:3]}"


def test_looping_function_pays_the_full_timeout_once(torture):
    row = torture["rows"]["infinite_loop"]
    assert row["reasons"].count(f"timed out after {TIMEOUT} s") == 1, row["reasons"]


def test_forced_regrade_under_load_gives_identical_scores(torture):
    """Regraded while busy loops keep every core busy: timeouts, crashes and guards give the same scores."""
    course = torture["course"]
    again = ["crashes", "patches_during_test"]  # the timing-sensitive ones; both regrade at once (jobs=2)
    before = {s: cell_scores(course, A, A, s) for s in again}
    busy = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        report = grade_class(course, jobs=2, students=again, force=True, timeout=TIMEOUT, progress=False, quiet=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert {o.student for o in report.outcomes if o.status == "graded"} == set(again)
    assert {s: cell_scores(course, A, A, s) for s in again} == before
    state = json.loads((course / ".grading" / "graded.json").read_text())
    assert f"crashes/{A}" in state


def _released(course: Path) -> dict[Path, bytes]:
    """Every file the grader wrote for students and the formgrader: feedback/ and autograded/."""
    return {p: p.read_bytes() for sub in ("feedback", "autograded") for p in (course / sub).rglob("*")
            if p.is_file() and not p.is_symlink()}


def test_only_the_graded_notebook_and_its_feedback_are_written(torture):
    course = torture["course"]
    for sub, allowed in (("feedback", {f"{A}.html"}), ("autograded", {f"{A}.ipynb"})):
        for folder in sorted((course / sub).glob(f"*/{A}")):
            names = {p.name for p in folder.iterdir()} - {"timestamp.txt", "submission_secret.txt"}
            assert names <= allowed, f"{folder.relative_to(course)} holds {sorted(names - allowed)}"
            assert not any(p.is_symlink() for p in folder.rglob("*")), f"a link in {folder.relative_to(course)}"


@needs_sandbox
def test_no_solution_gradebook_or_secret_byte_reaches_a_student(torture):
    course = torture["course"]
    secrets = [value.encode() for value in isolation.SECRETS.values()]
    for path, data in _released(course).items():
        where = path.relative_to(course)
        assert b"SQLite format 3" not in data, f"{where} holds the gradebook"
        assert b"BEGIN SOLUTION" not in data, f"{where} holds a solution notebook"
        assert not [s for s in secrets if s in data], f"{where} holds the instructor's secret environment"
    for path in (course / "feedback").rglob("*.html"):
        text = html_text(path.read_text())
        leaked = [line for line in hidden_test_lines(torture["source"]) if line in text]
        assert not leaked, f"{path.relative_to(course)} shows hidden test code: {leaked[:3]}"


def test_solutions_gradebook_and_course_files_keep_their_bytes_and_modes(torture):
    now = isolation.protected(torture["course"])
    changed = [path for path, (data, mode) in torture["protected"].items()
               if now[path][1] != mode or (data is not None and now[path][0] != data)]
    assert not changed, f"changed by grading: {changed}"


def test_feedback_runs_no_script_and_stays_readable(torture):
    course = torture["course"]
    for path in sorted((course / "feedback").rglob("*.html")):
        page = path.read_text()
        assert not isolation.active_content(page), f"{path.relative_to(course)}: {isolation.active_content(page)}"
    pages = {s: html_text((course / "feedback" / s / A / f"{A}.html").read_text())
             for s in ("html_output", "html_markdown", "correct")}
    assert isolation.VISIBLE[0] in pages["html_output"] and isolation.VISIBLE[1] in pages["html_markdown"]
    assert "visible checks passed" in pages["correct"] or "precision" in pages["correct"]
