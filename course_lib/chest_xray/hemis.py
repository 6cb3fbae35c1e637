"""HeMIS: one branch per view, then the mean and the variance of their features over the views present.

Hetero-Modal Image Segmentation (Havaei et al. 2016) was built for MRI studies where any subset of the
sequences (T1, T2, FLAIR, ...) may be missing — the lecture's ``f(T1, -, DWI, -)``. Each modality has
its own *back end*; their feature maps are merged by statistics that do not care how many modalities
came, and a shared *front end* predicts from those statistics::

    pa      (B, 1, H, W) -> branch_pa      -> f_pa  (B, C, h, w) \\
                                                                    mean, variance over the present views
    lateral (B, 1, H, W) -> branch_lateral -> f_lat (B, C, h, w) /   -> (B, 2C, h, w) -> 1x1 conv -> (B, C, h, w)
                                                                     -> rest of the backbone -> (B, L)

With weights ``w_v`` = 1 for the present views and ``n = sum_v w_v``::

    mean = sum_v w_v f_v / n        variance = sum_v w_v (f_v - mean)^2 / n

(the population variance, ``ddof=0``: HeMIS sets the variance to zero when a single modality is present,
which this formula gives by itself). The branches are cut at the backbone's ``middle`` stage — "mean of
activations in the middle of the network".

Missing view: its branch is not run and it drops out of the mean and variance; with one view the front
end sees that view's features and a zero variance. Training with ``view_dropout`` (on by default here,
as HeMIS trains with random subsets of modalities) teaches the front end what one view alone looks
like. With no view at all (never in the chapter's data) both statistics are zero and the logits are
the network's prior.

References
----------
Havaei, Guizard, Chapados & Bengio (2016). HeMIS: Hetero-modal image segmentation. MICCAI,
arXiv:1607.05194. Hashir, Bertrand & Cohen (2020). Quantifying the value of lateral views in deep
learning for chest X-rays. MIDL, arXiv:2002.02582 ("HeMIS").
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.chest_xray.backbones import make_backbone
from course_lib.chest_xray.fusion import TwoViewModel, encode_present

__all__ = ["hemis_moments", "HeMIS"]


def hemis_moments(features: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population variance of per-view features over the views that are present.

    Parameters
    ----------
    features : (B, V, ...) float tensor
        One feature tensor per view (any trailing shape, e.g. (C, h, w)).
    present : (B, V) bool tensor

    Returns
    -------
    mean, variance : (B, ...) float tensors
        Zero where no view is present; variance zero where exactly one is.

    Examples
    --------
    >>> f = torch.tensor([[[1.0], [3.0]], [[1.0], [3.0]]])        # (B=2, V=2, 1)
    >>> mean, var = hemis_moments(f, torch.tensor([[True, True], [True, False]]))
    >>> mean.flatten().tolist(), var.flatten().tolist()            # [(1+3)/2, 1], [((1-2)^2+(3-2)^2)/2, 0]
    ([2.0, 1.0], [1.0, 0.0])
    """
    if features.ndim < 2 or present.shape != features.shape[:2]:
        raise ValueError(f"`present` (shape {tuple(present.shape)}) must match the first two axes (B, V) of "
                         f"`features` (shape {tuple(features.shape)})")
    w = present.to(features.dtype).reshape(*present.shape, *([1] * (features.ndim - 2)))  # (B, V, 1, ...)
    n = w.sum(dim=1).clamp(min=1.0)  # (B, 1, ...): avoids 0/0 when no view is present
    mean = (w * features).sum(dim=1) / n  # (B, V, ...) -> (B, ...)
    variance = (w * (features - mean.unsqueeze(1)) ** 2).sum(dim=1) / n
    return mean, variance


class HeMIS(TwoViewModel):
    """Per-view branches up to the backbone's middle, mean + variance over present views, shared rest.

    Parameters
    ----------
    num_labels : int
    backbone : {"small", "densenet121"}
    view_dropout : float
        Chance that a complete study loses one view during training (see
        :func:`course_lib.chest_xray.fusion.drop_views`); 0.25 by default.
    split : str, optional
        Stage after which the branches end (default: the backbone's ``middle``).
    **backbone_kwargs
        Passed to the backbone builder.

    Examples
    --------
    >>> model = HeMIS(5, width=8)
    >>> x = torch.rand(2, 1, 64, 64)
    >>> model(x, x, torch.tensor([[True, True], [False, True]])).shape
    torch.Size([2, 5])
    """

    def __init__(self, num_labels: int, backbone: str = "small", *, view_dropout: float = 0.25,
                 split: str | None = None, **backbone_kwargs):
        super().__init__(num_labels, view_dropout)
        trunk = make_backbone(backbone, num_labels, 1, **backbone_kwargs)
        early_pa, late, channels = trunk.split(split)
        early_lateral, _, _ = make_backbone(backbone, num_labels, 1, **backbone_kwargs).split(split)
        self.branches = nn.ModuleDict({"pa": early_pa, "lateral": early_lateral})
        # mean and variance side by side -> back to the channels the rest of the backbone expects
        self.merge = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                   nn.ReLU(inplace=True))
        self.front = late
        self.pool, self.classifier = trunk.pool, trunk.classifier

    def fuse(self, pa, lateral, present):
        features = torch.stack([encode_present(self.branches["pa"], pa, present[:, 0]),  # (B, C, h, w) each
                                encode_present(self.branches["lateral"], lateral, present[:, 1])], dim=1)
        # (B, 2, C, h, w): one feature map per view, zeros for a missing view
        mean, variance = hemis_moments(features, present)  # (B, C, h, w) each
        x = self.merge(torch.cat([mean, variance], dim=1))  # (B, 2C, h, w) -> (B, C, h, w)
        return self.classifier(self.pool(self.front(x)))  # -> (B, F) -> (B, L)
