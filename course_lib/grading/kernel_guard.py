"""Code the grader runs silently inside each student kernel (as a string; never imported by the grader).

Before any student code runs, :data:`SETUP` imports the modules the graded test cells use and keeps
the original objects: ``math``/``numpy``/``torch`` comparison functions, ``builtins``, every callable
of the modules the tests import, and ``torch.Tensor``'s methods. Before each graded test cell the
grader calls ``restore()``: anything the student's code replaced is put back (the tests compare
with the originals, so patching them beforehand gains nothing). After the cell it calls
``check()``: a function of the student's that patches them *while the test runs* is caught there,
and the grader fails that cell and flags the submission for review.

Below those, every callable attribute of every module of ``numpy``, ``torch``, ``math``, ``builtins``,
``operator`` and ``functools`` (and of their Python classes) is kept with the code of each Python function, so a
patch of an internal the checked functions call (``numpy._core.numeric.less_equal``, ``torch.nn.Module._call_impl``,
a replaced ``__code__``) is restored and reported the same way (~0.03 s a test cell). The packages' own wrapping of
their functions on first use (``Optimizer.step``) is told apart by its ``__wrapped__`` chain and its globals.

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

    # Below the functions above: every callable attribute of every module of these packages (numpy's and
    # torch's internals that isclose/allclose call), of their mutable classes, and the code of each Python
    # function (a replaced __code__ keeps the function's identity). About 35 000 entries: ~0.5 s once, ~0.03 s a
    # comparison. Modules imported later are taken when first seen.
    missing = object()
    deep_roots = ("numpy", "torch", "math", "builtins", "operator", "functools")
    function_type = types.FunctionType
    shell_builtins = {"input", "raw_input", "get_ipython", "exit", "quit", "display"}
    dispatcher_type = type(getattr(sys.modules.get("numpy"), "isclose", None))  # numpy's array-function wrapper
    deep = {}        # id(module or class) -> (owner, {attr: (value, code or None)}, label)

    def _function(value):
        # the Python function whose code runs: the value itself, or what numpy's dispatcher calls
        if type(value) is function_type:
            return value
        if type(value) is dispatcher_type and type(getattr(value, "_implementation", None)) is function_type:
            return value._implementation
        return None

    def _entry(value):
        function = _function(value)
        return value, (function.__code__ if function is not None else None)

    def deep_snapshot():
        for name, module in list(sys.modules.items()):
            if module is None or id(module) in deep or name.split(".")[0] not in deep_roots:
                continue
            try:
                items = list(vars(module).items())
            except TypeError:
                continue
            # IPython and ipykernel put fresh bound methods of theirs into builtins for every cell (get_ipython,
            # input): not the student's, and never what a test compares with
            deep[id(module)] = (module, {a: _entry(v) for a, v in items if callable(v) and not (
                name == "builtins" and (a in shell_builtins or type(v) is types.MethodType))}, name)
            for value in [v for _, v in items if issubclass(type(v), type) and id(v) not in deep]:
                if str(getattr(value, "__module__", "")).split(".")[0] in deep_roots and not value.__flags__ & 256:
                    deep[id(value)] = (value, {a: _entry(v) for a, v in list(vars(value).items()) if callable(v)},
                                       f"{value.__module__}.{value.__qualname__}")

    def _wraps_original(current, value):
        # the packages wrap some of their own functions on first use (Optimizer.step, torch.manual_seed): a
        # function of theirs (its globals a module of the packages) whose __wrapped__ chain leads to the original
        module = sys.modules.get(str(getattr(current, "__globals__", {}).get("__name__", "")))
        if type(current) is not function_type or module is None or vars(module) is not current.__globals__ or \
                str(module.__name__).split(".")[0] not in deep_roots:
            return False
        for _ in range(10):
            current = getattr(current, "__wrapped__", None)
            if current is value:
                return True
        return False

    def deep_differences():
        changed = []
        for owner, kept, label in list(deep.values()):
            attrs = vars(owner)
            for attr, (value, code) in kept.items():
                current = attrs.get(attr, missing)
                if current is value:
                    if code is not None and _function(value).__code__ is not code:
                        changed.append((owner, attr, label))
                elif not _wraps_original(current, value):
                    changed.append((owner, attr, label))
        return changed

    def deep_restore():
        changed = deep_differences()
        for owner, attr, label in changed:
            value, code = deep[id(owner)][1][attr]
            setattr(owner, attr, value)
            if code is not None:
                _function(value).__code__ = code
        deep_snapshot()
        return [f"{label}.{attr}" for _, attr, label in changed]

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
        hooks = restore_hooks() + deep_restore()
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
        deep_found = [f"{label}.{attr}" for _, attr, label in deep_differences()]
        return sorted({f"{m}.{a}" for m, a in differences()} | set(hook_differences()) | set(deep_found))

    deep_snapshot()

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
