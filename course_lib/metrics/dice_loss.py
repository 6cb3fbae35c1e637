r"""Soft Dice loss: Dice made differentiable by replacing the intersection with a dot product.

The lecture's loss, with :math:`p` the target and :math:`\hat p` the predicted probabilities:

.. math::

    DL(p, \hat p) = \frac{2 \sum_i p_i \hat p_i}{\sum_i (p_i + \hat p_i)}, \qquad
    DL_{mean} = \frac{1}{|C|} \sum_{c \in C} DL(p^c, \hat p^c)

and the loss minimised is :math:`1 - DL`. *What maximizes the numerator?* Putting probability
mass exactly where the target is 1: :math:`\sum_i p_i \hat p_i` grows with confident, correct
foreground, while the denominator punishes mass spread anywhere else. Because every class is
normalised by its own size, a tiny foreground weighs as much as a huge background — which is
why Dice trains well under class imbalance where per-pixel cross-entropy is dominated by
background pixels.

Conventions
-----------
* ``input`` holds **logits** of shape ``(B, C, *spatial)``; ``activation`` turns them into
  probabilities: ``"sigmoid"`` (binary or multi-label; works with ``C == 1``), ``"softmax"``
  (mutually exclusive classes; needs ``C >= 2``) or ``None`` (``input`` already holds
  probabilities in [0, 1]).
* ``target`` is either the same shape as ``input`` (binary / one-hot / soft labels in [0, 1]),
  or an integer label map ``(B, *spatial)`` or ``(B, 1, *spatial)`` that is one-hot encoded to
  ``C`` classes.
* ``smooth`` is added to numerator and denominator: it keeps ``0 / 0`` defined (an empty
  target with an empty prediction gives Dice 1, loss 0) and softens the gradient near empty
  masks. Large values (e.g. 1 on tiny objects) bias the loss toward predicting nothing;
  the default 1e-5 follows MONAI.
* The sums run over the spatial axes of each sample and class, giving a ``(B, C)`` Dice;
  ``batch=True`` also sums over the batch (one Dice per class, ``(C,)``), which is more stable
  when many samples have empty targets.

References
----------
Milletari, Navab & Ahmadi (2016). V-Net: fully convolutional neural networks for volumetric
medical image segmentation. 3DV. MONAI ``monai/losses/dice.py`` (``DiceLoss``), used as the test oracle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["soft_dice", "soft_dice_loss", "SoftDiceLoss"]

ACTIVATIONS = ("sigmoid", "softmax", None)
REDUCTIONS = ("mean", "sum", "none")


def _check_tensor(x, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() and torch.isnan(x).any():
        raise ValueError(f"`{name}` (shape {tuple(x.shape)}) contains NaN")


def _target_like(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return ``target`` as a float tensor with the shape of ``input`` (one-hot encoding labels)."""
    _check_tensor(target, "target")
    num_classes = input.shape[1]
    if target.shape == input.shape:
        if target.dtype == torch.bool or not target.is_floating_point():
            target = target.to(input.dtype)
        if target.min() < 0 or target.max() > 1:
            raise ValueError(
                f"`target` (shape {tuple(target.shape)}) has the shape of `input`, so it must hold "
                f"binary / one-hot / soft labels in [0, 1]; found values in "
                f"[{target.min().item()}, {target.max().item()}]"
            )
        return target.to(input.dtype)
    label_shape = (input.shape[0], *input.shape[2:])
    if target.shape == (input.shape[0], 1, *input.shape[2:]):
        target = target[:, 0]
    if target.shape != label_shape:
        raise ValueError(
            f"`target` (shape {tuple(target.shape)}) must have the shape of `input` "
            f"{tuple(input.shape)} or be a label map of shape {label_shape}"
        )
    if target.is_floating_point():
        if not torch.equal(target, target.round()):
            raise ValueError(f"`target` label map (shape {tuple(target.shape)}) must hold integer labels")
        target = target.long()
    if num_classes == 1:
        raise ValueError(
            f"`input` has one channel (shape {tuple(input.shape)}): give a binary `target` of the same shape "
            "instead of a label map"
        )
    if target.min() < 0 or target.max() >= num_classes:
        raise ValueError(
            f"`target` labels lie in [{target.min().item()}, {target.max().item()}], "
            f"outside [0, {num_classes}) for `input` with {num_classes} channels"
        )
    # (B, *spatial) -> (B, *spatial, C) -> (B, C, *spatial)
    return F.one_hot(target.long(), num_classes).movedim(-1, 1).to(input.dtype)


def soft_dice(probs: torch.Tensor, target: torch.Tensor, *, smooth: float = 1e-5, batch: bool = False):
    """Soft Dice coefficient of probabilities against targets of the same shape.

    Parameters
    ----------
    probs, target : (B, C, *spatial) Tensor
        Probabilities and (binary / one-hot / soft) targets in [0, 1].
    smooth : float
        Added to numerator and denominator.
    batch : bool
        Also sum over the batch axis.

    Returns
    -------
    (B, C) Tensor, or (C,) if ``batch``
    """
    reduce_axes = list(range(2, probs.ndim))
    if batch:
        reduce_axes = [0, *reduce_axes]
    intersection = torch.sum(probs * target, dim=reduce_axes)  # (B, C) or (C,)
    denominator = torch.sum(probs, dim=reduce_axes) + torch.sum(target, dim=reduce_axes)
    return (2.0 * intersection + smooth) / (denominator + smooth)


def soft_dice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    activation: str | None = "sigmoid",
    smooth: float = 1e-5,
    batch: bool = False,
    include_background: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Soft Dice loss ``1 - DL`` for binary or multi-class segmentation (differentiable).

    Parameters
    ----------
    input : (B, C, *spatial) Tensor
        Logits (or probabilities if ``activation=None``).
    target : (B, C, *spatial) or (B, [1,] *spatial) Tensor
        Binary / one-hot / soft targets, or integer labels (see module docstring).
    activation : {"sigmoid", "softmax", None}
    smooth : float
        Non-negative smoothing term (see module docstring).
    batch : bool
        Sum over the batch before dividing.
    include_background : bool
        If False, channel 0 is dropped after the activation (not allowed with one channel).
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over samples and classes — the lecture's multi-class mean;
        ``"none"`` returns the per-(sample, class) losses.

    Returns
    -------
    Tensor
        Scalar, or ``(B, C)`` / ``(C,)`` with ``reduction="none"``.

    Raises
    ------
    ValueError
        Wrong shapes, labels out of range, NaN, softmax on one channel, unknown options.
    TypeError
        Inputs that are not tensors or ``input`` that is not floating point.

    Examples
    --------
    >>> logits = torch.tensor([[[10.0, -10.0, 10.0, -10.0]]])   # (B=1, C=1, N=4)
    >>> target = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    >>> round(soft_dice_loss(logits, target).item(), 4)          # near-perfect prediction
    0.0
    """
    _check_tensor(input, "input")
    if not input.is_floating_point():
        raise TypeError(f"`input` must be a floating point tensor of logits, got dtype {input.dtype}")
    if input.ndim < 3:
        raise ValueError(
            f"`input` must have shape (B, C, *spatial), got {tuple(input.shape)}; "
            "add a channel axis with `input.unsqueeze(1)` for a binary mask"
        )
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {ACTIVATIONS}, got {activation!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}")
    if smooth < 0:
        raise ValueError(f"`smooth` must be >= 0, got {smooth}")
    if activation == "softmax" and input.shape[1] == 1:
        raise ValueError(
            f"`activation='softmax'` on one channel (input shape {tuple(input.shape)}) is always 1; "
            "use 'sigmoid' for binary segmentation"
        )
    target = _target_like(input, target)

    if activation == "sigmoid":
        probs = torch.sigmoid(input)
    elif activation == "softmax":
        probs = torch.softmax(input, dim=1)
    else:
        if input.min() < 0 or input.max() > 1:
            raise ValueError("`activation=None` needs probabilities in [0, 1] as `input`")
        probs = input
    if not include_background:
        if probs.shape[1] == 1:
            raise ValueError("`include_background=False` needs at least two channels")
        probs, target = probs[:, 1:], target[:, 1:]

    loss = 1.0 - soft_dice(probs, target, smooth=smooth, batch=batch)  # (B, C) or (C,)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class SoftDiceLoss(nn.Module):
    """Module wrapper of :func:`soft_dice_loss`, for ``fit(loss_fn=SoftDiceLoss())``."""

    def __init__(self, *, activation="sigmoid", smooth=1e-5, batch=False, include_background=True,
                 reduction="mean"):
        super().__init__()
        self.kwargs = dict(activation=activation, smooth=smooth, batch=batch,
                           include_background=include_background, reduction=reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_dice_loss(input, target, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
