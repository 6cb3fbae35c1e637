"""Every notebook runs top to bottom in full mode with sizes cut (``COURSE_SMOKE=1``), on real-layout data.

Full mode is what students run on Colab or a GPU: FULL settings, the real datasets' readers, full-size models. No
machine here has a GPU or the real data, so without this test every full-mode branch would be untested code.
``COURSE_SMOKE=1`` keeps the FULL settings and cuts only images, epochs, steps and seeds
(:func:`course_lib.config.pick`, each experiment's ``SMOKE``), and ``COURSE_DATA`` points at small trees in each
dataset's on-disk layout (``full_data.py``), so the real-data sections run too. The numbers mean nothing: no claim
is checked, only that each notebook runs, records its results in full mode, and took its real-data branch.
"""

from __future__ import annotations

import importlib.util
import math

import pytest
from full_data import write_course_data
from nbgrader_harness import ROOT

from course_lib.tools import run_course

# ch01a and ch04a run in full smoke mode from the installed wheel (tests/packaging/test_wheel_install.py): not twice
FROM_THE_WHEEL = ("ch01a_chest_xray_data", "ch04a_cyclegan_translation")
NOTEBOOKS = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if p.stem not in FROM_THE_WHEEL]
# what a notebook prints or records only when it read the fixture data (its real-data branch ran)
REAL_BRANCH = {
    "ch01b_baseline_and_fusion": "studies (train / val / test, split by patient)",
    "ch02a_wsi_patches_fcn": "Kaggle IDC: ",
    "ch03b_density_counting": "VGG cells test MAE over 3 draws",
    "ch04b_translation_bias": "real MSD Task01 slices: ",
    "ch05a_confounders_and_saliency": "NIH vs CheXpert: held-out site AUROC",
}


@pytest.fixture(scope="module")
def course_data(tmp_path_factory):
    return write_course_data(tmp_path_factory.mktemp("course_data"))


def _printed(notebook) -> str:
    """Everything the executed notebook's code cells printed (stdout and stderr streams)."""
    return "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_full_mode_with_sizes_cut(path, course_data, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(course_data))
    monkeypatch.setenv("COURSE_SMOKE", "1")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    run = run_course.execute_notebook(path, mode="full", exercises="solutions")
    print(f"{path.name}: {run.seconds:.1f} s in full smoke mode, {len(run.results)} results")
    assert run.results, f"{path.name} records no results in full mode"
    assert {r["mode"] for r in run.results} == {"full"}
    untrained = [r["name"] for r in run.results if not math.isfinite(r["value"])]
    if untrained:  # allowed in smoke runs only (course_lib.results.record): nets trained for a step or two
        print(f"non-finite (untrained nets): {untrained}")
    marker = REAL_BRANCH.get(path.stem)
    if marker:
        assert marker in _printed(run.notebook), f"{path.name} did not take its real-data branch ({marker!r})"


def test_every_notebook_has_a_full_smoke_run():
    spec = importlib.util.spec_from_file_location("_wheel_test", ROOT / "tests" / "packaging" / "test_wheel_install.py")
    wheel_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheel_test)
    assert set(FROM_THE_WHEEL) == set(wheel_test.NOTEBOOKS), "the wheel test runs the notebooks this test leaves out"
    every = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert {p.stem for p in NOTEBOOKS} | set(FROM_THE_WHEEL) == every
    assert set(REAL_BRANCH) <= {p.stem for p in NOTEBOOKS}
