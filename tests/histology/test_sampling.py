"""Class balancing: weights against scikit-learn's ``compute_class_weight``, sampled batches near 50/50 for a
1:20 imbalance, and a tiny classifier whose minority-class recall the balancing rescues."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch.utils.data import DataLoader, TensorDataset

from course_lib.histology.sampling import balanced_sampler, class_weights, pos_weight, sample_weights

IMBALANCED = np.array([0] * 2000 + [1] * 100)  # 1:20


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param([0, 0, 0, 1], id="3:1"),
        pytest.param([0, 1, 1, 2, 2, 2], id="3-classes"),
        pytest.param(IMBALANCED, id="1:20"),
    ],
)
def test_class_weights_match_sklearn_balanced(labels):
    labels = np.asarray(labels)
    oracle = compute_class_weight("balanced", classes=np.unique(labels), y=labels)
    assert torch.allclose(class_weights(labels), torch.tensor(oracle, dtype=torch.float32))
    # each class carries the same total weight N / C
    counts = np.bincount(labels)
    assert np.allclose(class_weights(labels).numpy() * counts, len(labels) / len(counts))


def test_pos_weight_and_sample_weights():
    assert pos_weight(IMBALANCED).item() == 20.0  # 2000 negatives / 100 positives
    w = sample_weights(torch.tensor([0, 0, 0, 1]))
    assert w.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])  # 1 / n_class; each class sums to 1


def test_balanced_batches_are_about_half_positive():
    dataset = TensorDataset(torch.zeros(len(IMBALANCED), 1), torch.from_numpy(IMBALANCED))
    loader = DataLoader(dataset, batch_size=64, sampler=balanced_sampler(IMBALANCED, seed=0))
    drawn = torch.cat([y for _, y in loader]).float()
    assert len(drawn) == len(IMBALANCED)  # num_samples defaults to N: one epoch as long as the dataset
    # 2100 draws with p = 0.5: standard deviation sqrt(0.25 / 2100) = 0.011, so +-0.05 is > 4 sigma
    assert abs(drawn.mean().item() - 0.5) < 0.05, "balanced batches should be about half positive"
    shuffled = torch.cat([y for _, y in DataLoader(dataset, batch_size=64, shuffle=True)]).float()
    assert shuffled.mean().item() == pytest.approx(1 / 21)  # without the sampler: the raw 1:20 ratio


def test_sampler_is_seeded():
    a = list(balanced_sampler(IMBALANCED, seed=3, num_samples=50))
    assert a == list(balanced_sampler(IMBALANCED, seed=3, num_samples=50))
    assert a != list(balanced_sampler(IMBALANCED, seed=4, num_samples=50))


def _minority_recall(sampler_or_none, loss_weight=None) -> float:
    """Logistic regression on two overlapping 2-D Gaussians (1:20), fixed budget; recall of the rare class."""
    g = torch.Generator().manual_seed(0)
    y = torch.from_numpy(IMBALANCED)
    x = torch.randn(len(y), 2, generator=g) + 1.5 * y[:, None].float()  # class 1 shifted by 1.5 on both axes
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(x, y), batch_size=256, sampler=sampler_or_none,
                        shuffle=sampler_or_none is None, generator=g if sampler_or_none is None else None)
    loss_fn = torch.nn.CrossEntropyLoss(weight=loss_weight)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2x2 model: extra threads only wait on each other when the machine is busy
    try:
        for _ in range(3):  # 3 epochs of 9 batches: a tiny budget, the same for every variant
            for xb, yb in loader:
                optimiser.zero_grad()
                loss_fn(model(xb), yb).backward()
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    predicted = model(x).argmax(1)
    return (predicted[y == 1] == 1).float().mean().item()


def test_balancing_rescues_the_rare_class():
    plain = _minority_recall(None)
    resampled = _minority_recall(balanced_sampler(IMBALANCED, seed=0))
    reweighted = _minority_recall(None, loss_weight=class_weights(IMBALANCED))
    # unbalanced training calls almost everything "normal"; both cures find most tumours
    assert plain < 0.3 and resampled > 0.6 and reweighted > 0.6, (plain, resampled, reweighted)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: class_weights([0, 0, 2]), ValueError, r"class\(es\) \[1\] have no samples"),
        (lambda: class_weights([0, 1], num_classes=3), ValueError, r"class\(es\) \[2\] have no samples"),
        (lambda: class_weights([0, 3], num_classes=2), ValueError, r"contain class 3 but `num_classes` is 2"),
        (lambda: class_weights([[0, 1]]), ValueError, r"non-empty 1-D .* got shape \(1, 2\)"),
        (lambda: class_weights([-1, 0]), ValueError, r"`labels` must be >= 0, got -1"),
        (lambda: class_weights([0.5, 1.0]), TypeError, r"integer class indices"),
        (lambda: pos_weight([0, 0]), ValueError, r"class\(es\) \[1\] have no samples"),
        (lambda: balanced_sampler([0, 1], num_samples=0), ValueError, r"`num_samples` must be a positive int"),
        (lambda: balanced_sampler([0, 1], num_samples=3, replacement=False), ValueError, r"needs `replacement=True`"),
    ],
)
def test_bad_labels_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
