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
        changed = differences()
        for module_name, attr in changed:
            if module_name == "sys.modules":
                sys.modules[attr] = modules[attr]
            elif module_name == "notebook":
                ipython.user_ns[attr] = names[attr]
            else:
                setattr(_owner(module_name), attr, originals[module_name, attr])
        return sorted({f"{m}.{a}" for m, a in changed})

    def check():
        return sorted({f"{m}.{a}" for m, a in differences()})

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
