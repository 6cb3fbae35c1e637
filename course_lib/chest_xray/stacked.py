"""Stacked: combine the two views right at the input, as channels of one image.

The lecture's first fusion and the cheapest: one network, whose first convolution sees PA and lateral as
two channels of the same picture::

    [pa, lateral(, present_pa, present_lateral)] (B, 2 or 4, H, W) -> one backbone -> (B, L) logits

The catch: the two projections are not spatially aligned (pixel (i, j) of the PA and of the lateral are
different places in the body), so the first filters mix unrelated pixels, and everything the network
learns about "where" must survive that. In practice it still learns (Hashir et al. 2020 found all fusions
about equal once tuned), because later layers see most of the image anyway.

Missing view: its channel is zeros. With ``presence_channels=True`` (the default) two extra constant
channels (1 present / 0 missing) tell the network *why* a channel is black, so "missing" is not confused
with "very dense"; train with ``view_dropout`` so that it has seen missing views at all.

References
----------
Hashir, Bertrand & Cohen (2020). Quantifying the value of lateral views in deep learning for chest
X-rays. MIDL, arXiv:2002.02582 ("Stacked").
"""

from __future__ import annotations

import torch

from course_lib.chest_xray.backbones import make_backbone
from course_lib.chest_xray.fusion import TwoViewModel

__all__ = ["Stacked"]


class Stacked(TwoViewModel):
    """One backbone on the views stacked as input channels.

    Parameters
    ----------
    num_labels : int
    backbone : {"small", "densenet121"}
    presence_channels : bool
        Append one constant channel per view: 1 where the view is present, 0 where it is missing.
    view_dropout : float
        See :func:`course_lib.chest_xray.fusion.drop_views`.
    **backbone_kwargs
        Passed to the backbone builder.

    Examples
    --------
    >>> model = Stacked(5, width=8)
    >>> x = torch.rand(2, 1, 64, 64)
    >>> model(x, x, torch.tensor([[True, True], [True, False]])).shape
    torch.Size([2, 5])
    """

    def __init__(self, num_labels: int, backbone: str = "small", *, presence_channels: bool = True,
                 view_dropout: float = 0.0, **backbone_kwargs):
        super().__init__(num_labels, view_dropout)
        self.presence_channels = presence_channels
        self.net = make_backbone(backbone, num_labels, 4 if presence_channels else 2, **backbone_kwargs)

    def fuse(self, pa, lateral, present):
        channels = [pa, lateral]  # missing views are already zeros
        if self.presence_channels:
            planes = present.to(pa.dtype)[:, :, None, None].expand(-1, -1, *pa.shape[2:])  # (B, 2) -> (B, 2, H, W)
            channels.append(planes)
        return self.net(torch.cat(channels, dim=1))  # (B, 2 or 4, H, W) -> (B, L)
