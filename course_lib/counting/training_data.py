"""What a counting net learns from: one Dataset of (image, target) pairs, and the lighting augmentation.

:class:`DensityDataset` is the chapter's only torch Dataset. It takes the images either as arrays in memory (the
synthetic generators) or as :class:`~course_lib.counting.datasets.CountRecord` s read from disk
(:meth:`DensityDataset.from_records`: VGG cells, BBBC005, bone marrow, adipocytes), and makes the target the model
asks for:

* ``"density"`` — the lecture's Gaussian density map (:func:`~course_lib.counting.density.density_map`), times
  ``target_scale``; with per-dot ``classes`` one map per class plus "any nucleus" (K = 1 + n_classes);
* ``"countception"`` — Count-ception's redundant counts (:func:`~course_lib.counting.density.countception_target`);
* ``"count"`` — the count alone, for sets that give a number but no dots (BBBC005): the net is then trained on
  ``sum(output) / target_scale`` against it.

Every item is ``(image (C, h, w) float32, target)``; random crops, flips and :class:`Lighting` are applied to image
and target together (lighting to the image only). Density targets are cropped from the full-image map, so a cell cut
by the crop keeps the share of its mass that lies inside; Count-ception targets count the dots inside the crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from course_lib.counting.datasets import CountRecord, read_image
from course_lib.counting.density import countception_target, density_map, multiclass_density_maps

__all__ = ["Lighting", "image_tensor", "DensityDataset", "TARGETS"]

TARGETS = ("density", "countception", "count")


@dataclass(frozen=True)
class Lighting:
    """Random lighting augmentation: ``image' = gain * ramp(x) * image + offset``, drawn per training sample.

    Microscopes differ in lamp power, exposure, stain strength and how evenly the field is lit; a counting
    net should not depend on them. With ``normalize_input`` the net undoes gain and offset itself; the ramp is what
    remains. Whether an augmentation helps is a question for validation data from another microscope, never for
    the test preset: ch03b's experiment chose its strength on ``OTHER_LAMP``
    (``benchmarks/lighting_on_validation.py``), where none of three strengths beat training without it.
    """

    gain: tuple[float, float] = (0.5, 2.0)  # exposure x stain strength, drawn log-uniformly
    offset: tuple[float, float] = (-0.05, 0.15)  # background level added (unbound dye, camera offset)
    gradient: float = 0.6  # illumination ramp: x(1 - g) at one edge to x(1 + g) at the other

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(C, H, W) -> (C, H, W), one random draw of gain, offset, ramp direction and strength."""
        u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()  # gain, offset, angle, strength
        gain = float(np.exp(np.log(self.gain[0]) + u[0] * (np.log(self.gain[1]) - np.log(self.gain[0]))))
        offset = self.offset[0] + u[1] * (self.offset[1] - self.offset[0])
        h, w = image.shape[-2:]
        angle, strength = 2 * np.pi * u[2], self.gradient * u[3]
        ys = torch.linspace(-1, 1, h)[:, None] * np.sin(angle)
        xs = torch.linspace(-1, 1, w)[None, :] * np.cos(angle)
        ramp = 1.0 + strength * (ys + xs) / np.sqrt(2)  # (H, W), in [1 - g, 1 + g]
        return (gain * ramp * image + offset).to(image.dtype)


def image_tensor(images) -> torch.Tensor:
    """(n, H, W) grey or (n, H, W, 3) RGB images -> a float32 (n, C, H, W) tensor, the networks' layout."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[:, None]  # (n, H, W) -> (n, 1, H, W)
    elif images.ndim == 4 and images.shape[-1] in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # (n, H, W, C) -> (n, C, H, W)
    else:
        raise ValueError(f"`images` must be (n, H, W) or (n, H, W, 3), got shape {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images))


def _size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"`size` must be an int or (H, W) of positive ints, got {size!r}")
    return size


def _file_tensor(path, channels) -> torch.Tensor:
    """(C, H, W) float32 in [0, 1] of an 8- or 16-bit image file, alpha dropped, optionally some channels only."""
    array = read_image(path)
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        array = array.astype(np.float32) / np.iinfo(array.dtype).max
    elif array.dtype == bool:
        array = array.astype(np.float32)
    else:
        raise TypeError(f"{path}: expected an 8- or 16-bit image, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[-1] in (2, 4):
        array = array[..., :-1]  # drop the alpha channel of LA / RGBA files
    image = torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())  # (C, H, W)
    return image if channels is None else image[list(channels)]  # (C, H, W) -> (len(channels), H, W)


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased (a 600 px bone-marrow crop shrunk to 256 px keeps its small nuclei)."""
    resized = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return resized.clamp(0.0, 1.0)  # (1, C, H, W) -> (C, H', W'); the antialiasing kernel can overshoot


class DensityDataset(Dataset):
    """Images and dot annotations -> ``(image (C, h, w), target)`` for a model's target kind.

    Parameters
    ----------
    images : (n, H, W) or (n, H, W, 3) float array
        Grey (fluorescence) or RGB (H&E) images. For image files use :meth:`from_records`.
    dots : list of n (N_i, 2) arrays
        ``(row, col)`` cell centres per image.
    target : {"density", "countception", "count"}
        ``"density"``: Gaussian density x ``target_scale``, (K, h, w) with K = 1, or 1 + n_classes with
        ``classes``. ``"countception"``: (1, h + window - 1, w + window - 1) cells per window. ``"count"``:
        (K,) number of cells (not scaled), for training on counts alone.
    classes : list of n (N_i,) int arrays, optional
        Class of every dot, for multi-class density maps (:func:`multiclass_density_maps`).
    n_classes : int, optional
        Needed with ``classes``.
    sigma, target_scale : float
        Gaussian width (px of the returned image) and the factor the model learns
        (:class:`~course_lib.counting.models.DensityFCN`).
    window : int
        Count-ception window.
    crop : int, optional
        Random ``crop x crop`` training crops.
    flips : bool
        Random horizontal/vertical flips and 90 degree turns (the same for image and target).
    lighting : Lighting, optional
        Random lighting augmentation of the image.

    Attributes
    ----------
    counts : (n,) float64 ndarray
        The true count of every image (all classes together).

    Examples
    --------
    >>> data = DensityDataset(np.zeros((2, 16, 16)), [np.array([[3.0, 4.0]]), np.zeros((0, 2))], target_scale=1.0)
    >>> x, y = data[0]
    >>> tuple(x.shape), tuple(y.shape), round(float(y.sum()), 4), data.counts.tolist()
    ((1, 16, 16), (1, 16, 16), 1.0, [1.0, 0.0])
    """

    def __init__(self, images, dots, *, target: str = "density", classes=None, n_classes: int | None = None,
                 sigma: float = 2.0, target_scale: float = 100.0, window: int = 16, crop: int | None = None,
                 flips: bool = False, lighting: Lighting | None = None):
        images = image_tensor(images)
        if len(dots) != len(images):
            raise ValueError(f"`dots` has {len(dots)} entries for {len(images)} images")
        self._images, self._records = images, None
        self._setup([np.asarray(d, np.float64).reshape(-1, 2) for d in dots], tuple(images.shape[-2:]), target,
                    classes, n_classes, sigma, target_scale, window, crop, flips, lighting)
        if target == "density":  # cheap (one matrix product each), so made once
            self.maps = torch.stack([self._density(i, self._shape) for i in range(len(self))])  # (n, K, H, W)

    @classmethod
    def from_records(cls, records: Sequence[CountRecord], *, size=None, channels: Sequence[int] | None = None,
                     **options) -> DensityDataset:
        """A dataset of image files (:mod:`course_lib.counting.datasets` readers), read when an item is asked for.

        Parameters
        ----------
        records : sequence of CountRecord
            Records without dots (BBBC005) need ``target="count"``.
        size : int or (H, W), optional
            Resize every image (bilinear, antialiased) and its dots (``(p + 0.5) * scale - 0.5``, pixel centres
            to pixel centres), so that a DataLoader can stack them; ``sigma`` is in pixels of this size.
        channels : sequence of int, optional
            Keep these channels, e.g. ``[2]`` for the blue channel of VGG cells.
        **options
            As the constructor (``target``, ``sigma``, ``target_scale`` — default 100 as for the arrays — ...).

        Images are float32 in [0, 1] (8- and 16-bit files), alpha dropped.
        """
        records = list(records)
        if not records:
            raise ValueError("`records` is empty")
        target = options.get("target", "density")
        missing = [r.name for r in records if r.dots is None]
        if missing and target != "count":
            raise ValueError(f"{len(missing)} record(s) have a count but no dots (e.g. {missing[0]!r}, "
                             f"{records[0].dataset}); use target='count' for count regression")
        self = cls.__new__(cls)
        self._images, self._records, self._size, self._channels = None, records, _size(size), channels
        dots = [np.zeros((r.count, 2)) if r.dots is None else np.asarray(r.dots, np.float64).reshape(-1, 2)
                for r in records]  # count-only records: placeholder dots, only their number is used
        self._setup(dots, self._size, target, options.pop("classes", None), options.pop("n_classes", None),
                    **{k: v for k, v in options.items() if k != "target"})
        return self

    def _setup(self, dots, shape, target, classes, n_classes, sigma=2.0, target_scale=100.0, window=16, crop=None,
               flips=False, lighting=None) -> None:
        if target not in TARGETS:
            raise ValueError(f"`target` must be one of {TARGETS}, got {target!r}")
        if classes is not None and (n_classes is None or len(classes) != len(dots)):
            raise ValueError("`classes` needs `n_classes` and one (N_i,) array per image")
        if classes is not None and target == "countception":
            raise ValueError("`classes` (multi-class counting) needs target='density' or 'count'")
        if not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"`sigma` must be a positive number of pixels, got {sigma!r}")
        if not target_scale > 0:
            raise ValueError(f"`target_scale` must be > 0, got {target_scale!r}")
        if crop is not None and shape is not None and not 1 <= crop <= min(shape):
            raise ValueError(f"`crop` must lie in [1, {min(shape)}], got {crop!r}")
        self.dots, self._shape, self.target = dots, shape, target
        self.classes = None if classes is None else [np.asarray(c).reshape(-1) for c in classes]
        self.n_classes, self.sigma, self.target_scale = n_classes, float(sigma), float(target_scale)
        self.window, self.crop, self.flips, self.lighting = window, crop, flips, lighting
        self.counts = np.array([len(d) for d in dots], np.float64)  # (n,) true counts

    def __len__(self) -> int:
        return len(self.dots)

    def _load(self, i: int) -> tuple[torch.Tensor, np.ndarray]:
        """Image i (C, H, W) and its dots (N, 2) in that image's pixels."""
        if self._records is None:
            return self._images[i], self.dots[i]
        image, dots = _file_tensor(self._records[i].image, self._channels), self.dots[i]
        shape = tuple(image.shape[1:])
        if self._size is not None and shape != self._size:
            image = _resize(image, self._size)
            scale = np.array(self._size, np.float64) / np.array(shape, np.float64)
            dots = np.clip((dots + 0.5) * scale - 0.5, -0.5, np.array(self._size) - 0.5)  # (N, 2) in the new grid
        return image, dots

    def _density(self, i: int, shape, dots=None) -> torch.Tensor:
        """(K, H, W) scaled density of image i (K = 1 or 1 + n_classes)."""
        dots = self.dots[i] if dots is None else dots
        if self.classes is None:
            maps = density_map(dots, shape, self.sigma)[None]  # (1, H, W)
        else:
            maps = multiclass_density_maps(dots, self.classes[i], self.n_classes, shape, self.sigma)  # (1 + C, H, W)
        return torch.from_numpy(maps * np.float32(self.target_scale))

    def _count(self, i: int) -> torch.Tensor:
        """(K,) counts of image i: all cells, then each class."""
        if self.classes is None:
            return torch.tensor([self.counts[i]], dtype=torch.float32)
        per_class = np.bincount(self.classes[i], minlength=self.n_classes)
        return torch.tensor([self.counts[i], *per_class], dtype=torch.float32)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, dots = self._load(i)
        h, w = image.shape[-2:]
        if self.crop is not None and not self.crop <= min(h, w):
            raise ValueError(f"`crop` {self.crop} is larger than image {i} ({h} x {w})")
        r0 = c0 = 0
        if self.crop is not None:
            r0 = int(torch.randint(h - self.crop + 1, ()))
            c0 = int(torch.randint(w - self.crop + 1, ()))
            image = image[:, r0:r0 + self.crop, c0:c0 + self.crop]
        if self.target == "count":
            if self.crop is not None:
                raise ValueError("target='count' gives the count of the whole image: use it without `crop`")
            target = self._count(i)
        elif self.target == "density":
            full = self.maps[i] if self._records is None else self._density(i, (h, w), dots)
            target = full[:, r0:r0 + image.shape[-2], c0:c0 + image.shape[-1]]
        else:
            shifted = dots - [r0, c0]  # (N, 2) in crop coordinates
            target = torch.from_numpy(countception_target(shifted, image.shape[-2:], self.window, outside="drop"))[None]
        if self.flips:
            # a flip or transpose of the image moves the dots the same way, and both targets are symmetric in them
            k = torch.randint(8, ()).item()
            maps = target.ndim == 3
            if k & 1:
                image, target = image.flip(-1), target.flip(-1) if maps else target
            if k & 2:
                image, target = image.flip(-2), target.flip(-2) if maps else target
            if k & 4 and image.shape[-1] == image.shape[-2]:
                image, target = image.transpose(-1, -2), target.transpose(-1, -2) if maps else target
        if self.lighting is not None:
            image = self.lighting(image)
        return image.contiguous(), target.contiguous()
