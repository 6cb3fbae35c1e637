"""CycleGAN's networks, sized down: a ResNet generator, a PatchGAN discriminator and the history pool.

Following the reference code (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``):

* :class:`ResnetGenerator` — ``c7s1-k, d2k, d4k, R4k x n, u2k, uk, c7s1-1``: a 7x7 convolution, two stride-2
  downsamplings, ``n_blocks`` residual blocks, two upsamplings, a 7x7 convolution and ``tanh``; instance norm and
  reflection padding throughout. Images live in [-1, 1] (:func:`to_gan_range`). The paper uses ``width=64`` and
  9 blocks on 256 px; quick mode uses ``width=8`` and 2 blocks on 32 px.
* :class:`PatchDiscriminator` — ``C64-C128-C256-C512``: 4x4 convolutions with stride 2, then stride 1, then a
  1-channel map of scores, one per overlapping patch (70 x 70 px for the paper's ``n_layers=3``). With
  ``n_layers=1`` each score sees a 16 x 16 px patch: half of a 32 px slice, a tumour with its surroundings.
* :class:`ImagePool` — a history of 50 generated images. The discriminator is updated with fakes drawn half from
  the newest batch and half from older generators (Shrivastava et al. 2017), so it does not forget what earlier
  generators got wrong and the two players oscillate less.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResnetGenerator", "PatchDiscriminator", "ImagePool", "to_gan_range", "from_gan_range"]


def to_gan_range(images: torch.Tensor) -> torch.Tensor:
    """Map intensities from [0, 1] to the generators' [-1, 1] (``tanh`` output range)."""
    return images * 2 - 1


def from_gan_range(images: torch.Tensor) -> torch.Tensor:
    """Map [-1, 1] back to [0, 1]."""
    return (images + 1) / 2


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convolutions, reflection padding and instance norm."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator: (B, C_in, H, W) in [-1, 1] -> (B, C_out, H, W) in [-1, 1].

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels (1 for an MRI contrast).
    width : int
        Channels of the first layer (``k`` in ``c7s1-k``); doubled at each of the two downsamplings.
    n_blocks : int
        Residual blocks at the bottleneck.

    Notes
    -----
    ``H`` and ``W`` must be multiples of 4 (two stride-2 downsamplings).

    Examples
    --------
    >>> net = ResnetGenerator(width=8, n_blocks=2)
    >>> net(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, *, width: int = 8, n_blocks: int = 2):
        super().__init__()
        if width < 1 or n_blocks < 0:
            raise ValueError(f"`width` must be >= 1 and `n_blocks` >= 0, got {width}, {n_blocks}")
        k = width
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, k, 7), nn.InstanceNorm2d(k), nn.ReLU(True),  # c7s1-k
            nn.Conv2d(k, 2 * k, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * k), nn.ReLU(True),  # d2k: H/2
            nn.Conv2d(2 * k, 4 * k, 3, stride=2, padding=1), nn.InstanceNorm2d(4 * k), nn.ReLU(True),  # d4k: H/4
        )
        self.blocks = nn.Sequential(*[ResidualBlock(4 * k) for _ in range(n_blocks)])
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * k, 2 * k, 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(2 * k),
            nn.ReLU(True),  # u2k: H/2
            nn.ConvTranspose2d(2 * k, k, 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(k),
            nn.ReLU(True),  # uk: H
            nn.ReflectionPad2d(3), nn.Conv2d(k, out_channels, 7), nn.Tanh(),  # c7s1-1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"`x` must be (B, C, H, W) with H and W multiples of 4, got shape {tuple(x.shape)}")
        return self.decoder(self.blocks(self.encoder(x)))


class PatchDiscriminator(nn.Module):
    """PatchGAN: (B, C, H, W) -> (B, 1, h, w) raw scores (no sigmoid), one per overlapping patch.

    Parameters
    ----------
    in_channels : int
    width : int
        Channels of the first layer, doubled per stride-2 layer (at most 8x).
    n_layers : int
        Layers after the first, as in the reference code: ``n_layers - 1`` with stride 2, one with stride 1, then the
        1-channel output. Receptive field: 16 px for 1, 34 px for 2, 70 px for 3 (the paper's).

    Examples
    --------
    >>> PatchDiscriminator(width=8, n_layers=1)(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 14, 14])
    """

    def __init__(self, in_channels: int = 1, *, width: int = 8, n_layers: int = 1):
        super().__init__()
        if width < 1 or n_layers < 0:
            raise ValueError(f"`width` must be >= 1 and `n_layers` >= 0, got {width}, {n_layers}")
        layers = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]  # no norm first
        channels = width
        for n in range(1, n_layers):  # stride-2 layers
            out = width * min(2**n, 8)
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.InstanceNorm2d(out),
                       nn.LeakyReLU(0.2, True)]
            channels = out
        out = width * min(2**n_layers, 8)
        layers += [nn.Conv2d(channels, out, 4, stride=1, padding=1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(out, 1, 4, stride=1, padding=1)]  # one score per patch
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"`x` must be (B, C, H, W), got shape {tuple(x.shape)}")
        return self.net(x)


class ImagePool:
    """A history of generated images (Shrivastava et al. 2017), as in the CycleGAN reference code.

    ``query(images)`` returns a batch of the same shape. While the pool holds fewer than ``size`` images, each
    image is stored and returned as it is. Once it is full, a number u is drawn uniformly in [0, 1) for each image:
    if u < 1/2, a random slot is drawn, the image stored there is returned and the new image takes its place;
    otherwise the new image is returned as it is and nothing is stored. Images are stored detached: the pool never
    carries a generator's graph.

    Parameters
    ----------
    size : int
        Images kept; 0 disables the pool (``query`` returns its input, detached).
    generator : torch.Generator, optional
        Source of the coin flips and slots, for reproducible runs.

    Examples
    --------
    >>> pool = ImagePool(2, generator=torch.Generator().manual_seed(0))
    >>> pool.query(torch.zeros(2, 1, 4, 4)).shape, len(pool.images)
    (torch.Size([2, 1, 4, 4]), 2)
    """

    def __init__(self, size: int = 50, *, generator: torch.Generator | None = None):
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"`size` must be an int >= 0, got {size!r}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = generator

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) newest fakes -> (B, C, H, W) fakes for the discriminator, drawn from history."""
        if images.ndim != 4:
            raise ValueError(f"`images` must be (B, C, H, W), got shape {tuple(images.shape)}")
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:  # (C, H, W)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                slot = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[slot])
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)  # (B, C, H, W)
