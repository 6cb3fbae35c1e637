"""Read, validate and repair a submission before it is graded.

A submitted folder ``<student>/<assignment>/`` is turned into the notebook(s) the worker grades:

* **rejected with a reason** (scores 0 in ``grades.csv``, listed in the summary): no notebook, an
  empty file, invalid JSON, not a notebook, a file over :data:`MAX_BYTES`, a notebook that is not a
  plain file of its own (a symbolic or hard link -- to another student's notebook, a solution --, a fifo,
  a device): it is never opened through the link (:mod:`.files`);
* **repaired and graded, with a note**: a notebook saved under another name (the only one in the
  folder), outputs (cleared: they are regenerated; a 50 MB notebook becomes small), a deleted,
  edited or re-typed locked or test cell (put back from the release), a duplicated grade id
  (the first copy is the answer; later copies become ordinary cells), a literal nbgrader marker
  in the student's code (neutralised, so it cannot hide code or break feedback);
* **flagged for manual review** by a static scan of the student's own code: introspection or
  process APIs (frames, ``gc``, ``ctypes``, ``sys.modules``, the grader's guard), assignments to
  attributes of ``math``/``numpy``/``torch``/``builtins``, and imports of ``course_lib`` (the
  course's reference implementation).

Only notebooks are copied: extra files in a submission (a ``numpy.py`` that would shadow the real
one, data) are ignored and noted; links and other special files among them are flagged for review.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import files

MAX_BYTES = 200 * 1024 * 1024  # a notebook larger than this is rejected before parsing
MARKER = re.compile(r"(BEGIN|END)(\s+)(HIDDEN\s+TESTS|SOLUTION)")
SUSPICIOUS = {
    r"__grader": "touches the grader's integrity guard",
    r"sys\._getframe|\binspect\b|f_back|f_globals": "inspects the calling code (stack frames)",
    r"\bget_ipython\b|\b_ih\b|\bIn\[|\b_i\d*\b|linecache": "reads the notebook's own input history",
    r"\bgc\.get_(referrers|objects)": "walks the interpreter's objects (gc)",
    r"\bctypes\b": "uses ctypes",
    r"sys\.modules": "replaces modules (sys.modules)",
    r"\bbuiltins\b|__builtins__": "changes Python's builtins",
    r"os\._exit|\bsignal\.|os\.kill": "kills or signals processes",
    r"__code__|__globals__": "rewrites function code",
}
PATCHED_MODULES = {"math", "np", "numpy", "torch", "builtins", "sklearn", "scipy", "F", "nn"}


class Rejected(Exception):
    """A submission that cannot be graded; ``str(error)`` is the reason shown in the summary."""


@dataclass
class Intake:
    notebooks: dict[str, nbformat.NotebookNode] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # repairs, informational
    flags: list[str] = field(default_factory=list)   # reasons for manual review


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` (a plain file, never read through a link), or :class:`Rejected` with the reason."""
    try:
        data = files.read_regular(path, MAX_BYTES)
    except files.NotRegular as error:
        raise Rejected(f"{error}: the grader reads only plain files") from None
    if not data:
        raise Rejected(f"{path.name} is an empty file")
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Rejected(f"{path.name} is not valid JSON ({error})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise Rejected(f"{path.name} is not a notebook (no list of cells)")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for malformed files
        raise Rejected(f"{path.name} is not a readable notebook ({type(error).__name__}: {error})") from None
    for cell in nb.cells:
        if not isinstance(cell.get("source", ""), str) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Rejected(f"{path.name} has a malformed cell")
    return nb


def neutralise_markers(source: str) -> tuple[str, bool]:
    new = MARKER.sub(lambda m: f"{m.group(1)}_{m.group(3).replace(' ', '_')} (marker removed)", source)
    return new, new != source


def scan(source: str, where: str) -> list[str]:
    """Reasons to review ``source`` (the student's own code) by hand."""
    flags = [f"{where}: {why}" for pattern, why in SUSPICIOUS.items() if re.search(pattern, source)]
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return flags
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
            flags.append(f"{where}: calls setattr")
        for target in targets:
            if isinstance(target, ast.Attribute):
                base = target.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in PATCHED_MODULES:
                    flags.append(f"{where}: assigns {ast.unparse(target)} (patches a library function)")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib") or (
                isinstance(node, ast.Import) and any(a.name.startswith("course_lib") for a in node.names)):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            flags.append(f"{where}: imports {module} (the course's reference implementation)")
    return flags


def rebuild(student: nbformat.NotebookNode, release: nbformat.NotebookNode, name: str) -> Intake:
    """The release notebook with the student's answers in its answer cells; see the module docstring."""
    out = Intake()
    release_ids = {_grade_id(c): c for c in release.cells if _grade_id(c)}
    answers: dict[str, nbformat.NotebookNode] = {}
    extras: dict[str | None, list] = {}
    anchor = None
    for cell in student.cells:
        gid = _grade_id(cell)
        if gid in release_ids and gid not in answers:
            answers[gid] = cell
            anchor = gid
            continue
        if gid in release_ids:
            out.notes.append(f"{name}: grade id {gid!r} appears twice; the first copy is graded")
        cell = copy.deepcopy(cell)
        cell.metadata.pop("nbgrader", None)
        extras.setdefault(anchor, []).append(cell)

    cells = []

    def add_extras(key):
        for cell in extras.get(key, []):
            source, changed = neutralise_markers(cell.source)
            if changed:
                out.flags.append(f"{name}: a cell of the student's contains an nbgrader marker (neutralised)")
            cell.source = source
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                out.flags += scan(source, f"{name}, an added cell")
            cells.append(cell)

    add_extras(None)
    for rcell in release.cells:
        gid = _grade_id(rcell)
        new = copy.deepcopy(rcell)
        mine = answers.get(gid)
        meta = rcell.metadata.get("nbgrader", {})
        if gid and meta.get("solution"):
            if mine is None:
                out.notes.append(f"{name}: answer cell {gid!r} was deleted (graded as unanswered)")
            else:
                if mine.cell_type != rcell.cell_type:
                    out.notes.append(f"{name}: answer cell {gid!r} was changed to {mine.cell_type} "
                                     f"(graded as {rcell.cell_type})")
                source, changed = neutralise_markers(mine.source)
                if changed:
                    out.flags.append(f"{name}: answer {gid!r} contains an nbgrader marker (neutralised)")
                new.source = source
                if rcell.cell_type == "code":
                    out.flags += scan(source, f"{name}, answer {gid!r}")
        elif gid:
            if mine is None:
                out.notes.append(f"{name}: cell {gid!r} was deleted (restored from the release)")
            elif mine.cell_type != rcell.cell_type:
                out.notes.append(f"{name}: cell {gid!r} was changed to {mine.cell_type} (restored)")
            elif mine.source != rcell.source:
                out.notes.append(f"{name}: locked cell {gid!r} was edited (restored)")
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        cells.append(new)
        add_extras(gid)
    nb = copy.deepcopy(release)
    nb.cells = cells
    out.notebooks[name] = nb
    return out


def take(folder: Path, releases: dict[str, nbformat.NotebookNode]) -> Intake:
    """Validate and rebuild every notebook of a submission folder against ``releases`` (name -> release)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise Rejected(f"{folder.name} is {files.kind(folder) if os.path.lexists(folder) else 'missing'}, "
                       "not a folder: the grader never follows a link")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    # a notebook-named entry of any kind is read (and rejected if it is no plain file); others are only listed
    notebooks = {p.stem: p for p in entries if p.suffix == ".ipynb"}
    result = Intake()
    others = [p.name for p in entries if p.suffix != ".ipynb" and files.kind(p) in ("a file", "a folder")]
    if others:
        result.notes.append(f"ignored files that are not notebooks: {', '.join(others[:5])}")
    odd = [entry for entry in files.odd_entries(folder) if not entry.split(" (")[0].endswith(".ipynb")]
    if odd:
        result.flags.append(f"the submission holds {', '.join(odd[:5])}: ignored, never followed")
    unknown = [n for n in notebooks if n not in releases]
    for name, release in releases.items():
        path = notebooks.get(name)
        if path is None and len(unknown) == 1 and len(releases) == 1:
            path = notebooks[unknown.pop()]
            result.notes.append(f"{path.name} graded as {name}.ipynb (renamed notebook)")
        if path is None:
            continue
        part = rebuild(read_notebook(path), release, name)
        result.notebooks.update(part.notebooks)
        result.notes += part.notes
        result.flags += part.flags
    if not result.notebooks:
        expected = ", ".join(f"{n}.ipynb" for n in releases)
        raise Rejected(f"no notebook to grade (expected {expected}; found {', '.join(notebooks) or 'none'})")
    result.flags = list(dict.fromkeys(result.flags))
    return result
