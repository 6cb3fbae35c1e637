"""VGG-like synthetic images (synthetic_vgg) and the steady CPU recipe (steady_training) of vgg_cells_protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.counting.datasets import read_vgg_cells
from course_lib.counting.models import CountCeptionNet, DensityFCN
from course_lib.counting.steady_training import cosine_lr, train_steady
from course_lib.counting.synthetic_cells import cell_dataset
from course_lib.counting.synthetic_vgg import VGG_LIKE, make_vgg_like, write_vgg_like


def test_vgg_like_images_have_the_sets_published_properties():
    counts = []
    for seed in range(12):
        cell, dots = make_vgg_like(seed)
        assert cell.shape == dots.shape == (256, 256, 3) and cell.dtype == dots.dtype == np.uint8
        assert cell[..., :2].max() == 0 and cell[..., 2].max() > 100, "cells only in the blue channel"
        assert dots[..., 1:].max() == 0 and set(np.unique(dots[..., 0])) <= {0, 255}, "red dots on black"
        counts.append(int((dots[..., 0] == 255).sum()))
    assert all(VGG_LIKE.count[0] - 5 <= c <= VGG_LIKE.count[1] for c in counts), counts
    assert 120 < np.mean(counts) < 230 and np.std(counts) > 30, f"about 174 +- 64 cells an image, got {counts}"
    again, _ = make_vgg_like(3)
    assert np.array_equal(again, make_vgg_like(3)[0]) and not np.array_equal(again, make_vgg_like(4)[0])


def test_written_vgg_like_set_reads_as_the_real_layout(tmp_path):
    root = write_vgg_like(tmp_path / "vgg", n=4, seed=1)
    records = read_vgg_cells(root)
    assert [r.name for r in records] == ["001", "002", "003", "004"]
    for record, child in zip(records, np.random.SeedSequence(1).spawn(4), strict=True):
        _, dots = make_vgg_like(child)  # image k is the k-th child, whatever n is
        assert record.count == int((dots[..., 0] == 255).sum()) == len(record.dots)
    with pytest.raises(ValueError, match="`n`"):
        write_vgg_like(tmp_path / "x", n=1000)


def test_cosine_lr_warms_up_then_decays_to_zero():
    rates = [cosine_lr(s, 100, 2e-3, 10) for s in range(100)]
    assert rates[0] == pytest.approx(2e-4) and rates[9] == pytest.approx(2e-3) and max(rates) == pytest.approx(2e-3)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False)), "no increase after the warm-up"
    assert rates[-1] < 1e-5 and rates[55] == pytest.approx(1e-3)


def test_train_steady_keeps_the_best_checked_ema_weights(one_thread):
    images, dots = cell_dataset(6, seed=3)  # 128 px, 10-30 cells
    torch.manual_seed(0)  # the initial weights; train_steady seeds the crops and batches
    model = DensityFCN(1, 1, depth=2, width=4)
    logged = []
    history = train_steady(model, images[:4], dots[:4], images[4:], dots[4:], steps=12, batch_size=2, crop=64,
                           warmup=2, eval_every=3, eval_from=0.5, seed=0, log=logged.append)
    assert history.steps == [6, 9, 12] and len(logged) == 3, "checks only in the second half, and the last step"
    assert history.best_val_mae == min(history.val_count_mae)
    assert history.best_step == history.steps[int(np.argmin(history.val_count_mae))]
    truth = np.array([len(d) for d in dots[4:]], float)
    with torch.no_grad():
        mae = np.abs(model.counts(model(torch.from_numpy(images[4:])[:, None])).numpy()[:, 0] - truth).mean()
    assert mae == pytest.approx(history.best_val_mae, abs=1e-3), "the returned weights are the best check's"
    assert not model.training
    torch.manual_seed(0)
    again = DensityFCN(1, 1, depth=2, width=4)
    assert train_steady(again, images[:4], dots[:4], images[4:], dots[4:], steps=12, batch_size=2, crop=64,
                        warmup=2, eval_every=3, seed=0).val_count_mae == history.val_count_mae, "seeded"


def test_train_steady_in_channels_last_trains_the_same_function(one_thread):
    """channels_last=True (the laptop recipe's layout) changes the summation order only: the same checks and counts
    within float32 rounding of a few steps, the weights left in channels_last where oneDNN runs it."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN: channels_last is not native here")
    images, dots = cell_dataset(6, seed=3)
    runs = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = DensityFCN(1, 1, depth=2, width=4)
        runs[channels_last] = model, train_steady(model, images[:4], dots[:4], images[4:], dots[4:], steps=8,
                                                  batch_size=2, crop=64, warmup=2, eval_every=2, seed=0,
                                                  channels_last=channels_last)
    (nchw, nchw_history), (nhwc, nhwc_history) = runs[False], runs[True]
    def inner_conv(model):  # one input channel reads as contiguous in either layout
        return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1).weight

    assert inner_conv(nhwc).is_contiguous(memory_format=torch.channels_last) and not inner_conv(nhwc).is_contiguous()
    assert inner_conv(nchw).is_contiguous() and not inner_conv(nchw).is_contiguous(memory_format=torch.channels_last)
    assert nhwc_history.steps == nchw_history.steps
    np.testing.assert_allclose(nhwc_history.val_count_mae, nchw_history.val_count_mae, rtol=1e-3, atol=1e-3)


def test_train_steady_rejects_bad_arguments():
    images, dots = cell_dataset(2, seed=0)
    with pytest.raises(TypeError, match="DensityFCN"):
        train_steady(CountCeptionNet(1, 1, window=8, width=4), images, dots, images, dots)
    for bad in ({"steps": 0}, {"ema": 1.0}, {"eval_every": 0}, {"eval_from": 1.5}):
        with pytest.raises(ValueError):
            train_steady(DensityFCN(1, 1, depth=2, width=4), images, dots, images, dots, **bad)

