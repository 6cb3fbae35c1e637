"""The torture suite's attacks on the kernel's execution hooks: raising one's own score by changing what the test
cells *do*, reached without any name the static scan of the intake knows (no ``get_ipython`` in the source).

* ``input_transformer``: the untouched release plus one cell that adds an IPython input transformer wrapping every
  later cell in ``try/except`` (a blank notebook scored full marks before the hooks were restored);
* ``ast_transformer``: wrong answers plus an AST transformer that turns every ``assert`` into ``pass``.

Expected: the hooks are restored before each test cell, so each scores what its answers earn (0), and the
submission is flagged for review, naming the hook.
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


def notebooks(bodies: dict, wrong: dict, release) -> dict[str, nbformat.NotebookNode]:
    out = {}
    for student, answers, code in (("input_transformer", None, WRAP), ("ast_transformer", wrong, NO_ASSERT)):
        nb = make_submission(release, answers)
        nb.cells.insert(1, nbformat.v4.new_code_cell(code))
        out[student] = nb
    return out


def expected(zero: dict) -> dict:
    """student -> (cell scores, words the summary's reasons must hold)."""
    return {"input_transformer": (zero, ["input_transformers_post", "flagged for review"]),
            "ast_transformer": (zero, ["ast_transformers", "flagged for review"])}
