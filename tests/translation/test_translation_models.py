"""Generator, PatchGAN (shapes and receptive fields) and the history pool."""

from __future__ import annotations

import pytest
import torch

from course_lib.translation.models import ImagePool, PatchDiscriminator, ResnetGenerator, from_gan_range, to_gan_range


def test_generator_keeps_the_shape_and_the_tanh_range(one_thread):
    net = ResnetGenerator(width=4, n_blocks=1)
    x = torch.rand(3, 1, 32, 32) * 2 - 1  # (B, C, H, W) in [-1, 1]
    y = net(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1


def test_generator_refuses_sizes_that_are_not_multiples_of_4():
    with pytest.raises(ValueError, match=r"multiples of 4, got shape \(1, 1, 30, 30\)"):
        ResnetGenerator(width=4, n_blocks=0)(torch.zeros(1, 1, 30, 30))


def receptive_field(net: torch.nn.Module, size: int = 96) -> int:
    """Side of the input region that moves the centre output score (gradient of one score w.r.t. the input)."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = net(x)  # (1, 1, h, w)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(("n_layers", "expected"), [
    (1, 16),  # 4 -> (4 - 1) * 1 + 4 = 7 -> (7 - 1) * 2 + 4 = 16
    (2, 34),  # -> (16 - 1) * 2 + 4 = 34
    (3, 70),  # the paper's 70 x 70 PatchGAN
])
def test_patch_discriminator_receptive_field(n_layers, expected, one_thread):
    torch.manual_seed(0)
    net = PatchDiscriminator(width=2, n_layers=n_layers)
    for m in net.modules():  # remove instance norm's dependence on the whole image, keep the wiring
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.forward = lambda t: t
    assert receptive_field(net, size=160) == expected


def test_patch_discriminator_gives_one_score_per_patch():
    assert PatchDiscriminator(width=4, n_layers=1)(torch.zeros(2, 1, 32, 32)).shape == (2, 1, 14, 14)


def test_gan_range_round_trip():
    x = torch.tensor([0.0, 0.25, 1.0])
    assert torch.equal(to_gan_range(x), torch.tensor([-1.0, -0.5, 1.0]))
    assert torch.equal(from_gan_range(to_gan_range(x)), x)


def test_pool_returns_its_input_until_full_and_stores_detached_copies():
    pool = ImagePool(4, generator=torch.Generator().manual_seed(0))
    batch = torch.rand(3, 1, 2, 2, requires_grad=True)
    out = pool.query(batch)
    assert torch.equal(out, batch.detach()) and not out.requires_grad
    assert len(pool.images) == 3 and all(not im.requires_grad for im in pool.images)


def test_full_pool_swaps_about_half_of_the_images_for_older_ones():
    pool = ImagePool(50, generator=torch.Generator().manual_seed(1))
    pool.query(torch.zeros(50, 1, 1, 1))  # fill with zeros: "old" images
    out = pool.query(torch.ones(400, 1, 1, 1))  # new images are ones
    old_share = (out == 0).float().mean().item()
    # each new image is swapped with probability 1/2 (about 200 swaps), but only the 50 stored zeros can come back
    # as zeros (a slot returns its zero once, then holds a one): nearly all 50 come back, at most 50 / 400
    assert 40 / 400 <= old_share <= 50 / 400
    assert ((out == 0) | (out == 1)).all(), "every returned image is a new one or a stored one"
    assert len(pool.images) == 50


def test_pool_of_size_zero_is_a_no_op_and_bad_sizes_are_refused():
    x = torch.rand(2, 1, 3, 3)
    assert torch.equal(ImagePool(0).query(x), x)
    with pytest.raises(ValueError, match="`size` must be an int >= 0, got -1"):
        ImagePool(-1)
    with pytest.raises(ValueError, match=r"`images` must be \(B, C, H, W\)"):
        ImagePool(2).query(torch.zeros(3, 3))
