"""Range normalisation: divide each image by its own maximum (the lecture's "/max").

Sites differ in their intensity range: one scanner writes its pixels twice as bright as another, and a network
happily reads the brightness as the hospital. Dividing every image by its maximum puts all images on [.., 1]::

    x_normalised = x / max(x)                      per image, over all its channels and pixels

It removes a global *gain* exactly (``max(c * x) = c * max(x)``), so a site that differs only by a gain becomes
invisible. It does nothing against a marker, a border or a texture, and an artefact brighter than the organ (a
bright marker) becomes the maximum itself, so the normalisation then depends on the artefact. The chapter measures
how much that leaves.

Example
-------
>>> import numpy as np
>>> x = np.array([[[[1.0, 2.0], [4.0, 0.0]]], [[[2.0, 4.0], [8.0, 0.0]]]])  # (2, 1, 2, 2): the same image, gain 2
>>> bool(np.allclose(range_normalise(x)[0], range_normalise(x)[1]))
True
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["range_normalise"]


def range_normalise(images):
    """Divide each image of a batch by its own maximum.

    Parameters
    ----------
    images : (B, C, H, W) or (B, H, W) float ndarray or tensor
        A batch; the maximum is taken over everything but the batch axis.

    Returns
    -------
    Same type and shape as ``images``: each image's maximum becomes 1.

    Raises
    ------
    ValueError
        If ``images`` has fewer than 2 axes, or an image's maximum is not positive (nothing to divide by).
    """
    if images.ndim < 2:
        raise ValueError(f"`images` must be a batch (B, ...) of images, got shape {tuple(images.shape)}")
    if isinstance(images, torch.Tensor):
        peak = images.flatten(1).amax(dim=1)  # (B, ...) -> (B,)
        bad = torch.nonzero(~(peak > 0)).flatten().tolist()
        scale = peak.reshape(-1, *[1] * (images.ndim - 1))
    else:
        images = np.asarray(images)
        peak = images.reshape(len(images), -1).max(axis=1)  # (B, ...) -> (B,)
        bad = np.flatnonzero(~(peak > 0)).tolist()
        scale = peak.reshape(-1, *[1] * (images.ndim - 1))
    if bad:
        raise ValueError(f"image(s) {bad[:5]} of `images` have a maximum <= 0: range normalisation divides by it")
    return images / scale
