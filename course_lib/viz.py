"""Figures used across the course: image grids, mask and contour overlays, training curves.

Every function draws on a Matplotlib axis (or creates a figure) and returns it, so notebooks
can add titles and save figures. Images are ``(H, W)`` grey or ``(H, W, 3)`` RGB arrays or
tensors (``(C, H, W)`` tensors are moved to channels-last).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from skimage.segmentation import find_boundaries

__all__ = ["to_image", "show_images", "overlay_mask", "overlay_contours", "plot_history"]


def to_image(x) -> np.ndarray:
    """Return an ``(H, W)`` or ``(H, W, 3)`` float array for ``imshow`` from an array or tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = np.moveaxis(x, 0, -1)  # (C, H, W) -> (H, W, C)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3):
        raise ValueError(f"cannot show an array of shape {x.shape} as an image")
    return x


def show_images(images, titles=None, *, ncols: int = 4, cmap: str = "gray", size: float = 2.5, axes=None):
    """Show a list of images in a grid; returns the array of axes."""
    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    nrows = math.ceil(len(images) / ncols)
    if axes is None:
        _, axes = plt.subplots(nrows, min(ncols, len(images)), figsize=(size * min(ncols, len(images)),
                                                                          size * nrows), squeeze=False)
    axes = np.atleast_1d(axes).ravel()
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k < len(images):
            ax.imshow(to_image(images[k]), cmap=cmap)
            if titles is not None:
                ax.set_title(titles[k], fontsize=9)
    return axes


def overlay_mask(image, mask, *, color=(1.0, 0.2, 0.2), alpha: float = 0.4, ax=None, title=None):
    """Draw ``mask`` (H, W) as a translucent colour over ``image``."""
    image, mask = to_image(image), np.asarray(to_image(mask)) > 0.5
    if mask.shape != image.shape[:2]:
        raise ValueError(f"`mask` (shape {mask.shape}) must match `image` (shape {image.shape[:2]})")
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    ax.imshow(image, cmap="gray")
    layer = np.zeros((*mask.shape, 4))
    layer[mask] = (*color, alpha)
    ax.imshow(layer)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def overlay_contours(image, masks: dict, *, ax=None, title=None):
    """Draw the outlines of several masks in different colours, e.g. ``{"target": t, "pred": p}``."""
    image = to_image(image)
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    rgb = (rgb - rgb.min()) / max(float(rgb.max() - rgb.min()), 1e-12)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = []
    for k, (name, mask) in enumerate(masks.items()):
        mask = np.asarray(to_image(mask)) > 0.5
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"mask {name!r} (shape {mask.shape}) must match the image (shape {rgb.shape[:2]})")
        edge = find_boundaries(mask, mode="inner")  # one-pixel outline inside the mask
        color = np.array(plt.matplotlib.colors.to_rgb(colors[k % len(colors)]))
        rgb = rgb.copy()
        rgb[edge] = color
        handles.append(plt.Line2D([], [], color=color, label=name))
    ax.imshow(rgb)
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.7)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_history(histories: dict, keys=("train_loss", "val_loss"), *, ax=None, title=None):
    """Plot training curves of one or more runs: ``{"BCE": history_a, "Dice": history_b}``."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    for label, history in histories.items():
        metrics = history.metrics if hasattr(history, "metrics") else history
        for key in keys:
            if key in metrics:
                ax.plot(range(1, len(metrics[key]) + 1), metrics[key], label=f"{label}: {key}")
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax
