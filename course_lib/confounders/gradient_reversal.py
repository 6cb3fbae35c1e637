"""Gradient reversal (Ganin & Lempitsky 2015): learn features from which the site cannot be predicted.

A site head tries to predict the site (hospital) from the features; the features are trained to make it fail.
One layer does it, placed between the features and the site head::

    forward:   R(f) = f                      (identity)
    backward:  dL/df = -lambda * dL/dR       (the site head's gradient, reversed and scaled)

so one ordinary backward pass of ``CE(label) + CE(site)`` trains the site head to *find* the site and the features
to *hide* it. ``lambda`` grows from 0 to ``lambda_max`` with training progress ``p`` in [0, 1], because the site
head's gradient is noise while the site head is still untrained (their Eq. 14)::

    lambda_p = lambda_max * (2 / (1 + exp(-10 p)) - 1)

Here both sites carry labels (the chapter's confounded training set), so the label loss uses every image.

Reference: Ganin & Lempitsky (2015), Unsupervised domain adaptation by backpropagation, ICML (arXiv:1409.7495);
the schedule is their Section 5.2.

Example
-------
>>> import torch
>>> f = torch.ones(2, 3, requires_grad=True)
>>> grad_reverse(f, 0.5).sum().backward()
>>> f.grad
tensor([[-0.5000, -0.5000, -0.5000],
        [-0.5000, -0.5000, -0.5000]])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GradReverse", "grad_reverse", "lambda_schedule", "SiteAdversarialModel", "site_adversarial_loss"]


class GradReverse(torch.autograd.Function):
    """Identity on the forward pass; multiplies the incoming gradient by ``-lambda_`` on the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = float(lambda_)
        return x.view_as(x)  # a new tensor node, same values

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.lambda_ * grad_output, None  # no gradient for lambda_


def grad_reverse(x: torch.Tensor, lambda_: float) -> torch.Tensor:
    """Apply :class:`GradReverse`: ``x`` unchanged forward, gradient times ``-lambda_`` backward.

    Raises
    ------
    ValueError
        If ``lambda_`` is negative or not finite (a negative value would *help* the site head through the features).
    """
    if not math.isfinite(float(lambda_)) or float(lambda_) < 0:
        raise ValueError(f"`lambda_` must be a finite number >= 0, got {lambda_!r}")
    return GradReverse.apply(x, float(lambda_))


def lambda_schedule(progress: float, lambda_max: float = 1.0, gamma: float = 10.0) -> float:
    """Ganin & Lempitsky's ramp: ``lambda_max * (2 / (1 + exp(-gamma * p)) - 1)``, 0 at p = 0, ~lambda_max at p = 1.

    Raises
    ------
    ValueError
        If ``progress`` is outside [0, 1].
    """
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"`progress` must lie in [0, 1] (fraction of training done), got {progress!r}")
    return lambda_max * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


class SiteAdversarialModel(nn.Module):
    """A classifier with ``features`` and ``head``, plus a site head behind a gradient reversal layer.

    Parameters
    ----------
    classifier : nn.Module
        Has ``features`` ((B, ...) -> (B, F)), ``head`` ((B, F) -> (B, K)) and ``feature_dim`` (F).
    n_sites : int
    hidden : int
        Units of the site head's hidden layer (a small MLP, as in the paper's domain classifier).

    ``forward(x, lambda_)`` returns ``(label_logits (B, K), site_logits (B, n_sites))``; ``predict(x)`` only the
    label logits, so the trained model is used like any classifier.
    """

    def __init__(self, classifier: nn.Module, n_sites: int = 2, hidden: int = 32):
        super().__init__()
        self.classifier = classifier
        self.site_head = nn.Sequential(nn.Linear(classifier.feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_sites))

    def forward(self, x: torch.Tensor, lambda_: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.classifier.features(x)  # (B, F)
        return self.classifier.head(features), self.site_head(grad_reverse(features, lambda_))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


def site_adversarial_loss(model: SiteAdversarialModel, x: torch.Tensor, labels: torch.Tensor, sites: torch.Tensor,
                          lambda_: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``CE(label) + CE(site)``, the site term's gradient reversed into the features by ``lambda_``.

    Returns
    -------
    total, label_loss, site_loss : scalar tensors
        ``total`` is what to back-propagate; a site loss near ``log(n_sites)`` means the site is hidden.
    """
    if labels.shape != sites.shape or labels.shape != x.shape[:1]:
        raise ValueError(f"`labels` (shape {tuple(labels.shape)}) and `sites` (shape {tuple(sites.shape)}) must "
                         f"both have shape (B,) = ({x.shape[0]},)")
    label_logits, site_logits = model(x, lambda_)
    label_loss = F.cross_entropy(label_logits, labels)
    site_loss = F.cross_entropy(site_logits, sites)
    return label_loss + site_loss, label_loss, site_loss
