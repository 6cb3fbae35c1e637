"""Run student kernels isolated from the course: bubblewrap, a memory limit, one thread.

Student code runs in the Jupyter kernel that nbgrader starts for each notebook. Here that kernel is
started inside `bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian/Ubuntu package
``bubblewrap``) with:

* a fresh, empty root file system; only the system folders, the Python installation and the
  ``course_lib`` package are mounted, read-only. The course folder (``solutions/``,
  ``gradebook.db``, ``submitted/``, ``autograded/``, ``feedback/``) does not exist inside;
* write access only to the notebook's own folder (the worker's private copy of this one
  submission), a private ``/tmp`` and the kernel's connection folder;
* no network (the kernel talks to nbgrader over Unix sockets in its connection folder), its own
  process and IPC namespaces, no capabilities, and ``--die-with-parent``;
* ``RLIMIT_DATA`` (heap and anonymous memory; ``GRADER_MEMORY_MB``, default 4096). ``RLIMIT_AS``
  cannot be used: PyTorch maps several GB of shared libraries at import;
* ``OMP_NUM_THREADS=1`` and friends: N workers use N cores, and results do not depend on threads;
* an **empty environment plus an allowlist** (:data:`ENV_ALLOWED`: the path, locale, thread and course
  settings): nothing of the instructor's shell (``JUPYTERHUB_API_TOKEN``, cloud keys, ...) reaches a
  kernel, sandboxed or not.

``GRADER_SANDBOX`` selects the mode: ``auto`` (default) and ``require`` grade only in the sandbox and
refuse when bubblewrap cannot run here; ``off`` grades without it, which must be asked for by name: then
every kernel can read and write whatever the instructor can (solutions, the gradebook, other students),
and every summary says so.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
# The only variables a kernel inherits from the grader: what Python, the locale, torch's kernels and the course
# read (same results as the instructor's run). Everything else, secrets included, is dropped.
ENV_ALLOWED = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "MPLBACKEND", "PYTHONHASHSEED", "PYTHONPATH",
               "COURSE_MODE", "COURSE_DEVICE", "NBGRADER_EXECUTION", "ATEN_CPU_CAPABILITY", "CUBLAS_WORKSPACE_CONFIG",
               "TORCH_NUM_THREADS")
UNISOLATED = "NOT isolated"


def memory_limit_bytes() -> int:
    """The per-kernel limit on data memory, from ``GRADER_MEMORY_MB`` (default 4096 MB)."""
    mb = int(os.environ.get("GRADER_MEMORY_MB", "4096"))
    if mb <= 0:
        raise ValueError(f"GRADER_MEMORY_MB must be positive, got {mb}")
    return mb * 1024 * 1024


def mode() -> str:
    value = os.environ.get("GRADER_SANDBOX", "auto")
    if value not in ("auto", "require", "off"):
        raise ValueError(f"GRADER_SANDBOX must be auto, require or off, got {value!r}")
    return value


def _readonly_paths() -> list[str]:
    """Folders the kernel needs to start Python and import the course's packages."""
    import course_lib

    paths = [p for p in SYSTEM_DIRS if os.path.exists(p)]
    paths += [sys.base_prefix, sys.prefix, str(Path(sys.executable).resolve().parent)]
    paths.append(str(Path(course_lib.__file__).resolve().parent))
    unique = []
    for path in paths:
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in unique):
            unique.append(path)
    return unique


def bwrap_command(cmd: list[str], *, cwd: str, private_dir: str) -> list[str]:
    """``cmd`` wrapped in bubblewrap: read-only system, writable ``cwd`` and ``private_dir`` only."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError("bwrap not found: install bubblewrap (apt-get install bubblewrap)")
    # No --new-session: the kernel has no terminal (jupyter_client starts it in a new session), and
    # it must stay in the process group the grader signals. JPY_PARENT_PID is unset because the
    # kernel's parent inside the PID namespace is PID 1; --die-with-parent ties it to the grader.
    # /tmp is mounted first: the read-only folders (a course cloned under /tmp) go on top of it.
    args = [bwrap, "--die-with-parent", "--unshare-all", "--cap-drop", "ALL", "--unsetenv", "JPY_PARENT_PID",
            "--tmpfs", "/", "--tmpfs", "/tmp", "--dir", "/tmp/home"]
    for path in _readonly_paths():
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--bind", private_dir, private_dir, "--bind", cwd, cwd, "--chdir", cwd,
             "--setenv", "HOME", "/tmp/home", "--setenv", "TMPDIR", "/tmp",
             "--setenv", "MPLCONFIGDIR", "/tmp/home/.matplotlib", "--setenv", "IPYTHONDIR", "/tmp/home/.ipython",
             "--setenv", "PYTHONPATH", str(Path(_readonly_paths()[-1]).parent)]
    return [*args, "--", *cmd]


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """Whether bubblewrap can start a process here, and why not."""
    if mode() == "off":
        return False, "GRADER_SANDBOX=off"
    if shutil.which("bwrap") is None:
        return False, "bwrap is not installed (apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = bwrap_command([sys.executable, "-c", "import course_lib"], cwd=tmp, private_dir=tmp)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return False, f"bwrap cannot start a sandbox here: {result.stderr.strip()[-300:]}"
    return True, "bubblewrap"


def check(own_work: bool = False) -> str:
    """Describe the isolation in use; raise RuntimeError unless the sandbox runs or ``GRADER_SANDBOX=off``.

    ``own_work``: a self-learner grading their own notebooks (``make grade-me``), whose code can reach only
    their own machine; there ``auto`` grades unisolated, with the warning, instead of refusing.
    """
    ok, why = available()
    if ok:
        return "bubblewrap sandbox"
    if own_work and mode() == "auto":
        return f"{UNISOLATED} ({why}): your own notebooks, graded on your own machine; memory limit only"
    if mode() != "off":
        raise RuntimeError(
            f"refusing to grade without the sandbox: {why}. Unisolated, every student's code could read the "
            "solutions and the gradebook and change other students' grades. Install bubblewrap "
            "(`sudo apt-get install bubblewrap`, or run `make` as root), or, for notebooks you trust, "
            "grade unisolated on purpose with GRADER_SANDBOX=off")
    return f"{UNISOLATED} (GRADER_SANDBOX=off): student code can reach the solutions, the gradebook and other " \
           "students; memory limit only"


def kernel_env(inherited: dict, home: str) -> dict:
    """The kernel's environment: :data:`ENV_ALLOWED` taken from ``inherited``, one thread, ``home`` as HOME.

    ``PATH`` is this Python's folder and the system's, not the instructor's.
    """
    env = {k: v for k, v in inherited.items() if k in ENV_ALLOWED}
    env.update(dict.fromkeys(THREAD_VARS, "1"))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    env.update(HOME=home, TMPDIR=os.path.join(home, "tmp"), MPLCONFIGDIR=os.path.join(home, ".matplotlib"),
               IPYTHONDIR=os.path.join(home, ".ipython"))
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def limited_command(cmd: list[str]) -> list[str]:
    """``cmd`` started through this module's ``exec`` helper, which sets the memory limit first."""
    return [sys.executable, "-m", "course_lib.grading.sandbox", str(memory_limit_bytes()), *cmd]


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel runs under :func:`bwrap_command` with the memory limit.

    The connection file and the kernel's Unix sockets live in a private folder that is the only
    thing the kernel shares with the grader besides its working folder.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._private_dir = tempfile.mkdtemp(prefix="grader-kernel-")
        # removed when this manager goes away, whatever path its kernel took (a restart, a crash, a shutdown)
        weakref.finalize(self, shutil.rmtree, self._private_dir, True)
        self.sandboxed = available()[0]
        if self.sandboxed:
            self.transport = "ipc"
            self.ip = os.path.join(self._private_dir, "ipc")
        self.connection_file = os.path.join(self._private_dir, "kernel.json")

    async def _async_pre_start_kernel(self, **kw):
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        # unsandboxed, the kernel's home and temp folder are its own too (bubblewrap sets /tmp/home itself)
        home = os.path.join(self._private_dir, "home")
        os.makedirs(os.path.join(home, "tmp"), exist_ok=True)
        kw["env"] = kernel_env(kw.get("env") or os.environ, home)
        kernel_cmd = limited_command(kernel_cmd)
        if self.sandboxed:
            cwd = os.path.abspath(kw.get("cwd") or os.getcwd())
            kernel_cmd = bwrap_command(kernel_cmd, cwd=cwd, private_dir=self._private_dir)
        return kernel_cmd, kw

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt by message: ipykernel signals itself inside the sandbox (SIGINT to bwrap would kill it)."""
        if self.sandboxed and self.has_kernel:
            self._connect_control_socket()
            self.session.send(self._control_socket, self.session.msg("interrupt_request", content={}))
            return
        await super()._async_interrupt_kernel()

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._private_dir, ignore_errors=True)


def _exec_with_limit(argv: list[str]) -> None:
    """``python -m course_lib.grading.sandbox BYTES cmd...``: set RLIMIT_DATA, then exec cmd."""
    limit = int(argv[0])
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    _exec_with_limit(sys.argv[1:])
