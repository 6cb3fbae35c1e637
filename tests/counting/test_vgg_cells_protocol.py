"""The full-mode VGG cells recipe (benchmarks/vgg_cells_protocol.py) runs end to end on a fixture in the real layout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from test_counting_datasets import write_vgg

ROOT = Path(__file__).resolve().parents[2]


def load_recipe():
    spec = importlib.util.spec_from_file_location("vgg_cells_protocol", ROOT / "benchmarks" / "vgg_cells_protocol.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_trains_on_n_images_and_counts_the_100_held_out(tmp_path, capsys, monkeypatch, one_thread):
    rng = np.random.default_rng(0)
    dots = {n: [tuple(int(v) for v in rng.integers(2, 30, 2)) for _ in range(rng.integers(1, 6))]
            for n in range(1, 201)}
    root = write_vgg(tmp_path / "vgg_cells", dots, side=32)
    recipe = load_recipe()
    images, found = recipe.load(recipe.read_vgg_cells(root)[:3])
    assert images.shape == (3, 32, 32) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    assert [len(d) for d in found] == [len(set(dots[n])) for n in (1, 2, 3)]
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert recipe.main(["--root", str(root), "--n-train", "4", "--seeds", "0", "--epochs", "2", "--width", "4",
                        "--crop", "32"]) == 0
    out = capsys.readouterr().out
    assert "seed 0: test MAE" in out and "vgg_cells_mae_n4:" in out, out
    mae = float(out.strip().splitlines()[-1].split(":")[1].split()[0])
    assert np.isfinite(mae) and mae >= 0
