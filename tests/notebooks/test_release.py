"""The student release is generated from solutions/, is up to date, and gives nothing away."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbgrader_harness import ROOT, SOLUTION_REGION, hidden_test_lines, solution_bodies

from course_lib.tools import sync_notebooks

# the release is generated once (tests/conftest.py's released_course) and shared with the autograder's batch
pytestmark = pytest.mark.xdist_group("autograder")

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def _notebooks(folder: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.name: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}


def _comparable(nb: nbformat.NotebookNode) -> list[tuple]:
    return [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in nb.cells]


@pytest.fixture(params=ASSIGNMENTS)
def fresh_release(request, released_course):
    return request.param, released_course


def test_there_is_at_least_one_assignment():
    assert ASSIGNMENTS, "solutions/ holds no assignment"


@pytest.mark.slow
def test_committed_release_is_up_to_date(fresh_release):
    assignment, course = fresh_release
    fresh = _notebooks(course / "assignments" / assignment)
    committed = _notebooks(ROOT / "assignments" / assignment)
    assert set(fresh) == set(committed), f"assignments/{assignment} is stale: run `make release`"
    for name in fresh:
        assert _comparable(fresh[name]) == _comparable(committed[name]), (
            f"assignments/{assignment}/{name} differs from what solutions/ generates: run `make release`")


@pytest.mark.slow
def test_release_contains_no_solution_and_no_hidden_tests(fresh_release):
    assignment, course = fresh_release
    for name, release in _notebooks(course / "assignments" / assignment).items():
        source = nbformat.read(course / "solutions" / assignment / name, as_version=4)
        text = "\n".join(c.source for c in release.cells)
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        solution_lines = {line.strip() for body in solution_bodies(source).values() for line in body.splitlines()
                          if len(line.strip()) > 12}
        # a line that also appears outside the solution regions (e.g. `with torch.no_grad():`) proves nothing
        outside = "\n".join(SOLUTION_REGION.sub("", c.source) for c in source.cells)
        leaked = [line for line in solution_lines if line in text and line not in outside]
        assert not leaked, f"{name}: solution code in the release: {leaked[:3]}"
        hidden = [line for line in hidden_test_lines(source) if line in text]
        assert not hidden, f"{name}: hidden test code in the release: {hidden[:3]}"
        code = "\n".join(c.source for c in release.cells if c.cell_type == "code")
        assert code.count("raise NotImplementedError()") == len(solution_bodies(source))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_structure(assignment):
    """Every exercise has a stub and a graded check with points; there is a written, hand-graded question."""
    for path in sorted((ROOT / "solutions" / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        autograded = [m for m, c in zip(meta, nb.cells, strict=True)
                      if m.get("grade") and not m.get("solution") and c.cell_type == "code"]
        manual = [m for m in meta if m.get("grade") and m.get("solution")]
        assert len(autograded) >= 4, f"{path.name}: {len(autograded)} autograded test cells, want >= 4"
        assert all(m.get("points", 0) > 0 for m in autograded + manual)
        assert manual, f"{path.name}: no manually graded written question"
        ids = [m["grade_id"] for m in meta if m]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade ids"
        # Two layouts are fine: a visible check with a hidden part in one cell, or visible-only cells followed by a
        # hidden-only cell. Either way every exercise is graded by hidden cases and every visible assert explains.
        groups: list[tuple[list[str], list[bool]]] = []  # (exercises, hidden parts of the checks that follow them)
        for cell, m in zip(nb.cells, meta, strict=True):
            if m.get("solution") and cell.cell_type == "code" and not m.get("grade"):
                if not groups or groups[-1][1]:
                    groups.append(([], []))
                groups[-1][0].append(m["grade_id"])
            elif m.get("grade") and not m.get("solution") and cell.cell_type == "code":
                visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
                has_hidden = "### BEGIN HIDDEN TESTS" in cell.source
                assert has_hidden or "assert " in visible, f"{m['grade_id']}: checks nothing"
                if "assert " in visible:
                    assert re.search(r"assert .*, ", visible), f"{m['grade_id']}: visible checks need messages"
                if groups:
                    groups[-1][1].append(has_hidden)
        hidden_for = {name: any(hidden) for names, hidden in groups for name in names}
        assert hidden_for, f"{path.name}: no exercise (solution) cells"
        unhidden = [name for name, has in hidden_for.items() if not has]
        assert not unhidden, f"{path.name}: exercises graded without hidden tests: {unhidden}"


def test_notebooks_have_no_outputs():
    for path in sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("solutions/*/*.ipynb")) + \
            sorted(ROOT.glob("assignments/*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} is committed with outputs"


def test_colab_badges_and_install_cells_match_the_repository_url():
    assert sync_notebooks.main(["--check"]) == 0, "run `python -m course_lib.tools.sync_notebooks`"
    for path in sync_notebooks.notebook_paths():
        text = path.read_text()
        assert "colab.research.google.com/github/" in text and "colab-install" in text, f"{path.name}: no Colab setup"
