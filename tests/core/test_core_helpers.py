"""viz, results, sample images and the grading tool: small behaviour and error checks."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import results, viz  # noqa: E402
from course_lib.data import sample_images  # noqa: E402
from course_lib.grading import grade_all  # noqa: E402
from course_lib.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize(
    ("array", "shape"),
    [
        (np.zeros((8, 9)), (8, 9)),  # grey stays grey
        (torch.zeros(3, 8, 9), (8, 9, 3)),  # (C, H, W) tensor -> channels last
        (np.zeros((8, 9, 1)), (8, 9)),  # single channel squeezed
        (torch.zeros(1, 8, 9), (8, 9)),
    ],
)
def test_to_image_shapes(array, shape):
    assert viz.to_image(array).shape == shape


def test_to_image_rejects_volumes():
    with pytest.raises(ValueError, match=r"cannot show an array of shape \(2, 3, 4, 5\)"):
        viz.to_image(np.zeros((2, 3, 4, 5)))


def test_overlay_mask_colours_only_the_mask():
    image, mask = np.zeros((6, 6)), np.zeros((6, 6), bool)
    mask[2:4, 2:4] = True
    ax = viz.overlay_mask(image, mask, color=(1, 0, 0), alpha=0.5)
    layer = ax.images[-1].get_array()
    assert np.allclose(layer[mask], (1, 0, 0, 0.5)) and np.allclose(layer[~mask][:, 3], 0)


def test_overlay_contours_draws_outlines_and_checks_shapes():
    image, mask = np.zeros((10, 10)), np.zeros((10, 10), bool)
    mask[3:7, 3:7] = True
    ax = viz.overlay_contours(image, {"target": mask})
    rgb = ax.images[-1].get_array()
    assert rgb[3, 3].sum() > 0 and rgb[5, 5].sum() == 0  # edge coloured, interior untouched
    with pytest.raises(ValueError, match=r"mask 'pred' \(shape \(4, 4\)\) must match the image"):
        viz.overlay_contours(image, {"pred": np.zeros((4, 4))})


def test_show_images_and_plot_history():
    axes = viz.show_images([np.zeros((4, 4))] * 5, titles=list("abcde"), ncols=3)
    assert len(axes) == 6 and axes[4].get_title() == "e"
    with pytest.raises(ValueError, match="got 2 titles for 3 images"):
        viz.show_images([np.zeros((4, 4))] * 3, titles=["a", "b"])
    history = History()
    history.append({"train_loss": 1.0, "val_loss": 2.0})
    history.append({"train_loss": 0.5, "val_loss": 1.5})
    ax = viz.plot_history({"run": history})
    assert [line.get_label() for line in ax.lines] == ["run: train_loss", "run: val_loss"]


def test_record_appends_json_lines(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    monkeypatch.setenv("COURSE_RESULTS", str(path))
    monkeypatch.setenv("COURSE_MODE", "quick")
    results.record(2, "some_speedup", 3.5, unit="x", note="n")
    results.record(3, "count_error", 0.25, higher_is_better=False)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in lines] == ["some_speedup", "count_error"]
    assert lines[1] == {"chapter": 3, "name": "count_error", "value": 0.25, "unit": "", "mode": "quick",
                        "higher_is_better": False, "note": ""}
    assert "| 3 | `count_error` | 0.25 |" in results.to_markdown(lines)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, "x", 1.0), r"`chapter` must be an int in 1..5, got 0"),
        ((2, "Not Snake", 1.0), r"`name` must be snake_case"),
        ((2, "nan_value", float("nan")), r"`value` of 'nan_value' must be finite"),
    ],
)
def test_record_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        results.record(*args)


def test_record_takes_a_non_finite_value_only_in_a_smoke_run(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_RESULTS", str(tmp_path / "results.jsonl"))
    monkeypatch.setenv("COURSE_MODE", "full")
    monkeypatch.setenv("COURSE_SMOKE", "0")
    with pytest.raises(ValueError, match="must be finite"):
        results.record(3, "doubling_time", float("inf"))
    monkeypatch.setenv("COURSE_SMOKE", "1")  # an untrained net's flat growth curve: allowed, its numbers mean nothing
    assert results.record(3, "doubling_time", float("inf")).mode == "full"
    monkeypatch.setenv("COURSE_MODE", "quick")  # COURSE_SMOKE is ignored in quick mode
    with pytest.raises(ValueError, match="must be finite"):
        results.record(3, "doubling_time", float("inf"))


def test_ihc_sample_image_is_real_rgb():
    image = sample_images.ihc()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8 and image.std() > 10


def test_package_file_errors_name_the_package():
    with pytest.raises(FileNotFoundError, match=r"package 'no_such_pkg_xyz' is not installed"):
        sample_images.package_file("no_such_pkg_xyz", "a.png")
    with pytest.raises(FileNotFoundError, match=r"'data/missing.png' not found in package 'skimage'"):
        sample_images.package_file("skimage", "data", "missing.png")


def test_grade_all_explains_missing_course_or_submissions(tmp_path, capsys):
    assert grade_all.main(["--course-dir", str(tmp_path)]) == 1
    assert "no nbgrader_config.py" in capsys.readouterr().err
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    assert grade_all.main(["--course-dir", str(tmp_path)]) == 1
    assert "no submissions in" in capsys.readouterr().err


@pytest.mark.parametrize("values, mean, sd", [([1.0, 2.0, 3.0], 2.0, 1.0), ((0.5, 0.5), 0.5, 0.0),
                                              (np.array([2.0, 4.0]), 3.0, np.sqrt(2.0))])
def test_mean_sd_is_numpys_sample_sd(values, mean, sd):
    assert results.mean_sd(values) == pytest.approx((mean, sd))
    assert results.mean_sd(values)[1] == pytest.approx(float(np.std(values, ddof=1)))  # the oracle: numpy


def test_mean_sd_of_one_seed_has_no_spread_and_bad_input_is_named():
    mean, sd = results.mean_sd([4.0])
    assert mean == 4.0 and np.isnan(sd)  # one seed estimates no spread: NaN, not a reassuring 0
    for bad in ([], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="`values` must be a non-empty 1-D"):
            results.mean_sd(bad)


def test_one_seed_summary_for_every_chapter():
    from course_lib.chest_xray import comparison
    from course_lib.histology import viz as histology_viz
    assert comparison.mean_sd is results.mean_sd and histology_viz.mean_sd is results.mean_sd
