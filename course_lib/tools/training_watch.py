"""Watch a student's training loop from outside it: the mode of each training pass, and stale gradients.

A graded training exercise trains the course's model with the student's loop, then scores the model on held-out
data. A threshold on that score catches a broken loop only by its effect, and the effect of some mistakes depends
on the machine: a U-Net trained in evaluation mode (``model.train()`` never called after a validation pass) reached
a held-out Dice above the pass mark with one processor's floating-point kernels and below it with another's. A grade
must not depend on the grading machine, so the locked training cell watches the run itself, and the held-out test
fails such a run for what it did, on every machine:

* a **training pass** is a forward pass of the model while gradients are enabled; it must run in training mode
  (``model.training``): batch norm learns its statistics and dropout is on only then;
* at each **backward pass**, the first parameter's ``.grad`` must be empty or zero when the new gradient arrives;
  otherwise the gradients of the previous batch were added to this step (``optimizer.zero_grad()`` missing).

Example
-------
>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
>>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
>>> model.eval()  # a loop that forgets model.train() after validating
Sequential(...)
>>> with TrainingWatch(model) as watch:
...     for _ in range(2):
...         optimizer.zero_grad()
...         model(torch.randn(4, 3)).sum().backward()
...         optimizer.step()
>>> watch.training_passes, watch.eval_mode_passes, watch.backward_passes, watch.stale_gradient_passes
(2, 2, 2, 0)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TrainingWatch"]


class TrainingWatch:
    """Context manager counting, on ``model``, training passes, those in eval mode, backward passes, stale ones.

    Parameters
    ----------
    model : nn.Module
        The model the loop trains; it must have a parameter that requires gradients.

    Attributes
    ----------
    training_passes : int
        Forward passes of ``model`` with gradients enabled (scoring under ``torch.no_grad()`` is not counted).
    eval_mode_passes : int
        Of those, the passes that ran with ``model.training`` False.
    backward_passes : int
        Gradients computed for the first parameter.
    stale_gradient_passes : int
        Of those, the ones that found a non-zero ``.grad`` left from before.
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
        self._first = next((p for p in model.parameters() if p.requires_grad), None)
        if self._first is None:
            raise ValueError("`model` has no parameter that requires gradients: there is no training to watch")
        self.model = model
        self.training_passes = self.eval_mode_passes = self.backward_passes = self.stale_gradient_passes = 0
        self._handles: list = []

    def _on_forward(self, module: nn.Module, args) -> None:
        if torch.is_grad_enabled():
            self.training_passes += 1
            self.eval_mode_passes += not module.training

    def _on_gradient(self, grad: torch.Tensor) -> None:  # runs before ``grad`` is added to ``.grad``
        self.backward_passes += 1
        left = self._first.grad
        self.stale_gradient_passes += bool(left is not None and left.detach().abs().sum().item() > 0)

    def __enter__(self) -> TrainingWatch:
        self._handles = [self.model.register_forward_pre_hook(self._on_forward),
                         self._first.register_hook(self._on_gradient)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
