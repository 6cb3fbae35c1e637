"""Benchmark: does the notebook runner ever wait for nothing after a widget cell? (issue 14)

For every notebook of the course with widget cells (a code cell calling ``interact``, ``interactive`` or
``interact_manual``), build one notebook: the notebook's own cells up to its last widget cell (exercise solutions
filled in), each widget cell repeated ``--copies`` times (default 50) in place. Run it with the runner
(:func:`course_lib.tools.run_course.execute_notebook`, quick mode), then report, per notebook:

* wall time of the run against the kernel's own time summed over the cells ("outside" = kernel start and stop,
  messaging, and any wasted wait; the issue's budget is 10 s per run);
* for the widget cell executions: how long the client took beyond the kernel's time (``waited``), the worst and
  the mean, and how many waited more than 1 s.

Exit status 1 if a run spends more than ``--budget`` seconds outside cells or a widget cell waited more than
``run_course.STALL_WARN_SECONDS``. ``--mimic`` puts back nbclient's Output-widget mimic, which the runner leaves
out, to show the stall it causes (use a short ``--timeout``: each stall waits the whole cell timeout).
``--synthetic N`` instead runs a minimal ``interact`` cell (a slider and a print, like ch02b's) N times, 20 cells
per fresh kernel, with and without the mimic, with a 5 s cell timeout, and counts the cells that waited for it::

    .venv/bin/python benchmarks/bench_runner_stall.py                      # every widget cell, 50 times
    .venv/bin/python benchmarks/bench_runner_stall.py --only ch02b --mimic --timeout 20
    .venv/bin/python benchmarks/bench_runner_stall.py --synthetic 300
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient.output_widget import OutputWidget

from course_lib.tools import exercises, run_course

ROOT = Path(__file__).resolve().parents[1]
WIDGET_CALL = re.compile(r"\b(interact|interactive|interact_manual)\s*\(")


def widget_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells that build an interactive widget."""
    return [k for k, c in enumerate(nb.cells) if c.cell_type == "code" and WIDGET_CALL.search(c.source)]


def repeated_notebook(nb: nbformat.NotebookNode, copies: int) -> tuple[nbformat.NotebookNode, set[int]]:
    """The cells up to the last widget cell, each widget cell ``copies`` times; and the widget cells' indices."""
    filled = exercises.fill_solutions(nb)
    targets = widget_cells(filled)
    cells, widget_indices = [], set()
    for k, cell in enumerate(filled.cells[: targets[-1] + 1]):
        cell = copy.deepcopy(cell)
        cell.metadata.pop("tags", None)  # a cut-off exercise triple must not be parsed again
        repeats = copies if k in targets else 1
        for j in range(repeats):
            if k in targets:
                widget_indices.add(len(cells))
            repeat = copy.deepcopy(cell)
            if j and "id" in repeat:
                repeat["id"] = f"{repeat['id'][:50]}-r{j}"  # cell ids must stay unique
            cells.append(repeat)
    out = copy.deepcopy(filled)
    out.cells = cells
    return out, widget_indices


@contextlib.contextmanager
def mimic_put_back(active: bool = True):
    """Make the runner's client install nbclient's Output-widget mimic again (for the comparison)."""
    make_client = run_course.make_client

    def with_mimic(*args, **kwargs):
        client = make_client(*args, **kwargs)
        client.widget_registry = {"@jupyter-widgets/output": {"OutputModel": OutputWidget}}
        return client

    if active:
        run_course.make_client = with_mimic
    try:
        yield
    finally:
        run_course.make_client = make_client


SYNTHETIC_CELL = """import ipywidgets as widgets
def tradeoff(quantile=0.8):
    print(f"quantile {quantile:.2f}")
widgets.interact(tradeoff, quantile=widgets.FloatSlider(0.8, min=0.5, max=0.99, step=0.01));"""


def synthetic(copies: int, timeout: int = 5, per_kernel: int = 20) -> None:
    """The minimal interact cell ``copies`` times, ``per_kernel`` cells per fresh kernel, with and without the mimic:
    count the cells that waited for the timeout."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SYNTHETIC_CELL) for _ in range(per_kernel)],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_interact.ipynb"
        nbformat.write(nb, path)
        for mimic in (True, False):
            cells, stalls, wall, outside = 0, 0, 0.0, []
            with mimic_put_back(mimic):
                for _ in range(max(1, copies // per_kernel)):
                    run = run_course.execute_notebook(path, timeout=timeout, mode="quick", retries=0)
                    cells += len(run.cells)
                    stalls += sum(c.waited > timeout / 2 for c in run.cells)
                    wall += run.seconds
                    outside.append(run.outside_seconds)
            print(f"{'with' if mimic else 'without'} the mimic: {stalls} of {cells} interact cells waited for the "
                  f"{timeout} s timeout; {len(outside)} kernels, wall {wall:.1f} s, outside cells per run: "
                  f"max {max(outside):.1f} s, mean {sum(outside) / len(outside):.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=50, help="executions of each widget cell (default 50)")
    parser.add_argument("--only", default="", help="comma-separated parts of the names of the notebooks to run")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: the runner's)")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds a run may spend outside cells")
    parser.add_argument("--mimic", action="store_true", help="put nbclient's Output-widget mimic back")
    parser.add_argument("--synthetic", type=int, default=0, help="only the minimal interact cell, N times")
    args = parser.parse_args(argv)
    if args.synthetic:
        synthetic(args.synthetic)
        return 0
    if args.mimic:
        mimic_put_back().__enter__()

    parts = [part for part in args.only.split(",") if part] or [""]
    paths = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if any(part in p.name for part in parts)]
    rows, failed = [], False
    print(f"runner {'WITH' if args.mimic else 'without'} nbclient's Output-widget mimic, {args.copies} copies "
          f"of each widget cell, quick mode", flush=True)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not widget_cells(nb):
            continue
        built, widget_indices = repeated_notebook(nb, args.copies)
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / path.name
            nbformat.write(built, target)
            start = time.perf_counter()
            try:
                run = run_course.execute_notebook(target, timeout=args.timeout, mode="quick", retries=0)
            except run_course.NotebookFailed as error:  # e.g. a training cell past --timeout on a busy machine
                print(f"{path.stem}: not measured: {error}", flush=True)
                failed = True
                continue
            wall = time.perf_counter() - start
        waits = [c.waited for c in run.cells if c.index in widget_indices]
        row = (path.stem, [k for k in widget_cells(nb)], len(waits), wall, run.cell_seconds, run.outside_seconds,
               max(waits), sum(waits) / len(waits), sum(w > 1.0 for w in waits))
        rows.append(row)
        failed |= run.outside_seconds > args.budget or max(waits) > run_course.STALL_WARN_SECONDS
        print(f"{row[0]}: widget cell(s) {row[1]} x {args.copies}: wall {wall:.1f} s, in cells {row[4]:.1f} s, "
              f"outside {row[5]:.1f} s; widget cells waited max {row[6]:.2f} s, mean {row[7]:.3f} s, "
              f"{row[8]} over 1 s", flush=True)

    print("\n| notebook | widget cells | executions | wall s | in cells s | outside s | max wait s | mean wait s "
          "| waits > 1 s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, cells, n, wall, inside, outside, worst, mean, over in rows:
        print(f"| {name} | {cells} | {n} | {wall:.1f} | {inside:.1f} | {outside:.1f} | {worst:.2f} | {mean:.3f} "
              f"| {over} |")
    if not rows:
        return 1
    total = sum(r[2] for r in rows)
    print(f"\n{total} widget cell executions in {len(rows)} runs; worst run outside cells "
          f"{max(r[5] for r in rows):.1f} s (budget {args.budget:.0f} s); worst wait {max(r[6] for r in rows):.2f} s: "
          f"{'FAIL' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
