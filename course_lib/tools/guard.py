"""Graded tests check the student's own work: calling the course's reference implementation scores 0.

An exercise that asks a student to write ``dice`` must not be passed by ``from course_lib.metrics import
dice``, nor by a wrapper around it, nor by an alias under another name. :func:`assert_own_work` runs the
student's function while watching every Python function call (``sys.setprofile``) and fails when one of them
was defined in a forbidden module of the course. It watches *calls*, not names, so renaming or wrapping the
reference does not hide it, while helpers the exercise allows (anything outside ``forbidden``) stay usable.

What the watch cannot follow fails the test too, each with its reason:

* **switching the watch off** (``sys.setprofile``/``settrace``, ``threading``'s, or reading them), since the
  reference could then run unseen, and leaving it switched off when the function returns;
* **other threads and processes**: the profile hook watches one thread. Starting a thread or a process inside
  the function (``threading.Thread``, ``concurrent.futures``, ``_thread.start_new_thread``, ``os.fork``,
  ``subprocess``) fails, and so does a thread of the notebook's still running when the test starts (an idle
  ``ThreadPoolExecutor`` worker or a ``threading.Timer`` could call the reference while the function waits).
  Threads the kernel itself runs (those alive when this module was imported, before any student code in a
  graded kernel, and those of IPython, ipykernel, jupyter_client and zmq) are not the student's;
* **answers that are not plain values** (:func:`plain`): an object whose ``__eq__``/``__array_function__``
  returns True, a ``torch.Tensor`` subclass whose ``__torch_function__`` makes ``allclose`` true, a float
  subclass whose ``item()`` equals anything, so the tests compare only data.

Hidden tests use it like this::

    from course_lib.tools.guard import assert_own_work
    value = assert_own_work(dice, pred, target, forbidden=("course_lib.metrics",))
    assert value == 1.0, "Dice of identical masks must be 1.0"
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
from collections.abc import Callable, Iterable

__all__ = ["assert_own_work", "plain", "reference_calls"]

# Functions that let code run where the profile hook of the watched thread does not see it: switching the
# hook off (or reading it, to put it back later), or starting another thread or process. Matched by identity
# against the originals taken here, so a wrapper under another name still ends in one of them.
_BLIND_SPOTS = {
    sys.setprofile: "switched off the guard (sys.setprofile)",
    sys.settrace: "switched off the guard (sys.settrace)",
    sys.getprofile: "reached for the guard's hook (sys.getprofile)",
    sys.gettrace: "reached for the guard's hook (sys.gettrace)",
    _thread.start_new_thread: "started a thread",
    os.fork: "started a process (os.fork)",
}
for _name in ("posix_spawn", "posix_spawnp", "system", "execv", "execve", "forkpty"):
    if hasattr(os, _name):
        _BLIND_SPOTS[getattr(os, _name)] = f"started a process (os.{_name})"
try:
    import _posixsubprocess
    _BLIND_SPOTS[_posixsubprocess.fork_exec] = "started a process (subprocess)"
except ImportError:  # not on this platform
    pass
# Python-level entry points, seen as "call" events (their code objects)
_BLIND_CODE = {threading.setprofile.__code__: "switched off the guard (threading.setprofile)",
               threading.settrace.__code__: "switched off the guard (threading.settrace)",
               threading.Thread.start.__code__: "started a thread"}
_KERNEL_THREADS = frozenset(sys._current_frames())  # alive before any student code, in a graded kernel
_KERNEL_PACKAGES = ("ipykernel", "IPython", "jupyter_client", "zmq", "tornado", "traitlets")


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


def _is_tqdm_monitor(thread) -> bool:
    # tqdm starts one monitor thread the first time a course training loop shows a bar; it only refreshes bars of a
    # tqdm class defined by tqdm itself, so it cannot run a student's code. One of a student's own class can.
    monitor_module = sys.modules.get("tqdm._monitor")
    if monitor_module is None or type(thread) is not getattr(monitor_module, "TMonitor", None):
        return False
    bar_class = getattr(thread, "tqdm_cls", None)
    return isinstance(bar_class, type) and all(
        (cls.__module__ or "").split(".")[0] == "tqdm" for cls in bar_class.__mro__ if cls is not object)


def foreign_threads() -> list[str]:
    """Names of the running Python threads that are neither this one nor the kernel's own.

    Returns
    -------
    list of str
        One name per such thread (``threading``'s name, or ``thread <id>`` for one started with ``_thread``).
    """
    known = {t.ident: t for t in threading.enumerate()}
    found = []
    for ident in sys._current_frames():
        if ident == threading.get_ident() or ident in _KERNEL_THREADS:
            continue
        thread = known.get(ident)
        module = type(thread).__module__ if thread is not None else ""
        if thread is not None and module.split(".")[0] in _KERNEL_PACKAGES and module != "__main__":
            continue
        if _is_tqdm_monitor(thread):
            continue
        found.append(thread.name if thread is not None else f"thread {ident}")
    return found


def reference_calls(fn: Callable, *args, forbidden, **kwargs) -> tuple[object, list[str]]:
    """Call ``fn(*args, **kwargs)`` and list the forbidden functions it called, and what the watch could not see.

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
        Qualified names (``module.function``) of the forbidden functions called, in first-call order, then any
        blind spot the function opened (``"started a thread"``, ``"switched off the guard (sys.setprofile)"``).
        Threads started with ``threading`` are watched too while ``fn`` runs.

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
    result, references, blind = _watch(fn, args, kwargs, forbidden)
    return result, references + blind


def _watch(fn, args, kwargs, forbidden) -> tuple[object, list[str], list[str]]:
    """``fn(*args, **kwargs)``, the forbidden functions it called and the blind spots it opened."""
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
    forbidden = _check_forbidden(forbidden)
    called: list[str] = []
    blind: list[str] = []
    here = sys._getframe()

    def note(what, into=blind):
        if what not in into:
            into.append(what)

    def watch(frame, event, arg):
        if frame is here:  # this function's own calls around fn (putting the previous hook back)
            return
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            if _is_forbidden(module, forbidden):
                note(f"{module}.{getattr(frame.f_code, 'co_qualname', frame.f_code.co_name)}", called)
            elif frame.f_code in _BLIND_CODE:
                note(_BLIND_CODE[frame.f_code])
        elif event == "c_call":
            try:
                blind = _BLIND_SPOTS.get(arg)
            except TypeError:  # an unhashable callable
                blind = None
            if blind:
                note(blind)

    others = foreign_threads()
    if others:
        note(f"ran while another thread of the notebook's was alive ({', '.join(others[:3])})")
        return None, called, blind
    previous, previous_threads = sys.getprofile(), getattr(threading, "_profile_hook", None)
    threading.setprofile(watch)  # threads started with threading while fn runs are watched as well
    sys.setprofile(watch)
    try:
        result = fn(*args, **kwargs)
    finally:
        still = sys.getprofile() is watch
        sys.setprofile(previous)
        threading.setprofile(previous_threads)
    if not still:
        note("switched off the guard and left it off")
    if foreign_threads():
        note("started a thread")
    return result, called, blind


def _module_is_plain(value) -> str | None:
    """Why a torch.nn module is not plain (a subclass, hooks, a patched method), or None."""
    import torch

    cls = type(value)
    if getattr(torch.nn, cls.__name__, None) is not cls:
        return f"a {cls.__module__}.{cls.__qualname__} (not one of torch.nn's own layers)"
    for module in value.modules():
        if getattr(torch.nn, type(module).__name__, None) is not type(module):
            return f"a layer of type {type(module).__qualname__} inside"
        hooks = [name for name in vars(module) if name.endswith("_hooks") and vars(module)[name]]
        if hooks:
            return f"a layer with hooks ({', '.join(hooks)})"
        patched = [name for name, item in vars(module).items() if callable(item) and not name.startswith("_")]
        if patched:
            return f"a layer whose methods were replaced ({', '.join(patched)})"
    return None


def _why_not_plain(value, depth: int = 0) -> str | None:
    if value is None or type(value) in (bool, int, float, complex, str):
        return None
    if depth > 20:
        return "nested more than 20 levels deep"
    cls = type(value)
    if cls in (tuple, list):
        return next((why for item in value if (why := _why_not_plain(item, depth + 1))), None)
    if cls is dict:
        return next((why for key, item in value.items()
                     if (why := _why_not_plain(key, depth + 1) or _why_not_plain(item, depth + 1))), None)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if cls is numpy.ndarray:
            return None if value.dtype.kind in "biufc" else f"a numpy array of dtype {value.dtype}"
        if cls in {numpy.bool_, *numpy.sctypeDict.values()} and issubclass(cls, (numpy.number, numpy.bool_)):
            return None
    torch = sys.modules.get("torch")
    if torch is not None:
        if cls is torch.Tensor or cls is torch.Size:
            return None
        if isinstance(value, torch.nn.Module):
            return _module_is_plain(value)
    return f"a {cls.__module__}.{cls.__qualname__}"


def plain(value, what: str = "the answer"):
    """Return ``value`` if it is plain data, which compares as data; fail naming its type otherwise.

    Plain: ``None``, exact ``bool``/``int``/``float``/``complex``/``str``, numpy numeric and bool scalars,
    ``numpy.ndarray`` of a numeric or bool dtype (not a subclass), exact ``torch.Tensor`` (not a subclass, so no
    ``__torch_function__`` of the student's), ``torch.Size``, one of ``torch.nn``'s own layers without hooks or
    replaced methods, and exact tuples, lists and dicts of these. A subclass may redefine ``__eq__``,
    ``__array_function__``, ``__torch_function__`` or ``item()`` so that any comparison says True.

    Parameters
    ----------
    value : object
        What the student's code returned.
    what : str
        How to name it in the message.

    Returns
    -------
    object
        ``value`` itself.

    Raises
    ------
    AssertionError
        Naming the type that is not plain.

    Examples
    --------
    >>> plain([1.0, (2, None)])
    [1.0, (2, None)]
    >>> class Always(float):
    ...     def __eq__(self, other):
    ...         return True
    >>> plain(Always(0.0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    AssertionError: the answer is not a plain value: it holds a ...Always — return plain numbers, ...
    """
    why = _why_not_plain(value)
    if why:
        raise AssertionError(
            f"{what} is not a plain value: it holds {why} — return plain numbers, numpy arrays of numbers or "
            "torch tensors (and tuples, lists, dicts of them); this test scores 0 while it does.")
    return value


def assert_own_work(fn: Callable, *args, forbidden, **kwargs):
    """Call ``fn(*args, **kwargs)``; fail if it calls the course's reference code in ``forbidden``.

    It fails as well when the function hides calls from the watch (switches the profile hook off, starts a
    thread or a process, runs while a thread of the notebook's is alive) and when it returns something that is
    not plain data (:func:`plain`), so that what the test compares is the student's own answer.

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
        Naming the function and the reference it called or the blind spot it opened, or the type it returned.

    Examples
    --------
    >>> def my_len(items):
    ...     return sum(1 for _ in items)
    >>> assert_own_work(my_len, [1, 2, 3], forbidden="course_lib.metrics")
    3
    """
    result, references, hidden = _watch(fn, args, kwargs, forbidden)
    name = getattr(fn, "__name__", repr(fn))
    if references:
        raise AssertionError(f"`{name}` calls the course's reference implementation ({', '.join(references)}): "
                             "write it yourself — this exercise scores 0 while it does.")
    if hidden:
        raise AssertionError(f"`{name}` {'; '.join(hidden)}: code the guard cannot watch could call the course's "
                             "reference, so this test scores 0 while it does — compute the answer in the function "
                             "itself, in this thread.")
    return plain(result, f"what `{name}` returned")
