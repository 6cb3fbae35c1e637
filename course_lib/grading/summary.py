"""The summary of a grading run: a table (student x assignment) and the lists to act on.

Written next to ``grades.csv``:

* ``grading_summary.csv`` -- one row per submission: score, max score, seconds, status, and the
  reasons (rejections, problems while running, repairs, flags for manual review);
* printed: the same table, then the submissions that could not be graded and why, then those
  flagged for manual review and why.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .pool import Outcome
from .sandbox import UNISOLATED

COLUMNS = ["student", "assignment", "score", "max_score", "seconds", "status", "review", "reasons"]


def rows(outcomes: list[Outcome], scores: dict, max_scores: dict) -> list[dict]:
    out = []
    for o in sorted(outcomes, key=lambda o: (o.student, o.assignment)):
        score, maximum, manual = scores.get((o.student, o.assignment),
                                            (0.0, max_scores.get(o.assignment, 0.0), False))
        reasons = ([o.reason] if o.reason else []) + o.problems + o.flags + o.notes
        if manual and o.status in ("graded", "skipped"):
            reasons.append("written answers are graded by hand: their points are not in the score until an "
                           "instructor grades them (nbgrader formgrader)")
        out.append({"student": o.student, "assignment": o.assignment,
                    "score": round(score, 2) if o.status in ("graded", "skipped") else 0.0,
                    "max_score": maximum, "seconds": round(o.seconds, 1), "status": o.status,
                    "review": "yes" if (o.flags or any("flagged" in p for p in o.problems)) else "",
                    "reasons": "; ".join(reasons)})
    return out


def write_csv(table: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    return path


def render(table: list[dict], isolation: str = "", written: dict | None = None, width: int = 110) -> str:
    """The printed summary; an unisolated run (``isolation`` from :func:`.sandbox.check`) says so first and last.

    ``written``: assignment -> points of its written answers; each graded assignment that has some gets a line
    saying those points are graded by hand, so "10 / 12" does not read as two points lost.
    """
    warning = [f"WARNING: graded {isolation}", ""] if isolation.startswith(UNISOLATED) else []
    lines = [*warning, f"{'student':24s} {'assignment':28s} {'score':>11s} {'time':>7s}  status    problems"]
    for r in table:
        score = f"{r['score']:g} / {r['max_score']:g}"
        reasons = r["reasons"]
        if len(reasons) > width - 80:
            reasons = reasons[: width - 83] + "..."
        lines.append(f"{r['student'][:24]:24s} {r['assignment'][:28]:28s} {score:>11s} {r['seconds']:6.1f}s"
                     f"  {r['status']:8s}  {reasons}")
    failed = [r for r in table if r["status"] not in ("graded", "skipped")]
    lines.append("")
    lines.append(f"could not be graded: {len(failed)}" + (":" if failed else ""))
    lines += [f"  {r['student']}/{r['assignment']}: {r['status']}: {r['reasons']}" for r in failed]
    review = [r for r in table if r["review"]]
    lines.append(f"flagged for manual review: {len(review)}" + (":" if review else ""))
    lines += [f"  {r['student']}/{r['assignment']}: {r['reasons']}" for r in review]
    by_hand = {r["assignment"]: r["max_score"] for r in table if (written or {}).get(r["assignment"])}
    lines += [f"{a}: {written[a]:g} of its {m:g} points are written answers, graded by hand (nbgrader formgrader); "
              "the scores above do not count them until then" for a, m in sorted(by_hand.items())]
    if warning:
        lines += ["", warning[0]]
    return "\n".join(lines)
