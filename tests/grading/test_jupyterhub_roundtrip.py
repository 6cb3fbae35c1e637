"""A real JupyterHub round trip of one assignment, as README's "Deploying on JupyterHub" describes it.

JupyterHub runs on localhost with its configurable-http-proxy (installed by ``make`` into
course_lib/grading/hub/node_modules), the dummy authenticator and ``SimpleLocalProcessSpawner``: one single-user
server per hub user, each with its own home folder. The servers share this process's Unix user (the course's Python
may live where other Unix users cannot run it, e.g. under /root), so a second Unix user checks the exchange's
permissions separately. Every server gets README's environment: ``NBGRADER_EXCHANGE`` and, as its system-wide
nbgrader config, exactly ``course_lib/grading/hub/nbgrader_config_students.py``. Students have no course folder.

1. The instructor's course folder is a copy of this repository's config and the assignment's source in the
   instructor's hub home. In a terminal of the instructor's server (the terminals API and its websocket, through
   the proxy) the instructor closes the course folder to others, registers and releases the assignment and
   makes the inbound sticky.
2. alice and bob each get a token and a server through the hub's REST API; through the proxy and their own
   server they list and fetch the assignment (nbgrader's assignment_list server extension, what JupyterLab's
   Assignments tab calls), save their answers with the contents API (alice: the reference solution, bob: Dice
   without the factor 2) and submit.
3. The instructor collects in the terminal, grades with ``course_lib.grading.grade_all.grade`` (what ``make grade``
   runs) in this process with the environment the terminal showed, and releases feedback in the terminal.
4. Each student fetches the feedback through their server and reads it with the contents API.
5. The servers are stopped through the hub, then the hub; no process it started may be left.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader_harness import (
    ROOT,
    cell_scores,
    hidden_test_lines,
    html_text,
    make_submission,
    solution_bodies,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("jupyterhub")]

BIN = Path(sys.executable).parent
PROXY = ROOT / "course_lib" / "grading" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
STUDENTS_CONFIG = ROOT / "course_lib" / "grading" / "hub" / "nbgrader_config_students.py"
INSTRUCTOR_CONFIG = ROOT / "course_lib" / "grading" / "instructor"  # README step 6, added by a pre-spawn hook
# nbgrader's lab extensions that only the instructor's JupyterLab shows (the Makefile's INSTRUCTOR_ONLY_LAB)
INSTRUCTOR_ONLY = ["@jupyter/nbgrader:course-list", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:formgrader"]
COURSE_ID = "medical-imaging-dl"
ASSIGNMENT = "metrics_fixture"  # frozen (fixtures/): the hub is tested, not the course's current content
FIXTURES = Path(__file__).parent / "fixtures" / "solutions"
FULL = {"test_precision": 1, "test_iou": 2, "test_dice": 2, "test_soft_dice_loss": 3, "test_mean_dice": 2}
MAX_SCORE = 12  # FULL plus the hand-graded written answer
DICE_PASSED = "Dice: visible checks passed"  # what the visible Dice check prints when it passes
DICE_FAILED = "AssertionError: Dice of a mask with itself must be 1.0 — did you forget the factor 2?"
# student -> (edits of the reference solution, autograded scores that differ from FULL,
#             output lines their feedback shows, output lines it must not show)
STUDENTS = {
    "alice": ({}, {}, [DICE_PASSED], [DICE_FAILED]),
    "bob": ({"dice": [("2 * np.sum(pred & target)", "np.sum(pred & target)")]}, {"test_dice": 0},
            [DICE_FAILED], [DICE_PASSED]),
}
INSTRUCTOR = "instructor"
SHOWN_ENV = ("NBGRADER_EXCHANGE", "JUPYTER_CONFIG_PATH", "JUPYTERHUB_USER", "PWD")  # the instructor's terminal
HUB_START_S = 120  # hub + proxy up; generous: the machine is shared
SERVER_START_S = 180  # one single-user server ready
TERMINAL_S = 300  # the instructor's commands of one step
GRADE_CELL_S = 60  # one cell while autograding
SHUTDOWN_S = 60  # hub, proxy and servers gone after SIGTERM

try:
    import jupyterhub  # noqa: F401
    import requests  # noqa: F401
except ImportError as error:  # depends on the machine
    MISSING = f"jupyterhub is not installed ({error}); `make venv` installs it from requirements.txt"
else:
    MISSING = None if PROXY.is_file() else (
        f"configurable-http-proxy is not installed at {PROXY}; `make venv` installs it with npm (needs Node.js)")
if MISSING and os.environ.get("CI"):
    raise RuntimeError(f"the JupyterHub round trip must run in CI: {MISSING}")
if MISSING:
    pytest.skip(MISSING, allow_module_level=True)

from jupyterhub_harness import Hub, alive, as_nobody, free_port, hub_config, process_tree, tail  # noqa: E402

ACT_AS_OTHER_USER = os.geteuid() == 0 and shutil.which("runuser") is not None


def check_permissions(exchange: Path, out: dict) -> None:
    """What another Unix user (a student) can and cannot do in the course's exchange after the release."""
    course = exchange / COURSE_ID
    probe = course / "inbound" / "nobody+probe"
    out["perm"] = {
        "outbound readable": as_nobody("cat", str(course / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")),
        "inbound listable": as_nobody("ls", str(course / "inbound")),
        "inbound writable": as_nobody("mkdir", str(probe)),
    }
    shutil.rmtree(probe, ignore_errors=True)


def instructor(hub: Hub, token: str, out: dict, step: str, commands: list[str]) -> list[str]:
    """Type ``commands`` into a terminal of the instructor's server; each must succeed. Their outputs."""
    results = hub.terminal(INSTRUCTOR, token, commands, TERMINAL_S)
    out["terminal"][step] = results
    for command, (status, output) in zip(commands, results, strict=True):
        assert status == 0, f"instructor's terminal: {command!r} exited {status}:\n{output[-3000:]}"
    return [output for _, output in results]


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory, monkeypatch_module):
    work = tmp_path_factory.mktemp("jupyterhub")
    shared = Path(tempfile.mkdtemp(prefix="course-hub-"))  # in /tmp: other Unix users reach it, unlike tmp_path
    shared.chmod(0o755)
    exchange = shared / "exchange"  # README step 1
    exchange.mkdir()
    exchange.chmod(0o1777)
    config_path = work / "etc-jupyter"  # README step 2, on the config path instead of /etc/jupyter
    config_path.mkdir()
    shutil.copy(STUDENTS_CONFIG, config_path / "nbgrader_config.py")
    environment = {"NBGRADER_EXCHANGE": str(exchange), "JUPYTER_CONFIG_PATH": str(config_path)}  # README step 3
    course = work / "homes" / INSTRUCTOR / "course"  # README step 4: the course folder, in the instructor's home
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(FIXTURES / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    ports = {name: free_port() for name in ("public", "hub", "proxy_api")}
    token = os.urandom(16).hex()
    (work / "jupyterhub_config.py").write_text(hub_config(
        work=work, ports=ports, token=token, users=[*STUDENTS, INSTRUCTOR], proxy=PROXY,
        singleuser=BIN / "jupyterhub-singleuser", environment=environment, start_timeout=SERVER_START_S,
        instructor=INSTRUCTOR, instructor_config=INSTRUCTOR_CONFIG))
    out: dict = {"course": course, "times": {}, "lists": {}, "feedback": {}, "terminal": {}, "roles": {}}
    hub_log = open(work / "hub.log", "w")  # noqa: SIM115 - closed in finally
    hub_env = {k: v for k, v in os.environ.items() if k not in (*environment, "JUPYTERHUB_USER")}
    started = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(work / "jupyterhub_config.py")], cwd=work,
                            env=hub_env, stdout=hub_log, stderr=subprocess.STDOUT, start_new_session=True)
    tree: set[tuple[int, str]] = set()
    hub = Hub(f"http://127.0.0.1:{ports['public']}", token)
    try:
        deadline = time.monotonic() + HUB_START_S
        while not hub.up():
            assert proc.poll() is None, f"jupyterhub exited with {proc.returncode}:\n{tail(work / 'hub.log')}"
            assert time.monotonic() < deadline, f"hub not up after {HUB_START_S} s:\n{tail(work / 'hub.log')}"
            time.sleep(0.5)
        out["times"]["hub up"] = time.perf_counter() - started

        # 1. instructor, in a terminal of their server: register, release, sticky inbound
        tokens = {user: hub.user_token(user) for user in [INSTRUCTOR, *STUDENTS]}
        hub.start_server(INSTRUCTOR, tokens[INSTRUCTOR], SERVER_START_S)
        out["roles"][INSTRUCTOR] = hub.lab_role(INSTRUCTOR, tokens[INSTRUCTOR])
        shown = instructor(hub, tokens[INSTRUCTOR], out, "release", [
            f'export PATH="{BIN}:$PATH"', f"cd {course}", "chmod 700 .",
            f"nbgrader generate_assignment {ASSIGNMENT} --force", f"nbgrader release_assignment {ASSIGNMENT}",
            f"chmod +t $NBGRADER_EXCHANGE/{COURSE_ID}/inbound",
            *[f'echo "hubenv {name}=${name}"' for name in SHOWN_ENV]])
        # the typed line shows "=$NAME", the shell's answer the value
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(shown)).replace("\r", "")
        out["instructor env"] = dict(re.findall(r"^hubenv (\w+)=([^$\s]\S*)$", shown, re.M))
        out["environment"] = environment
        out["modes"] = {name: (exchange / name).stat().st_mode & 0o7777
                        for name in ("", COURSE_ID, f"{COURSE_ID}/outbound", f"{COURSE_ID}/inbound")}
        out["course mode"] = course.stat().st_mode & 0o7777
        if ACT_AS_OTHER_USER:
            check_permissions(exchange, out)
        out["times"]["instructor released"] = time.perf_counter() - started

        # 2. students: server, fetch, fill in, submit
        source = out["source"] = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                                               as_version=4)
        bodies = solution_bodies(source)
        path = f"{COURSE_ID}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
        for student, (edits, *_) in STUDENTS.items():
            hub.start_server(student, tokens[student], SERVER_START_S)
            out["roles"][student] = hub.lab_role(student, tokens[student])
            out["lists"][student, "before"] = hub.assignments(student, tokens[student], COURSE_ID, ASSIGNMENT)
            out["lists"][student, "fetched"] = hub.assignments(student, tokens[student], COURSE_ID, ASSIGNMENT,
                                                               "fetch")
            fetched = nbformat.from_dict(hub.contents(student, tokens[student], path, type="notebook")["content"])
            out["fetched release", student] = fetched
            hub.call("PUT", f"/user/{student}/api/contents/{path}", tokens[student],
                     json={"type": "notebook", "format": "json", "content": make_submission(fetched, bodies, edits)})
            out["lists"][student, "submitted"] = hub.assignments(student, tokens[student], COURSE_ID, ASSIGNMENT,
                                                                 "submit")
        out["times"]["students submitted"] = time.perf_counter() - started
        tree = process_tree(proc.pid)
        out["processes while running"] = len(tree)
        if ACT_AS_OTHER_USER:
            entry = next(p for p in (exchange / COURSE_ID / "inbound").iterdir() if p.name.startswith("alice+"))
            out["perm"]["another's submission movable"] = as_nobody("mv", str(entry), f"{entry}-moved")

        # 3. instructor: collect (terminal), grade (what `make grade` runs, here, with the terminal's
        #    environment), release feedback (terminal)
        from course_lib.grading.grade_all import grade

        instructor(hub, tokens[INSTRUCTOR], out, "collect", [
            f'export PATH="{BIN}:$PATH"', f"cd {course}", f"nbgrader collect {ASSIGNMENT}"])
        out["collected"] = sorted(p.name for p in (course / "submitted").iterdir())
        # the environment the instructor's terminal showed (the instructor's config path included), not its folder
        shown_env = {k: v for k, v in out["instructor env"].items() if k != "PWD"}
        for key, value in {**environment, **shown_env, "JUPYTERHUB_USER": INSTRUCTOR}.items():
            monkeypatch_module.setenv(key, value)
        out["csv"] = grade(course, [ASSIGNMENT], timeout=GRADE_CELL_S)
        out["scores"] = {s: cell_scores(course, ASSIGNMENT, ASSIGNMENT, s) for s in STUDENTS}
        instructor(hub, tokens[INSTRUCTOR], out, "feedback", [
            f'export PATH="{BIN}:$PATH"', f"cd {course}", f"nbgrader release_feedback {ASSIGNMENT}"])
        out["modes"][f"{COURSE_ID}/feedback"] = (exchange / COURSE_ID / "feedback").stat().st_mode & 0o7777
        if ACT_AS_OTHER_USER:
            out["perm"]["feedback listable"] = as_nobody("ls", str(exchange / COURSE_ID / "feedback"))
        out["times"]["instructor graded"] = time.perf_counter() - started

        # 4. students: fetch feedback and read it through their server
        for student in STUDENTS:
            listing = out["lists"][student, "feedback"] = hub.assignments(student, tokens[student], COURSE_ID,
                                                                          ASSIGNMENT, "fetch_feedback")
            submissions = [s for a in listing if a["status"] == "submitted" for s in a["submissions"]]
            folder = submissions[-1]["local_feedback_path"] if submissions else None
            if folder:
                out["feedback"][student] = hub.contents(student, tokens[student], f"{folder}/{ASSIGNMENT}.html",
                                                        type="file", format="text")["content"]
        out["times"]["students read feedback"] = time.perf_counter() - started

        # 5. stop the servers through the hub
        tree |= process_tree(proc.pid)
        for user in [*STUDENTS, INSTRUCTOR]:
            hub.call("DELETE", f"/hub/api/users/{user}/server")
    finally:
        tree |= process_tree(proc.pid)
        proc.terminate()
        try:
            proc.wait(SHUTDOWN_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        deadline = time.monotonic() + SHUTDOWN_S
        while alive(tree) and time.monotonic() < deadline:
            time.sleep(0.5)
        out["left over"] = alive(tree)
        for pid, _ in out["left over"]:  # never leave a process behind, even when the test fails
            os.kill(pid, 9)
        out["hub exit code"] = proc.returncode
        out["times"]["shut down"] = time.perf_counter() - started
        hub_log.close()
        out["hub log"] = tail(work / "hub.log", 200)
        shutil.rmtree(shared, ignore_errors=True)
    print("\nJupyterHub round trip: " + ", ".join(f"{k} at {v:.1f} s" for k, v in out["times"].items()))
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_instructor_works_in_the_hub_environment(roundtrip):
    """The instructor's server has README's environment, the instructor's config folder first on its config path;
    grading ran with that environment here."""
    students_path = roundtrip["environment"]["JUPYTER_CONFIG_PATH"]
    expected = {**roundtrip["environment"], "JUPYTER_CONFIG_PATH": f"{INSTRUCTOR_CONFIG}:{students_path}",
                "JUPYTERHUB_USER": INSTRUCTOR, "PWD": str(roundtrip["course"])}
    assert roundtrip["instructor env"] == expected, roundtrip["terminal"]["release"][-len(SHOWN_ENV):]


def test_each_hub_server_runs_its_role(roundtrip):
    """Students' servers are the student's JupyterLab (what `make venv` sets up: nbgrader's instructor tools off, the
    Formgrader's URL unknown); the instructor's, with the instructor's config folder, has them back."""
    for student in STUDENTS:
        role = roundtrip["roles"][student]
        assert set(INSTRUCTOR_ONLY) <= set(role["disabled"]), f"{student}'s JupyterLab shows instructor tools: {role}"
        assert role["formgrader status"] == 404, f"{student}'s server serves the Formgrader: {role}"
    role = roundtrip["roles"][INSTRUCTOR]
    assert not set(INSTRUCTOR_ONLY) & set(role["disabled"]), f"the instructor's JupyterLab lacks its tools: {role}"
    assert role["formgrader status"] != 404, f"the instructor's server has no Formgrader: {role}"


def test_students_fetch_and_submit_through_their_servers(roundtrip):
    release = nbformat.read(roundtrip["course"] / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for student in STUDENTS:
        assert [a["status"] for a in roundtrip["lists"][student, "before"]] == ["released"], student
        assert [a["status"] for a in roundtrip["lists"][student, "fetched"]] == ["fetched"], student
        statuses = {a["status"] for a in roundtrip["lists"][student, "submitted"]}
        assert "submitted" in statuses, f"{student}: {roundtrip['lists'][student, 'submitted']}"
        assert [c.source for c in roundtrip["fetched release", student].cells] == [c.source for c in release.cells], \
            f"the notebook {student} fetched through the hub is not the instructor's release"


def test_collect_finds_each_student_under_their_hub_name(roundtrip):
    assert roundtrip["collected"] == sorted(STUDENTS), \
        f"collected {roundtrip['collected']}: submissions must be named after the hub users"


def test_grades_of_the_hub_submissions(roundtrip):
    for student, (_, differ, *_) in STUDENTS.items():
        got = {k: v for k, v in roundtrip["scores"][student].items() if k in FULL}
        assert got == {**FULL, **differ}, f"{student}: {got}"
    rows = roundtrip["csv"].read_text().splitlines()
    for student in STUDENTS:
        assert any(row.startswith(f"{ASSIGNMENT},") and f",{student}," in row for row in rows), rows


def test_students_read_their_own_feedback(roundtrip):
    hidden = hidden_test_lines(roundtrip["source"])
    for student, (_, differ, shown, not_shown) in STUDENTS.items():
        assert student in roundtrip["feedback"], \
            f"{student} found no feedback: {roundtrip['lists'][student, 'feedback']}"
        text = html_text(roundtrip["feedback"][student])
        lines = {line.strip() for line in text.splitlines()}
        assert set(shown) <= lines, f"feedback of {student} lacks {set(shown) - lines}"
        assert not set(not_shown) & lines, f"{student} reads another's feedback: {set(not_shown) & lines}"
        total = re.search(r"\(Score: ([\d.]+) / ([\d.]+)\)", text)
        assert total and (float(total[1]), float(total[2])) == (sum({**FULL, **differ}.values()), MAX_SCORE), \
            f"feedback of {student}: {total and total[0]}"
        assert not [line for line in hidden if line in text], f"feedback of {student} shows hidden tests"


def test_exchange_permissions(roundtrip):
    expected = {"": 0o1777, COURSE_ID: 0o755, f"{COURSE_ID}/outbound": 0o755, f"{COURSE_ID}/inbound": 0o3733,
                f"{COURSE_ID}/feedback": 0o711}
    assert roundtrip["modes"] == expected, {k: oct(v) for k, v in roundtrip["modes"].items()}
    assert roundtrip["course mode"] == 0o700, oct(roundtrip["course mode"])
    if not ACT_AS_OTHER_USER:
        pytest.skip("acting as a second Unix user needs root and runuser")
    perm = roundtrip["perm"]
    assert perm["outbound readable"].returncode == 0, perm["outbound readable"].stderr
    assert perm["inbound writable"].returncode == 0, perm["inbound writable"].stderr
    assert perm["inbound listable"].returncode != 0, "a student can list everyone's submissions"
    assert perm["another's submission movable"].returncode != 0, "a student can move another's submission"
    assert perm["feedback listable"].returncode != 0, "a student can list everyone's feedback"


def test_everything_shut_down(roundtrip):
    assert roundtrip["processes while running"] >= 5, "hub, proxy and three servers were expected"
    assert not roundtrip["left over"], f"processes left after the hub stopped: {roundtrip['left over']}"
    assert roundtrip["hub exit code"] in (0, -15), roundtrip["hub log"]
