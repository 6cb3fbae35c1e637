"""TrainingWatch sees a loop's mistakes from outside it: training in eval mode, gradients not cleared."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.tools.training_watch import TrainingWatch


def _loop(model, optimizer, *, call_train=True, zero_grad=True, batches=3):
    model.eval()  # as after a validation pass
    for _ in range(batches):
        if call_train:
            model.train()
        if zero_grad:
            optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():  # scoring: not a training pass
        model(torch.randn(4, 3))


@pytest.mark.parametrize("call_train, zero_grad, expected", [
    (True, True, (3, 0, 3, 0)),  # a correct loop: 3 training passes in train mode, gradients cleared each time
    (False, True, (3, 3, 3, 0)),  # model.train() forgotten: all 3 passes in eval mode
    (True, False, (3, 0, 3, 2)),  # zero_grad forgotten: the 2nd and 3rd backward find the previous gradient
])
def test_counts_each_kind_of_pass(call_train, zero_grad, expected):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    with TrainingWatch(model) as watch:
        _loop(model, torch.optim.SGD(model.parameters(), lr=0.01), call_train=call_train, zero_grad=zero_grad)
    assert (watch.training_passes, watch.eval_mode_passes, watch.backward_passes,
            watch.stale_gradient_passes) == expected


def test_hooks_are_removed_on_exit():
    model = nn.Linear(3, 1)
    with TrainingWatch(model) as watch:
        model(torch.randn(2, 3)).sum().backward()
    model(torch.randn(2, 3)).sum().backward()
    assert (watch.training_passes, watch.backward_passes) == (1, 1)


def test_rejects_what_cannot_be_watched():
    with pytest.raises(TypeError, match="`model` must be an nn.Module"):
        TrainingWatch(lambda x: x)
    frozen = nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter that requires gradients"):
        TrainingWatch(frozen)
