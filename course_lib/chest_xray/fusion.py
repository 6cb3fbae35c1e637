"""What every two-view model shares: input checks, missing views, view dropout, the masked loss.

A two-view model is called as ``model(pa, lateral, present) -> logits (B, L)``:

* ``pa``, ``lateral``: (B, 1, H, W) float images in [0, 1] — the sample format of the chapter's readers;
* ``present``: (B, 2) bool, ``[pa, lateral]``; a missing view arrives as a zero image with ``present`` False.
  The models multiply each view by its presence anyway, so whatever a reader puts in a missing view's
  image never reaches the network (and gradient saliency of a missing view is exactly zero);
* logits, one per finding: apply a sigmoid for probabilities (findings are not exclusive).

Missing views are the chapter's second challenge (the lecture's ``f(T1, -, DWI, -)``): a model trained
on complete studies may never have seen a black lateral. **View dropout** simulates it during training:
with probability ``view_dropout`` a sample that has both views loses one of them (PA or lateral, 50/50),
never both — a study without any image has nothing to predict from. It is off in ``eval()`` mode.

Labels may be partly unknown (CheXpert's uncertain labels, PadChest's unlabelled findings):
:func:`masked_bce_with_logits` averages the binary cross-entropy over the entries whose ``label_mask`` is 1.
CheXNet weighted that loss by class (Rajpurkar et al. 2017): a positive counts ``w+ = |N| / (|P| + |N|)``, a
negative ``w- = |P| / (|P| + |N|)``, with ``|P|``, ``|N|`` the positives and negatives of each finding in the
*training* set (:func:`class_weights`); set a model's ``class_weights`` attribute and its :meth:`~TwoViewModel.loss`
uses them.

:class:`SameViewTwice` is the capacity-matched control of the lateral gain: a fusion that is given the PA in both
of its inputs has the fusion's parameters and training, and no lateral.

This module also holds the simplest model, :class:`SingleView`: the CheXNet-style baseline that reads one
view and ignores the other. The fusions live one per file: :mod:`.stacked`, :mod:`.hemis`,
:mod:`.dualnet`, :mod:`.auxloss`; :func:`course_lib.chest_xray.make_model` builds any of them by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.chest_xray.backbones import Backbone, make_backbone

__all__ = ["VIEWS", "check_views", "drop_views", "encode_present", "masked_bce_with_logits", "class_weights",
           "TwoViewModel", "SingleView", "SameViewTwice", "predict_views"]

VIEWS = ("pa", "lateral")


def check_views(pa, lateral, present) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate a two-view batch and return ``(pa, lateral, present)`` with ``present`` as bool.

    Raises
    ------
    TypeError
        Not tensors, or images that are not floating point.
    ValueError
        Images not (B, C, H, W), ``pa`` and ``lateral`` of different shapes, ``present`` not (B, 2) of
        booleans or {0, 1}.
    """
    for name, x in (("pa", pa), ("lateral", lateral), ("present", present)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    for name, x in (("pa", pa), ("lateral", lateral)):
        if x.ndim != 4:
            raise ValueError(f"`{name}` must have shape (B, C, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {x.dtype}")
    if pa.shape != lateral.shape:
        raise ValueError(f"`lateral` (shape {tuple(lateral.shape)}) must have the same shape as `pa` "
                         f"(shape {tuple(pa.shape)}); resize both views to one size")
    if present.shape != (pa.shape[0], 2):
        raise ValueError(f"`present` must have shape (B, 2) = ({pa.shape[0]}, 2) for [pa, lateral], "
                         f"got {tuple(present.shape)}")
    if present.dtype != torch.bool:
        if not ((present == 0) | (present == 1)).all():
            raise ValueError("`present` must hold booleans or 0/1 values")
        present = present.bool()
    return pa, lateral, present


def drop_views(present: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """View dropout: each sample with both views loses one of them with probability ``p``, never both.

    Parameters
    ----------
    present : (B, 2) bool tensor
    p : float in [0, 1]
    generator : torch.Generator, optional
        Default: the global generator (seeded by ``fit(seed=...)``).

    Returns
    -------
    (B, 2) bool tensor
        A new mask; samples with a single view keep it.

    Examples
    --------
    >>> present = torch.ones(1000, 2, dtype=torch.bool)
    >>> kept = drop_views(present, 0.5, torch.Generator().manual_seed(0))
    >>> bool(kept.any(dim=1).all()), 0.4 < (~kept).any(dim=1).float().mean().item() < 0.6
    (True, True)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"`p` (view dropout) must lie in [0, 1], got {p}")
    both = present.all(dim=1)  # (B,)
    u = torch.rand(present.shape[0], generator=generator, device="cpu").to(present.device)
    drop = both & (u < p)
    drop_lateral = torch.rand(present.shape[0], generator=generator, device="cpu").to(present.device) < 0.5
    out = present.clone()
    out[:, 0] &= ~(drop & ~drop_lateral)
    out[:, 1] &= ~(drop & drop_lateral)
    return out


def encode_present(net: nn.Module, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``net`` applied to the samples whose view is present; zeros for the others.

    Missing views never pass through the branch, so they neither cost time nor shift its batch-norm
    statistics towards black images, and their features (and gradients) are exactly zero.

    Parameters
    ----------
    net : nn.Module
        (b, C_in, H, W) -> (b, ...).
    x : (B, C_in, H, W) tensor
    keep : (B,) bool tensor

    Returns
    -------
    (B, ...) tensor
    """
    if bool(keep.all()):
        return net(x)
    if not bool(keep.any()):  # only the output shape is needed: one image, no gradient, no statistics
        was_training = net.training
        net.eval()
        with torch.no_grad():
            shape = net(x[:1]).shape[1:]
        net.train(was_training)
        return x.new_zeros((x.shape[0], *shape))
    features = net(x[keep])  # (b, ...) for the b present samples
    out = features.new_zeros((x.shape[0], *features.shape[1:]))
    out[keep] = features
    return out


def class_weights(labels, label_mask=None) -> torch.Tensor:
    """CheXNet's class weights from training labels: (2, L) float tensor, row 0 ``w+``, row 1 ``w-``.

    ``w+ = |N| / (|P| + |N|)`` and ``w- = |P| / (|P| + |N|)`` per finding, counting only known labels; a finding
    with no known label gets 0.5 and 0.5 (plain BCE up to a factor 2).

    Parameters
    ----------
    labels : (N, L) array_like of {0, 1}
    label_mask : (N, L) array_like of {0, 1}, optional
        1 where the label is known (default: all).

    Examples
    --------
    >>> class_weights([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]]).tolist()   # 1 of 4, 2 of 4 positive
    [[0.75, 0.5], [0.25, 0.5]]
    """
    y = torch.as_tensor(labels, dtype=torch.float64)
    if y.ndim != 2:
        raise ValueError(f"`labels` must have shape (N, L), got {tuple(y.shape)}")
    m = torch.ones_like(y) if label_mask is None else torch.as_tensor(label_mask, dtype=torch.float64)
    if m.shape != y.shape:
        raise ValueError(f"`label_mask` (shape {tuple(m.shape)}) must have the shape of `labels` {tuple(y.shape)}")
    positives, known = (y * m).sum(0), m.sum(0)  # (L,)
    w_pos = torch.where(known > 0, (known - positives) / known.clamp(min=1), torch.full_like(known, 0.5))
    return torch.stack([w_pos, 1 - w_pos]).float()


def masked_bce_with_logits(logits: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor | None = None,
                           reduction: str = "mean", weights: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy on logits, counting only the labels that are known.

    Parameters
    ----------
    logits : (B, L) float tensor
        Raw scores (no sigmoid applied).
    labels : (B, L) float tensor of {0, 1}
    label_mask : (B, L) float tensor of {0, 1}, optional
        1 where the label is known. Default: all known.
    reduction : {"mean", "sum", "none"}
        ``"mean"``: sum over known entries / their number (0 when none is known); ``"sum"``; ``"none"``:
        (B, L) values, 0 where unknown.
    weights : (2, L) float tensor, optional
        Class weights ``[w+, w-]`` per finding (:func:`class_weights`): each entry's loss is multiplied by
        ``w+`` if its label is 1, by ``w-`` if 0. Default: unweighted.

    Examples
    --------
    >>> logits = torch.zeros(1, 2); labels = torch.tensor([[1.0, 0.0]])
    >>> round(masked_bce_with_logits(logits, labels, torch.tensor([[1.0, 0.0]])).item(), 4)   # log 2
    0.6931
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"`reduction` must be 'mean', 'sum' or 'none', got {reduction!r}")
    if logits.shape != labels.shape:
        raise ValueError(f"`labels` (shape {tuple(labels.shape)}) must have the same shape as `logits` "
                         f"(shape {tuple(logits.shape)})")
    mask = torch.ones_like(labels) if label_mask is None else label_mask.to(logits.dtype)
    if mask.shape != logits.shape:
        raise ValueError(f"`label_mask` (shape {tuple(mask.shape)}) must have the same shape as `logits` "
                         f"(shape {tuple(logits.shape)})")
    labels = labels.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * mask
    if weights is not None:
        if weights.shape != (2, logits.shape[1]):
            raise ValueError(f"`weights` must have shape (2, L) = (2, {logits.shape[1]}), got {tuple(weights.shape)}")
        w = weights.to(device=logits.device, dtype=logits.dtype)
        loss = loss * (labels * w[0] + (1 - labels) * w[1])  # (B, L): w+ where positive, w- where negative
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / mask.sum().clamp(min=1.0)


class TwoViewModel(nn.Module):
    """Base class: checks the inputs, applies view dropout in training, zeroes missing views.

    Subclasses implement ``fuse(pa, lateral, present) -> logits`` and may override :meth:`loss`.
    """

    def __init__(self, num_labels: int, view_dropout: float = 0.0):
        super().__init__()
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"`num_labels` must be a positive int, got {num_labels!r}")
        if not 0.0 <= view_dropout <= 1.0:
            raise ValueError(f"`view_dropout` must lie in [0, 1], got {view_dropout}")
        self.num_labels = num_labels
        self.view_dropout = view_dropout
        self.class_weights: torch.Tensor | None = None  # (2, L) [w+, w-] for the loss, or None: plain BCE

    def prepare(self, pa, lateral, present):
        """Validate, drop views (training only), and zero each missing view's image."""
        pa, lateral, present = check_views(pa, lateral, present)
        if self.training and self.view_dropout > 0:
            present = drop_views(present, self.view_dropout)
        keep = present.to(pa.dtype)[:, :, None, None, None]  # (B, 2) -> (B, 2, 1, 1, 1)
        return pa * keep[:, 0], lateral * keep[:, 1], present

    def fuse(self, pa: torch.Tensor, lateral: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pa: torch.Tensor, lateral: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W), (B, 1, H, W), (B, 2) -> (B, L) logits."""
        return self.fuse(*self.prepare(pa, lateral, present))

    def loss(self, batch: dict) -> torch.Tensor:
        """Masked BCE of the logits on a batch dict (``pa, lateral, present, labels, label_mask``)."""
        logits = self(batch["pa"], batch["lateral"], batch["present"])
        return masked_bce_with_logits(logits, batch["labels"], batch.get("label_mask"), weights=self.class_weights)


class SingleView(TwoViewModel):
    """One network on one view; the other view is ignored (the CheXNet-style baseline).

    Missing view: if the view it reads is missing, the network sees a black image and returns whatever it
    says about one — the same output for every such study (AUROC about 0.5, chance).

    Parameters
    ----------
    view : {"pa", "lateral"}
    num_labels : int
    backbone : str or Backbone
        ``"small"``, ``"densenet121"``, or a built :class:`~course_lib.chest_xray.backbones.Backbone`.
    **backbone_kwargs
        Passed to the builder (``width=``, ``weights=``).

    Examples
    --------
    >>> model = SingleView("pa", 5, width=8)
    >>> x = torch.rand(2, 1, 64, 64); present = torch.tensor([[True, True], [True, False]])
    >>> model(x, torch.zeros_like(x), present).shape
    torch.Size([2, 5])
    """

    def __init__(self, view: str, num_labels: int, backbone: str | Backbone = "small", **backbone_kwargs):
        super().__init__(num_labels)
        if view not in VIEWS:
            raise ValueError(f"`view` must be one of {VIEWS}, got {view!r}")
        self.view = view
        self.net = backbone if isinstance(backbone, Backbone) else make_backbone(backbone, num_labels, 1,
                                                                                 **backbone_kwargs)

    def fuse(self, pa, lateral, present):
        return self.net(pa if self.view == "pa" else lateral)


class SameViewTwice(TwoViewModel):
    """A two-view model that is given the PA in both inputs: the capacity-matched control of the lateral gain.

    It has the wrapped fusion's parameters, training and view dropout, but no lateral information: a fusion's
    gain over PA-only that this control also shows comes from the second network, not from the lateral view.

    Parameters
    ----------
    model : TwoViewModel
        The fusion to feed ``(pa, pa, [present_pa, present_pa])``.

    Examples
    --------
    >>> from course_lib.chest_xray.dualnet import DualNet
    >>> control = SameViewTwice(DualNet(5, width=8))
    >>> x = torch.rand(2, 1, 64, 64)
    >>> torch.equal(control.eval()(x, torch.rand_like(x), torch.ones(2, 2, dtype=torch.bool)),
    ...             control.model(x, x, torch.ones(2, 2, dtype=torch.bool)))
    True
    """

    def __init__(self, model: TwoViewModel):
        if not isinstance(model, TwoViewModel):
            raise TypeError(f"`model` must be a TwoViewModel, got {type(model).__name__}")
        super().__init__(model.num_labels)
        self.model = model

    @property
    def class_weights(self):
        return self.model.class_weights if "model" in self._modules else None

    @class_weights.setter
    def class_weights(self, value):
        if "model" in self._modules:
            self.model.class_weights = value

    @staticmethod
    def _twice(pa, present):
        return pa, pa, present[:, :1].expand(-1, 2)

    def forward(self, pa, lateral, present):
        pa, _, present = check_views(pa, lateral, present)
        return self.model(*self._twice(pa, present))

    def loss(self, batch: dict) -> torch.Tensor:
        pa, lateral, present = self._twice(batch["pa"], batch["present"])
        return self.model.loss({**batch, "pa": pa, "lateral": lateral, "present": present})


@torch.no_grad()
def predict_views(model: nn.Module, loader, device: torch.device | str | None = None, *,
                  drop: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a two-view model over a loader of sample dicts; optionally remove one view from every study.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(pa, lateral, present)``.
    loader : iterable of dicts
        Batches with ``pa, lateral, present, labels`` and optionally ``label_mask``.
    device : optional
        Default: the model's device.
    drop : {None, "pa", "lateral"}
        Remove that view at test time (zero image, ``present`` False) — the robustness test. A study that
        had only that view is left with none.

    Returns
    -------
    scores : (N, L) float tensor
        Sigmoid probabilities.
    labels, label_mask : (N, L) float tensors
    """
    if drop not in (None, *VIEWS):
        raise ValueError(f"`drop` must be None, 'pa' or 'lateral', got {drop!r}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    scores, labels, masks = [], [], []
    for batch in loader:
        pa, lateral, present = batch["pa"].to(device), batch["lateral"].to(device), batch["present"].to(device)
        if drop is not None:
            k = VIEWS.index(drop)
            present = present.clone().bool()
            present[:, k] = False
            pa, lateral = (torch.zeros_like(pa), lateral) if k == 0 else (pa, torch.zeros_like(lateral))
        scores.append(torch.sigmoid(model(pa, lateral, present).float()).cpu())
        labels.append(batch["labels"].float().cpu())
        masks.append(batch.get("label_mask", torch.ones_like(batch["labels"])).float().cpu())
    return torch.cat(scores), torch.cat(labels), torch.cat(masks)
