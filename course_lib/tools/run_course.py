"""Execute the course notebooks and collect what they measure (``make course``).

For every notebook: run it top to bottom on a fresh kernel (nbclient), write the executed
``.ipynb`` and an HTML copy to the output folder, and gather the numbers it recorded with
:func:`course_lib.results.record`. At the end write ``results.json`` and ``results.md``.
On the first failing cell, stop and exit non-zero naming the notebook and the cell.

Widget cells and the lost wake-up. nbclient (0.11.0, the newest) answers each ``jupyter.widget`` Output model with
a mimic of a front end that, for every output captured by the widget (every ``interact``/``interactive`` cell
captures its function's prints and figures), sends a ``comm_msg`` back on the shell channel. It sends from the task
that reads IOPub while another task awaits the cell's ``execute_reply`` with an asyncio ``poll`` on that same shell
socket, and jupyter_client's ``Session.send`` sends through a blocking shadow of the asyncio socket. That send makes
libzmq process the socket's pending commands, which consumes the edge-triggered ``ZMQ_FD`` wake-up of an
``execute_reply`` that has just arrived, and pyzmq's asyncio layer never hears of the send, so it does not re-check
the socket: the poll sleeps until its timeout (the whole cell timeout), then finds the reply
that was there all along and goes on as if nothing happened (jupyter/nbclient#312, jupyter/nbconvert#2029). The
kernel is not involved, which is why pinning ipykernel did not help. The runner does not install that mimic
(``widget_registry`` is emptied), so nothing but the execute request is ever sent on the shell socket and the race
cannot happen; a widget's captured output lands in the cell's outputs, where the static build shows it. Each run
also compares, per cell, the client's time with the kernel's own (from the message timestamps) and warns when a
cell waited more than ``STALL_WARN_SECONDS`` after the kernel had finished; ``benchmarks/bench_runner_stall.py``
measures it on every widget cell of the course.

Usage::

    python -m course_lib.tools.run_course --out build [--jobs 2] notebooks/*.ipynb

``--jobs N`` runs N notebooks at a time, each in its own process with its own kernel (``make course`` does so in
quick mode with one torch thread per kernel; see the Makefile); results keep the notebooks' order.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from course_lib.results import to_markdown
from course_lib.tools import exercises as exercise_tools

# Seconds per cell: a limit for a stalled cell, not a time budget (benchmarks/quick_budgets.py keeps the budgets).
# Quick-mode cells take at most about three minutes on an AVX-512 laptop core, but several times that on a slower
# one: on a 2 GHz AVX2 core (2026-12-04) ch02c's CASED cell went past 300 s twice in one fresh-clone run, and one
# epoch of one of its nine trainings took 21 s in a profile. Full mode trains for long in one cell.
DEFAULT_TIMEOUT = {"quick": 1800, "full": 3600}
# A cell whose client-side time exceeds the kernel's own time by more than this waited for nothing (a lost reply).
# Normal overhead per cell is well under a second; the whole-run budget of issue 14 is 10 s outside cells.
STALL_WARN_SECONDS = 10.0


class KernelStartFailed(RuntimeError):
    """The kernel never answered its first request: e.g. it died binding a TCP port that another process took between
    jupyter_client choosing the port and the kernel binding it ("Address already in use"), a race of kernels started
    side by side."""


# how jupyter_client's wait_for_ready says so (a plain RuntimeError)
_KERNEL_START_MESSAGES = ("Kernel didn't respond", "Kernel died before replying")


class NotebookFailed(RuntimeError):
    """A cell of a notebook raised; the message names the notebook and the cell."""


@dataclass(frozen=True)
class CellTiming:
    """One executed code cell: ``index`` in the executed notebook (injected cells included), the client's wall
    time from sending the request to having every output, and the kernel's time from going busy to replying."""

    index: int
    client_seconds: float
    kernel_seconds: float

    @property
    def waited(self) -> float:
        """Seconds the client spent on this cell beyond what the kernel needed."""
        return self.client_seconds - self.kernel_seconds


@dataclass
class NotebookRun:
    path: Path
    seconds: float
    results: list[dict] = field(default_factory=list)
    notebook: nbformat.NotebookNode | None = None
    cells: list[CellTiming] = field(default_factory=list)

    @property
    def cell_seconds(self) -> float:
        """Kernel time summed over the cells."""
        return sum(c.kernel_seconds for c in self.cells)

    @property
    def outside_seconds(self) -> float:
        """Wall time not spent executing cells: kernel start and stop, messaging, and any wasted wait."""
        return self.seconds - self.cell_seconds


def _kernel_seconds(cell: nbformat.NotebookNode) -> float:
    """The kernel's own time for an executed cell, from the timestamps nbclient records (``record_timing``)."""
    times = cell.metadata.get("execution", {})
    start, end = times.get("iopub.status.busy"), times.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return max(0.0, (parse(end) - parse(start)).total_seconds())


def make_client(nb: nbformat.NotebookNode, *, timeout: int, cwd: Path, timings: list[CellTiming] | None = None
                ) -> NotebookClient:
    """The nbclient client the runner uses: no Output-widget mimic (see the module docstring), per-cell timings.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook to execute (changed in place by the client).
    timeout : int
        Seconds per cell.
    cwd : Path
        Working directory of the kernel.
    timings : list of CellTiming, optional
        Filled with one entry per executed code cell.
    """
    started: dict[int, float] = {}

    def on_execute(cell, cell_index, **_):
        started[cell_index] = time.perf_counter()

    def on_executed(cell, cell_index, **_):
        if timings is not None and cell_index in started:
            client_seconds = time.perf_counter() - started.pop(cell_index)
            timings.append(CellTiming(cell_index, client_seconds, _kernel_seconds(cell)))

    # shutdown_kernel="immediate": a graceful shutdown made each run wait 1.5-3.5 s more (measured under load) for
    # the kernel to wind down; nothing of ours runs at kernel exit (record() appends and closes at each call).
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}},
                            record_timing=True, shutdown_kernel="immediate",
                            on_cell_execute=on_execute, on_cell_executed=on_executed)
    client.widget_registry = {}  # no front-end mimic: it sends on the shell socket while the reply is awaited
    return client


def _failing_cell(nb: nbformat.NotebookNode) -> tuple[int, str]:
    """Index in the committed notebook and a description (first line) of the first cell with an error output, or
    else of the cell left running (a timeout or a dead kernel: nbclient started its timing record, never ended it)."""
    def described(index: int, cell) -> tuple[int, str]:
        injected = cell.metadata.get(exercise_tools.INJECTED_KEY)
        if injected:
            return injected["verifies"], "the blank against its check"
        source = cell.source.strip()
        return exercise_tools.original_index(nb, index), source.splitlines()[0] if source else ""

    for index, cell in enumerate(nb.cells):
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return described(index, cell)
    for index, cell in enumerate(nb.cells):
        times = cell.get("metadata", {}).get("execution")
        if cell.cell_type == "code" and times is not None and "shell.execute_reply" not in times:
            return described(index, cell)
    return -1, ""


def execute_notebook(path: Path, *, timeout: int | None = None, mode: str = "quick",
                     retries: int = 1, exercises: str = "solutions") -> NotebookRun:
    """Run one notebook in ``mode`` and return the executed notebook and its recorded results.

    Exercise cells (see :mod:`course_lib.tools.exercises`) run with their solutions in place. With
    ``exercises="verify"`` (the notebook tests) each check is also run against the blank, in the same kernel, and
    must fail with a message. Either way the returned notebook holds the solutions and no injected cell.

    A cell that times out, a kernel that dies or one that never starts (:class:`KernelStartFailed`) is retried on a
    fresh kernel, from the top, up to ``retries`` times: now and then a Jupyter kernel stops answering its client
    for good (both sides idle), a known upstream problem that a fresh kernel does not repeat, and two kernels started
    side by side can race for a port. A cell that *raises* is never retried.

    Raises
    ------
    NotebookFailed
        If a cell raises, or still times out after the retries; names the notebook, cell number and first line.
    """
    timeout = DEFAULT_TIMEOUT[mode] if timeout is None else timeout
    for attempt in range(retries + 1):
        try:
            return _execute_once(Path(path), timeout=timeout, mode=mode, exercises=exercises)
        except NotebookFailed as error:
            if not isinstance(error.__cause__, (CellTimeoutError, DeadKernelError, KernelStartFailed)) \
                    or attempt == retries:
                raise
            print(f"    {error}; retrying on a fresh kernel", file=sys.stderr, flush=True)
    raise AssertionError("unreachable")


def _execute_once(path: Path, *, timeout: int, mode: str, exercises: str) -> NotebookRun:
    path = Path(path)
    try:
        nb = exercise_tools.prepare(nbformat.read(path, as_version=4), exercises, path.name)
    except exercise_tools.ExerciseStructureError as error:
        raise NotebookFailed(str(error)) from error
    with tempfile.TemporaryDirectory() as tmp:
        results_file = Path(tmp) / "results.jsonl"
        env = {"COURSE_MODE": mode, "COURSE_RESULTS": str(results_file), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the kernel inherits the environment of this process
        start, timings = time.perf_counter(), []
        try:
            make_client(nb, timeout=timeout, cwd=path.parent, timings=timings).execute()
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            index, first_line = _failing_cell(nb)
            lines = str(error).strip().splitlines() or [type(error).__name__]
            summary = lines[0] if isinstance(error, CellTimeoutError) else lines[-1]  # the timeout ends with the source
            raise NotebookFailed(f"{path.name}: cell {index} ({first_line!r}) failed: {summary}") from error
        except RuntimeError as error:
            if not str(error).startswith(_KERNEL_START_MESSAGES):
                raise
            raise NotebookFailed(f"{path.name}: the kernel did not start: {error}") from KernelStartFailed(str(error))
        finally:
            exercise_tools.strip_injected(nb)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        seconds = time.perf_counter() - start
        results = []
        if results_file.exists():
            results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
    for timing in timings:
        if timing.waited > STALL_WARN_SECONDS:
            print(f"    warning: {path.name}: a cell waited {timing.waited:.0f} s after its kernel had finished "
                  f"(kernel {timing.kernel_seconds:.1f} s, client {timing.client_seconds:.1f} s)",
                  file=sys.stderr, flush=True)
    return NotebookRun(path, seconds, results, nb, timings)


def write_outputs(run: NotebookRun, out_dir: Path) -> None:
    """Write the executed notebook, its HTML rendering and its own records (``<name>.results.json``) to ``out_dir``."""
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(run.notebook, out_dir / run.path.name)
    (out_dir / f"{run.path.stem}.results.json").write_text(json.dumps(run.results, indent=2) + "\n")
    html, _ = HTMLExporter().from_notebook_node(run.notebook)
    (out_dir / run.path.with_suffix(".html").name).write_text(html, encoding="utf-8")


def _run_all(paths: list[Path], *, jobs: int, **kwargs):
    """Yield ``(path, NotebookRun or NotebookFailed)`` in the order of ``paths``, running ``jobs`` at a time.

    With ``jobs > 1`` each notebook runs in a worker process; after the first failure no new notebook starts.
    """
    if jobs == 1:
        for path in paths:
            print(f"{path.name} ({kwargs['mode']} mode) ...", flush=True)
            try:
                yield path, execute_notebook(path, **kwargs)
            except NotebookFailed as error:
                yield path, error
                return
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    print(f"running {len(paths)} notebooks, {jobs} at a time ...", flush=True)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_execute_or_failure, path, kwargs) for path in paths]
        for path, future in zip(paths, futures, strict=True):
            result = future.result()
            yield path, result
            if isinstance(result, NotebookFailed):
                for pending in futures:
                    pending.cancel()
                return


def _execute_or_failure(path: Path, kwargs: dict):
    """A worker's job: the run, or the NotebookFailed it raised (returned, so the parent reports it in order)."""
    try:
        return execute_notebook(path, **kwargs)
    except NotebookFailed as error:
        return error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build"))
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds per cell (default: 1800 in quick mode, 3600 in full mode)")
    parser.add_argument("--mode", default=os.environ.get("COURSE_MODE", "quick"), choices=("quick", "full"))
    parser.add_argument("--exercises", default="solutions", choices=("solutions", "verify"),
                        help="run exercises with their solutions (default), or also check each blank fails its check")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at a time (default 1)")
    parser.add_argument("--keep-going", action="store_true",
                        help="run the other notebooks after a failure (exit code 1 all the same)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")

    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        print(f"error: notebook(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    all_results, timings, failed = [], [], False
    runs = _run_all(args.notebooks, jobs=args.jobs, timeout=args.timeout, mode=args.mode, exercises=args.exercises)
    for k, (path, run) in enumerate(runs, start=1):
        if isinstance(run, NotebookFailed):
            print(f"FAILED {run}", file=sys.stderr)
            if not args.keep_going:
                return 1
            failed = True
            continue
        write_outputs(run, args.out)
        all_results.extend(run.results)
        timings.append((path.name, run.seconds, run.cell_seconds))
        print(f"[{k}/{len(args.notebooks)}] {path.name} ({args.mode} mode) ok in {run.seconds:.1f} s "
              f"({run.cell_seconds:.1f} s in cells, {run.outside_seconds:.1f} s outside), {len(run.results)} results",
              flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(all_results, indent=2) + "\n")
    timing_rows = "\n".join(f"| {name} | {seconds:.1f} | {inside:.1f} | {seconds - inside:.1f} |"
                            for name, seconds, inside in timings)
    (args.out / "results.md").write_text(
        f"# Course results ({args.mode} mode)\n\n{to_markdown(all_results)}\n"
        "## Notebook run times\n\nWall time, the kernel's time in cells, and the rest (kernel start and stop, "
        "messaging).\n\n"
        f"| notebook | seconds | in cells | outside cells |\n|---|---:|---:|---:|\n{timing_rows}\n"
    )
    print(f"wrote {args.out / 'results.json'} ({len(all_results)} results) and {args.out / 'results.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
