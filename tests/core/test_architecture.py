"""The layout is the course: a small core below one package per chapter, imports pointing down.

Walks every import in ``course_lib`` (and in what students and users run: notebooks, solutions, benchmarks,
data scripts) and fails on
- an upward import: a core module importing a chapter package;
- a private name (``_name``) imported from another package — chapters meet only through public names;
- a module over 400 lines (one idea per module) unless it is listed here with its reason;
- a chapter importing another chapter, or the tools, unless the pair is listed here with its reason (a chapter
  builds on an earlier one's public model or reader, never on its experiments);
- a chapter package whose index (its ``__init__`` docstring) leaves one of its modules out.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "course_lib"
CORE = {"config", "training", "results", "viz", "metrics", "data", "_meta", "__init__"}
CHAPTERS = {"chest_xray": 1, "histology": 2, "counting": 3, "translation": 4, "confounders": 5}
TOOLS = {"tools", "grading"}  # command-line tools; the grader (its own optional dependencies)
LONG_MODULES_WITH_A_REASON: dict[str, str] = {}
CHAPTER_IMPORTS_WITH_A_REASON = {  # (importer, imported module): why a later chapter reuses an earlier one's
    ("counting", "course_lib.histology.unet"): "the density net is chapter 2's U-Net with a density head",
    ("confounders", "course_lib.chest_xray.images"): "full mode's site mix reads radiographs as chapter 1 does",
}


def package_of(module: str) -> str:
    """'course_lib.counting.density' -> 'counting'; 'course_lib.config' -> 'config'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(source: str, filename: str, own_module: str = "") -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) for every import of course_lib in ``source`` (relative ones resolved)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("course_lib")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = own_module.split(".")[: -node.level] if own_module else []
                module = ".".join(base + ([module] if module else []))
            if module.startswith("course_lib"):
                found.append((module, [a.name for a in node.names], node.lineno))
    return found


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            lines += ["" if line.lstrip().startswith(("!", "%")) else line for line in source.splitlines()]
    return "\n".join(lines)


LIB_FILES = sorted(p for p in LIB.rglob("*.py") if "__pycache__" not in p.parts)
USER_FILES = sorted(
    [p for d in ("benchmarks", "data_scripts") for p in (ROOT / d).rglob("*.py")]
    + [p for d in ("notebooks", "solutions", "assignments") for p in (ROOT / d).rglob("*.ipynb")
       if ".ipynb_checkpoints" not in p.parts]
)


def test_every_package_is_core_chapter_or_tools():
    packages = {p.name for p in LIB.iterdir() if p.is_dir() and p.name != "__pycache__"}
    packages |= {p.stem for p in LIB.glob("*.py")}
    unknown = packages - CORE - set(CHAPTERS) - TOOLS
    assert not unknown, f"course_lib packages that are neither core, a chapter nor tools: {sorted(unknown)}"


@pytest.mark.parametrize("path", LIB_FILES, ids=lambda p: str(p.relative_to(LIB)))
def test_core_never_imports_a_chapter_and_no_private_name_crosses_a_package(path):
    own = module_name(path)
    own_package = package_of(own)
    for module, names, line in imports_of(path.read_text(), str(path), own):
        target = package_of(module)
        where = f"{path.relative_to(ROOT)}:{line} imports {module}"
        if own_package in CORE:
            assert target not in CHAPTERS and target not in TOOLS, f"upward import: {where} (core -> {target})"
        if target != own_package:
            assert not any(part.startswith("_") and part != "__init__" for part in module.split(".")[1:]) \
                or module == "course_lib._meta", f"private module across packages: {where}"
            private = [n for n in names if n.startswith("_")]
            assert not private, f"private names across packages: {where} {private}"


@pytest.mark.parametrize("path", LIB_FILES, ids=lambda p: str(p.relative_to(LIB)))
def test_chapters_import_each_other_only_where_a_reason_is_stated(path):
    own_package = package_of(module_name(path))
    if own_package not in CHAPTERS:
        return
    for module, _, line in imports_of(path.read_text(), str(path), module_name(path)):
        target = package_of(module)
        if target in TOOLS:
            pytest.fail(f"{path.relative_to(ROOT)}:{line} imports the tools ({module}): chapters never depend on them")
        if target in CHAPTERS and target != own_package:
            assert (own_package, module) in CHAPTER_IMPORTS_WITH_A_REASON, (
                f"{path.relative_to(ROOT)}:{line} imports {module}: a chapter imports another only where "
                f"CHAPTER_IMPORTS_WITH_A_REASON says why")


def test_every_stated_chapter_import_is_still_used():
    used = {(package_of(module_name(p)), m) for p in LIB_FILES
            for m, _, _ in imports_of(p.read_text(), str(p), module_name(p))}
    stale = set(CHAPTER_IMPORTS_WITH_A_REASON) - used
    assert not stale, f"CHAPTER_IMPORTS_WITH_A_REASON lists imports no module makes: {sorted(stale)}"


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_each_chapter_index_lists_all_its_modules(chapter):
    index = (LIB / chapter / "__init__.py").read_text()
    modules = sorted(p.stem for p in (LIB / chapter).glob("*.py") if p.stem != "__init__")
    missing = [m for m in modules if f"course_lib.{chapter}.{m}`" not in index and f"`~.{m}`" not in index]
    assert not missing, f"course_lib/{chapter}/__init__.py does not list {missing} in its index of modules"


EXPERIMENT_MODULES = sorted(p for p in LIB_FILES if p.parent.name in CHAPTERS and "QUICK = " in p.read_text())


@pytest.mark.parametrize("path", EXPERIMENT_MODULES, ids=lambda p: str(p.relative_to(LIB)))
def test_every_module_with_quick_settings_has_a_settings_accessor(path):
    # notebooks ask settings() for the mode's preset, never pick QUICK or FULL themselves
    assert "\ndef settings()" in path.read_text(), f"{path.relative_to(ROOT)} defines QUICK but no settings()"


def test_the_settings_rule_sees_every_chapter():
    assert {p.parent.name for p in EXPERIMENT_MODULES} == set(CHAPTERS)


@pytest.mark.parametrize("path", USER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_solutions_benchmarks_and_scripts_use_public_names_only(path):
    source = notebook_code(path) if path.suffix == ".ipynb" else path.read_text()
    for module, names, line in imports_of(source, str(path)):
        private = [n for n in names if n.startswith("_")]
        private_module = [p for p in module.split(".")[1:] if p.startswith("_")]
        assert not private and not private_module, f"{path.relative_to(ROOT)}:{line} imports private {module} {private}"


@pytest.mark.parametrize("path", LIB_FILES, ids=lambda p: str(p.relative_to(LIB)))
def test_modules_stay_readable_in_one_sitting(path):
    lines = len(path.read_text().splitlines())
    key = str(path.relative_to(LIB))
    assert lines <= 400 or key in LONG_MODULES_WITH_A_REASON, f"{key} has {lines} lines (> 400): split it by idea"


def test_the_walker_catches_an_upward_and_a_private_import():
    # positive control: the two violations this file exists for are found by imports_of
    source = "from course_lib.counting.density import density_map\nfrom course_lib.metrics.validate import _x\n"
    found = imports_of(source, "<control>", "course_lib.metrics.segmentation")
    assert [(package_of(m), n) for m, n, _ in found] == [("counting", ["density_map"]), ("metrics", ["_x"])]
