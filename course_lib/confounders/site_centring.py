"""Per-site centring: subtract each site's mean image before the network — the control for subspace alignment.

Subspace alignment (:mod:`~course_lib.confounders.subspace_alignment`) does two things at once: it centres each
site on its own mean image, and it matches the sites' principal axes. It also swaps the classifier (an MLP on ``d``
PCA coordinates instead of the CNN). To see which part moves a model off the site, this control keeps only the
first step and the baseline's network::

    mean_s = mean of the training images of site s         (C, H, W), no labels used
    logits = cnn(x - mean_site(x))                          (B, C, H, W) -> (B, 2)

Like subspace alignment it needs the **site label of every test image** (to know which mean to subtract); the
other methods of the chapter see only the image at test time. An artefact that is the same in every image of a site
(a marker, a frame, a constant background offset) is removed exactly; one that varies from image to image (noise
texture, a gain that multiplies the anatomy) is not.

Example
-------
>>> import torch
>>> from course_lib.confounders.models import SmallCNN
>>> means = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])  # (2, C, H, W): site 1 is brighter by 1
>>> model = SiteCentred(SmallCNN(width=2), means)
>>> x = torch.rand(3, 1, 8, 8)
>>> bool(torch.allclose(model.use_site(0)(x), model.use_site(1)(x + 1.0), atol=1e-6))
True
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["site_means", "SiteCentred"]


def site_means(images: np.ndarray, sites: np.ndarray, n_sites: int = 2) -> np.ndarray:
    """The mean image of each site: (N, C, H, W) images, (N,) int sites -> (n_sites, C, H, W) float32.

    Raises
    ------
    ValueError
        If ``images`` is not (N, C, H, W), ``sites`` is not (N,), or a site has no image.
    """
    images, sites = np.asarray(images), np.asarray(sites)
    if images.ndim != 4:
        raise ValueError(f"`images` must be (N, C, H, W), got shape {images.shape}")
    if sites.shape != images.shape[:1]:
        raise ValueError(f"`sites` (shape {sites.shape}) must have shape (N,) = ({len(images)},)")
    empty = [s for s in range(n_sites) if not np.any(sites == s)]
    if empty:
        raise ValueError(f"`sites` has no image of site(s) {empty}: every site needs a mean")
    return np.stack([images[sites == s].mean(axis=0) for s in range(n_sites)]).astype(np.float32)


class SiteCentred(nn.Module):
    """``net(x - means[site])``; ``forward(x)`` uses the mean of ``site`` (set by :meth:`use_site`).

    Parameters
    ----------
    net : nn.Module
        The classifier, ``(B, C, H, W) -> (B, K)`` (the baseline's CNN).
    means : (n_sites, C, H, W) tensor or ndarray
        Each site's mean training image (:func:`site_means`).

    Notes
    -----
    The input gradient of ``net(x - m)`` with respect to ``x`` is that of ``net`` at ``x - m``: saliency is
    measured on the raw image, as for every other method.
    """

    def __init__(self, net: nn.Module, means):
        super().__init__()
        means = torch.as_tensor(np.asarray(means), dtype=torch.float32)
        if means.ndim != 4:
            raise ValueError(f"`means` must be (n_sites, C, H, W), got shape {tuple(means.shape)}")
        self.net = net
        self.register_buffer("means", means)
        self.site = 0

    def use_site(self, site: int) -> SiteCentred:
        if not 0 <= int(site) < len(self.means):
            raise ValueError(f"`site` must lie in [0, {len(self.means) - 1}], got {site!r}")
        self.site = int(site)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - self.means[self.site])  # (B, C, H, W) - (C, H, W) -> (B, C, H, W)
