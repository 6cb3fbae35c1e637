"""One rule for the names a notebook cell binds, shared by the notebook runner and the grader.

The runner restores what an exercise's blank and check bind; the grader keeps what a locked cell binds for the
tests. A name one of them misses is a name a student's cell can leave changed (the runner) or patch unseen
(the grader), so both must use the same function.
"""

import pytest

from course_lib.tools import cell_names, exercises

execute = pytest.importorskip("course_lib.grading.execute", reason="the grader needs the grading extra (nbgrader)")


def test_the_grader_and_the_runner_use_the_same_definition():
    assert execute.defined_names is cell_names.defined_names
    assert exercises.defined_names is cell_names.defined_names


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # A helper defined under `if`/`try` is what a test cell calls; the grader's old top-level rule missed it.
        ("try:\n    import torch\nexcept ImportError:\n    torch = None\nif True:\n    def helper():\n        pass\n",
         ["torch", "helper"]),
        # Loop, with and except targets stay bound after the cell.
        ("for epoch in range(2):\n    loss = epoch\nwith open('f') as handle:\n    pass\n",
         ["epoch", "loss", "handle"]),
        ("try:\n    pass\nexcept ValueError as err:\n    pass\n", ["err"]),
        # Augmented and annotated assignment, tuple and starred targets.
        ("total: int = 0\ntotal += 1\nfirst, *rest = [1, 2, 3]\n", ["total", "first", "rest"]),
        # A walrus inside a comprehension binds in the cell's scope (PEP 572); the loop variable does not.
        ("kept = [y for x in range(3) if (y := x * 2)]\n", ["kept", "y"]),
        # Names inside functions, classes and lambdas are theirs, not the cell's.
        ("def f(a):\n    local = a\nclass C:\n    inner = 1\ng = lambda b: b\n", ["f", "C", "g"]),
        # `import a.b` binds a; a name bound twice is listed once, at its first binding.
        ("import os.path\nx = 1\nx = 2\nfrom math import *\n", ["os", "x"]),
    ],
)
def test_every_binding_of_the_cell_scope(source, expected):
    assert cell_names.defined_names(source) == expected


def test_ipython_syntax_is_read_as_the_kernel_reads_it():
    pytest.importorskip("IPython")
    source = "%matplotlib inline\nfiles = !ls\ndef helper():\n    pass\n"
    assert cell_names.defined_names(source) == ["files", "helper"]


def test_a_cell_that_does_not_parse_binds_nothing():
    assert cell_names.defined_names("def broken(:\n    pass\n") == []
