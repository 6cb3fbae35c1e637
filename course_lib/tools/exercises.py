"""Notebook exercises from one source: a blank, a check and a collapsed solution.

An exercise is three consecutive cells of a notebook (see README, "Adding a chapter"):

1. a code cell tagged ``exercise``: the blank, which only defines things and whose body raises
   ``NotImplementedError("Exercise: <instruction>")``;
2. a code cell tagged ``check``: runs the student's code on small inputs and asserts with messages that name
   the likely mistake;
3. a Markdown cell tagged ``solution``: ``<details><summary>...</summary>`` holding exactly one
   ```` ```python ```` fenced block, the complete code that replaces the blank.

The runner (:mod:`course_lib.tools.run_course`) executes notebooks with :func:`fill_solutions` applied
(``make course``) or with :func:`with_verification` (the notebook tests): after each check has passed with the
solution, an injected cell re-runs the blank and the check in the same kernel, requires the check to fail with a
message, and restores the solution's names. :func:`strip_injected` removes those cells before the executed notebook
is written. :func:`static_problems` checks the committed notebook without running it.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass

import nbformat

from course_lib.tools.cell_names import defined_names

EXERCISE_TAG, CHECK_TAG, SOLUTION_TAG = "exercise", "check", "solution"
# Metadata key marking the cells the runner injects; they never reach a written notebook.
INJECTED_KEY = "course_injected"
MIN_EXERCISES = 3
# A solution line shorter than this (stripped) is too generic to count as leaked ("return out", "x = 0").
MIN_LEAK_CHARS = 21
_FENCE = re.compile(r"```python[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)
_ANY_FENCE = re.compile(r"^[ \t]*```", re.MULTILINE)
# Top-level statements a blank may hold: it must only define things, so that re-running it is cheap.
_DEFINING = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign,
             ast.AnnAssign, ast.Pass)


class ExerciseStructureError(ValueError):
    """The exercise cells of a notebook break the convention; the message names the notebook and the cell."""


@dataclass(frozen=True)
class Exercise:
    """One exercise triple: cell indices in the notebook and the three sources."""

    blank_index: int
    check_index: int
    solution_index: int
    blank: str
    check: str
    solution: str

    @property
    def names(self) -> list[str]:
        """The names the blank defines at top level (functions, classes, assigned names, imports)."""
        return defined_names(self.blank)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _is_injected(cell) -> bool:
    return bool(cell.get("metadata", {}).get(INJECTED_KEY))


def _first_line(source: str) -> str:
    lines = source.strip().splitlines()
    return lines[0][:60] if lines else ""


def solution_code(markdown: str, where: str = "solution cell") -> str:
    """The code of a solution reveal: the one ```python block inside ``<details>...</details>``.

    Raises
    ------
    ExerciseStructureError
        If ``markdown`` has no ``<details>`` block, or not exactly one fenced block, or the block is not inside it.
    """
    start, end = markdown.find("<details>"), markdown.rfind("</details>")
    if start < 0 or end < start:
        raise ExerciseStructureError(f"{where}: the solution must sit inside <details>...</details> (the reveal)")
    fences = len(_ANY_FENCE.findall(markdown))
    blocks = list(_FENCE.finditer(markdown))
    if len(blocks) != 1 or fences != 2:
        raise ExerciseStructureError(
            f"{where}: the reveal must hold exactly one ```python fenced block, found {fences // 2 or len(blocks)}")
    block = blocks[0]
    if not (start < block.start() and block.end() < end):
        raise ExerciseStructureError(f"{where}: the ```python block must be inside <details>...</details>")
    code = block.group(1)
    if not code.strip():
        raise ExerciseStructureError(f"{where}: the ```python block is empty")
    return code


def find_exercises(nb: nbformat.NotebookNode, name: str = "notebook") -> list[Exercise]:
    """Parse the exercise triples of ``nb`` (injected cells are ignored).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A version-4 notebook.
    name : str
        The notebook's name, used in error messages.

    Raises
    ------
    ExerciseStructureError
        If a tagged cell is of the wrong type or out of place, naming ``name`` and the cell number.
    """
    cells = [(k, c) for k, c in enumerate(nb.cells) if not _is_injected(c)]
    exercises, claimed = [], set()
    for pos, (k, cell) in enumerate(cells):
        tags = _tags(cell)
        where = f"{name}: cell {k} ({_first_line(cell.source)!r})"
        if sum(t in tags for t in (EXERCISE_TAG, CHECK_TAG, SOLUTION_TAG)) > 1:
            raise ExerciseStructureError(f"{where}: a cell has one role, exercise, check or solution, not several")
        if EXERCISE_TAG in tags:
            if cell.cell_type != "code":
                raise ExerciseStructureError(f"{where}: a cell tagged {EXERCISE_TAG!r} must be a code cell")
            after = [c for _, c in cells[pos + 1:pos + 2]]
            if not after or after[0].cell_type != "code" or CHECK_TAG not in _tags(after[0]):
                raise ExerciseStructureError(
                    f"{where}: the exercise must be followed by a code cell tagged {CHECK_TAG!r}")
            if (pos + 2 >= len(cells) or cells[pos + 2][1].cell_type != "markdown"
                    or SOLUTION_TAG not in _tags(cells[pos + 2][1])):
                raise ExerciseStructureError(
                    f"{where}: the check after the exercise must be followed by a Markdown cell tagged "
                    f"{SOLUTION_TAG!r} (the reveal)")
            (kc, check), (ks, sol) = cells[pos + 1], cells[pos + 2]
            code = solution_code(sol.source, f"{name}: cell {ks} (solution of the exercise in cell {k})")
            exercises.append(Exercise(k, kc, ks, cell.source, check.source, code))
            claimed.update((kc, ks))
        elif (CHECK_TAG in tags or SOLUTION_TAG in tags) and k not in claimed:
            role = CHECK_TAG if CHECK_TAG in tags else SOLUTION_TAG
            raise ExerciseStructureError(
                f"{where}: a cell tagged {role!r} must come right after its exercise cell"
                + (" and check cell" if role == SOLUTION_TAG else ""))
    return exercises


def fill_solutions(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``nb`` whose exercise cells hold their solutions (idempotent; ``nb`` is not changed)."""
    out = copy.deepcopy(nb)
    for exercise in find_exercises(out, name):
        out.cells[exercise.blank_index].source = exercise.solution
    return out


def verification_source(exercise: Exercise, name: str = "notebook") -> str:
    """Code of the cell injected after ``exercise``'s check: the blank must fail the check, with a message.

    It snapshots the names the blank and the check bind and the random generators' states, runs the blank, runs
    the check and requires an exception with a non-empty message (not a SyntaxError or NameError, which would mean
    the check itself is broken), then restores the snapshot, so later cells see the solution's objects and draws.
    """
    where = f"{name}: exercise in cell {exercise.blank_index} (check in cell {exercise.check_index})"
    names = list(dict.fromkeys(defined_names(exercise.blank) + defined_names(exercise.check)))
    return f"""\
def _course_verify_exercise(blank, check, names, where):
    import random, sys
    g, missing = globals(), object()
    saved = {{n: g.get(n, missing) for n in names}}
    states = [(random.setstate, random.getstate())]
    generators = (("numpy", "random.get_state", "random.set_state"), ("torch", "get_rng_state", "set_rng_state"))
    for module, get, put in generators:
        if module in sys.modules:
            mod = sys.modules[module]
            getter, setter = mod, mod
            for part in get.split("."): getter = getattr(getter, part)
            for part in put.split("."): setter = getattr(setter, part)
            states.append((setter, getter()))
    try:
        shell = get_ipython() if "get_ipython" in g else None  # cell magics and shell escapes, as in a cell
        blank, check = (shell.transform_cell(s) if shell else s for s in (blank, check))
        exec(compile(blank, "<exercise blank>", "exec"), g)
        try:
            exec(compile(check, "<exercise check>", "exec"), g)
        except (SyntaxError, NameError) as error:
            raise AssertionError(f"{{where}}: with the blank, the check fails for the wrong reason (the check "
                                 f"itself is broken): {{type(error).__name__}}: {{error}}") from None
        except Exception as error:
            if not str(error).strip():
                raise AssertionError(f"{{where}}: with the blank, the check fails with an empty "
                                     f"{{type(error).__name__}}: give it a message that names the mistake") from None
        else:
            raise AssertionError(f"{{where}}: the blank passes its check; the check must fail until the student "
                                 f"writes the code") from None
    finally:
        for n, value in saved.items():
            if value is missing:
                g.pop(n, None)
            else:
                g[n] = value
        for setter, state in states:
            setter(state)


_course_verify_exercise({exercise.blank!r}, {exercise.check!r}, {names!r}, {where!r})
del _course_verify_exercise
"""


def with_verification(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``nb`` with solutions filled in and a verification cell injected after each check cell."""
    out = fill_solutions(nb, name)
    for exercise in reversed(find_exercises(nb, name)):
        cell = nbformat.v4.new_code_cell(verification_source(exercise, name))
        cell.metadata[INJECTED_KEY] = {"verifies": exercise.blank_index}
        out.cells.insert(exercise.check_index + 1, cell)
    return out


def prepare(nb: nbformat.NotebookNode, exercises: str, name: str = "notebook") -> nbformat.NotebookNode:
    """The notebook to execute: ``exercises`` is ``"solutions"`` (fill) or ``"verify"`` (fill and verify)."""
    if exercises == "solutions":
        return fill_solutions(nb, name)
    if exercises == "verify":
        return with_verification(nb, name)
    raise ValueError(f"exercises must be 'solutions' or 'verify', got {exercises!r}")


def original_index(nb: nbformat.NotebookNode, index: int) -> int:
    """The index cell ``index`` of a prepared notebook had in the committed notebook (injected cells skipped)."""
    return sum(not _is_injected(c) for c in nb.cells[:index])


def strip_injected(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove injected cells from ``nb`` in place and renumber execution counts so no gap shows; return ``nb``."""
    nb.cells = [c for c in nb.cells if not _is_injected(c)]
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = count
    return nb


def _raises_not_implemented(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func, args = node.exc.func, node.exc.args
            if (isinstance(func, ast.Name) and func.id == "NotImplementedError" and args
                    and not (isinstance(args[0], ast.Constant) and not str(args[0].value).strip())):
                return True
    return False


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def solution_lines(solution: str) -> list[str]:
    """The non-trivial code lines of a solution, stripped: not a comment, import, def/class line, block header
    (``with torch.no_grad():``; the answer is in the block) or docstring, and at least :data:`MIN_LEAK_CHARS`
    characters long."""
    skip = _docstring_lines(ast.parse(solution))
    out = []
    for number, line in enumerate(solution.splitlines(), start=1):
        text = line.strip()
        if (number in skip or len(text) < MIN_LEAK_CHARS or text.split("#")[0].rstrip().endswith(":")
                or text.startswith(("#", "import ", "from ", "def ", "async def ", "class ", "@"))):
            continue
        out.append(text)
    return out


def static_problems(nb: nbformat.NotebookNode, name: str = "notebook") -> list[str]:
    """What is wrong with the committed notebook's exercises, without running it (empty list: nothing).

    Checks: the triples' structure; every blank parses, only defines things (def, class, import, assignment) and
    raises ``NotImplementedError`` with a message; each solution defines every name its blank defines; no
    non-trivial line of any solution (see :func:`solution_lines`)
    appears in a code cell of the notebook, except a line the exercise's own blank already gives.
    """
    try:
        exercises = find_exercises(nb, name)
    except ExerciseStructureError as error:
        return [str(error)]
    problems = []
    code_lines = {}
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not _is_injected(cell):
            for line in cell.source.splitlines():
                code_lines.setdefault(line.strip(), k)
    for ex in exercises:
        where = f"{name}: exercise in cell {ex.blank_index}"
        try:
            tree = ast.parse(ex.blank)
        except SyntaxError as error:
            problems.append(f"{where}: the blank does not parse: {error}")
            continue
        for node in tree.body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            if not (isinstance(node, _DEFINING) or docstring):
                problems.append(f"{where}: the blank must only define things (def, class, import, assignment); "
                                f"line {node.lineno} is a {type(node).__name__}")
        if not _raises_not_implemented(ex.blank):
            problems.append(f"{where}: the blank must raise NotImplementedError(\"Exercise: ...\") with its "
                            "instruction")
        try:
            lines = solution_lines(ex.solution)
        except SyntaxError as error:
            problems.append(f"{name}: solution in cell {ex.solution_index} does not parse: {error}")
            continue
        missing = [n for n in ex.names if n not in defined_names(ex.solution)]
        if missing:
            problems.append(f"{name}: the solution in cell {ex.solution_index} does not define {missing}, which the "
                            f"blank in cell {ex.blank_index} defines")
        given = {line.strip() for line in ex.blank.splitlines()}
        for line in lines:
            if line in code_lines and line not in given:
                problems.append(f"{name}: a line of the solution in cell {ex.solution_index} appears in code cell "
                                f"{code_lines[line]}: {line!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.tools.exercises NOTEBOOK...``: print the static problems; exit 1 if any."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    problems = []
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        found = static_problems(nb, path)
        problems += found
        if not found:
            print(f"{path}: {len(find_exercises(nb, path))} exercise(s), ok")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
