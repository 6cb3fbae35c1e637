"""Gradient saliency per view: which pixels of the PA and of the lateral moved a finding's logit?

The lecture's figure shows saliency maps of single-view models: for the flattened diaphragm of emphysema
the lateral model looks at the diaphragm, the PA model has little to look at. For any two-view model
here the same question is one backward pass::

    saliency_view = | d logit_label / d view |        (B, 1, H, W) for the PA and for the lateral

(Simonyan et al. 2014, "vanilla gradient"). Every model zeroes a missing view before using it
(:meth:`course_lib.chest_xray.fusion.TwoViewModel.prepare`), so a missing view's saliency is exactly
zero: it cannot have influenced the prediction. Chapter 5 returns to saliency and its pitfalls.

References
----------
Simonyan, Vedaldi & Zisserman (2014). Deep inside convolutional networks: visualising image
classification models and saliency maps. ICLR workshop, arXiv:1312.6034.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.chest_xray.fusion import check_views

__all__ = ["view_saliency"]


def view_saliency(model: nn.Module, pa: torch.Tensor, lateral: torch.Tensor, present: torch.Tensor,
                  label: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute gradient of one finding's logit with respect to each view.

    Parameters
    ----------
    model : nn.Module
        A two-view model, ``model(pa, lateral, present) -> (B, L)`` logits. It is run in eval mode (no view
        dropout, batch-norm running statistics) and put back in its previous mode afterwards.
    pa, lateral : (B, 1, H, W) float tensors
    present : (B, 2) bool tensor
    label : int
        Index of the finding (column of the logits).

    Returns
    -------
    saliency_pa, saliency_lateral : (B, 1, H, W) float tensors
        ``|d logit[b, label] / d image[b]|`` per study (studies do not interact in eval mode); zero for a
        missing view.

    Examples
    --------
    >>> from course_lib.chest_xray import make_model
    >>> model = make_model("dualnet", 5, width=8)
    >>> x = torch.rand(2, 1, 64, 64); present = torch.tensor([[True, True], [True, False]])
    >>> s_pa, s_lat = view_saliency(model, x, x.clone(), present, label=2)
    >>> s_pa.shape, bool(s_lat[1].abs().sum() == 0)
    (torch.Size([2, 1, 64, 64]), True)
    """
    pa, lateral, present = check_views(pa, lateral, present)
    was_training = model.training
    model.eval()
    try:
        pa = pa.detach().clone().requires_grad_(True)
        lateral = lateral.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model(pa, lateral, present)
            if not 0 <= label < logits.shape[1]:
                raise ValueError(f"`label` must lie in [0, {logits.shape[1]}), got {label}")
            grad_pa, grad_lateral = torch.autograd.grad(logits[:, label].sum(), (pa, lateral), allow_unused=True)
    finally:
        model.train(was_training)
    grad_pa = torch.zeros_like(pa) if grad_pa is None else grad_pa  # a single-view model never reads the other
    grad_lateral = torch.zeros_like(lateral) if grad_lateral is None else grad_lateral
    return grad_pa.abs().detach(), grad_lateral.abs().detach()
