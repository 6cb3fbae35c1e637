"""ch02a's comparison: the same patch classifier trained on shuffled vs class-balanced batches, over seeds.

Both arms see the same patches, net, epochs and training seeds; each keeps the epoch with the best *validation*
balanced accuracy (the mean of the per-class recalls), and the test split is scored once per arm and seed with
the recall of each class (normal = specificity, tumour = sensitivity). The data sets are the caller's (synthetic
tiles in quick mode, the Kaggle IDC patches when present), so the real and synthetic paths share this code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from course_lib import config
from course_lib.histology.fcn import PatchClassifier
from course_lib.histology.sampling import balanced_sampler
from course_lib.training import fit, predict

__all__ = ["BalancingSettings", "QUICK", "FULL", "SMOKE", "settings", "per_class_recall", "BalancingComparison",
           "compare_balancing"]


@dataclass(frozen=True)
class BalancingSettings:
    """Sizes and fixed choices of the balancing comparison (the same for both arms)."""

    train_tiles: int = 32  # synthetic 256 px tiles ("patients") for training: ~2000 patches, ~7 % tumour
    eval_tiles: int = 12  # tiles for validation and, separately, for test
    epochs: int = 8  # quick budget (2 arms x 3 seeds); the best validation epoch is kept
    widths: tuple[int, ...] = (8, 16)  # channels of the classifier's conv blocks: tiny for 2 CPU cores
    batch_size: int = 64  # a balanced batch then holds ~32 tumour patches
    lr: float = 2e-3  # Adam; trained every seed of both arms stably in the quick trials
    # training seeds (weights, batch order): 5, so that the 95 % interval of a paired gain (t with 4 degrees of
    # freedom: +-1.24 sd) can bound an effect; with 3 (+-2.48 sd) it could not tell "none" from "a quarter of a recall"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    # the smallest change of a recall the comparison is meant to detect: a quarter of the class, the size of trade a
    # prior-dominated classifier shows when it stops saying "normal" by default; "no effect" means the 95 % interval
    # of the paired gain lies inside +-effect_bound
    effect_bound: float = 0.25


QUICK = BalancingSettings()
FULL = BalancingSettings(train_tiles=200, eval_tiles=40, epochs=20, widths=(16, 32))
# COURSE_SMOKE=1 (config.is_smoke): FULL with tiles, epochs and seeds cut (two seeds, for a spread):
# full mode's code path in seconds
SMOKE = replace(FULL, train_tiles=3, eval_tiles=2, epochs=1, seeds=(0, 1))


def settings() -> BalancingSettings:
    """``QUICK`` in quick mode, ``FULL`` in full mode (:func:`course_lib.config.pick`)."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


def per_class_recall(logits: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """Recall of class 0 and class 1 from ``(N, 2)`` logits and ``(N,)`` labels (NaN for an absent class)."""
    if logits.ndim != 2 or len(logits) != len(targets):
        raise ValueError(f"`logits` must be (N, 2) and `targets` (N,), got {tuple(logits.shape)}, "
                         f"{tuple(targets.shape)}")
    predicted = logits.argmax(1)
    return [float((predicted[targets == c] == c).float().mean()) for c in (0, 1)]


def _evaluate(model, loader, device) -> dict[str, float]:
    return {"val_balanced_accuracy": float(np.mean(per_class_recall(*predict(model, loader, device))))}


@dataclass
class BalancingComparison:
    """``recall[arm]`` = ``{"normal": [per seed], "tumour": [per seed]}``; ``models[arm]``: the first seed's net."""

    recall: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    models: dict[str, PatchClassifier] = field(default_factory=dict)


def compare_balancing(train_set, val_set, test_set, labels, patch_size: int, s: BalancingSettings | None = None, *,
                      device: str = "cpu", progress: bool = False) -> BalancingComparison:
    """Train ``PatchClassifier`` on shuffled and on class-balanced batches, once per training seed.

    Parameters
    ----------
    train_set, val_set, test_set : Dataset of ``(patch (3, P, P), label)``
    labels : (N,) array_like of int
        Labels of ``train_set`` (for the balanced sampler).
    patch_size : int
        P.
    s : BalancingSettings, optional
        Default :func:`settings`.

    Returns
    -------
    BalancingComparison
    """
    s = s or settings()
    labels = np.asarray(labels)
    if labels.shape != (len(train_set),):
        raise ValueError(f"`labels` must have shape ({len(train_set)},) like `train_set`, got {labels.shape}")
    out = BalancingComparison()
    for arm in ("shuffled", "balanced"):
        out.recall[arm] = {"normal": [], "tumour": []}
        for seed in s.seeds:
            generator = config.seed_everything(seed)
            sampler = balanced_sampler(labels, seed=seed) if arm == "balanced" else None
            loader = DataLoader(train_set, batch_size=s.batch_size, shuffle=sampler is None, sampler=sampler,
                                generator=generator)
            model = PatchClassifier(patch_size=patch_size, widths=s.widths)
            fit(model, loader, F.cross_entropy, epochs=s.epochs, lr=s.lr, device=device,
                val_loader=DataLoader(val_set, batch_size=256), evaluate=_evaluate,
                monitor="val_balanced_accuracy", monitor_mode="max", progress=progress, desc=f"{arm} seed {seed}")
            normal, tumour = per_class_recall(*predict(model, DataLoader(test_set, batch_size=256), device))
            out.recall[arm]["normal"].append(normal)
            out.recall[arm]["tumour"].append(tumour)
            if seed == s.seeds[0]:
                out.models[arm] = model
    return out
