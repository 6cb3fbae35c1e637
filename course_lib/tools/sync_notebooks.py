"""Write the Colab badge and Colab install command into every notebook, from ``course_lib._meta``.

The repository URL lives in ``course_lib/_meta.py`` only. Notebooks carry two markers:
a ``<!-- colab-badge -->`` comment in their first Markdown cell, whose line this tool rewrites, and a
``# colab-install`` comment on the install line of their setup cell, whose whole cell it replaces with
``_meta.SETUP_CELL`` (the install spec, overridable by ``COURSE_LIB_SPEC``). In README.md, a table cell ending in
``<!-- colab-badge:notebooks/NAME.ipynb -->`` gets that notebook's badge.

Usage::

    python -m course_lib.tools.sync_notebooks          # rewrite
    python -m course_lib.tools.sync_notebooks --check  # exit 1 if any notebook is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from course_lib._meta import SETUP_CELL, colab_badge

ROOT = Path(__file__).resolve().parents[2]
BADGE_MARK = "<!-- colab-badge -->"
INSTALL_MARK = "# colab-install"


def notebook_paths(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("*.ipynb")) + sorted((root / "solutions").glob("*/*.ipynb"))


def badge_path(relative_path: str) -> str:
    """The notebook a badge opens: a solution's badge opens its released assignment, never the solution."""
    parts = relative_path.split("/")
    return "/".join(["assignments", *parts[1:]]) if parts[0] == "solutions" else relative_path


def synced_sources(nb, relative_path: str) -> list[str]:
    """The cell sources of ``nb`` with badge lines and the setup cell rewritten."""
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code" and INSTALL_MARK in cell.source:
            out.append(SETUP_CELL)  # the whole cell: its imports and condition belong to the install line
            continue
        lines = cell.source.split("\n")
        for k, line in enumerate(lines):
            if cell.cell_type == "markdown" and BADGE_MARK in line:
                lines[k] = f"{colab_badge(badge_path(relative_path))} {BADGE_MARK}"
        out.append("\n".join(lines))
    return out


README_BADGE = re.compile(r"[^|\n]*<!-- colab-badge:(?P<path>[^ \n]+\.ipynb) -->")


def synced_readme(text: str) -> str:
    """README text with every ``<!-- colab-badge:PATH -->`` table cell rewritten."""
    return README_BADGE.sub(lambda m: f" {colab_badge(m['path'])} <!-- colab-badge:{m['path']} -->", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        relative = path.relative_to(ROOT).as_posix()
        new = synced_sources(nb, relative)
        if new != [cell.source for cell in nb.cells]:
            stale.append(relative)
            if not args.check:
                for cell, source in zip(nb.cells, new, strict=True):
                    cell.source = source
                nbformat.write(nb, path)
    readme = ROOT / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        if synced_readme(text) != text:
            stale.append("README.md")
            if not args.check:
                readme.write_text(synced_readme(text), encoding="utf-8")
    if args.check and stale:
        print("out of date (run `python -m course_lib.tools.sync_notebooks`):", *stale, sep="\n  ")
        return 1
    print(("rewrote " if stale else "all notebooks up to date ") + " ".join(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
