"""A real JupyterLab from the course's .venv and a headless Chromium that drives it, for the browser tests.

Playwright's own browser download needs the internet, so the tests drive Debian's ``chromium`` (``make test``
installs it when it runs as root with apt-get) through ``executable_path``. Without chromium or playwright every
test here skips with one line saying which is missing, and fails where ``COURSE_BROWSER=require`` (``.ci/run``).

The server runs on a free loopback port with a random token, in a temporary root folder, with its own settings and
workspaces folders (a developer's JupyterLab state never leaks in); the test starts it and stops it. It runs in one of
the course's two roles: the student's, which ``make`` sets up in ``.venv`` (nbgrader's Validate and Assignments only),
or the instructor's (``JUPYTER_CONFIG_PATH`` naming ``course_lib/grading/instructor``, as ``make instructor-lab`` does).
Neither silences Jupyter's news pop-up here: the roles themselves must.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "browser"
INSTRUCTOR_CONFIG = ROOT / "course_lib" / "grading" / "instructor"  # see the Makefile's instructor-lab
ROLES = ("student", "instructor")
CHROMIUM_NAMES = ("chromium", "chromium-browser")
KERNEL_START_MS = 120_000  # a fresh kernel importing torch on a busy 2-core machine


def chromium_path() -> str | None:
    """Debian's chromium, or the executable ``CHROMIUM`` names; None when there is none."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def _missing(reason: str) -> None:
    """Skip, saying why; fail instead where ``COURSE_BROWSER=require`` (``.ci/run``): CI must run these tests."""
    if os.environ.get("COURSE_BROWSER") == "require":
        pytest.fail(f"COURSE_BROWSER=require: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (skips when chromium or playwright is missing); per module, so that playwright's event
    loop is gone before the worker runs other tests."""
    try:
        from playwright import sync_api
    except ImportError:
        _missing("playwright is not installed (`make venv` installs it from requirements.txt)")
    executable = chromium_path()
    if executable is None:
        _missing("chromium is not installed (`make test` installs it as root with apt-get; or set CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: Chromium's own sandbox refuses to start as root, which is how CI runs.
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A running JupyterLab: its root folder, base URL and token."""

    def __init__(self, root: Path, port: int, token: str):
        self.root, self.port, self.token = root, port, token
        self.url = f"http://127.0.0.1:{port}"

    def shutdown_kernels(self) -> None:
        """Stop every kernel the server runs (each holds torch in memory)."""
        def call(method: str, path: str):
            request = urllib.request.Request(f"{self.url}{path}?token={self.token}", method=method)
            with urllib.request.urlopen(request, timeout=30) as reply:
                return json.loads(reply.read() or b"null")

        for kernel in call("GET", "/api/kernels"):
            call("DELETE", f"/api/kernels/{kernel['id']}")

    def notebook_url(self, relative: str) -> str:
        # ?reset: open only this notebook, not a workspace a previous page left behind.
        return f"{self.url}/lab/tree/{relative}?reset&token={self.token}"


def _wait_until_up(lab: Lab, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def start_lab(tmp_path: Path, root: Path, role: str = "student"):
    """Run JupyterLab in ``role`` (see ``ROLES``) serving ``root`` (also its working folder, where nbgrader looks for
    the course's ``nbgrader_config.py``), with its state under ``tmp_path``; stop it and its kernels on exit."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    settings, workspaces = tmp_path / "settings", tmp_path / "workspaces"
    token, port = secrets.token_hex(16), _free_port()
    log = tmp_path / "jupyterlab.log"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               COURSE_MODE="quick")
    env.pop("COURSE_RESULTS", None)  # record() in a notebook only prints
    # make exports MPLBACKEND=Agg for its headless runs; a kernel that inherits it draws no figure into the page (the
    # slider test failed so in make test), where a student's kernel uses matplotlib's inline backend
    env.pop("MPLBACKEND", None)
    env.pop("JUPYTER_CONFIG_PATH", None)  # the student's role is .venv's own; the caller's paths must not add to it
    if role == "instructor":
        env["JUPYTER_CONFIG_PATH"] = str(INSTRUCTOR_CONFIG)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root; the server is on loopback with a token all the same
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    lab = Lab(root, port, token)
    try:
        _wait_until_up(lab, process, log)
        yield lab
    finally:
        # The server shuts its kernels down on SIGTERM; its own children share its process group.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """JupyterLab in the student's role serving an empty root folder, shared by the browser tests (they run in one
    xdist worker, group "browser"; a start and stop cost 8-20 s on a busy machine); each test works in its own
    subfolder (see ``folder``)."""
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "root"
    root.mkdir()
    with start_lab(tmp_path, root, "student") as running:
        yield running


@pytest.fixture
def folder(lab, request):
    """This test's own folder in the lab's root; the test's kernels are stopped after it."""
    path = lab.root / request.node.name
    path.mkdir()
    yield path
    lab.shutdown_kernels()


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    """``labs(root, role)`` starts JupyterLab in ``role`` serving ``root`` (see ``start_lab``); each is stopped after
    the test module."""
    with ExitStack() as stack:
        def start(root: Path, role: str) -> Lab:
            return stack.enter_context(start_lab(tmp_path_factory.mktemp(f"{role}-lab"), root, role))

        yield start


@pytest.fixture
def open_notebook(lab, page):
    """``open_notebook(path, in_lab=lab)`` opens ``path`` (under the lab's root; by default the student lab) in the
    page and waits until its kernel is idle."""
    def open_(path: Path, in_lab: Lab = lab) -> None:
        page.goto(in_lab.notebook_url(path.relative_to(in_lab.root).as_posix()))
        page.locator("#jp-main-statusbar", has_text="| Idle").wait_for(timeout=KERNEL_START_MS)

    return open_


@pytest.fixture
def page(browser, request):
    """A fresh browser page; a screenshot of it lands in build/browser/<test>-failed.png when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-failed.png"))
    context.close()


@pytest.fixture
def screenshot():
    """``screenshot(page, name)`` saves the page as build/browser/<name>.png."""
    def save(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
