"""Student and instructor JupyterLab, in a real browser: each role sees its own nbgrader tools and no news pop-up.

The student's role is what ``make`` sets up in ``.venv`` (nbgrader's lab extensions disabled there, as nbgrader's
installation guide does it, "Disabling extensions"); the instructor's adds ``course_lib/grading/instructor`` to
``JUPYTER_CONFIG_PATH`` (``make instructor-lab``), which re-enables the rest. What is asserted is what the page shows:
the entries of the *Nbgrader* menu, the *Create Assignment* tab of the right sidebar, the notebook's Validate button.
"""

from __future__ import annotations

import nbformat
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.xdist_group("browser")]

# role -> (Nbgrader menu entries shown, entries absent, whether the Create Assignment tab is shown)
EXPECTED = {
    "student": (["Assignment List"], ["Formgrader", "Course List"], False),
    "instructor": (["Assignment List", "Formgrader", "Course List"], [], True),
}
NEWS = "official Jupyter news"  # the pop-up of @jupyterlab/apputils-extension:announcements
NEWS_WAIT_MS = 5_000  # it asks a moment after the page has loaded, without waiting for a kernel


def menu_entries(page, title: str) -> list[str]:
    """The labels of the main menu ``title``'s entries, read from the opened menu (then closed again)."""
    page.locator("#jp-MainMenu").get_by_text(title, exact=True).click()
    menu = page.locator(".lm-Menu .lm-Menu-itemLabel")
    menu.first.wait_for(timeout=30_000)
    labels = [label.strip() for label in menu.all_inner_texts() if label.strip()]
    page.keyboard.press("Escape")
    return labels


@pytest.mark.parametrize("role", ["student", "instructor"])
def test_each_role_sees_its_own_nbgrader_tools(role, lab, labs, page, open_notebook, screenshot, tmp_path):
    if role == "student":
        running = lab
    else:
        (tmp_path / "root").mkdir()
        running = labs(tmp_path / "root", "instructor")
    notebook = running.root / f"{role}.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (course)", "language": "python"}
    nbformat.write(nb, notebook)
    open_notebook(notebook, running)

    shown, absent, create_assignment = EXPECTED[role]
    entries = menu_entries(page, "Nbgrader")
    for entry in shown:
        assert entry in entries, f"the {role}'s Nbgrader menu lacks {entry!r}: {entries}"
    for entry in absent:
        assert entry not in entries, f"the {role}'s Nbgrader menu shows the instructor's {entry!r}: {entries}"
    tab = page.locator('.jp-SideBar.jp-mod-right .lm-TabBar-tab[title="Nbgrader Create Assignment"]')
    assert tab.count() == (1 if create_assignment else 0), \
        f"the {role} {'lacks' if create_assignment else 'sees'} the Create Assignment sidebar"
    validate = page.get_by_role("button", name="Validate")
    assert validate.count() == 1, f"the {role}'s notebook toolbar shows {validate.count()} Validate buttons, not one"

    if create_assignment:  # the instructor's panel opens: the notebook's total points, the cell's nbgrader type
        tab.click()
        page.get_by_text("Total points:").wait_for(timeout=30_000)
    page.wait_for_timeout(NEWS_WAIT_MS)
    assert page.get_by_text(NEWS).count() == 0, f"the {role} is asked about Jupyter news"
    page.locator("#jp-MainMenu").get_by_text("Nbgrader", exact=True).click()  # shown open in the screenshot
    page.locator(".lm-Menu .lm-Menu-itemLabel").first.wait_for(timeout=30_000)
    screenshot(page, f"roles-{role}")
