"""The self-learner's path, in a real browser: a notebook's ``interact`` slider renders and redraws its figure.

nbclient runs the notebooks without a front end, so a widget that never renders ("Loading widget...", a missing
or mismatched ipywidgets extension) passes every other test. Here JupyterLab renders it and the test moves it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_lib.tools.exercises import fill_solutions

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420), pytest.mark.xdist_group("browser")]  # one JupyterLab

NOTEBOOK = "ch03a_counting_classic_pipeline.ipynb"
MARKER = "display(widgets.interactive(show_density"  # the cell with the sigma slider
RUN_MS = 240_000  # every cell above the slider, on a busy 2-core machine
FIGURE_MS = 180_000  # a figure drawn and sent, with make test's other worker busy beside the kernel
# The src of the figure in the slider's output (the figure is a fresh <img> at each redraw).
FIGURE_SRC = """(index) => {
    const img = document.querySelectorAll('.jp-Notebook .jp-Cell')[index].querySelector('.widget-output img');
    return img === null ? null : img.src;
}"""


def test_the_density_slider_renders_and_redraws(folder, page, open_notebook, screenshot):
    # The notebook as `make course` runs it (exercises solved), up to and including the slider's cell.
    nb = fill_solutions(nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4), NOTEBOOK)
    [index] = [k for k, c in enumerate(nb.cells) if c.cell_type == "code" and MARKER in c.source]
    nb.cells = nb.cells[:index + 1]
    nbformat.write(nb, folder / NOTEBOOK)
    open_notebook(folder / NOTEBOOK)

    page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu").get_by_text("Run All Cells", exact=True).click()
    widget = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".widget-interact")
    slider = widget.locator(".widget-slider")
    slider.wait_for(timeout=RUN_MS)
    figure = widget.locator(".widget-output img")
    figure.wait_for(timeout=FIGURE_MS)
    assert page.get_by_text("Loading widget").count() == 0, "a widget did not render"
    readout = widget.locator(".widget-readout")
    assert readout.inner_text().strip() == "3.00", f"the slider starts at sigma 3, shows {readout.inner_text()}"
    before = page.evaluate(FIGURE_SRC, index)
    assert before, "the slider's output shows no figure"

    # Two steps right with the keyboard, as a student moving the handle: sigma 3.0 -> 4.0, the figure redrawn.
    widget.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("(readout) => readout.textContent.trim() === '4.00'", arg=readout.element_handle(),
                           timeout=30_000)
    page.wait_for_function(f"([index, before]) => {{ const src = ({FIGURE_SRC})(index); "
                           "return src !== null && src !== before; }", arg=[index, before], timeout=FIGURE_MS)
    assert "Loading widget" not in page.content()
    screenshot(page, "self-study-slider")
