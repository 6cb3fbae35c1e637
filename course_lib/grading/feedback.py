"""What a student reads back: feedback with the hidden tests scrubbed out and no script in it.

:class:`ScrubHiddenTests` runs first when feedback is generated: it removes every line of hidden
test code from the cells' *outputs* (a student's function can print the code that calls it), then
nbgrader's ``ClearHiddenTests`` removes them from the sources. :func:`hidden_lines` is the one
definition of "a hidden line": the scrubber removes exactly these, and the tests check exactly these.

:func:`sanitise_html` then cleans each feedback page with `nh3 <https://nh3.readthedocs.io>`_: a student's
outputs (``display(HTML(...))``, ``Javascript``, markdown cells with raw HTML) can hold ``<script>``, event
handlers (``onerror=``) or ``javascript:`` links, which would run in the browser of whoever opens the page.
Only markup and the page's own stylesheet are kept: the page reads the same, without MathJax typesetting.
"""

from __future__ import annotations

import os
from pathlib import Path

import nh3
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

# Shorter lines (``x = 1``, ``else:``) occur in anyone's code: scrubbing them would garble outputs and hide nothing.
MIN_HIDDEN_LENGTH = 8
# Markup a feedback page needs: nh3's safe tags plus the page's own <style> (its layout and code colours).
HTML_TAGS = set(nh3.ALLOWED_TAGS) | {"style", "main", "input", "label"}
HTML_ATTRIBUTES = {"*": {"class", "id", "title", "lang", "dir", "align"}, "img": {"src", "alt", "width", "height"},
                   "a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"},
                   "table": {"border"}, "input": {"type", "checked", "disabled"}}
URL_SCHEMES = {"http", "https", "mailto", "data"}  # data: for the figures nbconvert embeds as PNG


def hidden_lines(nb) -> list[str]:
    """Every line of hidden test code in ``nb``: the stripped lines of its HIDDEN TESTS regions.

    A line shorter than :data:`MIN_HIDDEN_LENGTH` characters, or one whose text also stands outside every hidden
    region (an import or a call the visible checks show too, with or without a comment), reveals nothing and is
    left out.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A source or autograded notebook (one whose test cells still hold their hidden regions).

    Returns
    -------
    list of str
        The lines in notebook order, each once.

    Examples
    --------
    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell("import numpy as np\\n### BEGIN HIDDEN TESTS\\n"
    ...                                  "import numpy as np\\nassert f(0) == 1\\nok\\n### END HIDDEN TESTS")
    >>> hidden_lines(nbformat.v4.new_notebook(cells=[cell]))
    ['assert f(0) == 1']
    """
    hidden, shown = [], []
    for cell in nb.cells:
        inside = False
        for line in cell.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside:
                hidden.append(line.strip())
            else:
                shown.append(line)
    visible = "\n".join(shown)
    return [line for line in dict.fromkeys(hidden) if len(line) >= MIN_HIDDEN_LENGTH and line not in visible]


def scrub(text: str, lines: list[str]) -> str:
    """``text`` with every occurrence of each of ``lines`` replaced by ``[hidden test]`` (longest first)."""
    for line in sorted(set(lines), key=len, reverse=True):
        text = text.replace(line, "[hidden test]")
    return text


class ScrubHiddenTests(Preprocessor):
    """Remove hidden test code from every output of the notebook (run before ClearHiddenTests)."""

    enabled = Bool(True)  # nbconvert preprocessors are off unless enabled

    def preprocess(self, nb, resources):
        lines = hidden_lines(nb)
        if not lines:
            return nb, resources
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if "text" in output:
                    output["text"] = scrub(output["text"], lines)
                if "evalue" in output:
                    output["evalue"] = scrub(output["evalue"], lines)
                if "traceback" in output:
                    output["traceback"] = [scrub(t, lines) for t in output["traceback"]]
                for mime, value in output.get("data", {}).items():
                    if isinstance(value, str) and mime.startswith("text/"):
                        output["data"][mime] = scrub(value, lines)
        return nb, resources


def sanitise_html(page: str) -> str:
    """``page`` without scripts, event handlers or ``javascript:`` URLs; its markup, text and style kept.

    Examples
    --------
    >>> sanitise_html('<p onclick="steal()">x<script>alert(1)</script><img src=a onerror="alert(2)"></p>')
    '<!DOCTYPE html>\\n<meta charset="utf-8">\\n<p>x<img src="a"></p>'
    """
    body = nh3.clean(page, tags=HTML_TAGS, clean_content_tags={"script", "title"}, attributes=HTML_ATTRIBUTES,
                     url_schemes=URL_SCHEMES, link_rel="noopener noreferrer nofollow", strip_comments=True)
    return '<!DOCTYPE html>\n<meta charset="utf-8">\n' + body


def sanitise_folder(folder: Path) -> None:
    """Rewrite every ``.html`` page in ``folder`` (the grader's own feedback output) with :func:`sanitise_html`."""
    if not os.path.isdir(folder) or os.path.islink(folder):
        return
    for page in sorted(Path(folder).glob("*.html")):
        if page.is_file() and not page.is_symlink():
            page.write_text(sanitise_html(page.read_text(encoding="utf-8")), encoding="utf-8")
