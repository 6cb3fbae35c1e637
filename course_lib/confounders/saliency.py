"""Saliency: which pixels moved the prediction? Input gradients, integrated gradients, and the share in the ROI.

Input gradient (Simonyan et al. 2014, "vanilla gradient")::

    S(x) = | d z_t / d x |                                    (B, C, H, W), z_t the logit of class t

Integrated gradients (Sundararajan et al. 2017) average the gradient along the straight path from a baseline
``x'`` (here a black image) to ``x`` and multiply by the difference::

    IG(x) = (x - x') * mean_{k=1..m} d z_t / d x  at  x' + (k - 1/2)/m * (x - x')      (midpoint rule)

By the fundamental theorem of calculus along the path, the attributions sum to ``z_t(x) - z_t(x')``
("completeness"); with ``m`` steps the midpoint rule gets there up to an error of order 1/m².

The chapter's question is where a model looks, so one number per image summarises a map::

    share_in_roi = sum(|S| * roi) / sum(|S|)                  (B,)

A model that reads only the organ has a share near 1; one that reads the site marker has less. What such a
number does **not** tell you, the chapter measures: whether a model with more saliency in the ROI also
generalises better (Viviano et al. 2019 found disappointing gains).

The reference implementations are captum's ``Saliency`` and ``IntegratedGradients(method="riemann_middle")``;
the tests check these functions against them.

References
----------
Simonyan, Vedaldi & Zisserman (2014). Deep inside convolutional networks. ICLR workshop, arXiv:1312.6034.
Sundararajan, Taly & Yan (2017). Axiomatic attribution for deep networks. ICML, arXiv:1703.01365.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["input_gradient", "integrated_gradients", "saliency_in_roi"]


def _check_inputs(x: torch.Tensor, target) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"`x` must be a float tensor (B, ...), got {type(x).__name__}"
                        f"{'' if not isinstance(x, torch.Tensor) else ' of dtype ' + str(x.dtype)}")
    if x.ndim < 2:
        raise ValueError(f"`x` must have a batch axis, shape (B, ...), got shape {tuple(x.shape)}")
    target = torch.as_tensor(target, dtype=torch.long)
    if target.ndim == 0:
        target = target.expand(x.shape[0])
    if target.shape != (x.shape[0],):
        raise ValueError(f"`target` (shape {tuple(target.shape)}) must be an int or have shape (B,) = "
                         f"({x.shape[0]},) like the batch of `x`")
    return target


def _logit_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d logits[b, target[b]] / d x[b] for every b: (B, ...). Samples do not interact in eval mode."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)  # (B, K)
        if logits.ndim != 2 or not (0 <= int(target.min()) and int(target.max()) < logits.shape[1]):
            raise ValueError(f"`target` must index the model's {logits.shape[-1]} classes, got values "
                             f"{sorted(set(target.tolist()))[:5]}")
        chosen = logits.gather(1, target[:, None].to(logits.device)).sum()  # sum over the batch: one backward
        (grad,) = torch.autograd.grad(chosen, x)
    return grad


def input_gradient(model: nn.Module, x: torch.Tensor, target, *, absolute: bool = True) -> torch.Tensor:
    """Gradient of the logit of class ``target`` with respect to the input.

    Parameters
    ----------
    model : nn.Module
        ``model(x) -> (B, K)`` logits. Run in eval mode and put back in its previous mode afterwards.
    x : (B, C, H, W) float tensor (any (B, ...) shape works)
    target : int or (B,) int tensor
        Class whose logit is differentiated, one per image or one for all.
    absolute : bool
        Return ``|gradient|`` (the saliency map, as captum's ``Saliency(abs=True)``) or the signed gradient.

    Returns
    -------
    (B, C, H, W) float tensor, detached.

    Raises
    ------
    TypeError
        If ``x`` is not a float tensor.
    ValueError
        If ``x`` has no batch axis or ``target`` does not match the batch or the classes.
    """
    target = _check_inputs(x, target)
    was_training = model.training
    model.eval()
    try:
        grad = _logit_gradient(model, x, target)
    finally:
        model.train(was_training)
    return (grad.abs() if absolute else grad).detach()


def integrated_gradients(model: nn.Module, x: torch.Tensor, target, *, baseline: torch.Tensor | None = None,
                         steps: int = 32) -> torch.Tensor:
    """Integrated gradients of the logit of class ``target``, midpoint rule with ``steps`` points.

    Parameters
    ----------
    model : nn.Module
        ``model(x) -> (B, K)`` logits; run in eval mode.
    x : (B, C, H, W) float tensor
    target : int or (B,) int tensor
    baseline : tensor broadcastable to ``x``, optional
        The reference input ``x'`` (default: zeros, a black image).
    steps : int
        Number of points on the path (at least 2).

    Returns
    -------
    (B, C, H, W) float tensor
        Signed attributions; per image they sum to ``z_t(x) - z_t(x')`` up to O(1/steps²).

    Raises
    ------
    ValueError
        If ``steps < 2`` or ``baseline`` does not broadcast to ``x``.
    """
    target = _check_inputs(x, target)
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"`steps` must be an int >= 2, got {steps!r}")
    baseline = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline, dtype=x.dtype)
    try:
        baseline = torch.broadcast_to(baseline, x.shape)
    except RuntimeError:
        raise ValueError(f"`baseline` (shape {tuple(baseline.shape)}) must broadcast to `x` (shape "
                         f"{tuple(x.shape)})") from None
    x, baseline = x.detach(), baseline.detach()
    was_training = model.training
    model.eval()
    total = torch.zeros_like(x)
    try:
        for k in range(steps):
            alpha = (k + 0.5) / steps  # midpoint of the k-th of `steps` equal intervals of [0, 1]
            total += _logit_gradient(model, baseline + alpha * (x - baseline), target)
    finally:
        model.train(was_training)
    return ((x - baseline) * total / steps).detach()


def saliency_in_roi(saliency: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
    """Share of each map's absolute saliency that falls inside the region of interest.

    Parameters
    ----------
    saliency : (B, C, H, W) float tensor
        Any attribution map (signed or not; absolute values are used).
    roi : (B, 1 or C, H, W) bool tensor
        True inside the region of interest.

    Returns
    -------
    (B,) float tensor in [0, 1]
        ``sum(|S| * roi) / sum(|S|)`` per image; an all-zero map gives ``nan`` (no saliency to share).

    Raises
    ------
    ValueError
        If the shapes differ (other than ``roi`` having one channel) or ``roi`` is not boolean.

    Examples
    --------
    >>> s = torch.zeros(1, 1, 4, 4); s[0, 0, 0, 0] = 3.0; s[0, 0, 2, 2] = 1.0
    >>> roi = torch.zeros(1, 1, 4, 4, dtype=torch.bool); roi[0, 0, 1:, 1:] = True
    >>> saliency_in_roi(s, roi)
    tensor([0.2500])
    """
    saliency, roi = torch.as_tensor(saliency), torch.as_tensor(roi)
    if roi.dtype != torch.bool:
        raise ValueError(f"`roi` must be a boolean mask, got dtype {roi.dtype}")
    if saliency.ndim != 4 or roi.ndim != 4 or roi.shape[0] != saliency.shape[0] \
            or roi.shape[2:] != saliency.shape[2:] or roi.shape[1] not in (1, saliency.shape[1]):
        raise ValueError(f"`roi` (shape {tuple(roi.shape)}) must match `saliency` (shape {tuple(saliency.shape)}) "
                         "as (B, 1 or C, H, W)")
    mass = saliency.abs()
    inside = (mass * roi).flatten(1).sum(1)  # (B, C, H, W) -> (B,)
    total = mass.flatten(1).sum(1)  # (B,)
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(mass.dtype).tiny), torch.nan)
