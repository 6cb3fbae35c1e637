"""The chapter 2 comparisons, each one function call at a budget the caller chooses.

* :func:`compare_skip_connections` — U-Net vs the same net without skips (bottleneck only) on
  synthetic nuclei: Dice and boundary F1 of the foreground.
* :func:`compare_edge_prediction` — foreground + connected components vs the 3-class edge trick on
  touching nuclei: objects correctly separated (IoU >= 0.5, one-to-one) and boundary F1 of the instances.
* :func:`compare_sampling` — uniform vs class-balanced vs CASED patch sampling on a nodule-like task
  (< 0.1 % lesion pixels) at the same number of training patches: lesion recall, false positives
  per image and Dice on whole test images.

Every run is seeded (deterministic on the CPU); weights are chosen on the validation split
(``fit(monitor=...)``), and so is the probability threshold of :func:`compare_sampling`; the test split
is touched once, at the end. Defaults are the quick sizes (< 60 s each on 2 CPU cores); pass larger
sizes for full mode. Each function returns ``{method: {metric: value}}`` including ``seconds``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from course_lib import config
from course_lib.histology.cased import CASEDSampler, PatchDataset, adaptive_compute_loss, extract_candidates
from course_lib.histology.edges import (
    count_separated,
    foreground_to_instances,
    instance_to_three_class,
    three_class_to_instances,
)
from course_lib.histology.synthetic_instances import InstanceConfig, make_instance_images
from course_lib.histology.synthetic_lesions import LesionConfig, make_lesion_images
from course_lib.histology.unet import UNet
from course_lib.metrics import dice, soft_dice_loss
from course_lib.metrics.boundary import boundary_f1
from course_lib.training import fit, predict

__all__ = ["compare_skip_connections", "compare_edge_prediction", "compare_sampling", "lesion_detection_scores"]


def _nuclei_splits(n_train: int, n_val: int, n_test: int, size: int, seed: int):
    """Three independent splits of synthetic nuclei: ``(images (n, 1, S, S), labels (n, S, S))`` each."""
    nuclei = InstanceConfig(size=size, n_objects=(max(1, size**2 // 700), max(2, size**2 // 420)))
    splits = []
    for k, n in enumerate((n_train, n_val, n_test)):
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


def _train(model, train, val, loss_fn, evaluate, monitor, *, epochs, batch_size, lr, seed, device, progress, desc):
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(val, batch_size=64)
    return fit(model, loader, loss_fn, epochs=epochs, lr=lr, val_loader=val_loader, evaluate=evaluate,
               monitor=monitor, monitor_mode="max", seed=seed, device=device, progress=progress, desc=desc)


def compare_skip_connections(*, n_train: int = 48, n_val: int = 16, n_test: int = 64, size: int = 64,
                             epochs: int = 12, depth: int = 3, width: int = 8, batch_size: int = 8, lr: float = 3e-3,
                             tolerance: float = 1.0, seed: int = 0, device: str = "cpu", progress: bool = False):
    """U-Net vs bottleneck-only net (``UNet(skip=False)``) on the foreground of synthetic nuclei.

    Both nets: same data, depth, width, BCE + soft Dice loss, epochs and seed; weights of the best
    validation Dice are kept. Returns ``{"unet": {...}, "bottleneck": {...}}`` with the test ``dice``
    (pooled over pixels), ``boundary_f1`` (mean over images, ``tolerance`` px: 1 px on 64 px images, where
    2 px already lets both nets score close to 1) and ``seconds``.
    """
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _nuclei_splits(n_train, n_val, n_test, size, seed)
    fg = [torch.from_numpy((y > 0)[:, None].astype(np.float32)) for y in (y_tr, y_va)]

    def evaluate(model, loader, dev):
        out, target = predict(model, loader, dev)
        return {"val_dice": dice(out > 0, target > 0.5)}

    results = {}
    for name, skip in (("unet", True), ("bottleneck", False)):
        start = time.perf_counter()
        config.seed_everything(seed)  # the same initial weights whatever ran before
        model = UNet(1, 1, depth=depth, width=width, skip=skip)
        _train(model, TensorDataset(x_tr, fg[0]), TensorDataset(x_va, fg[1]), _bce_dice, evaluate, "val_dice",
               epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress, desc=name)
        out, _ = predict(model, DataLoader(TensorDataset(x_te, torch.zeros(len(x_te))), batch_size=64), device)
        pred = (out[:, 0] > 0).numpy()  # (n, 1, S, S) logits -> (n, S, S) mask
        results[name] = {
            "dice": dice(pred, y_te > 0),
            "boundary_f1": float(np.mean([boundary_f1(p, t > 0, tolerance) for p, t in zip(pred, y_te, strict=True)])),
            "seconds": time.perf_counter() - start,
        }
    return results


def compare_edge_prediction(*, n_train: int = 48, n_val: int = 16, n_test: int = 64, size: int = 64,
                            epochs: int = 12, depth: int = 3, width: int = 8, batch_size: int = 8, lr: float = 3e-3,
                            border_width: int = 1, tolerance: float = 1.0, seed: int = 0, device: str = "cpu",
                            progress: bool = False):
    """Plain foreground segmentation vs 3-class edge prediction on touching nuclei (same U-Net, data, seed).

    * ``"foreground"``: 1 output, BCE + soft Dice, instances = connected components of ``logit > 0``.
    * ``"three_class"``: 3 outputs (background / interior / border of width ``border_width``), cross-entropy +
      soft Dice (softmax, mean over classes), instances = :func:`three_class_to_instances` of the argmax.

    Weights are chosen by the share of validation objects separated. Returns per method ``separated``
    (test objects matched with IoU >= 0.5), ``n_objects``, ``separated_fraction``, ``boundary_f1``
    (mean over test images of the instance maps, so lines between touching objects count) and ``seconds``.
    """
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _nuclei_splits(n_train, n_val, n_test, size, seed)
    results = {}
    for name in ("foreground", "three_class"):
        three = name == "three_class"
        if three:
            targets = [torch.from_numpy(np.stack([instance_to_three_class(t, border_width) for t in y]))
                       for y in (y_tr, y_va)]  # (n, S, S) int64 class maps
        else:
            targets = [torch.from_numpy((y > 0)[:, None].astype(np.float32)) for y in (y_tr, y_va)]

        def evaluate(model, loader, dev, three=three):
            out, _ = predict(model, loader, dev)
            found = sum(count_separated(p, t) for p, t in zip(_to_instances(out, three), y_va, strict=True))
            return {"val_separated": found / max(int(sum(t.max() for t in y_va)), 1)}

        start = time.perf_counter()
        config.seed_everything(seed)  # the same initial weights whatever ran before
        model = UNet(1, 3 if three else 1, depth=depth, width=width)
        _train(model, TensorDataset(x_tr, targets[0]), TensorDataset(x_va, targets[1]),
               _ce_dice if three else _bce_dice, evaluate, "val_separated",
               epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress, desc=name)
        out, _ = predict(model, DataLoader(TensorDataset(x_te, torch.zeros(len(x_te))), batch_size=64), device)
        instances = _to_instances(out, three)
        separated = sum(count_separated(p, t) for p, t in zip(instances, y_te, strict=True))
        n_objects = int(sum(t.max() for t in y_te))
        results[name] = {
            "separated": int(separated), "n_objects": n_objects, "separated_fraction": separated / max(n_objects, 1),
            "boundary_f1": float(np.mean([boundary_f1(p, t, tolerance) for p, t in zip(instances, y_te, strict=True)])),
            "seconds": time.perf_counter() - start,
        }
    return results


def lesion_detection_scores(pred_masks, true_masks, *, tolerance: float = 2.0) -> dict[str, float]:
    """Object-level scores of binary predictions on ``(n, H, W)`` masks, counted as a nodule CAD is.

    Each predicted 4-connected component is one detection, reported at its centroid. It hits a lesion when
    the centroid lies within ``tolerance`` px of the lesion's pixels (LUNA16 counts a candidate point inside
    the nodule's radius), so one blob over half the image is a false positive, not a hit. Returns ``recall``
    (lesions hit at least once / lesions), ``fp_per_image`` (detections hitting no lesion / images),
    ``dice`` (pooled over all pixels) and ``n_lesions``.

    Examples
    --------
    >>> true = np.zeros((2, 8, 8), bool); true[0, 1:3, 1:3] = True; true[1, 5:7, 5:7] = True
    >>> pred = np.zeros_like(true); pred[0, 2, 2] = True; pred[1, 0, 0] = True   # one hit, one false alarm
    >>> s = lesion_detection_scores(pred, true); s["recall"], s["fp_per_image"], s["n_lesions"]
    (0.5, 0.5, 2)
    """
    pred, true = np.asarray(pred_masks, bool), np.asarray(true_masks, bool)
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"`pred_masks` (shape {pred.shape}) and `true_masks` (shape {true.shape}) must be (n, H, W)")
    found = lesions = false_pos = 0
    for p, t in zip(pred, true, strict=True):
        lesion_ids, n = ndimage.label(t)
        blobs, k = ndimage.label(p)
        lesions += n
        if k == 0:
            continue
        centres = np.round(ndimage.center_of_mass(p, blobs, range(1, k + 1))).astype(int)  # (k, 2) row, col
        if n == 0:
            false_pos += k
            continue
        dist, nearest = ndimage.distance_transform_edt(lesion_ids == 0, return_indices=True)  # to the closest lesion
        hit = dist[centres[:, 0], centres[:, 1]] <= tolerance  # (k,)
        which = lesion_ids[nearest[0], nearest[1]][centres[hit, 0], centres[hit, 1]]  # lesion id of each hit
        found += len(np.unique(which))
        false_pos += int((~hit).sum())
    return {"recall": found / lesions if lesions else float("nan"), "fp_per_image": false_pos / len(pred),
            "dice": dice(pred, true), "n_lesions": lesions}


def compare_sampling(*, n_train: int = 64, n_val: int = 48, n_test: int = 128, size: int = 128,
                     fg_fraction: float = 0.0008, radius: tuple[float, float] = (2.0, 3.5), patch_size: int = 32,
                     patches: int = 8192, epochs: int = 8, batch_size: int = 32, pos_fraction: float = 0.5,
                     curriculum_epochs: int | None = None, depth: int = 2, width: int = 8, lr: float = 3e-3,
                     seed: int = 0, device: str = "cpu", progress: bool = False):
    """Uniform vs class-balanced vs CASED sampling of training patches, at ``patches`` patches each.

    Data: :func:`course_lib.histology.synthetic_lesions.make_lesion_images` with ``fg_fraction`` (< 0.1 % lesion
    pixels by default). Candidates: a grid with stride ``patch_size // 2`` plus 4 lesion-centred patches per
    lesion. Per-patch BCE is the loss for all three; the net is fully convolutional, so it is validated and
    tested on whole images.

    * ``"uniform"``: grid patches uniformly at random (the empirical distribution, almost all background).
    * ``"balanced"``: ``pos_fraction`` of each batch from lesion patches, the rest from background, uniformly.
    * ``"cased"``: :class:`CASEDSampler` — curriculum from lesion patches only to ``pos_fraction`` over
      ``curriculum_epochs`` (default ``epochs // 2``), loss-proportional draws within each class.

    Weights (best validation Dice at threshold 0.5) and then the probability threshold (best validation Dice
    over 0.02 ... 0.95) are chosen on the validation split. Returns per method the test ``recall``,
    ``fp_per_image``, ``dice``, ``threshold``, ``n_lesions`` and ``seconds``.
    """
    lesions = LesionConfig(size=size, fg_fraction=fg_fraction, radius=radius)
    (x_tr, m_tr), (x_va, m_va), (x_te, m_te) = (
        make_lesion_images(n, lesions, seed=seed * 1000 + k) for k, n in enumerate((n_train, n_val, n_test)))
    candidates = extract_candidates(m_tr, patch_size, per_lesion=4, seed=seed)
    per_epoch = patches // epochs
    curriculum_epochs = epochs // 2 if curriculum_epochs is None else curriculum_epochs
    val = TensorDataset(torch.from_numpy(x_va), torch.from_numpy(m_va))

    def per_patch_bce(logits, target):  # (B, 1, p, p) -> (B,)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 2, 3))

    def evaluate(model, loader, dev):
        out, target = predict(model, loader, dev)
        return {"val_dice": dice(out > 0, target > 0.5)}

    results = {}
    for name in ("uniform", "balanced", "cased"):
        start = time.perf_counter()
        if name == "uniform":
            grid = np.flatnonzero(~candidates.centred)
            dataset = torch.utils.data.Subset(PatchDataset(x_tr, m_tr, candidates), grid.tolist())
            sampler = RandomSampler(dataset, replacement=True, num_samples=per_epoch,
                                    generator=torch.Generator().manual_seed(seed))
            compute_loss = adaptive_compute_loss(_NoUpdate(), per_patch_bce)
        else:
            dataset = PatchDataset(x_tr, m_tr, candidates)
            cased = name == "cased"  # "balanced" is the same sampler without curriculum and without losses
            sampler = CASEDSampler(candidates.labels, num_samples=per_epoch, batch_size=batch_size,
                                   pos_fraction=pos_fraction, adaptive=cased, seed=seed,
                                   curriculum_epochs=curriculum_epochs if cased else 0)
            compute_loss = adaptive_compute_loss(sampler, per_patch_bce)
        config.seed_everything(seed)  # the same initial weights whatever ran before
        model = UNet(1, 1, depth=depth, width=width)
        fit(model, DataLoader(dataset, batch_size=batch_size, sampler=sampler), compute_loss=compute_loss,
            epochs=epochs, lr=lr, val_loader=DataLoader(val, batch_size=16), evaluate=evaluate, monitor="val_dice",
            monitor_mode="max", seed=seed, device=device, progress=progress, desc=name)
        prob_va = torch.sigmoid(predict(model, DataLoader(val, batch_size=16), device)[0])[:, 0].numpy()
        # low thresholds too: a net trained on near-uniform patches is calibrated to the rare class
        thresholds = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
        best = max(thresholds, key=lambda t: dice(prob_va > t, m_va[:, 0] > 0.5))
        test = DataLoader(TensorDataset(torch.from_numpy(x_te), torch.from_numpy(m_te)), batch_size=16)
        prob_te = torch.sigmoid(predict(model, test, device)[0])[:, 0].numpy()
        scores = lesion_detection_scores(prob_te > best, m_te[:, 0] > 0.5)
        results[name] = {**scores, "threshold": float(best), "seconds": time.perf_counter() - start}
    return results


class _NoUpdate:
    """Stands in for a sampler that ignores losses (uniform sampling)."""

    def update(self, indices, losses) -> None:
        pass
