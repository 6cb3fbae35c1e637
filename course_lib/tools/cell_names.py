"""The names a notebook cell binds: one rule for the notebook runner and the grader.

:mod:`course_lib.tools.exercises` snapshots and restores what an exercise's blank and check bind, and the grader
(:mod:`course_lib.grading.execute`) keeps what a locked cell binds so that a submission cannot patch a helper the
tests call. A name one of them missed is a name a student's cell could leave changed or patch unseen, so both ask
:func:`defined_names`.
"""

from __future__ import annotations

import ast

__all__ = ["defined_names"]


def defined_names(source: str) -> list[str]:
    """Names a cell binds in the scope it runs in, in order, each once.

    It counts what a cell binds wherever it runs at the cell's level: ``def``, ``class``, imports, assignment
    (also augmented and annotated), ``for``, ``with`` and ``except`` targets, also inside ``if``/``for``/``try``/
    ``with`` blocks, and ``:=`` targets, also inside comprehensions (they bind in the enclosing scope). Not the
    names bound inside functions, classes, lambdas or comprehensions.

    Parameters
    ----------
    source : str
        A code cell. IPython syntax (``%magic``, ``!shell``) is read as the kernel reads it, through IPython's
        input transformer, when IPython is installed.

    Returns
    -------
    list of str
        The names; ``[]`` when ``source`` does not parse, since such a cell binds nothing when it runs.

    Examples
    --------
    >>> defined_names("import numpy as np; squares = [i * i for i in range(3)]; last = squares[-1]")
    ['np', 'squares', 'last']
    """
    tree = _parse_cell(source)
    if tree is None:
        return []
    names: list[str] = []
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    comprehensions = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, scopes):
                if not isinstance(child, ast.Lambda):
                    names.append(child.name)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                names.extend((a.asname or a.name).split(".")[0] for a in child.names if a.name != "*")
            elif isinstance(child, comprehensions):
                # Only a walrus escapes a comprehension's own scope (PEP 572).
                names.extend(n.target.id for n in ast.walk(child) if isinstance(n, ast.NamedExpr))
            else:
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.append(child.id)
                elif isinstance(child, ast.ExceptHandler) and child.name:
                    names.append(child.name)
                visit(child)

    visit(tree)
    return list(dict.fromkeys(names))


def _parse_cell(source: str) -> ast.Module | None:
    """``source`` parsed as the kernel runs it (IPython syntax transformed first), or None if it does not parse."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return None
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None
