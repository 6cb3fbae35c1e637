"""Forced regrades of the grading torture class give identical results (issue 14: "10 regradings").

Builds the class of ``tests/grading/test_grading_torture.py`` (every hostile and broken submission, with the
victim beside the attackers), grades it once with ``make grade``'s engine, then ``--regrades`` more times with
``force=True``. After each regrade it compares, for every student, the status (graded or rejected), every
autograded cell's score and the total with the first grading, and prints one line per regrade and the cases
whose outcome ever changed. The test suite regrades three of the students once; this script is the long run::

    .venv/bin/python benchmarks/torture_regrades.py                 # 10 regrades, about 2 min each on 2 cores
    .venv/bin/python benchmarks/torture_regrades.py --regrades 3 --jobs 2

Exit status 1 if any outcome changed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "grading"))


def outcomes(course: Path, report, assignment: str) -> dict[str, tuple]:
    """student -> (status, total score, sorted cell scores); cell scores only for graded submissions."""
    from nbgrader_harness import cell_scores

    return {row["student"]: (row["status"], row["score"],
                             tuple(sorted(cell_scores(course, assignment, assignment, row["student"]).items()))
                             if row["status"] == "graded" else ())
            for row in report.table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regrades", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if args.regrades < 1 or args.jobs < 1:
        parser.error("--regrades and --jobs must be >= 1")
    os.environ.update(COURSE_MODE="quick", PYTHONHASHSEED="0")
    from test_grading_torture import EXPECTED, TIMEOUT, A, torture_class

    from course_lib.grading.grade_all import grade_class

    changed: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        course = torture_class(Path(tmp))
        start = time.perf_counter()
        report = grade_class(course, jobs=args.jobs, timeout=TIMEOUT, time_limit=600, progress=False, quiet=True)
        first = outcomes(course, report, A)
        print(f"first grading: {len(first)} submissions ({sorted(first) == sorted(EXPECTED)} = every case has a row), "
              f"{sum(s == 'graded' for s, _, _ in first.values())} graded, "
              f"{sum(s == 'rejected' for s, _, _ in first.values())} rejected, {time.perf_counter() - start:.0f} s")
        for k in range(1, args.regrades + 1):
            start = time.perf_counter()
            report = grade_class(course, jobs=args.jobs, timeout=TIMEOUT, time_limit=600, force=True,
                                 progress=False, quiet=True)
            again = outcomes(course, report, A)
            differ = sorted(s for s in set(first) | set(again) if first.get(s) != again.get(s))
            for student in differ:
                changed[student] = changed.get(student, 0) + 1
            print(f"regrade {k:2d}: {time.perf_counter() - start:.0f} s, outcomes that differ from the first "
                  f"grading: {len(differ)} {differ}", flush=True)
    print(f"torture_regrades: {args.regrades}; cases whose outcome ever changed: {len(changed)} {changed}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
