"""The student's path, in a real browser: a release notebook in JupyterLab, an answer typed in, its check run.

What a student sees is what these tests assert: the check's printed text in the page, not a value read back
through Python. A screenshot of each scenario is saved under build/browser/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

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
KERNEL_SECONDS = 120_000  # ms: importing torch in a fresh kernel on a busy 2-core machine


def cell(page, index: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def run_cell(page, index: int) -> None:
    """Select cell ``index`` and run it with Shift+Enter, as a student does; wait until its prompt is numbered."""
    target = cell(page, index)
    target.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    # "[*]:" while it runs, "[n]:" once done.
    page.wait_for_function(
        """(index) => {
            const prompt = document.querySelectorAll('.jp-Notebook .jp-Cell')[index].querySelector('.jp-InputPrompt');
            return prompt !== null && /\\[\\d+\\]/.test(prompt.textContent);
        }""", arg=index, timeout=KERNEL_SECONDS)


def type_into(page, index: int, text: str) -> None:
    """Replace the source of cell ``index`` with ``text``, typed into its editor."""
    editor = cell(page, index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    # insert_text: one input event, so the editor's auto-indent does not indent the typed indentation again.
    page.keyboard.insert_text(text)


def test_a_correct_answer_passes_its_visible_check(lab, page, screenshot):
    shutil.copy(ROOT / "assignments" / ASSIGNMENT / NOTEBOOK, lab.root / NOTEBOOK)  # a fresh copy of the release
    page.goto(lab.notebook_url(NOTEBOOK))
    page.locator(".jp-Notebook .jp-Cell").nth(CHECK_CELL).wait_for(timeout=60_000)
    page.locator("#jp-main-statusbar", has_text="| Idle").wait_for(timeout=KERNEL_SECONDS)  # the kernel is up

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
    page.wait_for_timeout(1000)
    saved = json.loads((lab.root / NOTEBOOK).read_text())
    assert "".join(saved["cells"][ANSWER_CELL]["source"]) == ANSWER
