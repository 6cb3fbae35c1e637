"""The torture suite's attacks on other students and on confidentiality (graded in the same batch as the victim).

Each attack has a second, different instance of its kind. Expected: the submission is rejected or flagged with its
reason, no other student's score or file changes, the solutions, the gradebook and the course's files keep their
bytes and modes, and no feedback or released file holds a byte of them or of the instructor's environment.

* links left by the student's code in the kernel's folder: to a solution notebook, the gradebook and solutions/
  (``links_to_solutions``); over the notebook's own name, to a course file and to another student's notebook, plus a
  fifo (``links_over_notebook``);
* a submission that is not a plain file of its own: a hard link to the solution (``hardlink_solution``), the
  assignment folder a link to solutions/ (``symlinked_folder``), the notebook a link to another student's
  (``symlink_submission``) or a fifo (``fifo_submission``);
* the instructor's environment: printed from ``os.environ`` (``reads_env``), read from every process's
  ``/proc/<pid>/environ`` (``reads_parent_env``);
* scripts in the feedback: ``display(HTML(...))`` with ``<script>`` and ``onerror`` and a ``Javascript`` output
  (``html_output``), a markdown cell with ``<svg onload>`` and ``javascript:`` links (``html_markdown``).
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from nbgrader_harness import make_submission

# Set in the grader's environment while the batch is graded: neither may reach any file a student gets back.
SECRETS = {"JUPYTERHUB_API_TOKEN": "torture-hub-token-4f2a91", "AWS_SECRET_ACCESS_KEY": "torture-cloud-key-9b1c07"}
CANARY = "course_file.py"  # a course file (as course_lib/tools/guard.py was) that a link tries to get written over
VISIBLE = ("TORTURE-VISIBLE-1", "TORTURE-VISIBLE-2")  # the harmless text of the HTML cases stays readable


def _body(code: str, indent: str = "    ") -> str:
    return "".join(indent + line + "\n" for line in code.strip("\n").split("\n"))


def _links(pairs: list[tuple[str, str]], fifo: str | None = None) -> str:
    # loop names of their own: the function's parameters are called pred and target
    code = "import os\nfor _to, _name in " + repr(pairs) + ":\n    try:\n        os.symlink(_to, _name)\n" \
           "    except OSError:\n        pass\n"
    if fifo:
        code += f"try:\n    os.mkfifo({fifo!r})\nexcept OSError:\n    pass\n"
    return _body(code)


def notebooks(course: Path, assignment: str, bodies: dict, release) -> dict[str, nbformat.NotebookNode]:
    """The cases that are notebooks (their attack runs in the kernel)."""
    a = assignment
    victim_nb = str(course / "submitted" / "victim" / a / f"{a}.ipynb")
    solution = str(course / "solutions" / a / f"{a}.ipynb")
    out = {
        "links_to_solutions": {**bodies, "precision": _links([
            (solution, "leak_solution.ipynb"), (str(course / "gradebook.db"), "gradebook.txt"),
            (str(course / "solutions"), "leakdir")]) + bodies["precision"]},
        "links_over_notebook": {**bodies, "precision": _links([
            (str(course / CANARY), f"{a}.ipynb"), (victim_nb, f"{a}.html")], fifo="pipe") + bodies["precision"]},
        "reads_env": {**bodies, "precision": _body(
            "import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ').read())") + bodies["precision"]},
        "reads_parent_env": {**bodies, "precision": _body(
            "import glob\nfor path in glob.glob('/proc/*/environ'):\n    try:\n"
            "        print(path, open(path).read().replace('\\0', ' '))\n    except OSError:\n        pass")
            + bodies["precision"]},
        "html_output": {**bodies, "precision": _body(
            "from IPython.display import HTML, Javascript, display\n"
            f"display(HTML('<script>alert(0)</script><img src=x onerror=\"alert(1)\">{VISIBLE[0]}'))\n"
            "display(Javascript('alert(2)'))") + bodies["precision"]},
    }
    out = {student: make_submission(release, b) for student, b in out.items()}
    nb = make_submission(release, bodies)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(
        f'<svg onload="alert(3)"></svg><a href="javascript:alert(4)">{VISIBLE[1]}</a>'
        '<iframe src="javascript:alert(5)"></iframe><p onmouseover="alert(6)">hover</p>'))
    out["html_markdown"] = nb
    return out


def place(course: Path, assignment: str, correct: nbformat.NotebookNode) -> None:
    """The cases that are special files in ``submitted/`` (made after the notebooks, the victim's included)."""
    a, sub = assignment, course / "submitted"
    (course / CANARY).write_text((Path(__file__).parents[2] / "course_lib" / "tools" / "guard.py").read_text())
    (sub / "hardlink_solution" / a).mkdir(parents=True)
    os.link(course / "solutions" / a / f"{a}.ipynb", sub / "hardlink_solution" / a / f"Copy of {a}.ipynb")
    (sub / "symlinked_folder").mkdir()
    (sub / "symlinked_folder" / a).symlink_to(course / "solutions" / a, target_is_directory=True)
    (sub / "symlink_submission" / a).mkdir(parents=True)
    (sub / "symlink_submission" / a / f"{a}.ipynb").symlink_to(sub / "victim" / a / f"{a}.ipynb")
    (sub / "fifo_submission" / a).mkdir(parents=True)
    os.mkfifo(sub / "fifo_submission" / a / f"{a}.ipynb")


def expected(full: dict) -> dict:
    """student -> (cell scores or None if rejected, words the summary's reasons must hold)."""
    return {
        "links_to_solutions": (full, ["leak_solution.ipynb (a symbolic link) in its folder", "flagged for review"]),
        "links_over_notebook": (full, ["(a symbolic link) in its folder", "pipe (a fifo (named pipe))"]),
        "hardlink_solution": (None, ["hard link"]),
        "symlinked_folder": (None, ["symbolic link"]),
        "symlink_submission": (None, ["symbolic link"]),
        "fifo_submission": (None, ["fifo"]),
        "reads_env": (full, []),
        "reads_parent_env": (full, []),
        "html_output": (full, []),
        "html_markdown": (full, []),
    }


def protected(course: Path) -> dict[str, tuple[bytes | None, int]]:
    """path -> (bytes, mode) of what no student may change: the solutions, the course file, the gradebook's mode."""
    paths = [p for p in (course / "solutions").rglob("*") if p.is_file()] + [course / CANARY]
    out = {str(p): (p.read_bytes(), p.stat().st_mode) for p in paths}
    out[str(course / "gradebook.db")] = (None, (course / "gradebook.db").stat().st_mode)
    return out


class Tags(HTMLParser):
    """The start tags of a page with their attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def active_content(page: str) -> list[str]:
    """What in ``page`` would run in a browser: script tags, event handlers, ``javascript:`` URLs."""
    parser = Tags()
    parser.feed(page)
    found = []
    for tag, attrs in parser.tags:
        if tag in ("script", "iframe", "object", "embed"):
            found.append(f"<{tag}>")
        found += [f"<{tag} {k}=...>" for k in attrs if k.lower().startswith("on")]
        found += [f"<{tag} {k}={v[:30]}>" for k, v in attrs.items()
                  if v and v.strip().lower().startswith("javascript:")]
    return found
