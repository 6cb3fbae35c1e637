"""ActDiff (Viviano et al. 2019): the same features whatever lies outside the ROI.

Make a copy of each image whose pixels outside the region of interest are replaced, run both through the network,
and penalise the distance between their feature vectors (the penultimate activations)::

    x_masked = roi * x + (1 - roi) * fill
    L = CE(y, f(x)) + lambda * || features(x) - features(x_masked) ||²

If the features cannot tell ``x`` from ``x_masked``, nothing outside the ROI reaches the classifier. Unlike RRR and
GradMask this constrains what the model *computes*, not a gradient, so it needs no second-order backward pass.

``fill`` decides what replaces the outside: ``"shuffle"`` takes it from another image of the batch (the next one,
cyclically), so the copy still looks like a real image but with another image's site artefacts; ``"zeros"``
blanks it; a tensor gives the replacement pixels directly.

Reference: Viviano, Simpson, Dutil, Bengio & Cohen (2019), Saliency is a possible red herring when diagnosing
poor generalization (first titled "Underwhelming generalization improvements from controlling feature
attribution"), arXiv:1910.00199.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.confounders.rrr import check_mask

__all__ = ["masked_copy", "actdiff_loss"]


def masked_copy(x: torch.Tensor, roi: torch.Tensor, fill="shuffle") -> torch.Tensor:
    """``x`` with the pixels outside ``roi`` replaced: (B, C, H, W) -> (B, C, H, W).

    Parameters
    ----------
    x : (B, C, H, W) float tensor
    roi : (B, 1 or C, H, W) bool tensor
    fill : {"shuffle", "zeros"} or tensor broadcastable to ``x``
        ``"shuffle"``: the outside of image ``(b + 1) % B``; ``"zeros"``: 0.

    Raises
    ------
    ValueError
        On an unknown ``fill`` or one that does not broadcast to ``x``.
    """
    check_mask(x, roi)
    if isinstance(fill, str):
        if fill == "shuffle":
            fill = torch.roll(x, shifts=-1, dims=0)  # image b takes the outside of image b + 1
        elif fill == "zeros":
            fill = torch.zeros_like(x)
        else:
            raise ValueError(f"`fill` must be 'shuffle', 'zeros' or a tensor, got {fill!r}")
    try:
        fill = torch.broadcast_to(torch.as_tensor(fill, dtype=x.dtype), x.shape)
    except RuntimeError:
        raise ValueError(f"`fill` (shape {tuple(fill.shape)}) must broadcast to `x` (shape {tuple(x.shape)})") from None
    return torch.where(roi, x, fill)


def actdiff_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, roi: torch.Tensor, lambda_: float,
                 fill="shuffle") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy on ``x`` plus ``lambda_`` times the squared feature distance to its masked copy.

    Parameters
    ----------
    model : nn.Module
        Has ``features`` ((B, ...) -> (B, F)) and ``head`` ((B, F) -> (B, K)).
    x : (B, C, H, W) float tensor
    y : (B,) int64 tensor
    roi : (B, 1 or C, H, W) bool tensor
    lambda_ : float >= 0
    fill : see :func:`masked_copy`

    Returns
    -------
    total, cross_entropy, penalty : scalar tensors
        ``penalty`` = mean over images of ``sum((features(x) - features(x_masked))²)``.
    """
    if y.shape != x.shape[:1]:
        raise ValueError(f"`y` (shape {tuple(y.shape)}) must have shape (B,) = ({x.shape[0]},)")
    if lambda_ < 0:
        raise ValueError(f"`lambda_` must be >= 0, got {lambda_}")
    x_masked = masked_copy(x, roi, fill)
    both = model.features(torch.cat([x, x_masked]))  # (2B, F): one pass, same batch-norm statistics if any
    features, features_masked = both[: len(x)], both[len(x):]
    penalty = (features - features_masked).pow(2).sum(1).mean()  # (B, F) -> (B,) -> scalar
    cross_entropy = F.cross_entropy(model.head(features), y)
    return cross_entropy + lambda_ * penalty, cross_entropy, penalty
