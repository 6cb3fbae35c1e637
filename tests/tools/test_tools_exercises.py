"""The exercise convention: parse blank/check/reveal triples, fill solutions, verify blanks fail, static checks."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.tools import exercises as ex
from course_lib.tools import run_course

BLANK = '''def double(x):
    """Return ``2 * x`` for a number or an array ``x`` of any shape."""
    raise NotImplementedError("Exercise: multiply x by two")
'''
SOLUTION = '''def double(x):
    """Return ``2 * x`` for a number or an array ``x`` of any shape."""
    doubled_value_of_x = x + x  # twice
    return doubled_value_of_x
'''
CHECK = "assert double(3) == 6, 'double(3) must be 6 - did you add x to itself?'"


def reveal(code: str = SOLUTION) -> str:
    return f"<details><summary><b>Show a solution</b></summary>\n\n```python\n{code}```\n\n</details>"


def cell(kind: str, source: str, tag: str | None = None):
    made = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if tag:
        made.metadata["tags"] = [tag]
    return made


def notebook(*cells):
    return new_notebook(cells=list(cells), metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def triple(blank=BLANK, check=CHECK, solution=None):
    return [cell("code", blank, "exercise"), cell("code", check, "check"),
            cell("markdown", solution if solution is not None else reveal(), "solution")]


def good_notebook():
    setup = "import numpy as np\nnp.random.seed(0)"
    # The check draws from the global generator; the cell after the exercise uses the student's function and a draw.
    check = "scratch = np.random.rand(3)\n" + CHECK
    after = "after = double(np.random.rand())\nprint(f'after={after!r}')"
    return notebook(cell("markdown", "# Tiny"), cell("code", setup), *triple(check=check), cell("code", after))


def test_a_good_triple_parses_and_has_no_static_problem():
    nb = good_notebook()
    [found] = ex.find_exercises(nb, "tiny.ipynb")
    assert (found.blank_index, found.check_index, found.solution_index) == (2, 3, 4)
    assert found.solution == SOLUTION.rstrip("\n") and found.names == ["double"]
    assert ex.static_problems(nb, "tiny.ipynb") == []


def test_fill_solutions_is_idempotent_and_leaves_the_input_alone():
    nb = good_notebook()
    once = ex.fill_solutions(nb)
    assert once.cells[2].source == SOLUTION.rstrip("\n") and nb.cells[2].source == BLANK
    assert ex.fill_solutions(once) == once


@pytest.mark.parametrize("cells, message", [
    (lambda: triple()[:2], "followed by a Markdown cell tagged 'solution'"),                    # no reveal
    (lambda: [triple()[0], triple()[2]], "followed by a code cell tagged 'check'"),             # no check
    (lambda: [triple()[1]], "must come right after its exercise"),                              # orphan check
    (lambda: triple(solution="```python\nx = 1\n```"), "inside <details>"),                     # not collapsed
    (lambda: triple(solution=reveal(SOLUTION + "```\n\n```python\ny = 2\n")), "exactly one"),   # two blocks
    (lambda: triple(solution=reveal("\n")), "empty"),
])
def test_a_broken_structure_names_the_notebook_and_the_cell(cells, message):
    nb = notebook(cell("code", "x = 1"), *cells())
    with pytest.raises(ex.ExerciseStructureError, match="tiny.ipynb: cell") as error:
        ex.find_exercises(nb, "tiny.ipynb")
    assert message in str(error.value)
    assert str(error.value) in ex.static_problems(nb, "tiny.ipynb")


def test_a_solution_line_leaked_into_a_code_cell_is_reported():
    nb = notebook(*triple(), cell("code", "doubled_value_of_x = x + x  # twice"))
    [problem] = ex.static_problems(nb, "tiny.ipynb")
    assert "cell 2" in problem and "cell 3" in problem and "doubled_value_of_x = x + x" in problem
    # the docstring and the def line are given by the blank: not a leak; short lines are too generic to count
    assert ex.solution_lines(SOLUTION) == ["doubled_value_of_x = x + x  # twice", "return doubled_value_of_x"]
    with_block = SOLUTION.replace("    doubled_value_of_x", "    with contextlib.nullcontext():  # no-op\n"
                                  "        doubled_value_of_x")
    assert ex.solution_lines(with_block) == ex.solution_lines(SOLUTION)  # a block header is not the answer


def test_a_blank_must_raise_not_implemented_and_only_define_things():
    doing = BLANK + "double(2)\nfor k in range(3):\n    pass\n"
    problems = ex.static_problems(notebook(*triple(blank=doing)), "tiny.ipynb")
    assert any("line 4 is a Expr" in p for p in problems) and any("line 5 is a For" in p for p in problems)
    silent = BLANK.replace('raise NotImplementedError("Exercise: multiply x by two")', "return None")
    [problem] = ex.static_problems(notebook(*triple(blank=silent)), "tiny.ipynb")
    assert "must raise NotImplementedError" in problem
    empty = BLANK.replace('"Exercise: multiply x by two"', '""')
    assert ex.static_problems(notebook(*triple(blank=empty)), "tiny.ipynb")


def test_defined_names_finds_every_binding_of_the_cell_scope():
    source = ("import numpy as np\nfrom os import path as p\nx, (y, z) = 1, (2, 3)\nif x:\n    w = 4\n"
              "for k in range(2):\n    pass\ntry:\n    pass\nexcept ValueError as err:\n    pass\n"
              "with open('f') as handle:\n    pass\nclass C:\n    inner = 1\n"
              "def f(a):\n    local = a\nsquares = [i * i for i in range(3)]")
    assert ex.defined_names(source) == ["np", "p", "x", "y", "z", "w", "k", "err", "handle", "C", "f", "squares"]


def test_a_solution_must_define_what_its_blank_defines():
    renamed = SOLUTION.replace("def double(x):", "def twice(x):")
    [problem] = ex.static_problems(notebook(*triple(solution=reveal(renamed))), "tiny.ipynb")
    assert "does not define ['double']" in problem and "cell 0" in problem


def _verify_in_process(blank, check, solution=SOLUTION):
    """Run the solution, the check and the injected verification in one namespace, as the kernel would."""
    namespace = {}
    exec(solution, namespace)
    exec(check, namespace)
    exercise = ex.Exercise(0, 1, 2, blank, check, solution)
    exec(ex.verification_source(exercise, "tiny.ipynb"), namespace)
    return namespace


def test_verification_passes_a_blank_that_fails_and_restores_the_solution():
    namespace = _verify_in_process(BLANK, CHECK + "\nresult = double(1)")
    assert namespace["double"](4) == 8 and namespace["result"] == 2
    assert not any(name.startswith("_course") for name in namespace)


@pytest.mark.parametrize("blank, check, message", [
    (SOLUTION, CHECK, "the blank passes its check"),
    (BLANK, "try:\n    double(1)\nexcept NotImplementedError:\n    pass", "the blank passes its check"),
    (BLANK.replace('"Exercise: multiply x by two"', ""), CHECK, "empty NotImplementedError"),
    (BLANK, "try:\n    value = double(1)\nexcept NotImplementedError:\n    value = undefined_name\nassert value == 2",
     "check itself is broken"),
    (BLANK.replace('raise NotImplementedError("Exercise: multiply x by two")', "return x"), "assert double(1) == 2",
     "empty AssertionError"),
])
def test_verification_reports_a_blank_that_does_not_fail_properly(blank, check, message):
    with pytest.raises(AssertionError, match="tiny.ipynb: exercise in cell 0") as error:
        _verify_in_process(blank, check)
    assert message in str(error.value)


def test_verification_accepts_an_assertion_with_a_message():
    blank = BLANK.replace('raise NotImplementedError("Exercise: multiply x by two")', "return x")
    _verify_in_process(blank, CHECK)


def test_verify_mode_runs_blanks_in_the_same_kernel_and_writes_no_injected_cell(tmp_path):
    path = tmp_path / "ch02_tiny.ipynb"
    nbformat.write(good_notebook(), path)
    verified = run_course.execute_notebook(path, timeout=60, exercises="verify")
    filled = run_course.execute_notebook(path, timeout=60, exercises="solutions")
    for run in (verified, filled):
        cells = run.notebook.cells
        assert len(cells) == 6 and cells[2].source == SOLUTION.rstrip("\n")
        assert not any(ex.INJECTED_KEY in c.metadata for c in cells)
        assert [c.execution_count for c in cells if c.cell_type == "code"] == [1, 2, 3, 4]
    # the verification restored the random generator: the cell after it draws the same number in both modes
    assert verified.notebook.cells[5].outputs == filled.notebook.cells[5].outputs
    run_course.write_outputs(verified, tmp_path / "build")
    assert "_course_verify" not in (tmp_path / "build" / path.name).read_text()


def test_the_runner_names_the_exercise_whose_blank_passes(tmp_path):
    path = tmp_path / "ch02_tiny.ipynb"
    nbformat.write(notebook(cell("code", "x = 1"), *triple(blank=SOLUTION)), path)
    with pytest.raises(run_course.NotebookFailed, match=r"ch02_tiny.ipynb: cell 1 .*the blank passes its check"):
        run_course.execute_notebook(path, timeout=60, exercises="verify")
    run_course.execute_notebook(path, timeout=60, exercises="solutions")  # make course does not verify
