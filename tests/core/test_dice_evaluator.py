"""The Dice validation hook for ``fit`` and the threshold-free average precision (core metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.metrics import average_precision, best_threshold_dice, dice, dice_evaluator


class Fixed(nn.Module):
    """Returns stored logits for the indices it is given (a stand-in for a trained net)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, index):
        return self.logits[index.long()] + 0 * self.anchor


def test_best_threshold_dice_picks_the_best_and_the_first_of_ties():
    assert best_threshold_dice([0.2, 0.4, 0.9], [0, 1, 1], (0.5, 0.3)) == (1.0, 0.3)
    assert best_threshold_dice([0.2, 0.4, 0.9], [0, 1, 1], (0.3, 0.35)) == (1.0, 0.3)
    with pytest.raises(ValueError, match="thresholds"):
        best_threshold_dice([0.5], [1], ())


def test_dice_evaluator_scores_the_validation_loader_at_the_best_threshold():
    logits = torch.tensor([[[[3.0, -1.0], [-3.0, -4.0]]], [[[-3.0, -3.0], [-3.0, 2.0]]]])  # (2, 1, 2, 2)
    masks = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])
    loader = DataLoader(TensorDataset(torch.arange(2.0), masks), batch_size=1)
    model = Fixed(logits)
    plain = dice_evaluator()(model, loader, "cpu")
    assert plain["val_dice"] == pytest.approx(dice(logits > 0, masks > 0.5)) and plain["val_dice_threshold"] == 0.5
    tuned = dice_evaluator((0.5, 0.2), name="dsc")(model, loader, "cpu")  # sigmoid(-1) = 0.27 passes 0.2
    assert tuned == {"dsc": 1.0, "dsc_threshold": 0.2}
    with pytest.raises(ValueError, match="thresholds"):
        dice_evaluator((1.5,))


def test_dice_evaluator_rejects_outputs_that_are_not_images():
    loader = DataLoader(TensorDataset(torch.arange(2.0), torch.zeros(2, 3)), batch_size=2)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        dice_evaluator()(Fixed(torch.zeros(2, 3)), loader, "cpu")


def test_average_precision_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        labels = rng.random((4, 16, 16)) < 0.05
        scores = np.round(rng.random((4, 16, 16)) + 0.3 * labels, 1)  # coarse scores: many ties
        assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels.ravel(),
                                                                                          scores.ravel()))
    assert average_precision([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2]) == 1.0
    with pytest.raises(ValueError, match="positive"):
        average_precision([0, 0], [0.1, 0.2])
