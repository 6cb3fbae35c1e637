"""Train one classifier with one of the chapter's methods, and measure it: the glue of the chapter 5 experiment.

:func:`train_method` trains a :class:`~course_lib.confounders.models.SmallCNN` on a
:class:`~course_lib.confounders.synthetic_sites.SiteData` training set with one method:

============== ======================================================================= =====================
method         what changes                                                            hyper-parameter
============== ======================================================================= =====================
``baseline``   nothing: cross-entropy                                                  —
``range_norm`` every image divided by its maximum, inside the model                    —
``centred``    each site's mean training image subtracted, then the same CNN           —
``subspace``   per-site PCA coordinates aligned to site 0 (Fernando et al.) + an MLP   subspace dimension
``grl``        a site head behind a gradient reversal layer, ramped lambda             lambda_max
``rrr``        + lambda ‖(1-roi) ∂/∂x Σ_k log p_k‖²                                    lambda
``gradmask``   + lambda ‖(1-roi) ∂(z_1 - z_0)/∂x‖²                                     lambda
``actdiff``    + lambda ‖features(x) - features(x with the outside replaced)‖²         lambda
============== ======================================================================= =====================

Every method but ``subspace`` uses the same network (:class:`~course_lib.confounders.models.SmallCNN`); ``subspace``
classifies ``d`` PCA coordinates with a small MLP, and ``centred`` is its control with the CNN (per-site centring
only). All use the same data, epochs, batch size and optimiser (:class:`TrainSettings`), and the same seed draws the
same batch order. What each method knows of the site is in :data:`SITE_LABEL_USE`: ``centred`` and ``subspace``
need the site label of every *test* image; ``grl`` uses it in training only; the others never see it.

:func:`evaluate` returns accuracy (at 0.5, and at a threshold chosen on validation data), AUROC and the mean share
of input-gradient saliency inside the ROI on any test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib import config
from course_lib.confounders.actdiff import actdiff_loss
from course_lib.confounders.gradient_reversal import SiteAdversarialModel, lambda_schedule, site_adversarial_loss
from course_lib.confounders.gradmask import gradmask_loss
from course_lib.confounders.models import SmallCNN
from course_lib.confounders.range_normalisation import range_normalise
from course_lib.confounders.rrr import rrr_loss
from course_lib.confounders.saliency import input_gradient, saliency_in_roi
from course_lib.confounders.site_centring import SiteCentred, site_means
from course_lib.confounders.subspace_alignment import SubspaceAlignment
from course_lib.confounders.synthetic_sites import SiteData
from course_lib.metrics import auroc
from course_lib.training import fit

__all__ = ["METHODS", "SITE_LABEL_USE", "TrainSettings", "train_method", "predict_proba", "accuracy_threshold",
           "evaluate", "RangeNormalised", "SiteAligned"]

METHODS = ("baseline", "range_norm", "centred", "subspace", "grl", "rrr", "gradmask", "actdiff")
NO_HYPER = ("baseline", "range_norm", "centred")
# Which methods read the site label, and when: a method that needs it at test time has information the others lack.
SITE_LABEL_USE = {"baseline": "never", "range_norm": "never", "centred": "train + test", "subspace": "train + test",
                  "grl": "training only", "rrr": "never", "gradmask": "never", "actdiff": "never"}


@dataclass(frozen=True)
class TrainSettings:
    width: int = 8  # SmallCNN width: 8-16-32 channels, enough to find the lesion (0.87 at no confound)
    epochs: int = 12  # the baseline's training accuracy has levelled off by then on 600 images
    batch_size: int = 32
    lr: float = 3e-3  # Adam; the same for every method
    mlp_hidden: int = 64  # the subspace-alignment classifier's hidden layer


class RangeNormalised(nn.Module):
    """``net(x / max(x))``: range normalisation as the model's first step, so saliency is w.r.t. the raw image."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(range_normalise(x))


class SiteAligned(nn.Module):
    """An MLP on subspace-aligned coordinates; ``forward(x)`` uses the projection of ``site`` (set by ``use_site``).

    ``projections``: (2, D, d) buffer, ``means``: (2, D): site 1 is the source, site 0 the target.
    """

    def __init__(self, alignment: SubspaceAlignment, hidden: int):
        super().__init__()
        (m_src, w_src), (m_tgt, w_tgt) = alignment.projection("source"), alignment.projection("target")
        self.register_buffer("means", torch.tensor(np.stack([m_tgt, m_src]), dtype=torch.float32))  # (2, D)
        self.register_buffer("projections", torch.tensor(np.stack([w_tgt, w_src]), dtype=torch.float32))
        dim = w_src.shape[1]
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.site = 0

    def use_site(self, site: int) -> SiteAligned:
        self.site = int(site)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1) - self.means[self.site]  # (B, C, H, W) -> (B, D)
        return self.mlp(flat @ self.projections[self.site])  # (B, D) @ (D, d) -> (B, d) -> (B, 2)


def _tensors(data: SiteData):
    return (torch.from_numpy(data.images), torch.from_numpy(data.labels), torch.from_numpy(data.sites),
            torch.from_numpy(data.roi))


def train_method(method: str, data: SiteData, *, hyper: float | None = None, seed: int = 0,
                 settings: TrainSettings = TrainSettings()) -> nn.Module:
    """Train one classifier with ``method`` on ``data``; returns a model ``(B, 1, S, S) -> (B, 2)`` logits.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    data : SiteData
        Training images with labels, sites and ROI masks.
    hyper : float, optional
        The method's hyper-parameter (lambda, or the subspace dimension); required for all but ``baseline``,
        ``range_norm`` and ``centred``, which take none.
    seed : int
        Seeds the weights and the batch order.
    settings : TrainSettings

    Raises
    ------
    ValueError
        On an unknown method or a missing / superfluous hyper-parameter.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    if (hyper is None) != (method in NO_HYPER):
        raise ValueError(f"`hyper` must be {'None' if method in NO_HYPER else 'a number'} for "
                         f"method {method!r}, got {hyper!r}")
    generator = config.seed_everything(seed)
    x, y, site, roi = _tensors(data)
    loader = DataLoader(TensorDataset(x, y, site, roi), batch_size=settings.batch_size, shuffle=True,
                        generator=generator)
    common = dict(epochs=settings.epochs, lr=settings.lr, monitor=None, progress=False, device="cpu", seed=seed)

    if method in ("centred", "subspace"):
        if method == "centred":  # the CNN is built after the seed, exactly as the baseline's: same initial weights
            model = SiteCentred(SmallCNN(width=settings.width), site_means(data.images, data.sites))
        else:
            alignment = SubspaceAlignment(int(hyper)).fit(data.images[data.sites == 1], data.images[data.sites == 0])
            model = SiteAligned(alignment, settings.mlp_hidden)

        def compute_loss(m, batch):  # each site through its own mean / projection
            xb, yb, sb, _ = batch
            logits = torch.empty(len(yb), 2)
            for s in (0, 1):
                rows = sb == s
                if rows.any():
                    logits[rows] = m.use_site(s)(xb[rows])
            return F.cross_entropy(logits, yb)

        fit(model, loader, compute_loss=compute_loss, **common)
        return model.eval()

    net = SmallCNN(width=settings.width)
    if method in ("baseline", "range_norm"):
        model = RangeNormalised(net) if method == "range_norm" else net
        fit(model, loader, compute_loss=lambda m, b: F.cross_entropy(m(b[0]), b[1]), **common)
        return model.eval()
    if method == "grl":
        model = SiteAdversarialModel(net)
        total_steps, step = settings.epochs * len(loader), [0]

        def compute_loss(m, batch):
            lam = lambda_schedule(min(step[0] / max(total_steps - 1, 1), 1.0), lambda_max=hyper)
            step[0] += 1
            return site_adversarial_loss(m, batch[0], batch[1], batch[2], lam)[0]

        fit(model, loader, compute_loss=compute_loss, **common)
        return model.classifier.eval()
    loss = {"rrr": rrr_loss, "gradmask": gradmask_loss, "actdiff": actdiff_loss}[method]
    fit(net, loader, compute_loss=lambda m, b: loss(m, b[0], b[1], b[3], hyper)[0], **common)
    return net.eval()


def _per_site(model: nn.Module, x: torch.Tensor, sites: torch.Tensor, fn):
    """Apply ``fn(model_for_site, rows)`` per site for a model that needs the site (``use_site``), else once;
    reassemble in order."""
    if not isinstance(model, (SiteAligned, SiteCentred)):
        return fn(model, torch.ones(len(x), dtype=torch.bool))
    parts = {}
    for s in (0, 1):
        rows = sites == s
        if rows.any():
            parts[s] = (rows, fn(model.use_site(s), rows))
    first = next(iter(parts.values()))[1]
    out = torch.empty((len(x), *first.shape[1:]), dtype=first.dtype)
    for rows, value in parts.values():
        out[rows] = value
    return out


def predict_proba(model: nn.Module, data: SiteData) -> np.ndarray:
    """P(label = 1) for every image of ``data``: (N,)."""
    x, _, sites, _ = _tensors(data)
    with torch.no_grad():
        logits = _per_site(model.eval(), x, sites, lambda m, rows: m(x[rows]))  # (N, 2)
    return torch.softmax(logits, dim=1)[:, 1].numpy()


def accuracy_threshold(labels: np.ndarray, proba: np.ndarray) -> float:
    """The threshold on P(label = 1) with the highest accuracy on ``labels``: chosen on validation, used on test.

    A model can rank the images well (high AUROC) while its probabilities sit on the wrong side of 0.5: accuracy at
    0.5 then measures calibration, not discrimination. This threshold is the midpoint between two neighbouring
    sorted probabilities (ties: the one nearest 0.5), so it never depends on the test set.

    Parameters
    ----------
    labels : (N,) int array of 0 / 1
    proba : (N,) float array

    Raises
    ------
    ValueError
        If the shapes differ or ``labels`` is empty.
    """
    labels, proba = np.asarray(labels), np.asarray(proba, dtype=np.float64)
    if labels.shape != proba.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"`labels` (shape {labels.shape}) and `proba` (shape {proba.shape}) must be the same (N,), "
                         "N >= 1")
    values = np.unique(proba)  # sorted
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    accuracy = np.array([np.mean((proba > c) == labels) for c in cuts])  # predict 1 above the cut
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])


def evaluate(model: nn.Module, data: SiteData, *, saliency_images: int = 200,
             threshold: float | None = None) -> dict[str, float]:
    """Accuracy, AUROC and the mean share of input-gradient saliency in the ROI on ``data``.

    ``accuracy`` thresholds P(label = 1) at 0.5; with ``threshold`` (from :func:`accuracy_threshold` on a
    validation set) ``accuracy_val_threshold`` is added, thresholded there instead. Saliency is ``|d z_y / d x|``
    for the true class ``y`` (:func:`~course_lib.confounders.saliency.input_gradient`) on the first
    ``saliency_images`` images.
    """
    proba = predict_proba(model, data)
    x, y, sites, roi = _tensors(data)
    k = min(saliency_images, len(y))
    maps = _per_site(model, x[:k], sites[:k], lambda m, rows: input_gradient(m, x[:k][rows], y[:k][rows]))
    share = saliency_in_roi(maps, roi[:k])
    out = {"accuracy": float(np.mean((proba > 0.5) == data.labels)),
           "auroc": float(auroc(data.labels, proba)),
           "saliency_in_roi": float(torch.nanmean(share))}
    if threshold is not None:
        out["accuracy_val_threshold"] = float(np.mean((proba > threshold) == data.labels))
    return out
