"""Uniform vs class-balanced vs two CASED schedules of patch sampling on a nodule-like task (ch02c), over seeds.

The task: faint lesions on < 0.1 % of the pixels (:mod:`course_lib.histology.synthetic_lesions`). Every arm sees
the same number of training patches, the same net, loss (per-patch BCE), epochs, data and initial weights:

* ``"uniform"``: grid patches uniformly at random — the empirical distribution, almost all background.
* ``"balanced"``: ``pos_fraction`` of each batch from lesion patches, the rest from background, uniformly.
* ``"cased_to_balanced"``: :class:`~course_lib.histology.cased.CASEDSampler` with loss-proportional draws within
  each class and a curriculum from lesion patches only to the *balanced* share ``pos_fraction``. This was the
  course's first "CASED" arm; its end point is not the paper's.
* ``"cased"``: the paper's schedule — loss-proportional draws, curriculum from lesion patches only towards the
  *empirical* share of positive patches (that of the uniform arm), reached after ``curriculum_epochs``.

The net is fully convolutional, so it is validated and tested on whole images. Weights (the epoch with the best
validation Dice, each epoch read at its best threshold of ``thresholds``) and then the probability threshold (best
validation Dice over ``thresholds``) are chosen on the validation split; the test split is scored once per seed with
:func:`course_lib.metrics.lesion_detection_scores`. Reading every epoch at 0.5 would pick epochs by calibration: a
net trained on near-uniform patches puts lesion probabilities far below 0.5 and would look worst exactly where its
ranking is best (the confound ch02b measures).

References
----------
Jesson et al. (2017). CASED: Curriculum Adaptive Sampling for Extreme Data Imbalance. MICCAI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler, Subset, TensorDataset

from course_lib import config
from course_lib.histology.cased import CASEDSampler, PatchDataset, adaptive_compute_loss, extract_candidates
from course_lib.histology.synthetic_lesions import LesionConfig, make_lesion_images
from course_lib.histology.unet import UNet
from course_lib.metrics import best_threshold_dice, dice_evaluator, lesion_detection_scores
from course_lib.training import fit, predict

__all__ = ["SamplingSettings", "QUICK", "FULL", "SMOKE", "settings", "ARMS", "compare_sampling"]

ARMS = ("uniform", "balanced", "cased_to_balanced", "cased")


@dataclass(frozen=True)
class SamplingSettings:
    """Sizes and fixed choices of the sampling comparison (the same for every arm)."""

    n_train: int = 64  # training images (128 px): about 40 lesions, the rare class
    n_val: int = 48  # validation images: choose the epoch, then the threshold
    n_test: int = 128  # test images: about 80 lesions, so recall moves in steps of ~0.01
    size: int = 128  # image side
    fg_fraction: float = 0.0008  # < 0.1 % lesion pixels, the nodule regime of the lecture
    radius: tuple[float, float] = (2.0, 3.5)  # lesion radius (px): small, like a nodule in a CT patch
    patch_size: int = 32  # training patch side; candidates on a grid of stride patch_size // 2
    per_lesion: int = 4  # lesion-centred candidate patches per lesion (the curriculum's start)
    patches: int = 6144  # training patches per arm and seed: the budget every arm shares (quick: 4 arms x 3 seeds)
    epochs: int = 6  # passes of patches // epochs patches each; validation after each
    curriculum_epochs: int = 3  # epochs from "positives only" to the end share: half the run, as in the quick trials
    batch_size: int = 32  # a stratified batch holds 16 positives at the balanced share
    pos_fraction: float = 0.5  # the balanced share: balanced arm, and end point of "cased_to_balanced"
    depth: int = 2  # two poolings: the receptive field covers a lesion and its surroundings
    width: int = 8  # tiny net for 2 CPU cores
    lr: float = 3e-3  # Adam; the rate the chapter uses for every small U-Net
    # probability thresholds tried on validation; low ones too: a net trained on near-uniform patches is
    # calibrated to the rare class, so a fixed 0.5 would judge its calibration rather than its ranking
    thresholds: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    tolerance: float = 2.0  # px from a detection's centroid to the lesion for a hit: lesion radius 2-3.5 px
    seeds: tuple[int, ...] = (0, 1, 2)  # >= 3 seeds: data and initial weights differ per seed
    # the arms trained: quick mode leaves out "cased_to_balanced" (a variant of the course's, not the paper's) so the
    # notebook fits its time budget; full mode trains all four
    arms: tuple[str, ...] = ("uniform", "balanced", "cased")


QUICK = SamplingSettings()
FULL = SamplingSettings(n_train=1000, n_val=100, n_test=200, patches=60000, epochs=30, curriculum_epochs=15,
                        seeds=(0, 1, 2, 3, 4), arms=ARMS)
# COURSE_SMOKE=1 (config.is_smoke): FULL with images, patches, epochs and seeds cut (two seeds, for a spread):
# full mode's code path in seconds
SMOKE = replace(FULL, n_train=8, n_val=4, n_test=4, patches=128, epochs=2, curriculum_epochs=1, seeds=(0, 1))


def settings() -> SamplingSettings:
    """``QUICK`` in quick mode, ``FULL`` in full mode (:func:`course_lib.config.pick`)."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


class _NoUpdate:
    """Stands in for a sampler that ignores losses (uniform sampling)."""

    def update(self, indices, losses) -> None:
        pass


def _per_patch_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # (B, 1, p, p) -> (B,)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 2, 3))


def _loader(name: str, s: SamplingSettings, x_tr, m_tr, candidates, seed: int):
    """(DataLoader, compute_loss) of one arm."""
    per_epoch = s.patches // s.epochs
    if name == "uniform":
        grid = np.flatnonzero(~candidates.centred)
        dataset = Subset(PatchDataset(x_tr, m_tr, candidates), grid.tolist())
        sampler = RandomSampler(dataset, replacement=True, num_samples=per_epoch,
                                generator=torch.Generator().manual_seed(seed))
        return DataLoader(dataset, batch_size=s.batch_size, sampler=sampler), adaptive_compute_loss(
            _NoUpdate(), _per_patch_bce)
    empirical = float(candidates.labels[~candidates.centred].mean())  # positive share of the uniform arm's patches
    end_share = empirical if name == "cased" else s.pos_fraction
    adaptive = name.startswith("cased")  # "balanced" is the same sampler without curriculum and without losses
    sampler = CASEDSampler(candidates.labels, num_samples=per_epoch, batch_size=s.batch_size, pos_fraction=end_share,
                           adaptive=adaptive, seed=seed, curriculum_epochs=s.curriculum_epochs if adaptive else 0)
    loader = DataLoader(PatchDataset(x_tr, m_tr, candidates), batch_size=s.batch_size, sampler=sampler)
    return loader, adaptive_compute_loss(sampler, _per_patch_bce)


def compare_sampling(s: SamplingSettings | None = None, *, arms: tuple[str, ...] | None = None, device: str = "cpu",
                     progress: bool = False) -> dict[str, dict[str, list[float]]]:
    """Train one net per arm (default ``s.arms``) and seed at the same patch budget; score lesions on test images.

    Returns ``{arm: {metric: [one value per seed]}}`` with the test ``recall``, ``fp_per_image``, ``dice``,
    ``n_lesions`` (:func:`course_lib.metrics.lesion_detection_scores` at ``s.tolerance``), the validation-chosen
    ``threshold`` and ``seconds``.
    """
    s = s or settings()
    arms = s.arms if arms is None else tuple(arms)
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise ValueError(f"`arms` must be drawn from {ARMS}, got unknown {sorted(unknown)}")
    lesions = LesionConfig(size=s.size, fg_fraction=s.fg_fraction, radius=s.radius)
    results = {name: {k: [] for k in ("recall", "fp_per_image", "dice", "n_lesions", "threshold", "seconds")}
               for name in arms}
    for seed in s.seeds:
        (x_tr, m_tr), (x_va, m_va), (x_te, m_te) = (
            make_lesion_images(n, lesions, seed=seed * 1000 + k) for k, n in enumerate((s.n_train, s.n_val, s.n_test)))
        candidates = extract_candidates(m_tr, s.patch_size, per_lesion=s.per_lesion, seed=seed)
        val = DataLoader(TensorDataset(torch.from_numpy(x_va), torch.from_numpy(m_va)), batch_size=16)
        test = DataLoader(TensorDataset(torch.from_numpy(x_te), torch.from_numpy(m_te)), batch_size=16)
        for name in arms:
            start = time.perf_counter()
            loader, compute_loss = _loader(name, s, x_tr, m_tr, candidates, seed)
            config.seed_everything(seed)  # the same initial weights whatever ran before
            model = UNet(1, 1, depth=s.depth, width=s.width)
            fit(model, loader, compute_loss=compute_loss, epochs=s.epochs, lr=s.lr, val_loader=val,
                evaluate=dice_evaluator(s.thresholds), monitor="val_dice", monitor_mode="max", seed=seed, device=device,
                progress=progress, desc=f"{name} seed {seed}")
            prob_va = torch.sigmoid(predict(model, val, device)[0])[:, 0].numpy()
            _, threshold = best_threshold_dice(prob_va, m_va[:, 0] > 0.5, s.thresholds)
            prob_te = torch.sigmoid(predict(model, test, device)[0])[:, 0].numpy()
            scores = lesion_detection_scores(prob_te > threshold, m_te[:, 0] > 0.5, tolerance=s.tolerance)
            for key, value in {**scores, "threshold": threshold, "seconds": time.perf_counter() - start}.items():
                results[name][key].append(float(value))
    return results
