"""DualNet: two complete networks, their output features concatenated, one prediction.

The lecture's third fusion ("concat output features of two models with single prediction")::

    pa      (B, 1, H, W) -> backbone_pa      -> pooled features (B, F) \\
                                                                        concat (B, 2F) -> linear -> (B, L)
    lateral (B, 1, H, W) -> backbone_lateral -> pooled features (B, F) /

Each view gets a whole network of its own (PA and lateral look nothing alike, so sharing filters buys
little), and the views meet only at the very end, in one linear layer: "late fusion".

Missing view: its network is not run and its half of the concatenated vector is zeros. Pooled features
come after a ReLU, so an all-zero half is the "nothing seen at all" point; a model trained only on
complete studies has never seen it, which is why its logits shift when a view goes missing — train with
``view_dropout`` to teach the head what a zero half means.

References
----------
Rubin et al. (2018). Large scale automated reading of frontal and lateral chest X-rays using dual
convolutional neural networks. arXiv:1804.07839. Hashir, Bertrand & Cohen (2020). Quantifying the value
of lateral views in deep learning for chest X-rays. MIDL, arXiv:2002.02582 ("DualNet").
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.chest_xray.backbones import make_backbone
from course_lib.chest_xray.fusion import VIEWS, TwoViewModel, encode_present

__all__ = ["DualNet", "view_features"]


def view_features(nets: nn.ModuleDict, pa: torch.Tensor, lateral: torch.Tensor,
                  present: torch.Tensor) -> torch.Tensor:
    """Pooled features of each present view, zeros for missing ones: (B, 2, F) in the order [pa, lateral]."""
    images = (pa, lateral)
    encoders = [nn.Sequential(nets[v].features, nets[v].pool) for v in VIEWS]  # shares the modules, no copy
    return torch.stack([encode_present(encoders[k], images[k], present[:, k]) for k in range(len(VIEWS))], dim=1)


class DualNet(TwoViewModel):
    """A backbone per view, pooled features concatenated, one linear classifier.

    Parameters
    ----------
    num_labels : int
    backbone : {"small", "densenet121"}
    view_dropout : float
        See :func:`course_lib.chest_xray.fusion.drop_views`.
    **backbone_kwargs
        Passed to the backbone builder.

    Examples
    --------
    >>> model = DualNet(5, width=8)
    >>> x = torch.rand(3, 1, 64, 64)
    >>> model(x, x, torch.tensor([[True, True], [True, False], [False, True]])).shape
    torch.Size([3, 5])
    """

    def __init__(self, num_labels: int, backbone: str = "small", *, view_dropout: float = 0.0, **backbone_kwargs):
        super().__init__(num_labels, view_dropout)
        self.nets = nn.ModuleDict({v: make_backbone(backbone, num_labels, 1, **backbone_kwargs) for v in VIEWS})
        for net in self.nets.values():
            net.classifier = nn.Identity()  # one prediction from both views: the per-view classifiers go
        self.classifier = nn.Linear(2 * self.nets["pa"].num_features, num_labels)

    def fuse(self, pa, lateral, present):
        features = view_features(self.nets, pa, lateral, present)  # (B, 2, F)
        return self.classifier(features.flatten(1))  # (B, 2F) -> (B, L)
