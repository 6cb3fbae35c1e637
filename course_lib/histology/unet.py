"""U-Net, and the same encoder-decoder without skip connections.

The lecture's dogma: the bottleneck carries high-level structure ("what"), the skip
connections carry spatial detail ("where"). ``UNet(skip=False)`` is the plain bottleneck
encoder-decoder, so the two can be trained side by side and their boundaries compared.

Shape walk for ``depth=3, width=16`` on a (B, 1, 64, 64) input::

    enc0: (B, 16, 64, 64) -pool-> enc1: (B, 32, 32, 32) -pool-> enc2: (B, 64, 16, 16)
    -pool-> bottleneck: (B, 128, 8, 8)
    up2 + enc2 -> (B, 64, 16, 16); up1 + enc1 -> (B, 32, 32, 32); up0 + enc0 -> (B, 16, 64, 64)
    head: (B, out_channels, 64, 64) logits

References
----------
Ronneberger, Fischer & Brox (2015). U-Net: convolutional networks for biomedical image
segmentation. MICCAI. Reference implementation followed: milesial/Pytorch-UNet (``unet_parts.py``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvBlock", "UNet"]


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions with batch norm and ReLU; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net with configurable depth, width, upsampling and (optional) skip connections.

    Parameters
    ----------
    in_channels : int
        Image channels (1 grey, 3 RGB).
    out_channels : int
        Output logits per pixel: 1 for binary (use a sigmoid), C for C classes (softmax).
    depth : int
        Number of 2x poolings; input sides must be divisible by ``2 ** depth``.
    width : int
        Channels of the first block; doubled after every pooling.
    skip : bool
        Concatenate encoder features into the decoder (U-Net). False gives the bottleneck-only net.
    upsample : {"transpose", "bilinear"}
        Learned transposed convolution or fixed bilinear interpolation + 1x1 conv.

    Examples
    --------
    >>> net = UNet(1, 1, depth=2, width=8)
    >>> net(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, *, depth: int = 3, width: int = 16,
                 skip: bool = True, upsample: str = "transpose"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"`depth` must be >= 1, got {depth}")
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"`upsample` must be 'transpose' or 'bilinear', got {upsample!r}")
        self.depth, self.skip = depth, skip
        channels = [width * 2**k for k in range(depth + 1)]  # e.g. [16, 32, 64, 128]
        self.encoders = nn.ModuleList(
            [ConvBlock(in_channels, channels[0])] + [ConvBlock(channels[k], channels[k + 1]) for k in range(depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for k in reversed(range(depth)):
            if upsample == "transpose":
                up = nn.ConvTranspose2d(channels[k + 1], channels[k], kernel_size=2, stride=2)
            else:
                up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                   nn.Conv2d(channels[k + 1], channels[k], kernel_size=1))
            self.ups.append(up)
            self.decoders.append(ConvBlock(channels[k] * (2 if skip else 1), channels[k]))
        self.head = nn.Conv2d(channels[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.depth
        if x.ndim != 4 or x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"input must be (B, C, H, W) with H and W divisible by {factor}, got {tuple(x.shape)}")
        features = []
        for k, encoder in enumerate(self.encoders):
            x = encoder(x if k == 0 else self.pool(x))
            features.append(x)
        features.pop()  # the deepest block is the bottleneck, not a skip
        for up, decoder in zip(self.ups, self.decoders, strict=True):
            x = up(x)  # (B, 2c, h, w) -> (B, c, 2h, 2w)
            if self.skip:
                x = torch.cat([features.pop(), x], dim=1)  # (B, 2c, 2h, 2w)
            x = decoder(x)
        return self.head(x)
