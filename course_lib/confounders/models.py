"""The small classifiers chapter 5 trains many times: a CNN for the two-site images, an MLP for decoy digits.

Both split into ``features`` (the representation that ActDiff compares and that the gradient reversal layer feeds
to a site head) and ``head`` (the label logits), so every method of the chapter can reach the part it acts on::

    logits = model.head(model.features(x))        # == model(x)

Example
-------
>>> import torch
>>> net = SmallCNN(width=4)
>>> net(torch.zeros(2, 1, 32, 32)).shape, net.features(torch.zeros(2, 1, 32, 32)).shape
(torch.Size([2, 2]), torch.Size([2, 16]))
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmallCNN", "MLP"]


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks and global average pooling: (B, C, H, W) -> (B, n_classes) logits.

    Parameters
    ----------
    in_channels : int
    n_classes : int
    width : int
        Channels of the first block (then 2x and 4x); ``features`` has ``4 * width`` dimensions.

    Notes
    -----
    ReLU, not Softplus: with Softplus this net did not learn the faint lesion at all in 15 epochs (training accuracy
    0.50 at ``confound = 0.5``; ReLU 0.91). Penalties on the input gradient (RRR, GradMask) still train a ReLU
    net: the input gradient is piecewise constant in ``x`` but a product of the weights, so it has a gradient with
    respect to them.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 2, width: int = 8):
        super().__init__()
        if width < 1:
            raise ValueError(f"`width` must be a positive int, got {width}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, w, H/2, W/2)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, H/4, W/4)
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 4w, H/4, W/4) -> (B, 4w)
        )
        self.head = nn.Linear(4 * width, n_classes)
        self.feature_dim = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """A decoy-MNIST model after Ross et al.: flatten, two hidden layers, logits. (B, ...) -> (B, n_classes).

    Both hidden layers have ``hidden`` units; Ross et al.'s MLP has 50 and 30 (``layers=(50, 30)`` in their code).

    Parameters
    ----------
    in_features : int
        Number of input values per example (pixels of the flattened image).
    n_classes : int
    hidden : int
        Units of each hidden layer (the paper's first layer has 50).
    """

    def __init__(self, in_features: int, n_classes: int = 10, hidden: int = 50):
        super().__init__()
        if in_features < 1 or hidden < 1:
            raise ValueError(f"`in_features` and `hidden` must be positive, got {in_features}, {hidden}")
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(),
                                      nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
