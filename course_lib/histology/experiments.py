"""Chapter 2's U-Net comparisons on synthetic nuclei (ch02c), one call each, over several seeds.

* :func:`compare_skip_connections` — U-Net vs the same net without skips (bottleneck only): Dice and boundary F1
  of the foreground.
* :func:`compare_edge_prediction` — foreground + connected components vs the 3-class edge trick on touching
  nuclei: objects correctly separated (IoU >= 0.5, one-to-one) and boundary F1 of the instances.

Settings follow the course's convention: a frozen :class:`NucleiSettings` with a reason per field, ``QUICK`` and
``FULL``, chosen with :func:`settings`. Everything that could be tuned after looking (the boundary tolerance, the
epochs, the net) is fixed there before any test number is computed. Each seed draws its own data and initial
weights; both arms of a comparison share them. Weights are chosen on the validation split (``fit(monitor=...)``);
the test split is touched once per seed. Each function returns ``{method: {metric: [one value per seed]}}``;
:func:`seed_summary` turns that into means and sample standard deviations. The sampling comparison (CASED) is in
:mod:`course_lib.histology.sampling_experiment`, the loss comparison of ch02b in
:mod:`course_lib.histology.loss_experiment`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_lib import config
from course_lib.histology.edges import (
    count_separated,
    foreground_to_instances,
    instance_to_three_class,
    three_class_to_instances,
)
from course_lib.histology.synthetic_instances import InstanceConfig, make_instance_images
from course_lib.histology.unet import UNet
from course_lib.metrics import dice, dice_evaluator, soft_dice_loss
from course_lib.metrics.boundary import boundary_f1
from course_lib.results import mean_sd
from course_lib.training import fit, predict

__all__ = ["NucleiSettings", "QUICK", "FULL", "SMOKE", "settings", "compare_skip_connections",
           "compare_edge_prediction", "seed_summary"]


@dataclass(frozen=True)
class NucleiSettings:
    """Sizes and fixed choices of the two nuclei comparisons (the same for both arms of each)."""

    n_train: int = 48  # training images: enough touching pairs to learn borders, small enough for 2 CPU cores
    n_val: int = 16  # validation images: choose the epoch (checkpoint) only
    n_test: int = 64  # test images: about 500 nuclei, so one image more or less moves a score by < 0.01
    size: int = 64  # image side: 4-9 nuclei of radius 5-8 px per image
    epochs: int = 10  # quick budget: 3 seeds x 4 nets in about a minute on 2 CPU cores; the best epoch is kept
    depth: int = 3  # three poolings: the bottleneck (8 x 8) is coarser than a nucleus, so skips can matter
    width: int = 8  # channels of the first level (doubling per level): a tiny net for the CPU
    batch_size: int = 8  # 6 steps per epoch on 48 images
    lr: float = 3e-3  # Adam; the largest rate that trained every seed of both nets stably in trials
    border_width: int = 1  # px of the border class: the thinnest line that still separates touching nuclei
    # boundary F1 counts a boundary pixel as matched within this distance. Fixed a priori: a rasterised circle's
    # boundary is ambiguous by one pixel, and anything wider is a sizeable share of a 5-8 px radius.
    tolerance: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2)  # >= 3 seeds: every comparison is reported as mean and spread


QUICK = NucleiSettings()
FULL = NucleiSettings(n_train=800, n_val=100, n_test=200, epochs=40, width=16, seeds=(0, 1, 2, 3, 4))
# COURSE_SMOKE=1 (config.is_smoke): FULL with images, epochs and seeds cut (two seeds, for a spread):
# full mode's code path in seconds
SMOKE = replace(FULL, n_train=8, n_val=4, n_test=4, epochs=1, seeds=(0, 1))


def settings() -> NucleiSettings:
    """``QUICK`` in quick mode, ``FULL`` in full mode (:func:`course_lib.config.pick`)."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


def seed_summary(results: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{method: {metric: [per seed]}}`` -> ``{method: {metric: (mean, sample sd)}}`` (:func:`mean_sd`: sd NaN
    for one seed)."""
    return {method: {metric: mean_sd(v) for metric, v in scores.items()} for method, scores in results.items()}


def _nuclei_splits(s: NucleiSettings, seed: int):
    """Three independent splits of synthetic nuclei: ``(images (n, 1, S, S), labels (n, S, S))`` each."""
    nuclei = InstanceConfig(size=s.size, n_objects=(max(1, s.size**2 // 700), max(2, s.size**2 // 420)))
    splits = []
    for k, n in enumerate((s.n_train, s.n_val, s.n_test)):
        images, labels = make_instance_images(n, nuclei, seed=seed * 1000 + k)
        splits.append((torch.from_numpy(images[:, None]), labels))  # (n, S, S) -> (n, 1, S, S)
    return splits


def _bce_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(logits, target)


def _ce_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target) + soft_dice_loss(logits, target, activation="softmax")


def _to_instances(outputs: torch.Tensor, three_class: bool) -> list[np.ndarray]:
    """(B, C, H, W) logits -> one instance map per image."""
    if three_class:
        return [three_class_to_instances(o.argmax(0).numpy(), min_interior=4) for o in outputs]
    return [foreground_to_instances((o[0] > 0).numpy()) for o in outputs]


def _train(model, train, val, loss_fn, evaluate, monitor, s: NucleiSettings, seed, device, progress, desc):
    loader = DataLoader(train, batch_size=s.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return fit(model, loader, loss_fn, epochs=s.epochs, lr=s.lr, val_loader=DataLoader(val, batch_size=64),
               evaluate=evaluate, monitor=monitor, monitor_mode="max", seed=seed, device=device, progress=progress,
               desc=desc)


def _test_outputs(model, x_te, device) -> torch.Tensor:
    return predict(model, DataLoader(TensorDataset(x_te, torch.zeros(len(x_te))), batch_size=64), device)[0]


def compare_skip_connections(s: NucleiSettings | None = None, *, device: str = "cpu", progress: bool = False):
    """U-Net vs bottleneck-only net (``UNet(skip=False)``) on the foreground of synthetic nuclei, per seed.

    Both nets: same data, depth, width, BCE + soft Dice loss, epochs and seed; weights of the best validation
    Dice (at probability 0.5) are kept. Returns ``{"unet": {...}, "bottleneck": {...}}`` with lists (one value per
    seed of ``s.seeds``) of the test ``dice`` (pooled over pixels), ``boundary_f1`` (mean over images,
    ``s.tolerance`` px) and ``seconds``.
    """
    s = s or settings()
    results = {name: {"dice": [], "boundary_f1": [], "seconds": []} for name in ("unet", "bottleneck")}
    for seed in s.seeds:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _nuclei_splits(s, seed)
        fg = [torch.from_numpy((y > 0)[:, None].astype(np.float32)) for y in (y_tr, y_va)]
        for name, skip in (("unet", True), ("bottleneck", False)):
            start = time.perf_counter()
            config.seed_everything(seed)  # the same initial weights whatever ran before
            model = UNet(1, 1, depth=s.depth, width=s.width, skip=skip)
            _train(model, TensorDataset(x_tr, fg[0]), TensorDataset(x_va, fg[1]), _bce_dice, dice_evaluator(),
                   "val_dice", s, seed, device, progress, f"{name} seed {seed}")
            pred = (_test_outputs(model, x_te, device)[:, 0] > 0).numpy()  # (n, 1, S, S) logits -> (n, S, S)
            results[name]["dice"].append(dice(pred, y_te > 0))
            results[name]["boundary_f1"].append(float(np.mean(
                [boundary_f1(p, t > 0, s.tolerance) for p, t in zip(pred, y_te, strict=True)])))
            results[name]["seconds"].append(time.perf_counter() - start)
    return results


def compare_edge_prediction(s: NucleiSettings | None = None, *, device: str = "cpu", progress: bool = False):
    """Plain foreground segmentation vs 3-class edge prediction on touching nuclei (same U-Net, data, seed).

    * ``"foreground"``: 1 output, BCE + soft Dice, instances = connected components of ``logit > 0``.
    * ``"three_class"``: 3 outputs (background / interior / border of width ``s.border_width``), cross-entropy +
      soft Dice (softmax, mean over classes), instances = :func:`three_class_to_instances` of the argmax.

    Weights are chosen by the share of validation objects separated. Returns per method lists (one value per
    seed) of ``separated`` (test objects matched with IoU >= 0.5), ``n_objects``, ``separated_fraction``,
    ``boundary_f1`` (mean over test images of the instance maps, so lines between touching objects count) and
    ``seconds``.
    """
    s = s or settings()
    keys = ("separated", "n_objects", "separated_fraction", "boundary_f1", "seconds")
    results = {name: {k: [] for k in keys} for name in ("foreground", "three_class")}
    for seed in s.seeds:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _nuclei_splits(s, seed)
        for name in ("foreground", "three_class"):
            three = name == "three_class"
            if three:
                targets = [torch.from_numpy(np.stack([instance_to_three_class(t, s.border_width) for t in y]))
                           for y in (y_tr, y_va)]  # (n, S, S) int64 class maps
            else:
                targets = [torch.from_numpy((y > 0)[:, None].astype(np.float32)) for y in (y_tr, y_va)]

            def evaluate(model, loader, dev, three=three, y_va=y_va):
                out, _ = predict(model, loader, dev)
                found = sum(count_separated(p, t) for p, t in zip(_to_instances(out, three), y_va, strict=True))
                return {"val_separated": found / max(int(sum(t.max() for t in y_va)), 1)}

            start = time.perf_counter()
            config.seed_everything(seed)  # the same initial weights whatever ran before
            model = UNet(1, 3 if three else 1, depth=s.depth, width=s.width)
            _train(model, TensorDataset(x_tr, targets[0]), TensorDataset(x_va, targets[1]),
                   _ce_dice if three else _bce_dice, evaluate, "val_separated", s, seed, device, progress,
                   f"{name} seed {seed}")
            instances = _to_instances(_test_outputs(model, x_te, device), three)
            separated = sum(count_separated(p, t) for p, t in zip(instances, y_te, strict=True))
            n_objects = int(sum(t.max() for t in y_te))
            for key, value in (("separated", int(separated)), ("n_objects", n_objects),
                               ("separated_fraction", separated / max(n_objects, 1)),
                               ("boundary_f1", float(np.mean([boundary_f1(p, t, s.tolerance)
                                                              for p, t in zip(instances, y_te, strict=True)]))),
                               ("seconds", time.perf_counter() - start)):
                results[name][key].append(value)
    return results
