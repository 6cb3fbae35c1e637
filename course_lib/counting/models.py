"""Networks that count by regression: a density U-Net and Count-ception.

* :class:`DensityFCN` — a U-Net (:class:`course_lib.histology.unet.UNet`) that outputs a density map the
  size of the image; ``count = sum``. Trained with the lecture's loss
  :math:`L = \\sum_{x,y} |F^{gt}(x, y) - F(I)(x, y)|`
  (:func:`~course_lib.counting.density.l1_density_loss`, beside the targets it compares with).
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
:mod:`course_lib.counting.experiment` (96 images then; 20 epochs, seed 0), best validation count MAE for a scale of
1: 9.6 (the output died: every count 0 after the first epoch), 10: 1.6, **100: 0.5**, 1000: 7.3 (peaks of
40 are far to travel in 20 epochs). Count-ception targets are whole numbers of cells already: scale 1.

Multi-class heads. With ``1 + C`` outputs the class channels of :class:`DensityFCN` are by default the "any
nucleus" density times a softmax over classes (``class_head="softmax"``). With one ReLU per channel
(``"independent"``) the class channels of the quick nuclei task died early: the L1 loss pushes every
channel down on the many background pixels before a channel has learnt to tell its class apart, and a dead
ReLU gets no gradient back.

The data these nets learn from (:class:`~course_lib.counting.training_data.DensityDataset`) and the loop that trains
them (:func:`~course_lib.counting.training.train_density_model`) have their own modules.

References
----------
Lempitsky & Zisserman (2010). Learning to count objects in images. NeurIPS.
Xie, Noble & Zisserman (2018). Microscopy cell counting and detection with fully convolutional regression
networks. Computer Methods in Biomechanics and Biomedical Engineering — FCN density regression of cells.
Cohen et al. (2017). Count-ception: counting by fully convolutional redundant counting. ICCV workshops —
reference implementation ieee8023/countception.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.counting.density import count_from_density
from course_lib.histology.unet import UNet

__all__ = ["percentile_normalize", "DensityFCN", "CountCeptionNet"]


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

    target = "density"  # what DensityDataset must produce for this model (training_data.py)

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
