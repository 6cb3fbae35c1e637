"""Every committed notebook follows the exercise convention (static checks; the notebook runs verify the rest)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_lib.tools import exercises

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_exercises_follow_the_convention(path):
    nb = nbformat.read(path, as_version=4)
    assert exercises.static_problems(nb, path.name) == []
    count = len(exercises.find_exercises(nb, path.name))
    assert count >= exercises.MIN_EXERCISES, (
        f"{path.name} has {count} exercise(s); every notebook needs at least {exercises.MIN_EXERCISES}")


def test_every_chapter_has_notebooks():
    assert {p.name[:4] for p in NOTEBOOKS} == {"ch01", "ch02", "ch03", "ch04", "ch05"}
