"""Image classifiers with a visible middle: CheXNet's DenseNet-121 and a small CNN for quick mode.

Every fusion of chapter 1 needs to cut a network somewhere — HeMIS in the middle, DualNet and AuxLoss
before the classifier — so both backbones share one interface::

    x (B, C_in, H, W) -> features (B, C, h, w) -> pool (B, F) -> classifier (B, num_classes) logits

* ``features``: an ``nn.Sequential`` of *named* stages (students can print it and look at any stage's
  output); ``backbone.middle`` names the stage where HeMIS cuts, and :meth:`Backbone.split` cuts there.
* ``pool``: ReLU, global average pooling, flatten (what torchvision's DenseNet does after ``norm5``).
* ``classifier``: one linear layer; use a sigmoid per output for multi-label findings (CheXNet).

CheXNet (Rajpurkar et al. 2017) is torchvision's ``densenet121`` with the 1000 ImageNet outputs replaced
by one logit per finding, trained on 224 x 224 images. ``weights=None`` (the default, and the only choice
in tests: no download) starts from random weights; ``weights="imagenet"`` loads torchvision's ImageNet
weights, sums the first convolution's RGB filters into one grey filter (a grey image copied to R, G and
B gives exactly the same response) — spread evenly over ``in_channels`` when there are more views
stacked — and normalises inputs in [0, 1] with ImageNet's grey mean and std.

References
----------
Huang et al. (2017). Densely connected convolutional networks. CVPR. Implementation: torchvision
``models/densenet.py``. Rajpurkar et al. (2017). CheXNet. arXiv:1711.05225.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models import DenseNet121_Weights
from torchvision.models import densenet121 as tv_densenet121

__all__ = ["Backbone", "SmallBackbone", "densenet121", "small_cnn", "make_backbone"]

_GREY_MEAN, _GREY_STD = 0.449, 0.226  # mean of ImageNet's RGB means and stds, for grey images


class Backbone(nn.Module):
    """``features -> pool -> classifier`` with a named middle stage.

    Parameters
    ----------
    features : nn.Sequential
        Named stages; input (B, C_in, H, W) -> (B, num_features, h, w).
    num_features : int
        Channels of the last stage (F).
    num_classes : int
        Logits out of the classifier.
    middle : str
        Name of the stage after which :meth:`split` cuts (HeMIS fuses there).
    """

    def __init__(self, features: nn.Sequential, num_features: int, num_classes: int, middle: str):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}")
        names = [name for name, _ in features.named_children()]
        if middle not in names[:-1]:
            raise ValueError(f"`middle` must name a stage of `features` other than the last, one of {names[:-1]}; "
                             f"got {middle!r}")
        self.features = features
        self.pool = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(num_features, num_classes)
        self.num_features = num_features
        self.middle = middle

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, F) pooled features, the input of the classifier."""
        return self.pool(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, num_classes) logits."""
        return self.classifier(self.forward_features(x))

    def split(self, at: str | None = None) -> tuple[nn.Sequential, nn.Sequential, int]:
        """Cut ``features`` after stage ``at`` (default ``self.middle``).

        Returns
        -------
        early : nn.Sequential
            Stages up to and including ``at`` (shares the modules, not a copy).
        late : nn.Sequential
            The remaining stages.
        channels : int
            Channels of ``early``'s output, found with a dummy forward pass.
        """
        at = self.middle if at is None else at
        names = [name for name, _ in self.features.named_children()]
        if at not in names[:-1]:
            raise ValueError(f"`at` must name a stage other than the last, one of {names[:-1]}; got {at!r}")
        k = names.index(at) + 1
        children = list(self.features.named_children())
        early, late = nn.Sequential(OrderedDict(children[:k])), nn.Sequential(OrderedDict(children[k:]))
        first_conv = next(m for m in early.modules() if isinstance(m, nn.Conv2d))
        was_training = early.training
        early.eval()  # the dummy pass must not touch batch-norm running statistics
        with torch.no_grad():
            channels = early(torch.zeros(1, first_conv.in_channels, 64, 64)).shape[1]
        early.train(was_training)
        return early, late, channels


class _Normalize(nn.Module):
    """Fixed affine ``(x - mean) / std``: inputs in [0, 1] -> the range ImageNet weights expect."""

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SmallBackbone(Backbone):
    """A 5-stage CNN small enough to train on a CPU in seconds at 64 px (about 0.1 M parameters at width 16).

    Shape walk for ``width=16`` on a (B, 1, 64, 64) input::

        stem   (B, 16, 32, 32)   3x3 stride-2 conv: nodules of 2-3 px survive one halving
        stage1 (B, 16, 16, 16)   conv + 2x2 max pool
        stage2 (B, 32, 8, 8)     <- ``middle``: HeMIS fuses the views here
        stage3 (B, 64, 4, 4)
        stage4 (B, 128, 4, 4)    no pooling: the receptive field already covers the image
        pool   (B, 128); classifier (B, num_classes)

    Parameters
    ----------
    num_classes : int
    in_channels : int
    width : int
        Channels of the stem; doubled at stages 2, 3 and 4.

    Examples
    --------
    >>> net = SmallBackbone(5, width=8)
    >>> net(torch.zeros(2, 1, 64, 64)).shape, net.forward_features(torch.zeros(2, 1, 64, 64)).shape
    (torch.Size([2, 5]), torch.Size([2, 64]))
    """

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"`width` must be a positive int, got {width!r}")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"`in_channels` must be a positive int, got {in_channels!r}")
        w = width
        features = nn.Sequential(OrderedDict([
            ("stem", _conv_bn_relu(in_channels, w, stride=2)),
            ("stage1", nn.Sequential(_conv_bn_relu(w, w), nn.MaxPool2d(2))),
            ("stage2", nn.Sequential(_conv_bn_relu(w, 2 * w), nn.MaxPool2d(2))),
            ("stage3", nn.Sequential(_conv_bn_relu(2 * w, 4 * w), nn.MaxPool2d(2))),
            ("stage4", _conv_bn_relu(4 * w, 8 * w)),
        ]))
        super().__init__(features, 8 * w, num_classes, middle="stage2")


def small_cnn(num_classes: int, in_channels: int = 1, width: int = 16) -> SmallBackbone:
    """Build a :class:`SmallBackbone` (quick mode: trains on a CPU in seconds)."""
    return SmallBackbone(num_classes, in_channels, width)


def densenet121(num_classes: int, in_channels: int = 1, *, weights: str | None = None) -> Backbone:
    """CheXNet-style DenseNet-121: torchvision's network, one logit per finding.

    Parameters
    ----------
    num_classes : int
        Findings to predict (CheXNet: 14).
    in_channels : int
        1 for one grey view; 2 or more when views are stacked as channels.
    weights : {None, "imagenet"}
        None: random initialisation, no download. "imagenet": torchvision's ImageNet weights (downloaded once
        into the torch cache), first convolution adapted to ``in_channels`` as described in the module notes.

    Returns
    -------
    Backbone
        ``features`` has the stages ``conv0, norm0, relu0, pool0, denseblock1, transition1, ..., denseblock4,
        norm5`` (plus ``normalize`` first with ImageNet weights); ``middle`` is ``"transition2"`` (256 channels,
        1/16 of the input side); ``num_features`` is 1024.

    Examples
    --------
    >>> net = densenet121(5)
    >>> net(torch.zeros(1, 1, 64, 64)).shape, net.num_features, net.middle
    (torch.Size([1, 5]), 1024, 'transition2')
    """
    if weights not in (None, "imagenet"):
        raise ValueError(f"`weights` must be None or 'imagenet', got {weights!r}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"`in_channels` must be a positive int, got {in_channels!r}")
    net = tv_densenet121(weights=DenseNet121_Weights.IMAGENET1K_V1 if weights == "imagenet" else None)
    old = net.features.conv0
    conv0 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    if weights == "imagenet":
        with torch.no_grad():  # (64, 3, 7, 7) -> (64, 1, 7, 7) summed, then shared over the input channels
            conv0.weight.copy_(old.weight.sum(1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels)
    stages = list(net.features.named_children())
    stages[0] = ("conv0", conv0)
    if weights == "imagenet":
        stages.insert(0, ("normalize", _Normalize(_GREY_MEAN, _GREY_STD)))
    return Backbone(nn.Sequential(OrderedDict(stages)), net.classifier.in_features, num_classes,
                    middle="transition2")


def make_backbone(name: str, num_classes: int, in_channels: int = 1, **kwargs) -> Backbone:
    """``"small"`` -> :func:`small_cnn`, ``"densenet121"`` -> :func:`densenet121`; ``kwargs`` go to the builder."""
    builders = {"small": small_cnn, "densenet121": densenet121}
    if name not in builders:
        raise ValueError(f"`backbone` must be one of {tuple(builders)}, got {name!r}")
    return builders[name](num_classes, in_channels, **kwargs)
