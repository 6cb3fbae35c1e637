"""Benchmark: vectorised metrics vs the naive way, measured in one run on this machine.

1. F1 with a 10,000-resample bootstrap CI (CheXNet test-set size, 420 images):
   ``f1_bootstrap_ci`` (one indexed array, counts per row) vs a Python loop calling
   ``sklearn.metrics.f1_score`` on every resample.
2. Per-class Dice of a batch of label maps: ``multiclass_score`` (one confusion matrix from
   ``np.bincount``) vs a loop over classes building boolean masks.

Both pairs must agree (asserted) before their times are compared. Run::

    .venv/bin/python benchmarks/bench_metrics.py
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score
from timing import best_of

from course_lib.metrics import bootstrap_indices, f1_bootstrap_ci, multiclass_score


def naive_f1_ci(y_true, y_pred, n_resamples, seed):
    idx = bootstrap_indices(len(y_true), n_resamples, seed)
    values = np.array([f1_score(y_true[rows], y_pred[rows], zero_division=0.0) for rows in idx])
    return np.percentile(values, [2.5, 97.5])


def naive_per_class_dice(pred, target, num_classes):
    scores = []
    for c in range(num_classes):
        a, b = pred == c, target == c
        total = a.sum() + b.sum()
        scores.append(1.0 if total == 0 else 2 * np.sum(a & b) / total)
    return np.array(scores)


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []

    y_true = rng.random(420) < 0.3
    y_pred = np.where(rng.random(420) < 0.8, y_true, ~y_true)
    ours = f1_bootstrap_ci(y_true, y_pred, n_resamples=10_000, seed=0)
    low, high = naive_f1_ci(y_true, y_pred, 10_000, 0)
    assert np.isclose(ours.low, low) and np.isclose(ours.high, high), "bootstrap CIs disagree"
    t_ours = best_of(lambda: f1_bootstrap_ci(y_true, y_pred, n_resamples=10_000, seed=0))[0]
    t_naive = best_of(lambda: naive_f1_ci(y_true, y_pred, 10_000, 0), repeats=1)[0]
    rows.append(("f1_bootstrap_ci_speedup_vs_sklearn_loop", "420 labels, 10,000 resamples", t_ours, t_naive))

    num_classes = 8
    target = rng.integers(0, num_classes, (16, 256, 256))
    pred = np.where(rng.random(target.shape) < 0.9, target, rng.integers(0, num_classes, target.shape))
    ours_scores = multiclass_score(pred, target, num_classes, average="none")
    assert np.allclose(ours_scores, naive_per_class_dice(pred, target, num_classes)), "per-class Dice disagrees"
    t_ours = best_of(lambda: multiclass_score(pred, target, num_classes, average="none"))[0]
    t_naive = best_of(lambda: naive_per_class_dice(pred, target, num_classes))[0]
    rows.append(("multiclass_dice_speedup_vs_per_class_masks", "16x256x256 labels, 8 classes", t_ours, t_naive))

    print(f"{'benchmark':46s} {'input':32s} {'ours (s)':>9s} {'naive (s)':>10s} {'ratio':>7s}")
    for name, size, ours_s, naive_s in rows:
        print(f"{name:46s} {size:32s} {ours_s:9.4f} {naive_s:10.4f} {naive_s / ours_s:6.1f}x")
    print()
    for name, _, ours_s, naive_s in rows:
        print(f"{name}: {naive_s / ours_s:.1f} x")


if __name__ == "__main__":
    main()
