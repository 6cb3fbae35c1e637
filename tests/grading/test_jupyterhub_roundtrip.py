"""A real JupyterHub round trip of one assignment, as README's "Deploying on JupyterHub" describes it.

JupyterHub runs on localhost with its configurable-http-proxy (installed by ``make`` into hub/node_modules),
the dummy authenticator and ``SimpleLocalProcessSpawner`` (one single-user server per hub user, each in its
own home folder; they share this process's Unix user, since the course's Python lives where other Unix
users cannot run it). Students' servers read exactly ``hub/nbgrader_config_students.py`` as their system-wide
nbgrader config and have no course folder. The shared exchange is a fresh folder with the README's modes.

1. The instructor (a course folder, the hub server's environment) registers and releases the assignment.
2. alice and bob each get a token and a server through the hub's REST API; through the proxy and their own
   server they list and fetch the assignment (nbgrader's assignment_list server extension, what JupyterLab's
   Assignments tab calls), save their answers with the contents API (alice: the reference solution, bob: Dice
   without the factor 2) and submit.
3. The instructor collects and grades with ``course_lib.tools.grade_all.grade`` (what ``make grade`` runs) and
   releases feedback; each student fetches it through their server and reads it with the contents API.
4. Everything is shut down through the hub; no process it started may be left.

Where the test runs as root, a second Unix user (``nobody``) checks the exchange's permissions for real.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
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
    make_course,
    make_submission,
    run_nbgrader,
    solution_bodies,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BIN = Path(sys.executable).parent
PROXY = ROOT / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
STUDENTS_CONFIG = ROOT / "hub" / "nbgrader_config_students.py"
COURSE_ID = "medical-imaging-dl"
ASSIGNMENT = "ch02_segmentation_metrics"
FULL = {"test_precision": 1, "test_iou": 2, "test_dice": 2, "test_soft_dice_loss": 3, "test_mean_dice": 2}
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
HUB_START_S = 120  # hub + proxy up; generous: the machine is shared
SERVER_START_S = 180  # one single-user server ready
REQUEST_S = 120  # one HTTP request (a fetch or submit runs nbgrader inside the request)
SHUTDOWN_S = 60  # hub, proxy and servers gone after SIGTERM

try:
    import jupyterhub  # noqa: F401
    import requests
except ImportError as error:  # pragma: no cover - depends on the machine
    MISSING = f"jupyterhub is not installed ({error}); `make venv` installs it from requirements.txt"
else:
    MISSING = None if PROXY.is_file() else (
        f"configurable-http-proxy is not installed at {PROXY}; `make venv` installs it with npm (needs Node.js)")
if MISSING and os.environ.get("CI"):
    raise RuntimeError(f"the JupyterHub round trip must run in CI: {MISSING}")
if MISSING:
    pytestmark.append(pytest.mark.skip(reason=MISSING))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of ``pid`` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    start: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            start[int(entry.name)] = fields[19]
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p in start:
            found.add((p, start[p]))
        todo.extend(children.get(p, []))
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    left = set()
    for pid, started in processes:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == started and fields[0] != "Z":
            left.add((pid, started))
    return left


def hub_config(work: Path, ports: dict, token: str, exchange: Path, config_path: Path, homes: Path) -> str:
    """The hub's config: localhost, dummy login, one local server per user with the course's environment."""
    settings = {
        "JupyterHub.bind_url": f"http://127.0.0.1:{ports['public']}",
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{ports['hub']}",
        "JupyterHub.db_url": f"sqlite:///{work / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(work / "jupyterhub_cookie_secret"),
        "JupyterHub.pid_file": str(work / "jupyterhub.pid"),
        "JupyterHub.authenticator_class": "dummy",
        "Authenticator.allowed_users": {*STUDENTS, INSTRUCTOR},
        "JupyterHub.spawner_class": "simple",
        "SimpleLocalProcessSpawner.home_dir_template": str(homes / "{username}"),
        "ConfigurableHTTPProxy.command": [str(PROXY)],
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{ports['proxy_api']}",
        "ConfigurableHTTPProxy.pid_file": str(work / "proxy.pid"),
        "Spawner.cmd": [str(BIN / "jupyterhub-singleuser")],
        # Jupyter refuses to run as root unless told; a hub spawning real users never needs this.
        "Spawner.args": ["--allow-root"] if os.geteuid() == 0 else [],
        # What README's deployment gives every server: the exchange, and the students' config on the
        # config path (there /etc/jupyter; here a folder of its own, so the test writes nothing outside tmp).
        "Spawner.environment": {"NBGRADER_EXCHANGE": str(exchange), "JUPYTER_CONFIG_PATH": str(config_path)},
        "Spawner.start_timeout": SERVER_START_S,
        "Spawner.http_timeout": SERVER_START_S,
        "JupyterHub.services": [{"name": "roundtrip", "api_token": token}],
        "JupyterHub.load_roles": [{"name": "roundtrip", "services": ["roundtrip"],
                                   "scopes": ["admin:users", "admin:servers", "tokens", "read:users"]}],
    }
    return "c = get_config()  # noqa\n" + "".join(f"c.{key} = {value!r}\n" for key, value in settings.items())


class Hub:
    """Talk to the hub and, through its proxy, to the users' servers."""

    def __init__(self, url: str, token: str):
        self.url, self.session = url, requests.Session()
        self.session.trust_env = False  # never send localhost through a proxy from the environment
        self.token = token

    def call(self, method: str, path: str, token: str | None = None, ok=(200, 201, 202, 204), **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=REQUEST_S,
                                        headers={"Authorization": f"token {token or self.token}"}, **kwargs)
        assert response.status_code in ok, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response

    def start_server(self, user: str, token: str) -> None:
        self.call("POST", f"/hub/api/users/{user}/server", token)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            server = self.call("GET", f"/hub/api/users/{user}", token).json()["servers"].get("", {})
            if server.get("ready"):
                return
            time.sleep(1)
        raise AssertionError(f"the server of {user} was not ready after {SERVER_START_S} s")

    def assignments(self, user: str, token: str, action: str | None = None) -> list[dict]:
        """nbgrader's assignment list as the Assignments tab sees it, after ``action`` (fetch, submit, ...)."""
        if action:
            response = self.call("POST", f"/user/{user}/assignments/{action}", token,
                                 json={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
        else:
            response = self.call("GET", f"/user/{user}/assignments", token, params={"course_id": COURSE_ID})
        listing = response.json()
        assert listing.get("success"), f"{user}: assignments {action or 'list'} failed:\n{listing.get('value')}"
        return [a for a in listing["value"] if a["assignment_id"] == ASSIGNMENT]

    def contents(self, user: str, token: str, path: str, **params) -> dict:
        return self.call("GET", f"/user/{user}/api/contents/{path}", token, params={"content": 1, **params}).json()


def as_nobody(*command: str) -> subprocess.CompletedProcess:
    """Run a command as the Unix user nobody (the test runs as root)."""
    return subprocess.run(["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, timeout=60)


def check_permissions(exchange: Path, out: dict) -> None:
    """What another Unix user (a student) can and cannot do in the course's exchange."""
    course = exchange / COURSE_ID
    probe = course / "inbound" / "nobody+probe"
    out["perm"] = {
        "outbound readable": as_nobody("cat", str(course / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")),
        "inbound listable": as_nobody("ls", str(course / "inbound")),
        "inbound writable": as_nobody("mkdir", str(probe)),
    }
    shutil.rmtree(probe, ignore_errors=True)


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory, monkeypatch_module):
    work = tmp_path_factory.mktemp("jupyterhub")
    shared = Path(tempfile.mkdtemp(prefix="course-hub-"))  # /tmp: reachable by other Unix users, unlike tmp_path
    shared.chmod(0o755)
    exchange = shared / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)  # README: like /tmp, everyone may create, nobody may remove another's entry
    config_path = work / "etc-jupyter"
    config_path.mkdir()
    shutil.copy(STUDENTS_CONFIG, config_path / "nbgrader_config.py")
    # The instructor works in the hub environment the students have: same config path, a hub user name.
    for key, value in {"NBGRADER_EXCHANGE": str(exchange), "JUPYTER_CONFIG_PATH": str(config_path),
                       "JUPYTERHUB_USER": INSTRUCTOR}.items():
        monkeypatch_module.setenv(key, value)
    ports = {name: free_port() for name in ("public", "hub", "proxy_api")}
    token = os.urandom(16).hex()
    (work / "jupyterhub_config.py").write_text(
        hub_config(work, ports, token, exchange, config_path, work / "homes"))
    out: dict = {"course": None, "times": {}, "lists": {}, "feedback": {}}
    hub_log = open(work / "hub.log", "w")  # noqa: SIM115 - closed in finally
    env = {k: v for k, v in os.environ.items() if k not in ("NBGRADER_EXCHANGE", "JUPYTER_CONFIG_PATH",
                                                           "JUPYTERHUB_USER")}
    started = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(work / "jupyterhub_config.py")], cwd=work,
                            env=env, stdout=hub_log, stderr=subprocess.STDOUT, start_new_session=True)
    tree: set[tuple[int, str]] = set()
    hub = Hub(f"http://127.0.0.1:{ports['public']}", token)
    try:
        deadline = time.monotonic() + HUB_START_S
        while True:
            assert proc.poll() is None, f"jupyterhub exited with {proc.returncode}:\n{tail(work / 'hub.log')}"
            assert time.monotonic() < deadline, f"hub not up after {HUB_START_S} s:\n{tail(work / 'hub.log')}"
            try:
                if hub.session.get(f"{hub.url}/hub/api/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        out["times"]["hub up"] = time.perf_counter() - started

        # 1. instructor: register and release; make the inbound sticky
        course = out["course"] = make_course(work, ASSIGNMENT)
        run_nbgrader(["release_assignment", ASSIGNMENT], course)
        (exchange / COURSE_ID / "inbound").chmod(0o3733)
        out["modes"] = {name: (exchange / COURSE_ID / name).stat().st_mode & 0o7777
                        for name in ("", "outbound", "inbound")}
        if os.geteuid() == 0 and shutil.which("runuser"):
            check_permissions(exchange, out)

        # 2. students: token, server, fetch, fill in, submit
        source = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
        out["source"] = source
        bodies = solution_bodies(source)
        tokens = {}
        for student, (edits, *_) in STUDENTS.items():
            tokens[student] = hub.call("POST", f"/hub/api/users/{student}/tokens",
                                       json={"note": "round trip", "expires_in": 3600}).json()["token"]
            hub.start_server(student, tokens[student])
            out["lists"][student, "before"] = hub.assignments(student, tokens[student])
            out["lists"][student, "fetched"] = hub.assignments(student, tokens[student], "fetch")
            path = f"{COURSE_ID}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
            fetched = nbformat.from_dict(hub.contents(student, tokens[student], path, type="notebook")["content"])
            out["fetched_release"] = fetched
            answer = make_submission(fetched, bodies, edits)
            hub.call("PUT", f"/user/{student}/api/contents/{path}", tokens[student],
                     json={"type": "notebook", "format": "json", "content": answer})
            out["lists"][student, "submitted"] = hub.assignments(student, tokens[student], "submit")
        out["times"]["students fetched and submitted"] = time.perf_counter() - started
        tree = process_tree(proc.pid)
        out["processes while running"] = len(tree)
        if "perm" in out:
            entries = [p for p in (exchange / COURSE_ID / "inbound").iterdir() if p.name.startswith("alice+")]
            out["perm"]["another's submission movable"] = as_nobody("mv", str(entries[0]), str(entries[0]) + "x")

        # 3. instructor: collect, grade (what `make grade` runs), release feedback
        from course_lib.tools.grade_all import grade

        run_nbgrader(["collect", ASSIGNMENT], course)
        out["collected"] = sorted(p.name for p in (course / "submitted").iterdir())
        out["csv"] = grade(course, [ASSIGNMENT], timeout=60)
        out["scores"] = {s: cell_scores(course, ASSIGNMENT, ASSIGNMENT, s) for s in STUDENTS}
        run_nbgrader(["release_feedback", ASSIGNMENT], course)
        out["times"]["instructor graded"] = time.perf_counter() - started
        if "perm" in out:
            out["perm"]["feedback listable"] = as_nobody("ls", str(exchange / COURSE_ID / "feedback"))

        # 4. students: fetch feedback and read it through their server
        for student in STUDENTS:
            listing = out["lists"][student, "feedback"] = hub.assignments(student, tokens[student], "fetch_feedback")
            submissions = [s for a in listing if a["status"] == "submitted" for s in a["submissions"]]
            folder = submissions[-1]["local_feedback_path"] if submissions else None
            if folder:
                page = hub.contents(student, tokens[student], f"{folder}/{ASSIGNMENT}.html", type="file",
                                    format="text")
                out["feedback"][student] = page["content"]
        out["times"]["students read feedback"] = time.perf_counter() - started

        # 5. shut down through the hub
        for student in STUDENTS:
            hub.call("DELETE", f"/hub/api/users/{student}/server")
        tree |= process_tree(proc.pid)
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


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_students_fetch_and_submit_through_their_servers(roundtrip):
    for student in STUDENTS:
        assert [a["status"] for a in roundtrip["lists"][student, "before"]] == ["released"], student
        assert [a["status"] for a in roundtrip["lists"][student, "fetched"]] == ["fetched"], student
        statuses = {a["status"] for a in roundtrip["lists"][student, "submitted"]}
        assert "submitted" in statuses, f"{student}: {roundtrip['lists'][student, 'submitted']}"
    release = nbformat.read(roundtrip["course"] / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert [c.source for c in roundtrip["fetched_release"].cells] == [c.source for c in release.cells], \
        "the notebook fetched through the hub is not the instructor's release"


def test_collect_finds_each_student_under_their_hub_name(roundtrip):
    assert roundtrip["collected"] == sorted(STUDENTS), \
        f"collected {roundtrip['collected']}: submissions must be named after the hub users"


def test_grades_of_the_hub_submissions(roundtrip):
    for student, (_, differ, *_) in STUDENTS.items():
        got = {k: v for k, v in roundtrip["scores"][student].items() if k in FULL}
        assert got == {**FULL, **differ}, f"{student}: {got}"
    rows = roundtrip["csv"].read_text().splitlines()
    assert any(row.startswith(f"{ASSIGNMENT},") and ",alice," in row for row in rows), rows


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
        assert total and float(total[1]) == sum({**FULL, **differ}.values()) and float(total[2]) == 12, \
            f"feedback of {student}: {total and total[0]}"
        assert not [line for line in hidden if line in text], f"feedback of {student} shows hidden tests"


def test_exchange_permissions(roundtrip):
    assert roundtrip["modes"] == {"": 0o755, "outbound": 0o755, "inbound": 0o3733}, \
        {k: oct(v) for k, v in roundtrip["modes"].items()}
    if "perm" not in roundtrip:
        pytest.skip("acting as a second Unix user needs root and runuser")
    perm = roundtrip["perm"]
    assert perm["outbound readable"].returncode == 0, perm["outbound readable"].stderr
    assert perm["inbound writable"].returncode == 0, perm["inbound writable"].stderr
    assert perm["inbound listable"].returncode != 0, "a student can list everyone's submissions"
    assert perm["another's submission movable"].returncode != 0, "a student can move another's submission"
    assert perm["feedback listable"].returncode != 0, "a student can list everyone's feedback"


def test_everything_shut_down(roundtrip):
    assert roundtrip["processes while running"] >= 4, "hub, proxy and two servers were expected"
    assert not roundtrip["left over"], f"processes left after the hub stopped: {roundtrip['left over']}"
    assert roundtrip["hub exit code"] in (0, -15), roundtrip["hub log"]
