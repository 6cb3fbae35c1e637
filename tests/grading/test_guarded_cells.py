"""Every graded cell that could be answered by calling the course's code goes through the guard.

A student's function that calls ``course_lib``'s reference must score 0 wherever it is graded, so every graded test
cell of ``solutions/`` that uses a function the student writes, and every locked cell whose run later cells grade
(the training runs), calls it through ``course_lib.tools.guard.assert_own_work`` at least once: directly, as the
step a locked helper runs (``run_step(cyclegan_training_step, ...)``) or through a locked helper that guards its
argument (``watch_training(train_fusion)``). In the hidden part every call goes through it, so what the hidden
tests compare is the guarded, plain return value (never an object whose ``__eq__`` or ``__torch_function__`` lies).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "solutions").glob("*/*.ipynb"))
HIDDEN = "### BEGIN HIDDEN TESTS"


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) if cell.cell_type == "code" else {}


def _guarded(node: ast.Call, helpers: set[str]) -> set[str]:
    """Names a call passes through the guard: assert_own_work(f, ...), assert_own_work(run_step, f, ...), helper(f)."""
    name = node.func.id if isinstance(node.func, ast.Name) else None
    names = [a.id for a in node.args if isinstance(a, ast.Name)]
    if name == "assert_own_work":
        return set(names[:2])
    return set(names) if name in helpers else set()


def audit(path: Path) -> tuple[list[str], list[str]]:
    """(cells checked, problems) of one solutions notebook."""
    nb = nbformat.read(path, as_version=4)
    student, helpers = set(), set()
    for cell in nb.cells:
        defined = {n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)} \
            if cell.cell_type == "code" else set()
        if _meta(cell).get("solution"):
            student |= defined
        elif _meta(cell).get("locked") and "assert_own_work(" in cell.source:
            helpers |= defined
    last_graded = max(i for i, c in enumerate(nb.cells) if _meta(c).get("grade"))
    checked, problems = [], []
    for index, cell in enumerate(nb.cells[:last_graded + 1]):
        meta = _meta(cell)
        if not (meta.get("grade") or meta.get("locked")) or meta.get("solution"):
            continue
        tree = ast.parse(cell.source)
        hidden_from = next((k + 1 for k, line in enumerate(cell.source.split("\n")) if HIDDEN in line), None)
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in student}
        if not used:
            continue
        where = f"{path.parent.name} cell {index} ({meta.get('grade_id')})"
        checked.append(where)
        guarded = set().union(*(_guarded(n, helpers) for n in calls))
        if used - guarded:
            problems.append(f"{where}: {sorted(used - guarded)} never called through assert_own_work")
        direct = sorted({n.func.id for n in calls if isinstance(n.func, ast.Name) and n.func.id in student
                         and hidden_from is not None and n.lineno > hidden_from})
        if direct:
            problems.append(f"{where}: the hidden tests call {direct} directly, not through assert_own_work")
    return checked, problems


@pytest.mark.parametrize("path", SOURCES, ids=[p.parent.name for p in SOURCES])
def test_every_graded_use_of_a_student_function_is_guarded(path):
    checked, problems = audit(path)
    assert checked, f"{path.name}: no graded cell uses a function the student writes"
    assert not problems, "\n".join(problems)


def test_the_audit_finds_an_unguarded_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_code_cell("def lambda_schedule(p):\n    return p")
    answer.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "a"}
    test = nbformat.v4.new_code_cell(f"assert lambda_schedule(0.0) == 0.0\n{HIDDEN}\nassert lambda_schedule(1.0) > 0")
    test.metadata["nbgrader"] = {"solution": False, "grade": True, "locked": True, "grade_id": "t", "points": 1}
    nb.cells = [answer, test]
    (tmp_path / "a").mkdir()
    nbformat.write(nb, tmp_path / "a" / "a.ipynb")
    _, problems = audit(tmp_path / "a" / "a.ipynb")
    assert len(problems) == 2 and "never called through assert_own_work" in problems[0], problems
