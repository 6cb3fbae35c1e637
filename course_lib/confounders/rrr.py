"""Right for the Right Reasons (Ross, Hughes & Doshi-Velez 2017): penalise input gradients outside the ROI.

An annotation matrix ``A`` marks the input features the model must *not* use; here ``A = 1`` outside the region of
interest. The loss adds the squared input gradient of the summed log-probabilities there (their Eq. 1)::

    L = CE(y, p) + lambda * || A * d/dx sum_k log p_k(x) ||²

Three details make it work:

* the gradient is of ``sum_k log p_k`` (the log-*probabilities*, all classes), not of the loss and not of the
  label's logit: it does not depend on the label and does not vanish when the model is confident and right;
* ``create_graph=True``: the penalty is itself a function of the weights through the gradient, and it trains
  only if autograd keeps the graph of that gradient (otherwise it is a constant that adds nothing);
* ``A`` is 1 where the model should not look — inverting the mask penalises the organ instead.

The paper sums the penalty over the examples; here it is summed over the pixels of each image and averaged over
the batch, like the cross-entropy, so that ``lambda`` does not depend on the batch size.

Reference: Ross, Hughes & Doshi-Velez (2017), Right for the right reasons: training differentiable models by
constraining their explanations, IJCAI (arXiv:1703.03717).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["check_mask", "check_penalty_inputs", "masked_gradient_penalty", "log_prob_input_gradient", "rrr_loss"]


def check_mask(x: torch.Tensor, mask: torch.Tensor, name: str = "roi") -> torch.Tensor:
    """Validate a boolean ROI mask against a batch: (B, 1 or C, H, W) for images (B, C, H, W); returns it."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"`{name}` must be a bool tensor (True inside the region of interest), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    same_rank = mask.ndim == x.ndim and mask.shape[0] == x.shape[0] and mask.shape[2:] == x.shape[2:]
    if not same_rank or (x.ndim > 1 and mask.shape[1] not in (1, x.shape[1])):
        raise ValueError(f"`{name}` (shape {tuple(mask.shape)}) must match `x` (shape {tuple(x.shape)}), with 1 or "
                         "the same number of channels")
    return mask


def check_penalty_inputs(x: torch.Tensor, y: torch.Tensor, roi: torch.Tensor, lambda_: float) -> None:
    """The checks every input-gradient penalty loss (RRR, GradMask) makes: ``roi`` and ``y`` match ``x``,
    ``lambda_ >= 0``; raises TypeError/ValueError naming the argument."""
    check_mask(x, roi)
    if y.shape != x.shape[:1]:
        raise ValueError(f"`y` (shape {tuple(y.shape)}) must have shape (B,) = ({x.shape[0]},)")
    if lambda_ < 0:
        raise ValueError(f"`lambda_` must be >= 0, got {lambda_}")


def masked_gradient_penalty(grad: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
    """Mean over images of ``sum((A * grad)²)`` with ``A = ~roi``, 1 where the model must not look.

    ``grad`` is (B, C, H, W), ``roi`` a (B, 1 or C, H, W) bool tensor; returns a scalar tensor.
    """
    outside = (~roi).to(grad.dtype)
    return (outside * grad).pow(2).flatten(1).sum(1).mean()  # (B, C, H, W) -> (B,) -> scalar


def log_prob_input_gradient(model: nn.Module, x: torch.Tensor, *, create_graph: bool = True
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and ``d/dx sum_k log p_k(x)`` for a batch: ((B, K), same shape as ``x``)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)  # (B, K)
    log_probs = F.log_softmax(logits, dim=1)  # (B, K)
    (grad,) = torch.autograd.grad(log_probs.sum(), x, create_graph=create_graph)
    return logits, grad


def rrr_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, roi: torch.Tensor, lambda_: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The RRR loss: cross-entropy plus ``lambda_`` times the input-gradient penalty outside the ROI.

    Parameters
    ----------
    model : nn.Module
        ``model(x) -> (B, K)`` logits.
    x : (B, C, H, W) float tensor
    y : (B,) int64 tensor of class indices
    roi : (B, 1 or C, H, W) bool tensor
        True inside the region of interest; the annotation is ``A = ~roi``.
    lambda_ : float >= 0

    Returns
    -------
    total, cross_entropy, penalty : scalar tensors
        ``penalty`` is the mean over images of ``sum((A * grad)²)``; ``total`` is differentiable in the weights
        (``create_graph=True``).

    Raises
    ------
    TypeError
        If ``roi`` is not boolean.
    ValueError
        If ``roi`` or ``y`` do not match ``x``, or ``lambda_ < 0``.
    """
    check_penalty_inputs(x, y, roi, lambda_)
    logits, grad = log_prob_input_gradient(model, x, create_graph=True)
    penalty = masked_gradient_penalty(grad, roi)
    cross_entropy = F.cross_entropy(logits, y)
    return cross_entropy + lambda_ * penalty, cross_entropy, penalty
