"""Tests of course_lib.counting.models, training_data, training and experiment: density / Count-ception nets, the
L1 loss, the dataset, training, and a small run that must count better than always answering the training-set mean.

Oracles: ``torch.nn.functional.l1_loss`` for the loss, ``numpy.percentile`` for the input normalisation, input
gradients for Count-ception's receptive field (which input pixels an output depends on), and
:func:`course_lib.counting.density.density_map` of flipped dots for flipped targets.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.counting.density import countception_target, density_map, l1_density_loss
from course_lib.counting.models import CountCeptionNet, DensityFCN, percentile_normalize
from course_lib.counting.synthetic_cells import EASY, cell_dataset
from course_lib.counting.training import predict_counts, train_density_model
from course_lib.counting.training_data import DensityDataset, Lighting

SMALL = dataclasses.replace(EASY, size=64, count=(2, 14))  # 64 px fields of 2..14 cells: fast on a CPU


def test_density_fcn_shapes_non_negative_and_unscaled_counts(one_thread):
    torch.manual_seed(0)
    net = DensityFCN(1, 4, depth=2, width=4, target_scale=50.0).eval()
    out = net(torch.randn(2, 1, 32, 32))  # (B, C, H, W)
    assert out.shape == (2, 4, 32, 32) and (out >= 0).all(), "a density is never negative (ReLU output)"
    torch.testing.assert_close(net.counts(out), out.sum(dim=(-2, -1)) / 50.0)
    torch.testing.assert_close(net.density(out), out / 50.0)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.zeros(1, 1, 30, 30))
    with pytest.raises(ValueError, match="target_scale"):
        DensityFCN(target_scale=0.0)


def test_percentile_normalize_matches_numpy_and_removes_gain_and_offset():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = percentile_normalize(x)
    for b in range(2):
        for c in range(3):
            lo, hi = np.percentile(x[b, c].numpy(), [1.0, 99.8])  # linear interpolation, as torch.quantile
            np.testing.assert_allclose(y[b, c].numpy(), (x[b, c].numpy() - lo) / (hi - lo + 1e-6), atol=1e-5)
    torch.testing.assert_close(percentile_normalize(3.0 * x + 0.5), y, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("window", [3, 4, 9])
def test_countception_receptive_field_is_the_window_of_its_target(window, one_thread):
    torch.manual_seed(0)
    net = CountCeptionNet(1, 1, window=window, width=4, normalize_input=False).eval()  # percentiles see everything
    with torch.no_grad():
        net.head[-1].bias.fill_(10.0)  # keep the output ReLU active, so that gradients reach the input
    x = torch.randn(1, 1, 12, 12, requires_grad=True)
    out = net(x)
    assert out.shape == (1, 1, 12 + window - 1, 12 + window - 1)
    i, j = 8, 10  # countception_target: output (i, j) counts image rows i - w + 1 .. i, cols j - w + 1 .. j
    out[0, 0, i, j].backward()
    rows, cols = np.nonzero(x.grad[0, 0].numpy())
    assert rows.min() == max(i - window + 1, 0) and rows.max() == min(i, 11)
    assert cols.min() == max(j - window + 1, 0) and cols.max() == min(j, 11)
    target = countception_target([[5, 5]], (12, 12), window)
    assert target.shape == out.shape[-2:]


def test_countception_bad_window():
    with pytest.raises(ValueError, match="window"):
        CountCeptionNet(window=2)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_l1_density_loss_matches_torch(reduction):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 2, 5, 6, generator=g), torch.rand(3, 2, 5, 6, generator=g)
    per_image = torch.stack([F.l1_loss(pred[b], target[b], reduction="sum") for b in range(3)])  # (B,)
    expected = {"none": per_image, "sum": per_image.sum(), "mean": per_image.mean()}[reduction]
    torch.testing.assert_close(l1_density_loss(pred, target, reduction), expected)


@pytest.mark.parametrize("pred_shape, reduction, match", [((2, 1, 4, 4), "mean", "must match"),
                                                          ((2, 1, 4, 5), "max", "reduction")])
def test_l1_density_loss_bad_inputs(pred_shape, reduction, match):
    with pytest.raises(ValueError, match=match):
        l1_density_loss(torch.zeros(pred_shape), torch.zeros(2, 1, 4, 5), reduction)


def test_dataset_targets_sum_to_scaled_counts_and_crops_keep_shape():
    images, dots = cell_dataset(3, SMALL, seed=0)
    data = DensityDataset(images, dots, sigma=2.0, target_scale=100.0)
    for i in range(3):
        x, y = data[i]
        assert x.shape == (1, 64, 64) and y.shape == (1, 64, 64)
        assert y.sum().item() == pytest.approx(100.0 * len(dots[i]), rel=1e-5)
    cropped = DensityDataset(images, dots, crop=32)
    x, y = cropped[0]
    assert x.shape == (1, 32, 32) and y.shape == (1, 32, 32)
    cc = DensityDataset(images, dots, target="countception", window=8, crop=32)
    x, y = cc[1]
    assert y.shape == (1, 39, 39) and float(y.sum()) % 64 == 0, "Count-ception counts each cell window^2 times"


def test_dataset_flip_moves_image_and_target_together():
    dots = np.array([[3.0, 4.0], [10.3, 2.0]])  # (2, 2) on a 16 x 16 field
    image = density_map(dots, (16, 16), 1.0)[None]  # the image *is* the density: a flip must keep them equal
    data = DensityDataset(image, [dots], sigma=1.0, target_scale=1.0, flips=True)
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        x, y = data[0]
        torch.testing.assert_close(x, y)
        seen.add(x.numpy().tobytes())
        flipped_dots = [[15 - dots[0, 0], dots[0, 1]], [15 - dots[1, 0], dots[1, 1]]]  # one of the 8: vertical
    assert len(seen) == 8, "the 8 flips and turns of a square image"
    assert any(np.allclose(np.frombuffer(s, np.float32).reshape(16, 16), density_map(flipped_dots, (16, 16), 1.0),
                           atol=1e-6) for s in seen)


def test_lighting_changes_the_image_only_and_is_seeded():
    images, dots = cell_dataset(1, SMALL, seed=0)
    plain = DensityDataset(images, dots)[0]
    torch.manual_seed(3)
    lit = DensityDataset(images, dots, lighting=Lighting())[0]
    torch.manual_seed(3)
    again = DensityDataset(images, dots, lighting=Lighting())[0]
    torch.testing.assert_close(lit[1], plain[1])
    assert not torch.allclose(lit[0], plain[0])
    torch.testing.assert_close(lit[0], again[0])


@pytest.mark.parametrize("kwargs, match", [({"images": np.zeros((2, 8))}, "images"),
                                           ({"dots": [np.zeros((0, 2))]}, "entries"),
                                           ({"target": "boxes"}, "target"),
                                           ({"crop": 40}, "crop"),
                                           ({"classes": [np.zeros(0, np.int64)] * 2}, "n_classes")])
def test_dataset_bad_inputs(kwargs, match):
    args = {"images": np.zeros((2, 16, 16)), "dots": [np.zeros((0, 2))] * 2} | kwargs
    with pytest.raises(ValueError, match=match):
        DensityDataset(args.pop("images"), args.pop("dots"), **args)


def test_train_density_model_checks_model_and_channels():
    images, dots = cell_dataset(2, SMALL, seed=0)
    with pytest.raises(TypeError, match="DensityFCN"):
        train_density_model(torch.nn.Conv2d(1, 1, 1), images, dots, images, dots)
    with pytest.raises(ValueError, match="2 outputs"):
        train_density_model(DensityFCN(1, 2, width=4, class_head="independent"), images, dots, images, dots, epochs=1)


def test_training_is_deterministic(one_thread):
    images, dots = cell_dataset(6, SMALL, seed=0)
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        net = DensityFCN(1, 1, depth=2, width=4)
        train_density_model(net, images[:4], dots[:4], images[4:], dots[4:], crop=32, epochs=2, seed=0,
                            lighting=Lighting())
        weights.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_small_training_run_beats_the_mean_count(one_thread):
    train_images, train_dots = cell_dataset(48, SMALL, seed=1)
    val_images, val_dots = cell_dataset(12, SMALL, seed=2)
    test_images, test_dots = cell_dataset(24, SMALL, seed=3)
    torch.manual_seed(0)
    net = DensityFCN(1, 1, depth=2, width=8)
    history = train_density_model(net, train_images, train_dots, val_images, val_dots, crop=None, epochs=12,
                                  batch_size=8, lr=3e-3, seed=0)
    assert history.best_epoch is not None and len(history["val_count_mae"]) == 12
    true = np.array([len(d) for d in test_dots])
    predicted = predict_counts(net, test_images)[:, 0]
    baseline = np.abs(np.mean([len(d) for d in train_dots]) - true).mean()  # always answer the training mean
    mae = np.abs(predicted - true).mean()
    assert mae < 0.5 * baseline, f"density MAE {mae:.2f} should be well below the mean-count MAE {baseline:.2f}"


def test_counting_experiment_runs_and_reports_every_condition(one_thread):
    from course_lib.counting.experiment import QUICK, run_counting_experiment, run_counting_seeds

    tiny = dataclasses.replace(QUICK, n_train=6, n_val=3, n_test=2, epochs=1, width=4, crop=32, countception=True,
                               window=8, classic_sigmas=(0.5, 1.0), classic_min_distances=(3, 4), seeds=(0, 1))
    result = run_counting_experiment(tiny, seed=0, device="cpu")
    table = result["table"]
    assert set(table["condition"]) == {"easy", "clustered", "shifted"}, "CLUSTERED and SHIFTED apart, never pooled"
    assert set(table["method"]) == {"classic", "classic_tuned", "density", "countception"}
    assert len(table) == 3 * 4
    assert len(result["counts"]["shifted"]["true"]) == 2 and np.isfinite(table["mae"]).all()
    assert result["classic_params"]["sigma"] in (0.5, 1.0) and result["classic_params"]["grid"].shape == (2, 2)
    seeds = run_counting_seeds(dataclasses.replace(tiny, countception=False), device="cpu")
    summary = seeds["summary"]
    assert len(seeds["runs"]) == 2 and (summary["seeds"] == 2).all() and len(summary) == 3 * 3
    row = summary[(summary["condition"] == "easy") & (summary["method"] == "density")].iloc[0]
    per_seed = [r["table"].query("condition == 'easy' and method == 'density'")["mae"].item() for r in seeds["runs"]]
    assert row["mae_mean"] == pytest.approx(np.mean(per_seed))
    assert row["mae_sd"] == pytest.approx(np.std(per_seed, ddof=1)), "the sd over seeds uses ddof=1"


def test_tune_classic_picks_the_grid_point_with_the_lowest_count_error():
    from course_lib.counting.classic import classic_count, tune_classic

    images, dots = cell_dataset(4, dataclasses.replace(SMALL, clustering=0.6), seed=5)
    tuned = tune_classic(images, dots, sigmas=(0.5, 2.0), min_distances=(2, 6))
    true = np.array([len(d) for d in dots])
    for i, s in enumerate((0.5, 2.0)):
        for j, m in enumerate((2, 6)):  # the oracle: classic_count on every image
            counts = [classic_count(im, sigma=s, min_distance=m).count for im in images]
            assert tuned["grid"][i, j] == pytest.approx(np.abs(np.array(counts) - true).mean())
    assert tuned["mae"] == tuned["grid"].min()
    assert tuned["grid"][(0.5, 2.0).index(tuned["sigma"]), (2, 6).index(tuned["min_distance"])] == tuned["mae"]
    with pytest.raises(ValueError, match="one entry of `dots`"):
        tune_classic(images, dots[:2])


def test_dataset_multiclass_maps_and_count_targets():
    images, dots = cell_dataset(2, SMALL, seed=0)
    classes = [np.arange(len(d)) % 3 for d in dots]
    data = DensityDataset(images, dots, classes=classes, n_classes=3, target_scale=10.0, crop=32, flips=True)
    x, y = data[0]
    assert x.shape == (1, 32, 32) and y.shape == (4, 32, 32), "1 + n_classes channels"
    torch.testing.assert_close(y[1:].sum(0), y[0], atol=1e-5, rtol=1e-5)  # the classes share out "any"
    full = DensityDataset(images, dots, classes=classes, n_classes=3, target_scale=10.0)[1][1]
    assert full.sum(dim=(1, 2)).tolist() == pytest.approx([10.0 * len(dots[1])]
                                                          + [10.0 * np.sum(classes[1] == c) for c in range(3)],
                                                          rel=1e-5)
    _, counts = DensityDataset(images, dots, classes=classes, n_classes=3, target="count")[1]
    assert counts.tolist() == [len(dots[1])] + [float(np.sum(classes[1] == c)) for c in range(3)]
    with pytest.raises(ValueError, match="needs target='density' or 'count'"):
        DensityDataset(images, dots, classes=classes, n_classes=3, target="countception")


def test_run_countception_trains_on_the_seed_data_of_the_density_comparison(one_thread):
    from course_lib.counting.experiment import QUICK, run_countception, run_counting_experiment

    tiny = dataclasses.replace(QUICK, n_train=6, n_val=3, n_test=2, window=8, classic_sigmas=(0.5,),
                               classic_min_distances=(4,))
    cc = run_countception(tiny, seed=1, width=2, crop=32, epochs=2, device="cpu")
    assert isinstance(cc["model"], CountCeptionNet) and cc["model"].window == 8
    assert len(cc["history"]["val_count_mae"]) == 2 and cc["val_mae"] == min(cc["history"]["val_count_mae"])
    assert list(cc["table"]["condition"]) == ["easy", "clustered", "shifted"]
    assert set(cc["table"]["method"]) == {"countception"}
    # the oracle: the density comparison of the same seed counts the same test images (its true counts)
    density = run_counting_experiment(dataclasses.replace(tiny, epochs=1, width=2), seed=1, device="cpu")
    for row in cc["table"].itertuples():
        true = density["counts"][row.condition]["true"]  # (2,)
        assert cc["counts"][row.condition].shape == (2,)
        assert row.mae == pytest.approx(np.abs(cc["counts"][row.condition] - true).mean())
        assert row.bias == pytest.approx(np.mean(cc["counts"][row.condition] - true))
    again = run_countception(tiny, seed=1, width=2, crop=32, epochs=2, device="cpu")
    np.testing.assert_allclose(again["counts"]["easy"], cc["counts"]["easy"], rtol=1e-6)  # seeded


def test_training_validates_once_per_epoch_and_keeps_the_best_count_mae(one_thread):
    # the validation loss and the count MAE come from one pass over the validation images; the kept weights must
    # still give, recomputed from scratch by count_mae_hook, the lowest validation count MAE of the history
    from torch.utils.data import DataLoader

    from course_lib.counting.training import count_mae_hook

    images, dots = cell_dataset(10, SMALL, seed=21)
    net = DensityFCN(1, 1, depth=2, width=4)
    calls = []
    net.register_forward_hook(lambda module, args, out: calls.append(module.training))
    history = train_density_model(net, images[:6], dots[:6], images[6:], dots[6:], crop=32, epochs=3, batch_size=3,
                                  seed=0, device="cpu")
    assert calls.count(False) == 3, "one evaluation-mode pass (4 images, one batch) per epoch, not two"
    val = DataLoader(DensityDataset(images[6:], dots[6:], target_scale=net.target_scale), batch_size=16)
    recomputed = count_mae_hook(net.eval(), val, "cpu")["val_count_mae"]
    assert recomputed == pytest.approx(min(history["val_count_mae"]), rel=1e-5)
    assert history["val_count_mae"][history.best_epoch] == min(history["val_count_mae"])


def test_one_validation_pass_trains_exactly_as_two(one_thread):
    # the oracle: course_lib.training.fit with the two-pass hook (validation loss, then count_mae_hook); the one-pass
    # loop must give the same history, so that the chapter's recorded numbers do not depend on the saving
    from torch.utils.data import DataLoader

    from course_lib.counting.training import count_mae_hook
    from course_lib.training import fit

    images, dots = cell_dataset(10, SMALL, seed=21)
    torch.manual_seed(0)
    net = DensityFCN(1, 1, depth=2, width=4)
    train = DensityDataset(images[:6], dots[:6], crop=32, flips=True)
    loader = DataLoader(train, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    two = fit(net, loader, l1_density_loss, epochs=4, optimizer=optimizer, val_loader=DataLoader(
              DensityDataset(images[6:], dots[6:]), batch_size=16), evaluate=count_mae_hook, monitor="val_count_mae",
              scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4), seed=0, device="cpu",
              progress=False)
    torch.manual_seed(0)
    one = train_density_model(DensityFCN(1, 1, depth=2, width=4), images[:6], dots[:6], images[6:], dots[6:],
                              crop=32, epochs=4, batch_size=3, seed=0, device="cpu")
    for key in ("train_loss", "val_loss", "val_count_mae"):
        assert one[key] == two[key], f"{key}: the one-pass loop trained differently"
