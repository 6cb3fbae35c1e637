"""Execute the course notebooks and collect what they measure (``make course``).

For every notebook: run it top to bottom on a fresh kernel (nbclient), write the executed
``.ipynb`` and an HTML copy to the output folder, and gather the numbers it recorded with
:func:`course_lib.results.record`. At the end write ``results.json`` and ``results.md``.
On the first failing cell, stop and exit non-zero naming the notebook and the cell.

Usage::

    python -m course_lib.tools.run_course --out build notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from course_lib.results import to_markdown
from course_lib.tools import exercises as exercise_tools

# Seconds per cell. Quick-mode cells take at most about a minute on 2 cores, so a cell still running after
# 300 s has stalled; full mode trains for long in one cell.
DEFAULT_TIMEOUT = {"quick": 300, "full": 3600}


class NotebookFailed(RuntimeError):
    """A cell of a notebook raised; the message names the notebook and the cell."""


@dataclass
class NotebookRun:
    path: Path
    seconds: float
    results: list[dict] = field(default_factory=list)
    notebook: nbformat.NotebookNode | None = None


def _failing_cell(nb: nbformat.NotebookNode) -> tuple[int, str]:
    """Index in the committed notebook and a description (first line) of the first cell with an error output."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                injected = cell.metadata.get(exercise_tools.INJECTED_KEY)
                if injected:
                    return injected["verifies"], "the blank against its check"
                source = cell.source.strip()
                return exercise_tools.original_index(nb, index), source.splitlines()[0] if source else ""
    return -1, ""


def execute_notebook(path: Path, *, timeout: int | None = None, mode: str = "quick",
                     retries: int = 1, exercises: str = "solutions") -> NotebookRun:
    """Run one notebook in ``mode`` and return the executed notebook and its recorded results.

    Exercise cells (see :mod:`course_lib.tools.exercises`) run with their solutions in place. With
    ``exercises="verify"`` (the notebook tests) each check is also run against the blank, in the same kernel, and
    must fail with a message. Either way the returned notebook holds the solutions and no injected cell.

    A cell that times out or a kernel that dies is retried on a fresh kernel, from the top, up to ``retries``
    times: now and then a Jupyter kernel stops answering its client for good (both sides idle), a known
    upstream problem that a fresh kernel does not repeat. A cell that *raises* is never retried.

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
            if not isinstance(error.__cause__, (CellTimeoutError, DeadKernelError)) or attempt == retries:
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
        start = time.perf_counter()
        try:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            client.execute()
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            index, first_line = _failing_cell(nb)
            summary = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise NotebookFailed(f"{path.name}: cell {index} ({first_line!r}) failed: {summary}") from error
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
    return NotebookRun(path, seconds, results, nb)


def write_outputs(run: NotebookRun, out_dir: Path) -> None:
    """Write the executed notebook and its HTML rendering to ``out_dir``."""
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(run.notebook, out_dir / run.path.name)
    html, _ = HTMLExporter().from_notebook_node(run.notebook)
    (out_dir / run.path.with_suffix(".html").name).write_text(html, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build"))
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds per cell (default: 300 in quick mode, 3600 in full mode)")
    parser.add_argument("--mode", default=os.environ.get("COURSE_MODE", "quick"), choices=("quick", "full"))
    parser.add_argument("--exercises", default="solutions", choices=("solutions", "verify"),
                        help="run exercises with their solutions (default), or also check each blank fails its check")
    args = parser.parse_args(argv)

    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        print(f"error: notebook(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    all_results, timings = [], []
    for k, path in enumerate(args.notebooks, start=1):
        print(f"[{k}/{len(args.notebooks)}] {path.name} ({args.mode} mode) ...", flush=True)
        try:
            run = execute_notebook(path, timeout=args.timeout, mode=args.mode, exercises=args.exercises)
        except NotebookFailed as error:
            print(f"FAILED {error}", file=sys.stderr)
            return 1
        write_outputs(run, args.out)
        all_results.extend(run.results)
        timings.append((path.name, run.seconds))
        print(f"    ok in {run.seconds:.1f} s, {len(run.results)} results", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(all_results, indent=2) + "\n")
    timing_rows = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in timings)
    (args.out / "results.md").write_text(
        f"# Course results ({args.mode} mode)\n\n{to_markdown(all_results)}\n"
        f"## Notebook run times\n\n| notebook | seconds |\n|---|---:|\n{timing_rows}\n"
    )
    print(f"wrote {args.out / 'results.json'} ({len(all_results)} results) and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
