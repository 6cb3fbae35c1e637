"""AuxLoss: DualNet plus a classifier per view, with losses that keep each view's network useful alone.

The lecture's fourth fusion ("three losses; a network for each modality with losses that regularise
each network")::

    pa      -> backbone_pa      -> f_pa  (B, F) -> head_pa      -> logits_pa      (B, L)   L_PA
    lateral -> backbone_lateral -> f_lat (B, F) -> head_lateral -> logits_lateral (B, L)   L_lateral
    concat(f_pa, f_lat) (B, 2F) -> joint head                   -> logits_joint   (B, L)   L_joint

    loss = L_joint + 0.3 * L_PA + 0.3 * L_lateral

In a plain DualNet the joint head may lean on whichever view is easier and leave the other network
half-trained; the auxiliary losses force both networks to predict the findings on their own. Each
auxiliary loss averages only over the studies that have that view (a missing view has nothing to say).

Missing view at test time: with ``fallback=True`` (default) a study with a single view is scored by that
view's own head — the network trained for exactly that situation — and a complete study by the joint
head. With ``fallback=False`` the joint head sees zeros for the missing half, as in :class:`.DualNet`.

References
----------
Hashir, Bertrand & Cohen (2020). Quantifying the value of lateral views in deep learning for chest
X-rays. MIDL, arXiv:2002.02582 ("AuxLoss").
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.chest_xray.backbones import make_backbone
from course_lib.chest_xray.dualnet import view_features
from course_lib.chest_xray.fusion import VIEWS, TwoViewModel, masked_bce_with_logits

__all__ = ["AuxLoss", "auxloss_loss"]


def auxloss_loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor, label_mask: torch.Tensor | None = None,
                 weight: float = 0.3, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``L_joint + weight * L_PA + weight * L_lateral``, each a masked BCE.

    Parameters
    ----------
    outputs : dict
        ``joint``, ``pa``, ``lateral``: (B, L) logits; ``present``: (B, 2) bool — the views the model
        really used (after view dropout), as returned by :meth:`AuxLoss.forward_all`.
    labels, label_mask : (B, L) float tensors
    weight : float
        Weight of each auxiliary loss (0.3 in the lecture).
    class_weights : (2, L) tensor, optional
        CheXNet's ``[w+, w-]`` per finding, applied to every term (:func:`~.fusion.class_weights`).

    Returns
    -------
    scalar tensor
        ``L_PA`` averages over the known labels of studies with a PA only, ``L_lateral`` likewise;
        an auxiliary loss with no such study in the batch is 0.

    Examples
    --------
    >>> z = torch.zeros(2, 1); y = torch.ones(2, 1)   # every logit 0: each BCE is log 2
    >>> out = {"joint": z, "pa": z, "lateral": z, "present": torch.tensor([[True, False], [True, False]])}
    >>> round(auxloss_loss(out, y).item(), 4)          # log 2 * (1 + 0.3 + 0: no lateral view)
    0.9011
    """
    missing = {"joint", *VIEWS, "present"} - set(outputs)
    if missing:
        raise ValueError(f"`outputs` lacks {sorted(missing)}; use AuxLoss.forward_all")
    if weight < 0:
        raise ValueError(f"`weight` must be >= 0, got {weight}")
    mask = torch.ones_like(labels) if label_mask is None else label_mask
    loss = masked_bce_with_logits(outputs["joint"], labels, mask, weights=class_weights)
    for k, view in enumerate(VIEWS):
        view_mask = mask * outputs["present"][:, k, None].to(mask.dtype)  # (B, L): only studies with this view
        loss = loss + weight * masked_bce_with_logits(outputs[view], labels, view_mask, weights=class_weights)
    return loss


class AuxLoss(TwoViewModel):
    """DualNet with a head per view and auxiliary losses.

    Parameters
    ----------
    num_labels : int
    backbone : {"small", "densenet121"}
    weight : float
        Weight of each auxiliary loss.
    fallback : bool
        Score single-view studies with that view's own head (see the module notes).
    view_dropout : float
        See :func:`course_lib.chest_xray.fusion.drop_views`.
    **backbone_kwargs
        Passed to the backbone builder.

    Examples
    --------
    >>> model = AuxLoss(5, width=8)
    >>> x = torch.rand(2, 1, 64, 64); present = torch.tensor([[True, True], [False, True]])
    >>> out = model.forward_all(x, x, present)
    >>> sorted(out), out["joint"].shape, model(x, x, present).shape
    (['joint', 'lateral', 'pa', 'present'], torch.Size([2, 5]), torch.Size([2, 5]))
    """

    def __init__(self, num_labels: int, backbone: str = "small", *, weight: float = 0.3, fallback: bool = True,
                 view_dropout: float = 0.0, **backbone_kwargs):
        super().__init__(num_labels, view_dropout)
        if weight < 0:
            raise ValueError(f"`weight` must be >= 0, got {weight}")
        self.weight, self.fallback = weight, fallback
        # each backbone's own classifier is its view's auxiliary head
        self.nets = nn.ModuleDict({v: make_backbone(backbone, num_labels, 1, **backbone_kwargs) for v in VIEWS})
        self.classifier = nn.Linear(2 * self.nets["pa"].num_features, num_labels)

    def forward_all(self, pa, lateral, present) -> dict[str, torch.Tensor]:
        """All three heads' logits (B, L) and the ``present`` mask actually used."""
        pa, lateral, present = self.prepare(pa, lateral, present)
        features = view_features(self.nets, pa, lateral, present)  # (B, 2, F)
        out = {"joint": self.classifier(features.flatten(1)), "present": present}  # (B, 2F) -> (B, L)
        for k, view in enumerate(VIEWS):
            out[view] = self.nets[view].classifier(features[:, k])  # (B, F) -> (B, L)
        return out

    def forward(self, pa, lateral, present) -> torch.Tensor:
        """(B, L) logits: joint head, or the present view's head for single-view studies (``fallback``)."""
        out = self.forward_all(pa, lateral, present)
        if not self.fallback:
            return out["joint"]
        present = out["present"][:, :, None]  # (B, 2, 1)
        only_pa, only_lateral = present[:, 0] & ~present[:, 1], present[:, 1] & ~present[:, 0]
        return torch.where(only_pa, out["pa"], torch.where(only_lateral, out["lateral"], out["joint"]))

    def loss(self, batch: dict) -> torch.Tensor:
        """:func:`auxloss_loss` on a batch dict."""
        out = self.forward_all(batch["pa"], batch["lateral"], batch["present"])
        return auxloss_loss(out, batch["labels"], batch.get("label_mask"), self.weight, self.class_weights)
