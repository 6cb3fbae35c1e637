"""Record the numbers a notebook measures, so ``make course`` can collect them.

A notebook calls :func:`record` for each key number. When the notebook runs under
``make course`` the runner sets ``COURSE_RESULTS`` to a JSON-lines file and every
record is appended there; the runner then writes ``build/results.json`` and
``build/results.md``. Run by hand, :func:`record` just prints the record. :func:`mean_sd` is the one seed
summary every chapter uses.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass

import numpy as np

from course_lib import config

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Result:
    chapter: int
    name: str  # snake_case, says what was measured
    value: float
    unit: str  # "x", "s", "dice", "" ...
    mode: str  # the course mode the number was measured in
    higher_is_better: bool
    note: str = ""


def record(
    chapter: int,
    name: str,
    value: float,
    *,
    unit: str = "",
    higher_is_better: bool = True,
    note: str = "",
) -> Result:
    """Record one measured number.

    Parameters
    ----------
    chapter : int
        Chapter number, 1 to 5.
    name : str
        snake_case name that says what was measured, e.g. ``"dice_gain_soft_dice_vs_bce"``.
    value : float
        The measured value; must be finite, except in a smoke run (``COURSE_SMOKE=1``, see
        :func:`course_lib.config.is_smoke`), whose nets train for a step or two.
    unit : str
        Unit for the table (``"x"``, ``"s"``, ``"dice"``...).
    higher_is_better : bool
        Direction, for readers of the table.
    note : str
        Where the number comes from (data, size, device).

    Returns
    -------
    Result
    """
    if not isinstance(chapter, int) or not 1 <= chapter <= 5:
        raise ValueError(f"`chapter` must be an int in 1..5, got {chapter!r}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"`name` must be snake_case (e.g. 'dice_gain'), got {name!r}")
    value = float(value)
    # a smoke run's untrained nets may count no cell at all (a growth curve without a doubling time): its numbers
    # mean nothing; everywhere else a non-finite number is a bug
    if not math.isfinite(value) and not config.is_smoke():
        raise ValueError(f"`value` of {name!r} must be finite, got {value}")
    result = Result(chapter, name, value, unit, config.mode(), bool(higher_is_better), note)
    path = os.environ.get("COURSE_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(result)) + "\n")
    print(f"[result] ch{chapter} {name} = {value:.4g} {unit}  {note}".rstrip())
    return result


def to_markdown(results: list[dict]) -> str:
    """Render result records as a Markdown table."""
    lines = [
        "| chapter | name | value | unit | mode | better | note |",
        "|---:|---|---:|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r["chapter"], r["name"])):
        better = "higher" if r["higher_is_better"] else "lower"
        lines.append(
            f"| {r['chapter']} | `{r['name']}` | {r['value']:.4g} | {r['unit']} | {r['mode']} | {better} "
            f"| {r['note']} |"
        )
    return "\n".join(lines) + "\n"


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of per-seed values; the sd is NaN for a single value.

    One value has no spread to estimate: NaN says so, where 0.0 would claim a run without noise (pandas and numpy
    agree: ``Series.std()`` and ``np.std(ddof=1)`` of one value are NaN).

    Parameters
    ----------
    values : (n,) sequence of float
        One value per seed, ``n >= 1``.

    Returns
    -------
    (mean, sd) : tuple of float

    Raises
    ------
    ValueError
        If ``values`` is empty or not 1-D.

    Examples
    --------
    >>> mean_sd([1.0, 2.0, 3.0])
    (2.0, 1.0)
    >>> mean_sd([4.0])
    (4.0, nan)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"`values` must be a non-empty 1-D sequence (one value per seed), got shape {v.shape}")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan
