"""GradMask (Simpson et al. 2019): penalise the saliency of the class contrast outside the ROI.

For a two-class model, the *contrast* is the difference of the two logits, ``z_1 − z_0`` (the log-odds of class 1).
Its input gradient is the saliency map of the decision itself; GradMask penalises it outside the region of
interest::

    L = CE(y, p) + lambda * || (1 - roi) * d(z_1 - z_0)/dx ||²

Compared with RRR (:mod:`~course_lib.confounders.rrr`), the penalised quantity is the gradient of the logit
*difference* rather than of the summed log-probabilities. For two classes, ``log p_1 + log p_0`` has gradient
``(p_0 - p_1) d(z_1 - z_0)/dx``, which vanishes when the model is unsure (p = 0.5), while the contrast's gradient
does not. The squared L2 norm, summed over pixels and averaged over the batch, is this course's choice (the paper
penalises the saliency magnitude in the same place).

Reference: Simpson, Dutil, Bengio & Cohen (2019), GradMask: reduce overfitting by regularizing saliency, MIDL
abstract (arXiv:1904.07478).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.confounders.rrr import check_penalty_inputs, masked_gradient_penalty

__all__ = ["contrast_input_gradient", "gradmask_loss"]


def contrast_input_gradient(model: nn.Module, x: torch.Tensor, *, create_graph: bool = True
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B, 2) and ``d(z_1 - z_0)/dx`` (shape of ``x``) of a two-class model."""
    x = x.detach().requires_grad_(True)
    logits = model(x)  # (B, 2)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"GradMask's contrast needs a two-class model, (B, 2) logits; got {tuple(logits.shape)}")
    contrast = logits[:, 1] - logits[:, 0]  # (B,) log-odds of class 1
    (grad,) = torch.autograd.grad(contrast.sum(), x, create_graph=create_graph)
    return logits, grad


def gradmask_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, roi: torch.Tensor, lambda_: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy plus ``lambda_`` times the squared contrast saliency outside the ROI.

    Parameters
    ----------
    model : nn.Module
        Two-class model, ``model(x) -> (B, 2)`` logits.
    x : (B, C, H, W) float tensor
    y : (B,) int64 tensor
    roi : (B, 1 or C, H, W) bool tensor, True inside the region of interest
    lambda_ : float >= 0

    Returns
    -------
    total, cross_entropy, penalty : scalar tensors
        ``penalty`` = mean over images of ``sum(((1 - roi) * grad)²)``.

    Raises
    ------
    TypeError, ValueError
        On a non-boolean or mis-shaped ``roi``, a mis-shaped ``y``, ``lambda_ < 0`` or a model without 2 classes.
    """
    check_penalty_inputs(x, y, roi, lambda_)
    logits, grad = contrast_input_gradient(model, x, create_graph=True)
    penalty = masked_gradient_penalty(grad, roi)
    cross_entropy = F.cross_entropy(logits, y)
    return cross_entropy + lambda_ * penalty, cross_entropy, penalty
