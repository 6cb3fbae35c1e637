"""nbgrader preprocessors used by ``make grade`` (configured in ``nbgrader_config.py``).

:class:`GuardedExecute` replaces nbgrader's ``Execute`` while autograding:

* the kernel runs in the sandbox (:class:`.sandbox.SandboxedKernelManager`);
* a time **budget** per notebook: a function that loops costs one full cell timeout, then every
  later cell gets at most ``timeout_after_timeout`` seconds, and once the budget is spent each
  remaining cell gets 1 s (it fails fast instead of waiting);
* a **dead kernel** (``os._exit``, a segfault, the memory limit) fails the cell that killed it; a
  fresh kernel replays the earlier cells and grading goes on with the next cell;
* the **integrity guard** (:mod:`.kernel_guard`): checking functions, test helpers and the kernel's
  execution hooks (input/AST transformers, trace and profile hooks, import hooks) restored before each
  graded test cell and checked after it; a change found before the test flags the submission for review,
  and a test cell during which they were changed scores 0 with a ``GraderIntegrityError``.

What the student reads afterwards (hidden tests scrubbed, HTML sanitised) is :mod:`.feedback`'s.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import tempfile
from pathlib import Path
from queue import Empty
from time import monotonic

from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from ..tools.cell_names import defined_names
from . import files, kernel_guard
from .sandbox import SandboxedKernelManager

INTEGRITY = "GraderIntegrityError"
# Modules whose attributes change during normal execution (IPython swaps sys.displayhook, ...).
GUARD_MODULE = "course_lib.tools.guard"  # what hidden tests call to check the student's own work
UNGUARDED_MODULES = {"sys", "os", "subprocess", "time", "random", "torch", "numpy", "copy", "gc", "warnings"}
RUN_LOG: list[dict] = []  # one entry per executed notebook of this process: problems and seconds


def _grade_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) if cell.cell_type == "code" else {}


def is_test_cell(cell) -> bool:
    meta = _grade_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def guarded_modules(nb) -> list[str]:
    """The modules whose functions the guard keeps: those the test cells import, and always the course's guard.

    A test cell may call ``assert_own_work`` imported by an earlier cell; its helpers are guarded all the same.
    """
    imported = {m for cell in nb.cells if is_test_cell(cell) for m in imported_modules(cell.source)}
    return sorted((imported | {GUARD_MODULE}) - UNGUARDED_MODULES)


def is_locked_cell(cell) -> bool:
    """A read-only cell of the course's that is neither an answer nor a test (imports, the training run)."""
    meta = _grade_meta(cell)
    return bool(meta.get("locked")) and not meta.get("solution") and not meta.get("grade")


def explain_limits(cell, timeout: int | None) -> None:
    """Add to ``cell``'s outputs which limit stopped it: a bare ``KeyboardInterrupt`` or ``MemoryError`` names none."""
    names = {o.get("ename") for o in cell.get("outputs", []) if o.get("output_type") == "error"}
    if timeout is not None:
        cell.outputs.append(new_output("error", ename="CellTimeout", evalue=(
            f"this cell was stopped after its time limit of {timeout} s (NBGRADER_TIMEOUT; once a cell of the "
            "notebook has timed out, later cells get less): check for a loop that never ends or runs far longer "
            "than the exercise needs"), traceback=[]))
    if "MemoryError" in names:
        limit = int(os.environ.get("GRADER_MEMORY_MB", "4096"))
        cell.outputs.append(new_output("error", ename="MemoryLimit", evalue=(
            f"this cell needed more than the memory limit of {limit} MB per notebook (GRADER_MEMORY_MB): check for "
            "an array or tensor far larger than the data (a wrong shape, an outer product, a copy per step)"),
            traceback=[]))


def imported_modules(source: str) -> list[str]:
    """Modules a cell imports (``import a.b`` -> a.b; ``from a.b import c`` -> a.b)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
    return found


class GuardedExecute(Execute):
    """nbgrader's Execute with the sandbox, a time budget, crash recovery and the integrity guard."""

    budget = Integer(300, help="Seconds the whole notebook may run before remaining cells get 1 s each.").tag(
        config=True)
    timeout_after_timeout = Integer(10, help="Cell timeout once a cell of this notebook has timed out.").tag(
        config=True)
    guard = Bool(True, help="Restore and check the checking functions around graded test cells.").tag(config=True)

    def __init__(self, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(**kwargs)

    # ---- state of one notebook run -----------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        self._started = monotonic()
        self._timed_out = False
        self._guard_ready = False
        self._crashed: set[int] = set()
        self._problems: list[str] = []
        self._limits: dict[int, int] = {}  # id(cell) -> the time limit it ran into
        self._test_modules = guarded_modules(nb)
        # The kernel runs in a fresh, empty folder of its own, never where nbgrader writes the autograded notebook:
        # a link the student's code leaves there (to solutions/, the gradebook, another student's notebook) is
        # never followed by the grader's writes, copies or chmods; it is reported and removed with the folder.
        resources = resources if resources is not None else {}
        metadata = resources.setdefault("metadata", {})
        graded_in = metadata.get("path")
        metadata["path"] = scratch = tempfile.mkdtemp(prefix="grader-cwd-")
        try:
            nb, resources = super().preprocess(nb, resources, km)
            self._problems += [f"the code left {what} in its folder (ignored, never followed): flagged for review"
                               for what in files.odd_entries(Path(scratch))]
        finally:
            metadata["path"] = graded_in
            shutil.rmtree(scratch, ignore_errors=True)
        RUN_LOG.append({"notebook": resources.get("unique_key") if resources else None,
                        "problems": list(self._problems), "seconds": round(monotonic() - self._started, 2)})
        for problem in self._problems:
            self.log.warning(problem)
        return nb, resources

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if cell is None or timeout is None:
            return timeout
        # A locked cell (the course's own code, e.g. the graded training run) keeps its full time: shortening it
        # after a student's loop timed out made its result depend on the machine's load.
        if self._timed_out and not is_locked_cell(cell):
            timeout = min(timeout, self.timeout_after_timeout)
        left = self.budget - (monotonic() - self._started)
        return max(1, int(min(timeout, left)))

    async def _async_handle_timeout(self, timeout, cell=None):
        if cell is not None:
            grade_id = _grade_meta(cell).get("grade_id", f"cell {cell.get('execution_count')}")
            self._problems.append(f"{grade_id}: timed out after {timeout} s")
            self._limits[id(cell)] = timeout
        self._timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    # ---- silent requests to the kernel ---------------------------------------------------------
    async def _async_silent(self, code: str, expression: str | None = None, timeout: float = 30):
        """Run ``code`` silently; return the value of ``expression`` (a literal), True, or None on failure."""
        msg_id = self.kc.execute(code, silent=True, store_history=False, stop_on_error=False,
                                 user_expressions={"r": expression} if expression else {})
        deadline = monotonic() + timeout
        while True:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=max(0.1, deadline - monotonic())))
            except Empty:
                await ensure_async(self.km.interrupt_kernel())
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        content = msg["content"]
        if content.get("status") != "ok":
            return None
        if expression is None:
            return True
        value = content.get("user_expressions", {}).get("r", {})
        if value.get("status") != "ok":
            return None
        try:
            return ast.literal_eval(value["data"]["text/plain"])
        except (KeyError, ValueError, SyntaxError):
            return None

    silent = run_sync(_async_silent)

    def _setup_guard(self) -> None:
        code = kernel_guard.SETUP.replace("__GRADER_TEST_MODULES__", json.dumps(self._test_modules))
        self._guard_ready = self.silent(code, timeout=120) is True
        if not self._guard_ready:
            self._problems.append("integrity guard could not be installed in the kernel")

    # ---- cells ---------------------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return super().preprocess_cell(cell, resources, index)
        if self.guard and not self._guard_ready and not self._crashed:
            self._setup_guard()
        test = is_test_cell(cell)
        grade_id = _grade_meta(cell).get("grade_id", f"cell {index}")
        if self.guard and test and self._guard_ready:
            restored = self.silent("", kernel_guard.RESTORE)
            if restored is None:
                self._problems.append(f"{grade_id}: the integrity guard was removed or broken: flagged for review")
            elif restored:
                self._problems.append(f"{grade_id}: restored {', '.join(restored)} before the test (patched by "
                                      "the submission): flagged for review")
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._crashed.add(index)
            self._problems.append(f"{grade_id}: the kernel died (os._exit, a crash or the memory limit)")
            cell.outputs.append(new_output("error", ename="KernelDied", evalue=(
                "the kernel died while this cell ran (os._exit, a crash, or more memory than the limit); "
                "the cell scores 0 and grading went on with a fresh kernel"), traceback=[]))
            self._restart_and_replay(index)
            return cell, resources
        explain_limits(cell, self._limits.get(id(cell)))
        if not self.guard or not self._guard_ready:
            return cell, resources
        if test:
            changed = self.silent("", kernel_guard.CHECK)
            if changed is None or changed:
                what = "the integrity guard itself" if changed is None else ", ".join(changed)
                self._problems.append(f"{grade_id}: patched {what} while the test ran: cell scored 0, "
                                      "flagged for review")
                cell.outputs.append(new_output("error", ename=INTEGRITY, evalue=(
                    f"the checking functions were changed while this test ran ({what}): "
                    "the cell scores 0 and the submission is flagged for manual review"), traceback=[]))
                self.silent("", kernel_guard.RESTORE)
        elif _grade_meta(cell).get("locked"):
            self.silent(kernel_guard.keep(defined_names(cell.source)))
        return cell, resources

    def _restart_and_replay(self, index: int) -> None:
        """A fresh kernel that has run every earlier code cell except test cells and crashed ones."""
        run_sync(self.km.restart_kernel)(now=True)
        self.wait_for_reply(self.kc.kernel_info())
        self._guard_ready = False
        if self.guard:
            self._setup_guard()
        for i, cell in enumerate(self.nb.cells[:index]):
            if cell.cell_type != "code" or i in self._crashed or is_test_cell(cell):
                continue
            left = self.budget - (monotonic() - self._started)
            if left <= 1 or self.silent(cell.source, timeout=min(self.timeout or left, left)) is None:
                self._problems.append(f"replaying cell {i} after the crash failed")
            elif self._guard_ready and _grade_meta(cell).get("locked"):
                self.silent(kernel_guard.keep(defined_names(cell.source)))
