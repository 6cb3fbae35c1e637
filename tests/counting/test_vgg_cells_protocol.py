"""The full-mode VGG cells recipe (benchmarks/vgg_cells_protocol.py) runs end to end on a fixture in the real layout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from test_counting_datasets import write_vgg

from course_lib.counting.datasets import read_vgg_cells
from course_lib.counting.training import predict_counts
from course_lib.counting.vgg_protocol import STEADY_SMOKE, load_vgg_images, run_steady_draw

ROOT = Path(__file__).resolve().parents[2]


def load_recipe():
    spec = importlib.util.spec_from_file_location("vgg_cells_protocol", ROOT / "benchmarks" / "vgg_cells_protocol.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_vgg_tree(root: Path, seed: int) -> tuple[Path, dict]:
    """200 images of 32 px in the VGG cells layout, 1-5 random dots each: the tree and its dots by image number."""
    rng = np.random.default_rng(seed)
    dots = {n: [tuple(int(v) for v in rng.integers(2, 30, 2)) for _ in range(rng.integers(1, 6))]
            for n in range(1, 201)}
    return write_vgg(root, dots, side=32), dots


def test_recipe_trains_on_n_images_and_counts_the_100_held_out(tmp_path, capsys, monkeypatch, one_thread):
    root, dots = random_vgg_tree(tmp_path / "vgg_cells", seed=0)
    recipe = load_recipe()
    images, found = load_vgg_images(read_vgg_cells(root)[:3])
    assert images.shape == (3, 32, 32) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    assert [len(d) for d in found] == [len(set(dots[n])) for n in (1, 2, 3)]
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert recipe.main(["--root", str(root), "--n-train", "4", "--seeds", "0", "1", "--epochs", "2", "--width", "4",
                        "--crop", "32", "--window", "8"]) == 0
    out = capsys.readouterr().out
    for model in ("density", "countception"):  # both nets, side by side, on the same draws
        assert f"seed 0 {model:12s}: test MAE" in out and f"seed 1 {model:12s}: test MAE" in out, out
    headline = {line.split(":")[0]: line for line in out.strip().splitlines()[-2:]}
    assert set(headline) == {"vgg_cells_mae_n4_density", "vgg_cells_mae_n4_countception"}, out
    for model in ("density", "countception"):
        values = [float(line.split("test MAE")[1].split()[0]) for line in out.splitlines()
                  if line.startswith("seed") and f" {model:12s}:" in line]
        line = headline[f"vgg_cells_mae_n4_{model}"]  # "...: <mean> cells (sd <sd> over 2 draws)"
        mean, sd = float(line.split(": ")[1].split()[0]), float(line.split("(sd ")[1].split()[0])
        assert "over 2 draws" in line and abs(mean - np.mean(values)) < 0.011, (line, values)
        assert abs(sd - np.std(values, ddof=1)) < 0.011, f"the spread over draws is the sample sd (ddof=1): {line}"


def test_cpu_recipe_trains_the_density_net_alone_and_chooses_on_validation(tmp_path, capsys, monkeypatch, one_thread):
    root, dots = random_vgg_tree(tmp_path / "vgg_cells", seed=1)
    recipe = load_recipe()
    assert recipe.main(["--cpu", "--root", str(root), "--n-train", "4", "--seeds", "0", "1", "--steps", "4",
                        "--crop", "32", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "CPU recipe" in out and "countception" not in out.split("\n", 1)[1], "--cpu trains the density net only"
    assert "'channels_last': True" in out.splitlines()[0], "the laptop recipe trains in channels_last unless --nchw"
    lines = [line for line in out.splitlines() if line.startswith("seed")]
    assert len(lines) == 2 and all("of CPU time" in line and "at step " in line for line in lines), out
    assert out.strip().splitlines()[-1].startswith("vgg_cells_mae_n4_density: ") and "over 2 draws" in out
    result = recipe.run_cpu(root, n_train=4, seed=0, recipe={"steps": 4, "crop": 32, "width": 4, "eval_every": 1})
    truth = np.array([len(set(dots[n])) for n in range(101, 201)], float)
    assert abs(result["density"]["bias"]) <= result["density"]["mae"] + 1e-9
    assert result["density"]["mean_count"] == truth.mean(), "the test images are the last 100"
    assert recipe.main(["--cpu", "--nchw", "--root", str(root), "--n-train", "4", "--seeds", "0", "--steps", "4",
                        "--crop", "32", "--jobs", "1"]) == 0
    assert "'channels_last': False" in capsys.readouterr().out.splitlines()[0]


def test_cpu_draws_side_by_side_give_the_draws_of_one_process(tmp_path, capsys, one_thread):
    """--jobs 2 trains each draw in its own one-thread process: the same numbers as the draws one after another."""
    root, _ = random_vgg_tree(tmp_path / "vgg_cells", seed=2)
    recipe = load_recipe()
    args = ["--cpu", "--root", str(root), "--n-train", "4", "--seeds", "0", "1", "--steps", "3", "--crop", "32"]

    def maes(out: str) -> list[str]:
        return [line.split("test MAE")[1].split()[0] for line in out.splitlines() if line.startswith("seed")]

    assert recipe.main([*args, "--jobs", "1"]) == 0
    one_after_another = capsys.readouterr().out
    assert recipe.main([*args, "--jobs", "2"]) == 0
    side_by_side = capsys.readouterr().out
    assert "2 draws side by side in 2 processes" in side_by_side
    assert len(maes(side_by_side)) == 2 and maes(side_by_side) == maes(one_after_another), (side_by_side,
                                                                                             one_after_another)


def test_run_steady_draw_counts_the_last_100_with_the_kept_model(tmp_path, one_thread):
    """What ch03b's full mode uses: the draw's test counts, the scale fitted on validation and the kept weights."""
    root, dots = random_vgg_tree(tmp_path / "vgg_cells", seed=3)
    result = run_steady_draw(root, n_train=4, seed=0, recipe=STEADY_SMOKE)
    truth = np.array([len(set(dots[n])) for n in range(101, 201)], float)
    assert np.array_equal(result["truth"], truth) and result["predicted"].shape == (100,)
    assert result["mae"] == pytest.approx(np.mean(np.abs(result["predicted"] - truth)))
    assert result["bias"] == pytest.approx(np.mean(result["predicted"] - truth))
    test_images, _ = load_vgg_images(read_vgg_cells(root)[100:])
    assert not result["model"].training
    np.testing.assert_allclose(result["scale"] * predict_counts(result["model"], test_images)[:, 0],
                               result["predicted"], rtol=1e-5, atol=1e-5)
    assert 1 <= result["best_step"] <= STEADY_SMOKE["steps"]


def test_run_steady_draw_names_a_missing_folder_and_an_unknown_recipe_entry(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_scripts.vgg_cells"):
        run_steady_draw(tmp_path / "nowhere")
    root, _ = random_vgg_tree(tmp_path / "vgg_cells", seed=4)
    with pytest.raises(ValueError, match=r"unknown entries \['epochs'\]"):
        run_steady_draw(root, recipe={"epochs": 3})
