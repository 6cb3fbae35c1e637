"""Graded tests check the student's own work: calling the course's reference implementation scores 0.

An exercise that asks a student to write ``dice`` must not be passed by ``from course_lib.metrics import
dice``, nor by a wrapper around it, nor by an alias under another name. :func:`assert_own_work` runs the
student's function while watching every Python function call (``sys.setprofile``) and fails when one of them
was defined in a forbidden module of the course. It watches *calls*, not names, so renaming or wrapping the
reference does not hide it, while helpers the exercise allows (anything outside ``forbidden``) stay usable.

Hidden tests use it like this::

    from course_lib.tools.guard import assert_own_work
    value = assert_own_work(dice, pred, target, forbidden=("course_lib.metrics",))
    assert value == 1.0, "Dice of identical masks must be 1.0"
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

__all__ = ["assert_own_work", "reference_calls"]


def _check_forbidden(forbidden) -> tuple[str, ...]:
    if isinstance(forbidden, str):
        forbidden = (forbidden,)
    if not isinstance(forbidden, (tuple, list)):
        raise TypeError(f"`forbidden` must be a module name or a sequence of them, got {type(forbidden).__name__}")
    forbidden = tuple(forbidden)
    if not forbidden or not all(isinstance(m, str) and m for m in forbidden):
        raise ValueError(f"`forbidden` must be a non-empty sequence of module names, got {forbidden!r}")
    return forbidden


def _is_forbidden(module: str, forbidden: Iterable[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in forbidden)


def reference_calls(fn: Callable, *args, forbidden, **kwargs) -> tuple[object, list[str]]:
    """Call ``fn(*args, **kwargs)`` and list the forbidden functions it called.

    Parameters
    ----------
    fn : callable
        The student's function.
    *args, **kwargs
        Passed to ``fn``.
    forbidden : str or sequence of str
        Module names (prefix match: ``"course_lib.metrics"`` covers ``course_lib.metrics.segmentation``).

    Returns
    -------
    result : object
        What ``fn`` returned.
    called : list of str
        Qualified names (``module.function``) of the forbidden functions called, in first-call order.

    Raises
    ------
    TypeError
        If ``fn`` is not callable.
    ValueError
        If ``forbidden`` is empty.

    Examples
    --------
    >>> import json
    >>> result, called = reference_calls(lambda obj: json.dumps(obj), [1], forbidden="json")
    >>> result, called[0]
    ('[1]', 'json.dumps')
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
    forbidden = _check_forbidden(forbidden)
    called: list[str] = []

    def watch(frame, event, arg):
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            if _is_forbidden(module, forbidden):
                name = f"{module}.{getattr(frame.f_code, 'co_qualname', frame.f_code.co_name)}"
                if name not in called:
                    called.append(name)

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        result = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    return result, called


def assert_own_work(fn: Callable, *args, forbidden, **kwargs):
    """Call ``fn(*args, **kwargs)``; fail if it calls the course's reference code in ``forbidden``.

    Parameters
    ----------
    fn : callable
        The student's function.
    *args, **kwargs
        Passed to ``fn``.
    forbidden : str or sequence of str
        Module names whose functions the student must not call (prefix match).

    Returns
    -------
    object
        What ``fn`` returned.

    Raises
    ------
    AssertionError
        Naming the function and the reference it called, when it called one.

    Examples
    --------
    >>> def my_len(items):
    ...     return sum(1 for _ in items)
    >>> assert_own_work(my_len, [1, 2, 3], forbidden="course_lib.metrics")
    3
    """
    result, called = reference_calls(fn, *args, forbidden=forbidden, **kwargs)
    if called:
        name = getattr(fn, "__name__", repr(fn))
        raise AssertionError(f"`{name}` calls the course's reference implementation ({', '.join(called)}): "
                             "write it yourself — this exercise scores 0 while it does.")
    return result
