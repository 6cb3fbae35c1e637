"""The CycleGAN losses against independent oracles: nn.MSELoss for LSGAN, torch.nn.functional.l1_loss for L1."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_lib.translation.losses import (
    LAMBDA_CYCLE,
    cycle_consistency_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)


def scores(seed: int, shape=(3, 1, 5, 5)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lsgan_discriminator_loss_matches_mse_oracle(seed):
    real, fake = scores(seed), scores(seed + 10)  # (3, 1, 5, 5) patch scores each
    mse = nn.MSELoss()
    expected = 0.5 * (mse(real, torch.ones_like(real)) + mse(fake, torch.zeros_like(fake)))
    assert torch.allclose(lsgan_discriminator_loss(real, fake), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lsgan_generator_loss_matches_mse_oracle(seed):
    fake = scores(seed)
    assert torch.allclose(lsgan_generator_loss(fake), nn.MSELoss()(fake, torch.ones_like(fake)))


@pytest.mark.parametrize(("real", "fake", "expected"), [
    (1.0, 0.0, 0.0),  # a perfect discriminator: no loss
    (0.5, 0.5, 0.25),  # undecided: 0.5 * (0.5^2 + 0.5^2)
    (0.0, 1.0, 1.0),  # exactly wrong: 0.5 * (1 + 1)
])
def test_lsgan_discriminator_loss_hand_values(real, fake, expected):
    shape = (2, 1, 3, 3)
    got = lsgan_discriminator_loss(torch.full(shape, real), torch.full(shape, fake))
    assert got.item() == pytest.approx(expected)


def test_lsgan_generator_loss_is_zero_when_fakes_are_called_real():
    assert lsgan_generator_loss(torch.ones(2, 1, 4, 4)).item() == 0.0
    assert lsgan_generator_loss(torch.zeros(2, 1, 4, 4)).item() == pytest.approx(1.0)  # (0 - 1)^2


@pytest.mark.parametrize("loss", [cycle_consistency_loss, identity_loss])
def test_l1_losses_match_functional_oracle(loss):
    a, b = scores(3, (2, 1, 8, 8)), scores(4, (2, 1, 8, 8))
    assert torch.allclose(loss(a, b), F.l1_loss(a, b))
    assert loss(a, a).item() == 0.0


def test_cycle_loss_hand_value_and_gradient():
    original = torch.zeros(1, 1, 2, 2)
    reconstructed = torch.tensor([[[[1.0, -1.0], [0.0, 2.0]]]], requires_grad=True)  # |.| = 1, 1, 0, 2
    loss = cycle_consistency_loss(reconstructed, original)
    assert loss.item() == pytest.approx(1.0)  # (1 + 1 + 0 + 2) / 4
    loss.backward()
    assert torch.allclose(reconstructed.grad, torch.tensor([[[[0.25, -0.25], [0.0, 0.25]]]]))  # sign / 4


def test_lambda_cycle_is_the_papers_ten():
    assert LAMBDA_CYCLE == 10.0


def test_losses_refuse_mismatched_shapes_and_non_tensors():
    with pytest.raises(ValueError, match=r"`real_scores` \(shape \(2, 1, 3, 3\)\) must have the same shape as "
                                         r"`fake_scores` \(shape \(2, 1, 4, 4\)\)"):
        lsgan_discriminator_loss(torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="`reconstructed`.*`original`"):
        cycle_consistency_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(TypeError, match="`fake_scores` must be a torch.Tensor, got ndarray"):
        import numpy as np

        lsgan_generator_loss(np.zeros((1, 1, 2, 2)))
    with pytest.raises(TypeError, match="`same` must be a floating-point tensor"):
        identity_loss(torch.zeros(1, 1, 2, 2, dtype=torch.long), torch.zeros(1, 1, 2, 2))
