"""Networks that count by regression, their loss, their data, and their training loop.

* :class:`DensityFCN` — a U-Net (:class:`course_lib.histology.unet.UNet`) that outputs a density map the
  size of the image; ``count = sum``. Trained with the lecture's loss
  :math:`L = \\sum_{x,y} |F^{gt}(x, y) - F(I)(x, y)|` (:func:`l1_density_loss`).
* :class:`CountCeptionNet` — Count-ception: no pooling, a receptive field of exactly ``window x window``
  pixels, each output predicts how many cells its window holds; ``count = sum / window**2``.

Both end in a ReLU: a density and a count are never negative, and a ReLU can output exactly 0 on the
background. A softplus never does: 0.0001 on each of 16,384 background pixels is already 1.6 cells, and in a
trial on the nuclei task its class channels overcounted by about 10 cells per tile.

Target scale. A Gaussian of ``sigma = 2`` px peaks at :math:`1 / (2 \\pi \\sigma^2) \\approx 0.04` and most
pixels are 0. The L1 gradient is only the *sign* of the error, so the scale of the target sets how far the
output must move, not how hard it is pushed: tiny targets sit below the jitter of Adam's steps, and the ReLU
output collapses to 0 everywhere. :class:`DensityFCN` therefore learns ``target_scale`` (default 100) times the
density and :meth:`DensityFCN.counts` divides it back out. Measured on the quick training set of
:mod:`course_lib.counting.experiment` (20 epochs, seed 0), best validation count MAE for a scale of
1: 9.6 (the output died: every count 0 after the first epoch), 10: 1.6, **100: 0.5**, 1000: 7.3 (peaks of
40 are far to travel in 20 epochs). Count-ception targets are whole numbers of cells already: scale 1.

Multi-class heads. With ``1 + C`` outputs the class channels of :class:`DensityFCN` are by default the "any
nucleus" density times a softmax over classes (``class_head="softmax"``). With one ReLU per channel
(``"independent"``) the class channels of the quick nuclei task died early: the L1 loss pushes every
channel down on the many background pixels before a channel has learnt to tell its class apart, and a dead
ReLU gets no gradient back.

References
----------
Lempitsky & Zisserman (2010). Learning to count objects in images. NeurIPS.
Xie, Noble & Zisserman (2018). Microscopy cell counting and detection with fully convolutional regression
networks. Computer Methods in Biomechanics and Biomedical Engineering — FCN density regression of cells.
Cohen et al. (2017). Count-ception: counting by fully convolutional redundant counting. ICCV workshops —
reference implementation ieee8023/countception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_lib.counting.density import count_from_density, countception_target, multiclass_density_maps
from course_lib.histology.unet import UNet
from course_lib.training import History, fit

__all__ = ["percentile_normalize", "DensityFCN", "CountCeptionNet", "l1_density_loss", "Lighting", "DensityDataset",
           "image_tensor", "train_density_model", "predict_outputs", "predict_counts"]


def percentile_normalize(x: torch.Tensor, low: float = 1.0, high: float = 99.8, eps: float = 1e-6) -> torch.Tensor:
    """Map each image channel's ``low``..``high`` percentiles to 0..1: (B, C, H, W) -> (B, C, H, W).

    The usual first step of microscopy nets (csbdeep/stardist ``normalize``): robust to a few hot pixels,
    and it removes the per-image exposure and background level.
    """
    flat = x.float().flatten(2)  # (B, C, H * W)
    q = torch.quantile(flat, torch.tensor([low / 100, high / 100], device=x.device), dim=2)  # (2, B, C)
    lo, hi = q[0][..., None, None], q[1][..., None, None]  # (B, C, 1, 1)
    return ((x - lo) / (hi - lo + eps)).to(x.dtype)


class DensityFCN(nn.Module):
    """A U-Net regressing ``target_scale`` x the density map; ``counts(output)`` undoes the scale.

    Parameters
    ----------
    in_channels : int
        1 for fluorescence, 3 for H&E.
    out_channels : int
        1 for plain counting; ``1 + n_classes`` for multi-class counting (channel 0 = any nucleus).
    depth, width : int
        U-Net depth (input sides divisible by ``2 ** depth``) and first-block channels.
    target_scale : float
        The net learns ``target_scale * density`` (see the module docstring).
    normalize_input : bool
        Rescale each image channel to its own 1st..99.8th percentile first (:func:`percentile_normalize`), so
        exposure and stain strength do not change what the net sees — the adaptive counterpart of Otsu's
        threshold in the classic pipeline.
    class_head : {"softmax", "independent"}
        With several outputs: ``"softmax"`` makes class channel ``c`` the "any nucleus" density times the
        probability of class ``c`` (a softmax over the class logits), so the class channels are non-negative and
        add up to channel 0. ``"independent"`` gives every channel its own ReLU, the literal reading of the
        lecture, whose class channels can die (see the module docstring).

    Examples
    --------
    >>> net = DensityFCN(1, 1, depth=2, width=4)
    >>> out = net(torch.zeros(2, 1, 32, 32))
    >>> out.shape, bool((out >= 0).all()), net.counts(out).shape
    (torch.Size([2, 1, 32, 32]), True, torch.Size([2, 1]))
    >>> out = DensityFCN(3, 4, depth=2, width=4)(torch.rand(1, 3, 32, 32))  # any + 3 classes
    >>> torch.allclose(out[:, 1:].sum(1), out[:, 0], atol=1e-5)   # the classes share out the "any" density
    True
    """

    target = "density"  # what DensityDataset must produce for this model

    def __init__(self, in_channels: int = 1, out_channels: int = 1, *, depth: int = 2, width: int = 16,
                 target_scale: float = 100.0, normalize_input: bool = True, class_head: str = "softmax"):
        super().__init__()
        if target_scale <= 0:
            raise ValueError(f"`target_scale` must be > 0, got {target_scale!r}")
        if class_head not in ("softmax", "independent"):
            raise ValueError(f"`class_head` must be 'softmax' or 'independent', got {class_head!r}")
        if out_channels == 2 and class_head == "softmax":
            raise ValueError("`out_channels`=2 is one class besides 'any': use 1 output, or class_head='independent'")
        self.unet = UNet(in_channels, out_channels, depth=depth, width=width)
        self.target_scale, self.normalize_input = float(target_scale), normalize_input
        self.out_channels, self.class_head = out_channels, class_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_input:
            x = percentile_normalize(x)
        z = self.unet(x)  # (B, K, H, W)
        if self.out_channels == 1 or self.class_head == "independent":
            return F.relu(z)  # (B, K, H, W) scaled density, >= 0
        any_cell = F.relu(z[:, :1])  # (B, 1, H, W)
        return torch.cat([any_cell, any_cell * z[:, 1:].softmax(dim=1)], dim=1)  # (B, 1 + C, H, W)

    def counts(self, output: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) output -> (B, C) counts (sum over pixels / ``target_scale``)."""
        return count_from_density(output.float(), scale=self.target_scale)

    def density(self, output: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) output -> the density in cells per pixel."""
        return output.float() / self.target_scale


class CountCeptionNet(nn.Module):
    """Count-ception: every output counts the cells in its ``window x window`` input square.

    Stride 1 everywhere, no pooling, no padding inside the net: ``(window - 1) // 2`` 3x3 convolutions, plus a
    2x2 one for an even window, give a receptive field of exactly ``window`` (stacked 3x3 kernels instead of the
    paper's one large kernel: the same window for fewer multiplications). The input is zero-padded by
    ``window - 1`` on every side, so an (H, W) image gives (H + window - 1, W + window - 1) outputs, the grid of
    :func:`~course_lib.counting.density.countception_target` on which every cell is counted ``window ** 2`` times.

    Parameters
    ----------
    in_channels, out_channels : int
    window : int
        Counting square, >= 3; a cell diameter or two (Cohen et al. use 32 px for cells about 10 px wide).
    width : int
        Channels of the hidden layers.
    normalize_input : bool
        :func:`percentile_normalize` each image first, as :class:`DensityFCN` does.

    Examples
    --------
    >>> net = CountCeptionNet(1, 1, window=8, width=4)
    >>> out = net(torch.zeros(2, 1, 20, 20))
    >>> out.shape, net.counts(out).shape
    (torch.Size([2, 1, 27, 27]), torch.Size([2, 1]))
    """

    target = "countception"

    def __init__(self, in_channels: int = 1, out_channels: int = 1, *, window: int = 16, width: int = 16,
                 normalize_input: bool = True):
        super().__init__()
        if not isinstance(window, int) or window < 3:
            raise ValueError(f"`window` must be an int >= 3, got {window!r}")
        self.window, self.out_channels, self.target_scale = window, out_channels, float(window**2)
        self.normalize_input = normalize_input
        kernels = [3] * ((window - 1) // 2) + ([2] if window % 2 == 0 else [])  # receptive field 1 + sum(k - 1)
        layers, c = [], in_channels
        for k in kernels:
            layers += [nn.Conv2d(c, width, k), nn.BatchNorm2d(width), nn.LeakyReLU(0.01)]
            c = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(width, width, 1), nn.LeakyReLU(0.01), nn.Conv2d(width, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_input:
            x = percentile_normalize(x)
        x = F.pad(x, [self.window - 1] * 4)  # (B, C, H, W) -> (B, C, H + 2w - 2, W + 2w - 2)
        return F.relu(self.head(self.features(x)))  # (B, C, H + w - 1, W + w - 1) cells per window

    def counts(self, output: torch.Tensor) -> torch.Tensor:
        """(B, C, H + w - 1, W + w - 1) output -> (B, C) counts (each cell was counted ``window ** 2`` times)."""
        return count_from_density(output.float(), scale=self.target_scale)


def l1_density_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The lecture's :math:`L = \\sum_{x,y} |F^{gt}(x,y) - F(I)(x,y)|`, per image, summed over channels too.

    Parameters
    ----------
    pred, target : (B, C, H, W) tensors of the same shape (never broadcast)
    reduction : {"mean", "sum", "none"}
        ``"none"``: (B,) the lecture's L of each image; ``"mean"``: their mean over the batch (a batch-size
        independent scale); ``"sum"``: their sum. Dividing further by the number of pixels only rescales the
        gradient, which Adam's per-parameter normalisation all but cancels.

    Examples
    --------
    >>> p, t = torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    >>> t[0, 0, 1, 1], t[1, 0] = 2.0, 0.5   # image 0: L = 2;  image 1: L = 9 * 0.5
    >>> l1_density_loss(p, t, "none").tolist(), float(l1_density_loss(p, t))
    ([2.0, 4.5], 3.25)
    """
    if pred.shape != target.shape:
        raise ValueError(f"`pred` (shape {tuple(pred.shape)}) and `target` (shape {tuple(target.shape)}) must match")
    if pred.ndim < 3:
        raise ValueError(f"`pred` must be (B, ..., H, W), got shape {tuple(pred.shape)}")
    per_image = (pred - target).abs().flatten(1).sum(1)  # (B, C, H, W) -> (B,)
    if reduction == "none":
        return per_image
    if reduction == "sum":
        return per_image.sum()
    if reduction == "mean":
        return per_image.mean()
    raise ValueError(f"`reduction` must be 'mean', 'sum' or 'none', got {reduction!r}")


@dataclass(frozen=True)
class Lighting:
    """Random lighting augmentation: ``image' = gain * ramp(x) * image + offset``, drawn per training sample.

    Microscopes differ in lamp power, exposure, stain strength and how evenly the field is lit; a counting
    net should not depend on them. The ranges are broad, generic choices; they were set knowing the ``SHIFTED``
    preset of :mod:`course_lib.counting.synthetic_cells` and span its lamp changes (its dim and out-of-focus cells
    are not imitated). With ``normalize_input`` the net undoes gain and offset itself; the ramp is what remains.
    """

    gain: tuple[float, float] = (0.5, 2.0)  # exposure x stain strength, drawn log-uniformly
    offset: tuple[float, float] = (-0.05, 0.15)  # background level added (unbound dye, camera offset)
    gradient: float = 0.6  # illumination ramp: x(1 - g) at one edge to x(1 + g) at the other, random direction

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
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


class DensityDataset(Dataset):
    """Images and dot annotations -> ``(image (C, h, w), target (K, h', w'))`` for a model's target kind.

    Parameters
    ----------
    images : (n, H, W) or (n, H, W, 3) float array
        Grey (fluorescence) or RGB (H&E) images.
    dots : list of n (N_i, 2) arrays
        ``(row, col)`` cell centres per image.
    target : {"density", "countception"}
        Gaussian density x ``target_scale`` (K = 1, or 1 + n_classes with ``classes``), or Count-ception counts.
    classes : list of n (N_i,) int arrays, optional
        Class of every dot, for multi-class density maps (:func:`multiclass_density_maps`).
    n_classes : int, optional
        Needed with ``classes``.
    sigma, target_scale : float
        Gaussian width (px) and the factor the model learns (see :class:`DensityFCN`).
    window : int
        Count-ception window.
    crop : int, optional
        Random ``crop x crop`` training crops (density targets are cropped from the full-image map, so a cell cut
        by the crop keeps the share of its mass inside; Count-ception targets count the dots inside the crop).
    flips : bool
        Random horizontal/vertical flips and 90 degree turns (the same for image and target).
    lighting : Lighting, optional
        Random lighting augmentation of the image.
    """

    def __init__(self, images, dots, *, target: str = "density", classes=None, n_classes: int | None = None,
                 sigma: float = 2.0, target_scale: float = 100.0, window: int = 16, crop: int | None = None,
                 flips: bool = False, lighting: Lighting | None = None):
        images = image_tensor(images)
        if len(dots) != len(images):
            raise ValueError(f"`dots` has {len(dots)} entries for {len(images)} images")
        if target not in ("density", "countception"):
            raise ValueError(f"`target` must be 'density' or 'countception', got {target!r}")
        if classes is not None and (n_classes is None or len(classes) != len(images)):
            raise ValueError("`classes` needs `n_classes` and one (N_i,) array per image")
        if classes is not None and target != "density":
            raise ValueError("`classes` (multi-class counting) needs target='density'")
        h, w = images.shape[-2:]
        if crop is not None and not 1 <= crop <= min(h, w):
            raise ValueError(f"`crop` must lie in [1, {min(h, w)}], got {crop!r}")
        self.images = images
        self.dots = [np.asarray(d, np.float64).reshape(-1, 2) for d in dots]
        self.target, self.window, self.crop, self.flips, self.lighting = target, window, crop, flips, lighting
        self.counts = np.array([len(d) for d in self.dots], np.float64)  # (n,) true counts
        if target == "density":  # cheap (one matrix product each), so made once
            if classes is None:
                maps = [multiclass_density_maps(d, np.zeros(len(d), np.int64), 1, (h, w), sigma)[:1] for d in self.dots]
            else:
                maps = [multiclass_density_maps(d, c, n_classes, (h, w), sigma) for d, c in zip(dots, classes,
                                                                                                strict=True)]
            self.maps = torch.from_numpy(np.stack(maps) * np.float32(target_scale))  # (n, K, H, W)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[i]
        h, w = image.shape[-2:]
        r0 = c0 = 0
        if self.crop is not None:
            r0 = int(torch.randint(h - self.crop + 1, ()))
            c0 = int(torch.randint(w - self.crop + 1, ()))
            image = image[:, r0:r0 + self.crop, c0:c0 + self.crop]
        if self.target == "density":
            target = self.maps[i][:, r0:r0 + image.shape[-2], c0:c0 + image.shape[-1]]
        else:
            shifted = self.dots[i] - [r0, c0]  # (N, 2) in crop coordinates
            target = torch.from_numpy(countception_target(shifted, image.shape[-2:], self.window, outside="drop"))[None]
        if self.flips:
            # a flip or transpose of the image moves the dots the same way, and both targets are symmetric in them
            k = torch.randint(8, ()).item()
            if k & 1:
                image, target = image.flip(-1), target.flip(-1)
            if k & 2:
                image, target = image.flip(-2), target.flip(-2)
            if k & 4 and image.shape[-1] == image.shape[-2]:
                image, target = image.transpose(-1, -2), target.transpose(-1, -2)
        if self.lighting is not None:
            image = self.lighting(image)
        return image.contiguous(), target.contiguous()


@torch.no_grad()
def predict_outputs(model: nn.Module, images, *, batch_size: int = 16, device=None) -> torch.Tensor:
    """Raw model outputs for (n, H, W) or (n, H, W, 3) images, on the CPU: (n, K, H', W')."""
    x = image_tensor(images)  # (n, C, H, W)
    device = device or next(model.parameters()).device
    model.eval()
    return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


def predict_counts(model: nn.Module, images, *, batch_size: int = 16, device=None) -> np.ndarray:
    """Predicted counts (n, K) of a :class:`DensityFCN` or :class:`CountCeptionNet`; K = output channels."""
    return model.counts(predict_outputs(model, images, batch_size=batch_size, device=device)).numpy()


def _evaluate_count_mae(net: nn.Module, loader, device) -> dict[str, float]:
    """``fit``'s evaluate hook: count MAE on the validation images (called in eval mode, without gradients)."""
    errors = []
    for x, y in loader:
        out = net(x.to(device)).float()
        errors.append((net.counts(out) - net.counts(y.to(device).float())).abs().cpu())  # (B, K)
    errors = torch.cat(errors)  # (n, K); channel 0 = any cell, then the classes
    # the mean over channels: with several classes, selection also rewards counting each class right
    return {"val_count_mae": errors.mean().item()}


def train_density_model(model: nn.Module, train_images, train_dots, val_images, val_dots, *, train_classes=None,
                        val_classes=None, n_classes: int | None = None, sigma: float = 2.0, crop: int | None = 64,
                        flips: bool = True, lighting: Lighting | None = None, loss_fn: Callable | None = None,
                        epochs: int = 20, batch_size: int = 8, lr: float = 2e-3, seed: int = 0, device="cpu",
                        progress: bool = False) -> History:
    """Train a :class:`DensityFCN` or :class:`CountCeptionNet`; keep the weights of the best validation count MAE.

    Training uses random crops, flips and (optionally) ``lighting``; validation uses whole, unaugmented images.
    The weights restored at the end are those of the epoch with the lowest ``val_count_mae`` (count MAE over the
    validation images, averaged over the output channels), so the choice is made on the validation split only.

    Parameters
    ----------
    model : DensityFCN or CountCeptionNet
    train_images, val_images : (n, H, W) or (n, H, W, 3) arrays
    train_dots, val_dots : lists of (N_i, 2) arrays
    train_classes, val_classes : lists of (N_i,) int arrays, optional
        Multi-class counting (with ``n_classes``; the model needs ``1 + n_classes`` outputs).
    sigma : float
        Gaussian width of the density targets.
    loss_fn : callable, optional
        Default :func:`l1_density_loss`; e.g. a :class:`~course_lib.counting.multiclass.MultiClassDensityLoss`.
    epochs, batch_size, lr, seed, device, progress
        As :func:`course_lib.training.fit`.

    Returns
    -------
    History
        With ``train_loss``, ``val_loss`` and ``val_count_mae`` per epoch; ``best_epoch`` is the restored one.
    """
    if getattr(model, "target", None) not in ("density", "countception"):
        raise TypeError(f"`model` must be a DensityFCN or CountCeptionNet, got {type(model).__name__}")
    common = {"target": model.target, "n_classes": n_classes, "sigma": sigma,
              "target_scale": getattr(model, "target_scale", 1.0), "window": getattr(model, "window", 16)}
    train = DensityDataset(train_images, train_dots, classes=train_classes, crop=crop, flips=flips,
                           lighting=lighting, **common)
    val = DensityDataset(val_images, val_dots, classes=val_classes, **common)
    channels = train.maps.shape[1] if model.target == "density" else 1
    if channels != model.out_channels:
        raise ValueError(f"`model` has {model.out_channels} outputs but the targets have "
                         f"{channels} channels (1 + n_classes)")
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(val, batch_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # cosine decay: big steps early, small ones at the end, where the validation MAE settles
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return fit(model, loader, loss_fn or l1_density_loss, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
               val_loader=val_loader,
               evaluate=_evaluate_count_mae, monitor="val_count_mae", monitor_mode="min", seed=seed,
               device=device, progress=progress, desc=type(model).__name__)
