"""Chapter 1: chest X-rays: the real datasets, and fusing the PA and lateral views.

Data:
    :mod:`~course_lib.chest_xray.images`      radiographs from DICOM, 8/16-bit PNG or JPEG to [0, 1] at 224 px
    :mod:`~course_lib.chest_xray.labels`      NIH, PadChest, CheXpert, MIMIC-CXR label tables; PA + lateral pairs
    :mod:`~course_lib.chest_xray.datasets`    torch Datasets over those tables (single view, paired views)
    :mod:`~course_lib.chest_xray.synthetic`   PA + lateral studies, findings visible in one view or both

Models and evaluation:
    :mod:`~course_lib.chest_xray.backbones`   DenseNet-121 (CheXNet) and a small CNN for quick mode
    :mod:`~course_lib.chest_xray.fusion`      the two-view interface, single-view baselines, view dropout
    :mod:`~course_lib.chest_xray.stacked`, :mod:`~.hemis`, :mod:`~.dualnet`, :mod:`~.auxloss`   the four fusions
    :mod:`~course_lib.chest_xray.evaluation`  AUROC / F1 with bootstrap CIs, the CheXNet reader comparison
    :mod:`~course_lib.chest_xray.saliency`    saliency per view
    :mod:`~course_lib.chest_xray.experiment`  the fusion experiment: settings, one training run per seed
    :mod:`~course_lib.chest_xray.comparison`  seeds pooled: lateral gain against a capacity-matched control,
                                              missing views under both view-dropout regimes
    :mod:`~course_lib.chest_xray.real_data`   the same experiment on real CheXpert / PadChest PA + lateral pairs

=========== ================================================ =============================================
name        model                                            missing view
=========== ================================================ =============================================
``pa``      :class:`~.fusion.SingleView` on the PA           PA missing: output on a black image
``lateral`` :class:`~.fusion.SingleView` on the lateral      lateral missing: output on a black image
``stacked`` :class:`~.stacked.Stacked`: views as channels    zero channel + presence channels
``hemis``   :class:`~.hemis.HeMIS`: mean + var mid-network   left out of the mean and variance
``dualnet`` :class:`~.dualnet.DualNet`: concat features      zero features
``auxloss`` :class:`~.auxloss.AuxLoss`: + per-view losses    the present view's own head
=========== ================================================ =============================================

Every model is called as ``model(pa, lateral, present) -> (B, L) logits`` and trained with
``model.loss(batch)`` on the sample dicts of :class:`course_lib.chest_xray.synthetic.TwoViewDataset` or of
the real-data readers. :func:`make_model` builds one by name.
"""

from __future__ import annotations

from course_lib.chest_xray.auxloss import AuxLoss, auxloss_loss
from course_lib.chest_xray.backbones import Backbone, SmallBackbone, densenet121, make_backbone, small_cnn
from course_lib.chest_xray.dualnet import DualNet
from course_lib.chest_xray.fusion import (
    VIEWS,
    SameViewTwice,
    SingleView,
    TwoViewModel,
    check_views,
    class_weights,
    drop_views,
    masked_bce_with_logits,
    predict_views,
)
from course_lib.chest_xray.hemis import HeMIS, hemis_moments
from course_lib.chest_xray.stacked import Stacked

__all__ = [
    "MODELS", "make_model", "VIEWS", "TwoViewModel", "SingleView", "Stacked", "HeMIS", "DualNet", "AuxLoss",
    "SameViewTwice", "hemis_moments", "auxloss_loss", "masked_bce_with_logits", "class_weights", "check_views",
    "drop_views", "predict_views",
    "Backbone", "SmallBackbone", "densenet121", "small_cnn", "make_backbone",
]

MODELS = ("pa", "lateral", "stacked", "hemis", "dualnet", "auxloss")


def make_model(name: str, num_labels: int, backbone: str = "small", *, view_dropout: float | None = None,
               **kwargs) -> TwoViewModel:
    """Build a two-view model by name.

    Parameters
    ----------
    name : {"pa", "lateral", "stacked", "hemis", "dualnet", "auxloss"}
    num_labels : int
    backbone : {"small", "densenet121"}
    view_dropout : float, optional
        Chance that a complete study loses one view in training. Default: each model's own (0.25 for HeMIS,
        0 for the others); the single-view baselines accept only None or 0.
    **kwargs
        Model options (``presence_channels=``, ``weight=``, ``fallback=``, ``split=``) and backbone options
        (``width=`` for "small", ``weights=`` for "densenet121").

    Examples
    --------
    >>> import torch
    >>> model = make_model("hemis", 5, width=8)
    >>> x = torch.rand(2, 1, 64, 64)
    >>> model(x, torch.zeros_like(x), torch.tensor([[True, False], [True, False]])).shape
    torch.Size([2, 5])
    """
    if name not in MODELS:
        raise ValueError(f"`name` must be one of {MODELS}, got {name!r}")
    if name in ("pa", "lateral"):
        if view_dropout:
            raise ValueError(f"`view_dropout` does not apply to the single-view model {name!r}, got {view_dropout}")
        return SingleView(name, num_labels, backbone, **kwargs)
    builders = {"stacked": Stacked, "hemis": HeMIS, "dualnet": DualNet, "auxloss": AuxLoss}
    if view_dropout is not None:
        kwargs["view_dropout"] = view_dropout
    return builders[name](num_labels, backbone, **kwargs)
