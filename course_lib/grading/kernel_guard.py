"""Code the grader runs silently inside each student kernel (as a string; never imported by the grader).

Before any student code runs, :data:`SETUP` imports the modules the graded test cells use and keeps
the original objects: ``math``/``numpy``/``torch`` comparison functions, ``builtins``, every callable
of the modules the tests import, and ``torch.Tensor``'s methods. Before each graded test cell the
grader calls ``restore()``: anything the student's code replaced is put back (the tests compare
with the originals, so patching them beforehand gains nothing). After the cell it calls
``check()``: a function of the student's that patches them *while the test runs* is caught there,
and the grader fails that cell and flags the submission for review.

Locked cells that define names the tests use (helpers, ``np``) are snapshotted with
``keep(names)`` right after they run, and restored the same way.

The kernel's **execution hooks** are kept and restored the same way, since they can change what a test
cell *does* rather than what it compares: IPython's input transformers (cleanup, line, token, post) and AST
transformers (a transformer that wraps every later cell in ``try/except`` makes a blank notebook pass),
the shell's own run/transform/traceback methods, event callbacks the notebook registered, the trace and
profile hooks (``sys.settrace``/``setprofile`` and ``threading``'s, which run code inside the tests), import
hooks (``sys.meta_path``, ``sys.path_hooks``) and ``sys.modules`` entries that alias a course module to
something else. Any change is reported, so the submission is flagged.

This is a deterrent inside a process the student controls; what it cannot see (a patch made
through ``gc`` or C), the static scan of :mod:`.intake` flags for manual review.
"""

SETUP = r'''
def __grader_make_guard(test_modules):
    import builtins, importlib, math, sys, types
    originals = {}   # (module name, attribute) -> object
    modules = {}     # module name -> module object
    names = {}       # user namespace name -> object

    def snapshot(module_name, attrs=None):
        try:
            module = importlib.import_module(module_name)
        except Exception:
            return
        modules[module_name] = module
        for attr in (attrs if attrs is not None else list(vars(module))):
            if attr.startswith("__") and attrs is None:
                continue
            value = getattr(module, attr, None)
            if value is not None and (callable(value) or isinstance(value, types.ModuleType)):
                originals[module_name, attr] = value

    snapshot("builtins", ["isinstance", "issubclass", "abs", "all", "any", "len", "float", "int", "round", "sum",
                          "min", "max", "type", "bool", "str", "repr", "range", "zip", "sorted", "hasattr",
                          "getattr", "setattr", "callable", "iter", "next", "map", "filter", "print"])
    snapshot("math", ["isclose", "isfinite", "isnan", "fabs", "sqrt"])
    snapshot("numpy", ["isclose", "allclose", "array_equal", "array_equiv", "isfinite", "isnan", "abs",
                       "all", "any", "sum", "mean", "asarray", "array", "testing"])
    snapshot("numpy.testing")
    snapshot("torch", ["allclose", "isclose", "equal", "isfinite", "isnan", "is_tensor", "tensor", "testing"])
    snapshot("torch.testing")
    for name in test_modules:
        snapshot(name)
    tensor = None
    if "torch" in modules:
        tensor = modules["torch"].Tensor
        for attr, value in list(vars(tensor).items()):
            originals["torch.Tensor", attr] = value

    ipython = get_ipython()
    import threading
    manager = ipython.input_transformer_manager
    hook_lists = {"input_transformers_cleanup": (manager, "cleanup_transforms"),
                  "input_transformer_manager.line_transforms": (manager, "line_transforms"),
                  "input_transformer_manager.token_transformers": (manager, "token_transformers"),
                  "input_transformers_post": (ipython, "input_transformers_post"),
                  "ast_transformers": (ipython, "ast_transformers"),
                  "sys.meta_path": (sys, "meta_path"), "sys.path_hooks": (sys, "path_hooks")}
    saved_lists = {key: (getattr(owner, attr), list(getattr(owner, attr))) for key, (owner, attr) in hook_lists.items()}
    shell_attrs = ["run_cell", "run_cell_async", "run_ast_nodes", "run_code", "transform_cell", "transform_ast",
                   "showtraceback", "_showtraceback", "showsyntaxerror", "input_transformer_manager", "compile",
                   "should_run_async", "events", "ev", "user_expressions"]
    missing = object()
    saved_shell = {attr: vars(ipython).get(attr, missing) for attr in shell_attrs}
    saved_class = {(cls, attr): vars(cls)[attr] for cls in type(ipython).__mro__ for attr in shell_attrs
                   if attr in vars(cls)}
    saved_events = {name: list(callbacks) for name, callbacks in ipython.events.callbacks.items()}
    trace_hooks = {"sys.settrace": (sys.gettrace, sys.settrace), "sys.setprofile": (sys.getprofile, sys.setprofile),
                   "threading.settrace": (lambda: getattr(threading, "_trace_hook", None), threading.settrace),
                   "threading.setprofile": (lambda: getattr(threading, "_profile_hook", None), threading.setprofile)}
    saved_trace = {name: get() for name, (get, _) in trace_hooks.items()}
    course_root = __import__("os").path.dirname(importlib.import_module("course_lib").__file__)

    def _from_notebook(callback):
        return getattr(callback, "__module__", None) in (None, "__main__")

    def hook_differences():
        changed = []
        for key, (owner, attr) in hook_lists.items():
            original, items = saved_lists[key]
            if getattr(owner, attr) is not original or list(original) != items:
                changed.append(key)
        changed += [f"shell.{a}" for a, value in saved_shell.items() if vars(ipython).get(a, missing) is not value]
        changed += [f"{cls.__name__}.{a}" for (cls, a), value in saved_class.items() if vars(cls).get(a) is not value]
        for name, callbacks in ipython.events.callbacks.items():
            if any(_from_notebook(c) for c in callbacks if c not in saved_events.get(name, [])):
                changed.append(f"events.{name}")
        changed += [name for name, (get, _) in trace_hooks.items() if get() is not saved_trace[name]]
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] == "course_lib" and module is not None and not str(
                    getattr(module, "__file__", "") or "").startswith(course_root):
                changed.append(f"sys.modules[{name!r}]")
        return changed

    def restore_hooks():
        changed = hook_differences()
        for key, (owner, attr) in hook_lists.items():
            original, items = saved_lists[key]
            original[:] = items
            setattr(owner, attr, original)
        for attr, value in saved_shell.items():
            if value is missing:
                vars(ipython).pop(attr, None)
            else:
                vars(ipython)[attr] = value
        for (cls, attr), value in saved_class.items():
            if vars(cls).get(attr) is not value:
                setattr(cls, attr, value)
        for name, callbacks in ipython.events.callbacks.items():
            callbacks[:] = [c for c in callbacks if c in saved_events.get(name, []) or not _from_notebook(c)]
        for name, (get, put) in trace_hooks.items():
            if get() is not saved_trace[name]:
                put(saved_trace[name])
        for entry in changed:
            if entry.startswith("sys.modules["):
                sys.modules.pop(entry[len("sys.modules['"):-2], None)
        return changed

    def _owner(module_name):
        if module_name == "torch.Tensor":
            return tensor
        return modules[module_name]

    def differences():
        changed = []
        for (module_name, attr), value in originals.items():
            owner = _owner(module_name)
            current = vars(owner).get(attr, None)
            if current is not value:
                changed.append((module_name, attr))
        for module_name, module in modules.items():
            if sys.modules.get(module_name) is not module:
                changed.append(("sys.modules", module_name))
        for name, value in names.items():
            if ipython.user_ns.get(name, value) is not value:
                changed.append(("notebook", name))
        return changed

    def restore():
        hooks = restore_hooks()
        changed = differences()
        for module_name, attr in changed:
            if module_name == "sys.modules":
                sys.modules[attr] = modules[attr]
            elif module_name == "notebook":
                ipython.user_ns[attr] = names[attr]
            else:
                setattr(_owner(module_name), attr, originals[module_name, attr])
        return sorted({f"{m}.{a}" for m, a in changed} | set(hooks))

    def check():
        return sorted({f"{m}.{a}" for m, a in differences()} | set(hook_differences()))

    def keep(new_names):
        for name in new_names:
            if name in ipython.user_ns:
                names[name] = ipython.user_ns[name]

    return restore, check, keep


__grader_guard = __grader_make_guard(__GRADER_TEST_MODULES__)
del __grader_make_guard
'''

RESTORE = "__grader_guard[0]()"
CHECK = "__grader_guard[1]()"


def keep(names: list[str]) -> str:
    return f"__grader_guard[2]({names!r})"
