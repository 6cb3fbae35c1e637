"""ch02b's comparison: the same small U-Net trained with BCE, soft Dice and their sum on rare faint lesions.

Every loss gets the same data, net, epochs and training seeds. What is *chosen* is chosen on validation, for each
loss separately, before the test split is scored:

1. the checkpoint: the epoch with the best validation Dice, each epoch at its own best threshold
   (:func:`course_lib.metrics.dice_evaluator` over ``thresholds``);
2. the probability threshold: the one that gave that Dice.

A fixed threshold of 0.5 would judge how each loss *calibrates* its probabilities (BCE under 1 % foreground
keeps them low) rather than how well it *segments*. The test split then gives, per loss and training seed: Dice
at the validation threshold, Dice at 0.5 (the naive comparison, kept to show what changes), and a threshold-free
score, the pixels' average precision (area under the precision-recall curve). The data are fixed; the training
seeds (initial weights and batch order) vary, so the spread over seeds is the training noise, and a paired
bootstrap over test images of the seed-averaged per-image Dice gives the test-sampling noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from course_lib import config
from course_lib.histology.synthetic_lesions import LesionConfig, lesion_dataset
from course_lib.histology.unet import UNet
from course_lib.metrics import average_precision, dice, dice_evaluator, soft_dice_loss
from course_lib.training import History, fit, predict

__all__ = ["LossSettings", "QUICK", "FULL", "SMOKE", "settings", "LOSSES", "LossComparison", "lesion_splits",
           "compare_losses"]


@dataclass(frozen=True)
class LossSettings:
    """Sizes and fixed choices of the loss comparison (the same for every loss)."""

    n_train: int = 256  # training images of 64 px with ~1 % lesion pixels
    n_val: int = 64  # validation images: choose checkpoint and threshold, per loss
    n_test: int = 128  # test images, scored once per loss and seed
    data_seed: int = 1  # train / val / test images are drawn with data_seed, + 1, + 2: fixed for every run
    # benchmarks/quick_budgets.py on validation curves: the knee (within 1 % of the best mean validation Dice) is at
    # 14 epochs or later, the notebook's time allowance affords 7: a time budget, the nets still improve (BCE the
    # slowest, so part of soft Dice's quick-mode gain is BCE learning the rare class more slowly); best epoch kept
    epochs: int = 7
    depth: int = 2  # two poolings: the receptive field covers a lesion (radius 2-4 px) and its surroundings
    width: int = 8  # tiny U-Net for 2 CPU cores
    batch_size: int = 16  # 16 batches per epoch: enough Adam steps on 256 images
    lr: float = 3e-3  # Adam; the rate the chapter uses for every small U-Net
    # thresholds tried on validation: low ones too, because BCE under 1 % foreground rarely passes 0.5
    thresholds: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds (weights, batch order): >= 3 for a spread
    n_resamples: int = 10_000  # paired bootstrap over test images


QUICK = LossSettings()
FULL = LossSettings(n_train=4096, n_val=512, n_test=1024, epochs=40, width=16, seeds=(0, 1, 2, 3, 4))
# COURSE_SMOKE=1 (config.is_smoke): FULL with images, epochs and seeds cut (two seeds, for a spread):
# full mode's code path in seconds
SMOKE = replace(FULL, n_train=32, n_val=16, n_test=16, epochs=1, seeds=(0, 1), n_resamples=20)


def settings() -> LossSettings:
    """``QUICK`` in quick mode, ``FULL`` in full mode (:func:`course_lib.config.pick`)."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


def _bce_plus_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(logits, target)


LOSSES: dict[str, Callable] = {"BCE": F.binary_cross_entropy_with_logits, "soft Dice": soft_dice_loss,
                               "BCE + soft Dice": _bce_plus_dice}


@dataclass
class LossComparison:
    """What :func:`compare_losses` measured.

    ``scores[loss][metric]`` holds one value per training seed: ``val_dice`` and ``threshold`` (chosen on
    validation), ``test_dice`` (at that threshold), ``test_dice_at_half`` (at 0.5), ``test_ap`` (average
    precision of the test pixels) and ``best_epoch``. ``per_image[loss]`` is the ``(n_test,)`` per-image test Dice
    at the chosen threshold, averaged over seeds (for a paired bootstrap). ``models`` and ``histories`` are those
    of the first seed.
    """

    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    per_image: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    histories: dict[str, History] = field(default_factory=dict)


def lesion_splits(s: LossSettings | None = None):
    """The fixed ``(train, val, test)`` TensorDatasets of ``(image (1, 64, 64), mask (1, 64, 64))``."""
    s = s or settings()
    lesions = LesionConfig()
    return tuple(lesion_dataset(n, lesions, seed=s.data_seed + k) for k, n in enumerate((s.n_train, s.n_val, s.n_test)))


def compare_losses(s: LossSettings | None = None, *, losses: dict[str, Callable] | None = None, splits=None,
                   device: str = "cpu", progress: bool = False) -> LossComparison:
    """Train the U-Net once per loss and training seed; choose checkpoint and threshold on validation; score test.

    Parameters
    ----------
    s : LossSettings, optional
        Default :func:`settings`.
    losses : dict, optional
        ``{name: loss_fn(logits (B, 1, H, W), target (B, 1, H, W)) -> scalar}``; default :data:`LOSSES`.
    splits : (train, val, test), optional
        Datasets from :func:`lesion_splits` (made here if not given).
    device : str
    progress : bool

    Returns
    -------
    LossComparison
    """
    s = s or settings()
    losses = LOSSES if losses is None else losses
    train_set, val_set, test_set = splits or lesion_splits(s)
    val_loader, test_loader = DataLoader(val_set, batch_size=64), DataLoader(test_set, batch_size=64)
    out = LossComparison()
    for name, loss_fn in losses.items():
        keys = ("val_dice", "threshold", "test_dice", "test_dice_at_half", "test_ap", "best_epoch")
        out.scores[name] = {k: [] for k in keys}
        per_image = []
        for seed in s.seeds:
            generator = config.seed_everything(seed)
            model = UNet(1, 1, depth=s.depth, width=s.width)
            history = fit(model, DataLoader(train_set, batch_size=s.batch_size, shuffle=True, generator=generator),
                          loss_fn, epochs=s.epochs, lr=s.lr, device=device, val_loader=val_loader,
                          evaluate=dice_evaluator(s.thresholds), monitor="val_dice", monitor_mode="max",
                          progress=progress, desc=f"{name} seed {seed}")
            best = history.best_epoch
            threshold = float(history["val_dice_threshold"][best])
            logits, targets = predict(model, test_loader, device)
            prob, mask = torch.sigmoid(logits).numpy(), targets.numpy() > 0.5  # (n, 1, H, W)
            per_image.append(dice(prob > threshold, mask, per_image=True))
            for key, value in (("val_dice", history["val_dice"][best]), ("threshold", threshold),
                               ("test_dice", dice(prob > threshold, mask)),
                               ("test_dice_at_half", dice(prob > 0.5, mask)),
                               ("test_ap", average_precision(mask, prob)), ("best_epoch", best)):
                out.scores[name][key].append(float(value))
            if seed == s.seeds[0]:
                out.models[name], out.histories[name] = model, history
        out.per_image[name] = np.mean(per_image, axis=0)
    return out
