"""The torture suite's attacks on the kernel's execution hooks: raising one's own score by changing what the test
cells *do*, reached without any name the static scan of the intake knows (no ``get_ipython`` in the source).

* ``input_transformer``: the untouched release plus one cell that adds an IPython input transformer wrapping every
  later cell in ``try/except`` (a blank notebook scored full marks before the hooks were restored);
* ``ast_transformer``: wrong answers plus an AST transformer that turns every ``assert`` into ``pass``.

Expected: the hooks are restored before each test cell, so each scores what its answers earn (0), and the
submission is flagged for review, naming the hook.

And the attacks on the guard of the student's own work and on the comparisons (the fixture's guarded exercise is
``soft_dice_loss``; the course's reference is reached without any name the intake's static scan knows):

* ``guard_switched_off``: ``soft_dice_loss`` switches the profile hook off, calls the reference, puts it back;
* ``lies_and_patches_below``: wrong answers, ``soft_dice_loss`` returns a Tensor subclass whose
  ``__torch_function__`` makes ``allclose`` true, and numpy's ``isclose`` is made always true from below
  (``numpy._core.numeric.less_equal``).

Expected: the guarded exercise scores 0 (its other exercises what they earn) and the patch is named and flagged.
The other routes around the guard (a ``threading.Thread``, ``concurrent.futures``, ``_thread``, a thread left running
by an earlier cell, lying floats and arrays) are the unit tests' (``tests/tools/test_guard.py``): a graded student
costs this suite ~12 s.
"""

from __future__ import annotations

import nbformat
from nbgrader_harness import make_submission

SHELL = 'shell = getattr(__import__("IPy" + "thon"), "get_" + "ipython")()\n'
WRAP = SHELL + '''
def wrap(lines):
    return ["try:\\n"] + ["    " + line for line in lines] + ["\\nexcept BaseException:\\n    pass\\n"]


shell.input_transformers_post.append(wrap)
'''
NO_ASSERT = SHELL + '''import ast


class NoAssert(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()


shell.ast_transformers.append(NoAssert())
'''


REFERENCE = """reference = getattr(__import__("course_lib.met" + "rics", fromlist=["x"]), "soft_dice_" + "loss")
shaped = (logits, target) if logits.ndim > 2 else (logits[:, None], target[:, None])
"""
SWITCHED_OFF = REFERENCE + """import sys
hook = getattr(sys, "get" + "profile")()
getattr(sys, "set" + "profile")(None)
value = reference(*shaped, smooth=smooth)
getattr(sys, "set" + "profile")(hook)
return value
"""
LIAR = """import torch


class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.isclose, torch.equal):
            return True
        if func is torch.Tensor.item:
            return 0.0
        return super().__torch_function__(func, types, args, kwargs or {})


return (logits.sum() * 1e-6).as_subclass(Liar)  # gradients reach the logits, the value is wrong
"""
BELOW = """import numpy
numpy_core = getattr(numpy, "_co" + "re").numeric
numpy_core.less_equal = lambda a, b: a == a
return 0.25
"""


def _body(code: str) -> str:
    return "".join("    " + line + "\n" if line else "\n" for line in code.strip("\n").split("\n"))


def guard_notebooks(bodies: dict, wrong: dict, release) -> dict[str, nbformat.NotebookNode]:
    """The attacks on the guard and on the comparisons (see the module's docstring)."""
    cases = {"guard_switched_off": {**bodies, "soft_dice_loss": _body(SWITCHED_OFF)},
             "lies_and_patches_below": {**wrong, "precision": _body(BELOW), "soft_dice_loss": _body(LIAR)}}
    return {student: make_submission(release, answers) for student, answers in cases.items()}


def notebooks(bodies: dict, wrong: dict, release) -> dict[str, nbformat.NotebookNode]:
    out = {}
    for student, answers, code in (("input_transformer", None, WRAP), ("ast_transformer", wrong, NO_ASSERT)):
        nb = make_submission(release, answers)
        nb.cells.insert(1, nbformat.v4.new_code_cell(code))
        out[student] = nb
    return {**out, **guard_notebooks(bodies, wrong, release)}


def expected(zero: dict, full: dict) -> dict:
    """student -> (cell scores, words the summary's reasons must hold)."""
    unguarded = {**full, "test_soft_dice_loss": 0}
    return {"input_transformer": (zero, ["input_transformers_post", "flagged for review"]),
            "ast_transformer": (zero, ["ast_transformers", "flagged for review"]),
            "guard_switched_off": (unguarded, []),
            "lies_and_patches_below": (zero, ["numpy._core.numeric.less_equal", "flagged for review"])}
