"""The student's path, in a real browser: a release notebook in JupyterLab, an answer typed in, its check run.

What a student sees is what these tests assert: the check's printed text in the page, not a value read back
through Python. A screenshot of each scenario is saved under build/browser/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader_harness import make_submission, solution_bodies

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420), pytest.mark.xdist_group("browser")]  # one JupyterLab

ASSIGNMENT = "ch02_segmentation_metrics"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
# Cells of the release: 1 setup, 2 imports, 4 the first answer (precision), 5 its first visible check.
SETUP_CELLS, ANSWER_CELL, CHECK_CELL = (1, 2), 4, 5
ANSWER = '''\
def precision(pred, target):
    """Precision TP / (TP + FP) of boolean masks `pred` and `target` (same shape). Returns a float."""
    tp = float((pred & target).sum())
    fp = float((pred & ~target).sum())
    if tp + fp == 0:
        return float(not target.any())  # the empty-mask convention
    return tp / (tp + fp)'''
PASSED = "precision: visible checks passed"
# A common mistake: recall, TP / (TP + FN), where precision is asked; the check's message names the formula.
WRONG = ANSWER.replace("fp = float((pred & ~target).sum())", "fp = float((~pred & target).sum())")
WRONG_MESSAGE = "precision = TP / (TP + FP) = 1 / (1 + 1) = 0.5 here"
RUN_MS = 120_000  # a cell that imports torch, on a busy 2-core machine
VALIDATE_MS = 240_000  # nbgrader runs the whole notebook, its training exercise included


def cell(page, index: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def run_cell(page, index: int) -> None:
    """Select cell ``index`` and run it with Shift+Enter, as a student does; wait until it has run."""
    prompt = cell(page, index).locator(".jp-InputPrompt")
    before = prompt.text_content()
    prompt.click()
    page.keyboard.press("Shift+Enter")
    # "[*]:" while it runs, then a new execution count: "[n]:" with n larger than any before (a re-run too).
    page.wait_for_function(
        """([index, before]) => {
            const prompt = document.querySelectorAll('.jp-Notebook .jp-Cell')[index].querySelector('.jp-InputPrompt');
            return prompt !== null && /\\[\\d+\\]/.test(prompt.textContent) && prompt.textContent !== before;
        }""", arg=[index, before], timeout=RUN_MS)


def type_into(page, index: int, text: str) -> None:
    """Replace the source of cell ``index`` with ``text``, typed into its editor."""
    editor = cell(page, index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    # insert_text: one input event, so the editor's auto-indent does not indent the typed indentation again.
    page.keyboard.insert_text(text)


def test_a_correct_answer_passes_its_visible_check(folder, page, open_notebook, screenshot):
    shutil.copy(ROOT / "assignments" / ASSIGNMENT / NOTEBOOK, folder / NOTEBOOK)  # a fresh copy of the release
    open_notebook(folder / NOTEBOOK)

    for index in SETUP_CELLS:
        run_cell(page, index)
    type_into(page, ANSWER_CELL, ANSWER)
    run_cell(page, ANSWER_CELL)
    run_cell(page, CHECK_CELL)

    output = cell(page, CHECK_CELL).locator(".jp-OutputArea")
    output.get_by_text(PASSED).wait_for(timeout=30_000)
    assert "Error" not in output.inner_text(), f"the check cell shows an error: {output.inner_text()}"
    screenshot(page, "student-answer-passes")

    # What the page ran is what the student typed: save, and read the notebook back from disk.
    page.keyboard.press("Control+s")
    page.locator("#jp-main-statusbar", has_text="Saving completed").wait_for(timeout=30_000)
    saved = json.loads((folder / NOTEBOOK).read_text())
    assert "".join(saved["cells"][ANSWER_CELL]["source"]) == ANSWER

    # Then a wrong answer: the same check now fails, and shows its message rather than a bare AssertionError.
    type_into(page, ANSWER_CELL, WRONG)
    run_cell(page, ANSWER_CELL)
    run_cell(page, CHECK_CELL)
    output = cell(page, CHECK_CELL).locator(".jp-OutputArea")
    output.get_by_text(WRONG_MESSAGE).wait_for(timeout=30_000)
    assert f"AssertionError: {WRONG_MESSAGE}" in output.inner_text(), output.inner_text()
    printed = output.locator('[data-mime-type="application/vnd.jupyter.stdout"]')
    assert printed.count() == 0, f"a wrong answer must not print the success line: {printed.all_inner_texts()}"
    screenshot(page, "student-wrong-answer")


def test_validate_reports_success_for_a_filled_notebook(folder, page, open_notebook, screenshot):
    release = nbformat.read(ROOT / "assignments" / ASSIGNMENT / NOTEBOOK, as_version=4)
    source = nbformat.read(ROOT / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
    filled = make_submission(release, solution_bodies(source))
    for written in (c for c in filled.cells if c.cell_type == "markdown" and "YOUR ANSWER HERE" in c.source):
        written.source = "Dice counts the overlap twice, so it is never below IoU; they agree on 0 and 1."
    nbformat.write(filled, folder / NOTEBOOK)
    open_notebook(folder / NOTEBOOK)

    # nbgrader's toolbar button: it runs the whole saved notebook, the training exercise too, on the server.
    page.get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Validation Results").wait_for(timeout=VALIDATE_MS)
    assert "Success! Your notebook passes all the tests." in dialog.inner_text(), dialog.inner_text()
    screenshot(page, "student-validate-passes")
