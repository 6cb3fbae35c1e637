r"""From a patch classifier to a fully convolutional network (FCN) for fast whole-tile inference.

Histology is trained *patch-wise*: crop small patches (e.g. 32x32 or 50x50 RGB), label each as tumour or
not, balance the classes, train a small CNN that ends in a ``Linear`` head. To segment a slide, the slow,
obvious way (:func:`predict_patchwise`) crops a patch at every position and classifies it on its own —
neighbouring patches overlap almost entirely, so almost all of that work is repeated.

Long, Shelhamer & Darrell (2015) observed that a ``Linear`` layer reading an (C, F, F) feature map *is* a
convolution with an F x F kernel that happens to be evaluated at one position. Reshape its weights
(:func:`to_fully_convolutional`) and the same network slides over a tile of any size, computing each
intermediate feature once. Its output pixel (i, j) is exactly the classifier's answer for the patch whose
top-left corner is (i * J, j * J), where J is the features' total stride (the receptive-field *jump*,
:mod:`course_lib.histology.receptive_field`)::

    patch classifier:  (B, 3, P, P) -features-> (B, C, F, F) -flatten-> (B, C*F*F) -Linear-> (B, K)
    FCN:               (1, 3, H, W) -features-> (1, C, h, w) -Conv2d(F x F)-> (1, K, H', W')
                       H' = (H - P) // J + 1 patch positions per column, one per J pixels

Alignment: :class:`FCNOutputGrid` maps output (i, j) to input pixels with the receptive-field recurrences:
output i's receptive field is centred on ``start + i * J`` and spans ``r`` pixels, so its first pixel is
``start + i * J - (r - 1) / 2``. Without padding that is the patch's top-left corner ``i * J``.

Padding. A feature extractor with padding (``padding=1`` 3x3 convolutions) still puts output (i, j) on the
patch at (i * J, j * J), and :class:`FCNOutputGrid` accounts for it (``halo``), but the outputs are *not* equal:
the classifier saw zeros around every patch, the FCN sees the real neighbouring pixels there (its receptive
field starts ``halo = sum(p_l * j_{l-1})`` pixels before the patch, and reaches past its far side too).
Only outputs near the tile border, where the FCN's own padding lies, see zeros. Exact equality needs
unpadded ("valid") convolutions, which is why :class:`PatchClassifier` defaults to ``padding=0``;
:func:`to_fully_convolutional` warns otherwise.

Eval mode. Both predictors run the network in ``eval()`` mode: a ``BatchNorm`` in training mode normalises
with the statistics of the current batch — 256 patches for one, a whole tile for the other — and dropout
draws different masks, so they would disagree. A forward pass in training mode also moves the running
statistics, even under ``torch.no_grad()``. Train the classifier, then convert it.

References
----------
Long, Shelhamer & Darrell (2015). Fully convolutional networks for semantic segmentation. CVPR.
Reference code: shelhamer/fcn.berkeleyvision.org ``surgery.py`` (``transplant`` copies the classifier's fc
weights into same-sized convolution kernels) and Caffe's ``examples/net_surgery.ipynb`` ("Casting a classifier
into a fully convolutional network").
Araujo, Norris & Sim (2019). Computing receptive fields of convolutional neural networks. Distill.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.histology.receptive_field import layers_from_module, receptive_fields

__all__ = [
    "PatchClassifier",
    "FCNOutputGrid",
    "FullyConvolutional",
    "predict_patchwise",
    "to_fully_convolutional",
    "predict_fully_convolutional",
]


# Head layers that act on each feature separately, and so work unchanged on (B, K, H', W') maps. Not batch norm:
# BatchNorm1d on (B, C*F*F) normalises every flattened feature on its own, which no per-channel layer reproduces.
_HEAD_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Identity)


def _feature_side(features: nn.Module, patch_size: int) -> int:
    """Side F of the (C, F, F) feature map that ``features`` makes of a P x P patch."""
    side = patch_size
    for layer in layers_from_module(features):
        side = layer.output_size(side)
        if side < 1:
            raise ValueError(f"`patch_size` {patch_size} is too small for the feature extractor "
                             f"(layer {layer.name!r} gets no output)")
    return side


class PatchClassifier(nn.Module):
    """A small VGG-style CNN that classifies one patch: conv blocks with max pooling, then a ``Linear`` head.

    Parameters
    ----------
    in_channels : int
        3 for RGB (H&E) patches.
    num_classes : int
        Logits per patch: 2 for tumour vs not (use softmax / cross-entropy).
    patch_size : int
        Side P of the square patches it is trained on (50 for Kaggle IDC; 32 is also common).
    widths : tuple of int
        Channels of each block; every block ends in a 2x2 max pool, so the total stride is ``2 ** len(widths)``.
    convs_per_block : int
        3x3 convolutions (+ batch norm + ReLU) per block.
    padding : int
        Padding of each 3x3 convolution. 0 ("valid") makes the FCN exactly equal to patch-wise inference.
    hidden : int or None
        Width of a hidden ``Linear`` layer in the head (VGG's fc6 / fc7 style); None for a single ``Linear``.
        A hidden layer is not shared between neighbouring patches, so it eats into the FCN's speed-up.
    batch_norm : bool
        Batch norm after every convolution (then the convolutions have no bias).

    Notes
    -----
    With the defaults a 50 px patch shrinks 50 -conv-> 48 -conv-> 46 -pool-> 23 -conv-> 21 -conv-> 19 -pool-> 9:
    the last pooling floors 19 / 2, so the network never looks at the patch's last 2 rows and columns: the
    receptive field of its output is 16 + (9 - 1) * 4 = 48, not 50 (``to_fully_convolutional(net).grid``).

    Examples
    --------
    >>> net = PatchClassifier(patch_size=32)
    >>> net(torch.zeros(4, 3, 32, 32)).shape
    torch.Size([4, 2])
    >>> net.feature_side  # 32 -conv-> 30 -conv-> 28 -pool-> 14 -conv-> 12 -conv-> 10 -pool-> 5
    5
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, *, patch_size: int = 50,
                 widths: tuple[int, ...] = (16, 32), convs_per_block: int = 2, padding: int = 0,
                 hidden: int | None = None, batch_norm: bool = True):
        super().__init__()
        if not widths or convs_per_block < 1:
            raise ValueError(f"need at least one block and one conv per block, got widths={widths}, "
                             f"convs_per_block={convs_per_block}")
        blocks, c = OrderedDict(), in_channels
        for b, width in enumerate(widths, start=1):
            block = OrderedDict()
            for k in range(1, convs_per_block + 1):
                block[f"conv{k}"] = nn.Conv2d(c, width, 3, padding=padding, bias=not batch_norm)
                if batch_norm:
                    block[f"bn{k}"] = nn.BatchNorm2d(width)
                block[f"relu{k}"] = nn.ReLU(inplace=True)
                c = width
            block["pool"] = nn.MaxPool2d(2)
            blocks[f"block{b}"] = nn.Sequential(block)
        self.features = nn.Sequential(blocks)  # (B, in_channels, P, P) -> (B, C, F, F)
        self.patch_size, self.feature_side = patch_size, _feature_side(self.features, patch_size)
        flat = c * self.feature_side**2
        head = [nn.Flatten(), nn.Linear(flat, num_classes)]  # (B, C, F, F) -> (B, C*F*F) -> (B, K)
        if hidden:
            head = [nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)]
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (self.patch_size, self.patch_size):
            raise ValueError(f"input must be (B, C, {self.patch_size}, {self.patch_size}) patches, "
                             f"got {tuple(x.shape)}")
        return self.head(self.features(x))


@dataclass(frozen=True)
class FCNOutputGrid:
    """Where the FCN's output pixels sit on the input tile (same numbers on both axes)."""

    patch_size: int  # P: side of the patches the classifier was trained on
    stride: int  # J: input pixels between neighbouring outputs (the receptive-field jump)
    receptive_field: int  # r: input pixels one output sees (> P with padding: real context)
    start: float  # centre of output (0, 0)'s receptive field
    halo: int  # sum of padding_l * jump_{l-1}: the receptive field starts this far before the patch (0: no padding)

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """Patch positions (H', W') on a ``height x width`` tile, one every ``stride`` pixels."""
        return (height - self.patch_size) // self.stride + 1, (width - self.patch_size) // self.stride + 1

    def top_left(self, i: int, j: int) -> tuple[int, int]:
        """Top-left pixel (row, col) of the patch that output (i, j) classifies: ``(i * J, j * J)``."""
        first = self.start - (self.receptive_field - 1) / 2 + self.halo  # first pixel of output 0's patch
        return round(first + i * self.stride), round(first + j * self.stride)

    def centre(self, i: int, j: int) -> tuple[float, float]:
        """Centre (row, col) of that patch, e.g. to place heat-map values on the image."""
        top, left = self.top_left(i, j)
        return top + (self.patch_size - 1) / 2, left + (self.patch_size - 1) / 2


class FullyConvolutional(nn.Module):
    """Features + convolutional head; ``forward`` maps (B, C, H, W) to (B, K, H', W') patch logits.

    Built by :func:`to_fully_convolutional`. ``grid`` (a :class:`FCNOutputGrid`) maps outputs to input pixels.
    """

    def __init__(self, features: nn.Module, head: nn.Sequential, grid: FCNOutputGrid):
        super().__init__()
        self.features, self.head, self.grid = features, head, grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.grid.patch_size
        if x.ndim != 4 or x.shape[-2] < p or x.shape[-1] < p:
            raise ValueError(f"input must be (B, C, H, W) with H, W >= patch_size {p}, got {tuple(x.shape)}")
        rows, cols = self.grid.output_shape(x.shape[-2], x.shape[-1])
        out = self.head(self.features(x))  # (B, C, h, w) -> (B, K, h - F + 1, w - F + 1)
        # floor-mode pooling ignores a patch's last rows; drop outputs whose patch would leave the tile
        return out[..., :rows, :cols]  # (B, K, H', W')


def to_fully_convolutional(model: nn.Module, patch_size: int | None = None) -> FullyConvolutional:
    """Turn a patch classifier (``features`` + ``Linear`` head) into an equivalent fully convolutional net.

    The first ``Linear`` of the head, reading the flattened (C, F, F) features, becomes a ``Conv2d`` with an
    F x F kernel (its weights reshaped, not retrained); later ``Linear`` layers become 1x1 convolutions.

    Parameters
    ----------
    model : nn.Module
        Has ``features`` (conv/pool/pointwise layers, see
        :func:`~course_lib.histology.receptive_field.layers_from_module`) and ``head`` (an ``nn.Sequential``
        of ``Flatten``, ``Linear`` and pointwise layers), like :class:`PatchClassifier`. Not modified.
    patch_size : int, optional
        Side P of the training patches; defaults to ``model.patch_size``.

    Returns
    -------
    FullyConvolutional
        A copy, in eval mode, whose output (i, j) on a tile equals ``model`` on the patch at
        ``grid.top_left(i, j)`` (when the features do not pad).

    Raises
    ------
    ValueError
        If ``model`` lacks ``features``/``head``, the head holds other layers, or its first ``Linear`` does
        not read C * F * F features.

    Warns
    -----
    UserWarning
        When the features pad: outputs are aligned but not equal (see the module docstring).

    Examples
    --------
    >>> net = PatchClassifier(patch_size=32).eval()
    >>> fcn = to_fully_convolutional(net)
    >>> tile = torch.rand(1, 3, 64, 48)
    >>> fcn(tile).shape  # (64 - 32) // 4 + 1 = 9 rows, (48 - 32) // 4 + 1 = 5 columns
    torch.Size([1, 2, 9, 5])
    >>> top, left = fcn.grid.top_left(2, 3)
    >>> patch = tile[:, :, top:top + 32, left:left + 32]
    >>> bool(torch.allclose(fcn(tile)[0, :, 2, 3], net(patch)[0], atol=1e-5))
    True
    """
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Sequential):
        raise ValueError(f"`model` ({type(model).__name__}) needs a `features` module and a `head` nn.Sequential")
    patch_size = patch_size if patch_size is not None else getattr(model, "patch_size", None)
    if not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"`patch_size` must be a positive int (or set `model.patch_size`), got {patch_size!r}")
    layers = layers_from_module(features)
    side = _feature_side(features, patch_size)  # F
    convolutions = [layer for layer in layers if layer.multiplies]
    if not convolutions:
        raise ValueError("`model.features` has no convolution: nothing to make the feature channels")
    channels = convolutions[-1].out_channels  # C of the (C, F, F) feature map
    if any(layer.padding for layer in layers):
        warnings.warn("the feature extractor pads its inputs: FCN outputs are aligned with the patches but see real "
                      "neighbours where the classifier saw zero padding, so they differ near patch borders; "
                      "use padding=0 for an exact match", UserWarning, stacklevel=2)
    convs, first = [], True
    for name, m in head.named_children():
        if isinstance(m, nn.Flatten):
            continue
        if isinstance(m, nn.Linear):
            k = side if first else 1
            if first and m.in_features != channels * side * side:
                raise ValueError(f"head `{name}` reads {m.in_features} features, but `features` makes "
                                 f"{channels} x {side} x {side} = {channels * side * side} of a {patch_size}px patch")
            conv = nn.Conv2d(m.in_features // k**2, m.out_features, k, bias=m.bias is not None,
                             device=m.weight.device, dtype=m.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_(m.weight.reshape(conv.weight.shape))  # (K, C*F*F) -> (K, C, F, F), or (K, h, 1, 1)
                if m.bias is not None:
                    conv.bias.copy_(m.bias)
            convs.append(conv)
            first = False
        elif isinstance(m, _HEAD_POINTWISE):
            convs.append(copy.deepcopy(m))
        else:
            raise ValueError(f"head `{name}` ({type(m).__name__}) is not supported: use Flatten, Linear, "
                             "activations and dropout")
    if first:
        raise ValueError("`model.head` has no Linear layer to convert")
    grid_layers = layers_from_module(nn.Sequential(features, *convs))
    rf = receptive_fields(grid_layers)[-1]
    halo, jump = 0, 1
    for layer in grid_layers:  # halo = sum_l padding_l * jump_{l-1}; output i's receptive field starts at i*J - halo
        halo, jump = halo + layer.padding * jump, jump * layer.stride
    grid = FCNOutputGrid(patch_size, rf.jump, rf.size, rf.start, halo)
    return FullyConvolutional(copy.deepcopy(features), nn.Sequential(*convs), grid).eval()


def _check_image(image, patch_size: int, stride: int) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"`image` must be a (C, H, W) tensor, got {getattr(image, 'shape', type(image).__name__)}")
    if not isinstance(patch_size, int) or not 1 <= patch_size <= min(image.shape[-2:]):
        raise ValueError(f"`patch_size` ({patch_size!r}) must be an int between 1 and the image's smaller side "
                         f"(image shape {tuple(image.shape)})")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"`stride` must be a positive int, got {stride!r}")


def _in_eval_mode(model: nn.Module, fn):
    """Run ``fn()`` with ``model`` in eval mode, then give the model back its previous mode."""
    was_training = model.training
    model.eval()
    try:
        return fn()
    finally:
        model.train(was_training)


@torch.no_grad()
def predict_patchwise(model: nn.Module, image: torch.Tensor, patch_size: int, stride: int, *,
                      batch_size: int = 256) -> torch.Tensor:
    """The slow, obvious way: crop a patch every ``stride`` pixels and classify each crop on its own.

    Parameters
    ----------
    model : nn.Module
        Maps (B, C, P, P) patches to (B, K) logits; run in eval mode (its mode is restored afterwards).
    image : (C, H, W) Tensor
    patch_size, stride : int
        Patch side P and the step between patches. ``stride`` = the features' total stride J gives the
        same grid as the FCN (a multiple m * J gives ``fcn_output[..., ::m, ::m]``).
    batch_size : int
        Crops classified per forward pass.

    Returns
    -------
    (K, H', W') Tensor
        Logits of the patch with top-left corner (i * stride, j * stride); H' = (H - P) // stride + 1.

    Examples
    --------
    >>> net = PatchClassifier(patch_size=32)
    >>> predict_patchwise(net, torch.rand(3, 40, 36), patch_size=32, stride=4).shape
    torch.Size([2, 3, 2])
    """
    _check_image(image, patch_size, stride)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}")
    rows, cols = (image.shape[-2] - patch_size) // stride + 1, (image.shape[-1] - patch_size) // stride + 1
    corners = [(i * stride, j * stride) for i in range(rows) for j in range(cols)]  # row-major

    def classify_every_patch():
        logits = []
        for b in range(0, len(corners), batch_size):
            batch = corners[b:b + batch_size]
            crops = torch.stack([image[:, y:y + patch_size, x:x + patch_size] for y, x in batch])  # (b, C, P, P)
            logits.append(model(crops))  # (b, C, P, P) -> (b, K)
        return torch.cat(logits)  # (H'*W', K)

    logits = _in_eval_mode(model, classify_every_patch)
    return logits.T.reshape(-1, rows, cols)  # (H'*W', K) -> (K, H'*W') -> (K, H', W')


@torch.no_grad()
def predict_fully_convolutional(fcn: FullyConvolutional, image: torch.Tensor) -> torch.Tensor:
    """The fast way: one pass of the FCN over the whole (C, H, W) image, in eval mode; returns (K, H', W') logits.

    Same layout as :func:`predict_patchwise` with ``stride=fcn.grid.stride``.
    """
    _check_image(image, fcn.grid.patch_size, fcn.grid.stride)
    return _in_eval_mode(fcn, lambda: fcn(image[None])[0])  # (1, K, H', W') -> (K, H', W')
