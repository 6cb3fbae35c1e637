"""Helpers of the JupyterHub round-trip test: a hub config, REST and terminal calls through the proxy, process
bookkeeping from /proc, and a second Unix user for permission checks."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import requests

REQUEST_S = 120  # one HTTP request (a fetch or submit runs nbgrader inside the request)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int | str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: [0] state, [1] parent, [19] start time."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of ``pid`` and all its descendants (start time tells a reused pid apart)."""
    children: dict[int, list[int]] = {}
    start: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(entry.name)
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
    """The processes of ``processes`` still running (zombies count as gone)."""
    left = set()
    for pid, started in processes:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        if fields[19] == started and fields[0] != "Z":
            left.add((pid, started))
    return left


def hub_config(*, work: Path, ports: dict, token: str, users: list[str], proxy: Path, singleuser: Path,
               environment: dict, start_timeout: int, instructor: str, instructor_config: Path) -> str:
    """A jupyterhub_config.py: localhost, dummy login, one local server per user (home: work/homes/<user>),
    ``environment`` in every server, and a service ``roundtrip`` with ``token`` that manages users and tokens.
    The server of ``instructor`` also has ``instructor_config`` first on its ``JUPYTER_CONFIG_PATH`` (README's
    ``c.Spawner.pre_spawn_hook``): the instructor's JupyterLab, where every other server is the student's."""
    settings = {
        "JupyterHub.bind_url": f"http://127.0.0.1:{ports['public']}",
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{ports['hub']}",
        "JupyterHub.db_url": f"sqlite:///{work / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(work / "jupyterhub_cookie_secret"),
        "JupyterHub.pid_file": str(work / "jupyterhub.pid"),
        "JupyterHub.authenticator_class": "dummy",
        "Authenticator.allowed_users": set(users),
        "JupyterHub.spawner_class": "simple",
        "SimpleLocalProcessSpawner.home_dir_template": str(work / "homes" / "{username}"),
        "ConfigurableHTTPProxy.command": [str(proxy)],
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{ports['proxy_api']}",
        "ConfigurableHTTPProxy.pid_file": str(work / "proxy.pid"),
        "Spawner.cmd": [str(singleuser)],
        # Jupyter refuses to run as root unless told; a hub spawning real users never needs this.
        "Spawner.args": ["--allow-root"] if os.geteuid() == 0 else [],
        "Spawner.environment": environment,
        "Spawner.start_timeout": start_timeout,
        "Spawner.http_timeout": start_timeout,
        "JupyterHub.services": [{"name": "roundtrip", "api_token": token}],
        "JupyterHub.load_roles": [{"name": "roundtrip", "services": ["roundtrip"],
                                   "scopes": ["admin:users", "admin:servers", "tokens", "read:users"]}],
    }
    hook = f"""
def instructor_role(spawner):
    if spawner.user.name == {instructor!r}:
        path = spawner.environment.get("JUPYTER_CONFIG_PATH")
        spawner.environment = {{**spawner.environment,
                               "JUPYTER_CONFIG_PATH": {str(instructor_config)!r} + (":" + path if path else "")}}


c.Spawner.pre_spawn_hook = instructor_role
"""
    return ("c = get_config()  # noqa\n" + "".join(f"c.{key} = {value!r}\n" for key, value in settings.items())
            + hook)


class Hub:
    """Talk to the hub and, through its proxy, to the users' servers; ``token`` is the service's."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token
        self.session = requests.Session()
        self.session.trust_env = False  # never send localhost through a proxy from the environment

    def call(self, method: str, path: str, token: str | None = None, ok=(200, 201, 202, 204), **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=REQUEST_S,
                                        headers={"Authorization": f"token {token or self.token}"}, **kwargs)
        assert response.status_code in ok, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response

    def up(self) -> bool:
        try:
            return self.session.get(f"{self.url}/hub/api/", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def user_token(self, user: str) -> str:
        """A token of ``user`` with the user's own permissions, as a login would give."""
        return self.call("POST", f"/hub/api/users/{user}/tokens",
                         json={"note": "round trip", "expires_in": 3600}).json()["token"]

    def start_server(self, user: str, token: str, timeout: float) -> None:
        self.call("POST", f"/hub/api/users/{user}/server", token)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call("GET", f"/hub/api/users/{user}", token).json()["servers"].get("", {}).get("ready"):
                return
            time.sleep(1)
        raise AssertionError(f"the server of {user} was not ready after {timeout} s")

    def assignments(self, user: str, token: str, course_id: str, assignment: str,
                    action: str | None = None) -> list[dict]:
        """nbgrader's assignment list as the Assignments tab sees it, after ``action`` (fetch, submit, ...)."""
        if action:
            response = self.call("POST", f"/user/{user}/assignments/{action}", token,
                                 json={"course_id": course_id, "assignment_id": assignment})
        else:
            response = self.call("GET", f"/user/{user}/assignments", token, params={"course_id": course_id})
        listing = response.json()
        assert listing.get("success"), f"{user}: assignments {action or 'list'} failed:\n{listing.get('value')}"
        return [a for a in listing["value"] if a["assignment_id"] == assignment]

    def lab_role(self, user: str, token: str) -> dict:
        """What ``user``'s JupyterLab turns off (the page config's disabled extensions, as the page receives them) and
        whether its server answers the Formgrader's URL (HTTP status)."""
        page = self.call("GET", f"/user/{user}/lab", token).text
        found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
        assert found, f"{user}'s /lab page has no page config:\n{page[:2000]}"
        disabled = json.loads(found[1]).get("disabledExtensions", [])
        formgrader = self.call("GET", f"/user/{user}/formgrader", token, ok=range(100, 600),
                               allow_redirects=False).status_code
        return {"disabled": sorted(disabled), "formgrader status": formgrader}

    def contents(self, user: str, token: str, path: str, **params) -> dict:
        return self.call("GET", f"/user/{user}/api/contents/{path}", token, params={"content": 1, **params}).json()

    def terminal(self, user: str, token: str, commands: list[str], timeout: float) -> list[tuple[int, str]]:
        """Type each command into a new terminal of ``user``'s server; (exit status, output) of each."""
        name = self.call("POST", f"/user/{user}/api/terminals", token).json()["name"]
        url = f"{self.url.replace('http', 'ws', 1)}/user/{user}/terminals/websocket/{name}"
        try:
            return asyncio.run(asyncio.wait_for(_type(url, token, commands), timeout))
        finally:
            self.call("DELETE", f"/user/{user}/api/terminals/{name}", token)


async def _type(url: str, token: str, commands: list[str]) -> list[tuple[int, str]]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    results = []
    try:
        for command in commands:
            marker = f"done-{uuid.uuid4().hex[:8]}"
            # the echoed command line shows "$?", the shell's answer a number: only that one matches
            await connection.write_message(json.dumps(["stdin", f"{command}; echo {marker}-$?-\r"]))
            output = ""
            while not (found := re.search(rf"{marker}-(\d+)-", output)):
                message = await connection.read_message()
                assert message is not None, f"the terminal closed while running {command!r}:\n{output}"
                kind, *data = json.loads(message)
                if kind == "stdout":
                    output += data[0]
            results.append((int(found[1]), output))
    finally:
        connection.close()
    return results


def as_nobody(*command: str) -> subprocess.CompletedProcess:
    """Run a command as the Unix user nobody (the test runs as root)."""
    return subprocess.run(["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, timeout=60)


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
