"""Saliency against captum (the oracle), integrated gradients' completeness, the share of saliency in the ROI."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from torch import nn

from course_lib.confounders.models import SmallCNN
from course_lib.confounders.saliency import input_gradient, integrated_gradients, saliency_in_roi


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return SmallCNN(width=4).double().eval()


@pytest.fixture
def images():
    return torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # (B, C, H, W)


@pytest.mark.parametrize("absolute", [True, False])
def test_input_gradient_matches_captum_saliency(cnn, images, absolute):
    target = torch.tensor([0, 1, 1])
    ours = input_gradient(cnn, images, target, absolute=absolute)
    theirs = Saliency(cnn).attribute(images, target=target, abs=absolute)
    assert ours.shape == images.shape
    assert torch.allclose(ours, theirs, atol=1e-12)


def test_input_gradient_of_a_linear_model_is_its_weight_row():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))  # logits = W x + b: d z_t / dx = W[t]
    x = torch.randn(2, 1, 2, 2)
    grad = input_gradient(model, x, 2, absolute=False)
    assert torch.allclose(grad.reshape(2, 4), model[1].weight[2].expand(2, 4).detach())


def test_integrated_gradients_match_captum_midpoint_rule(cnn, images):
    target = torch.tensor([1, 0, 1])
    ours = integrated_gradients(cnn, images, target, steps=16)
    theirs = IntegratedGradients(cnn).attribute(images, target=target, n_steps=16, method="riemann_middle")
    assert torch.allclose(ours, theirs, atol=1e-10)


def test_integrated_gradients_complete_to_the_logit_difference(cnn, images):
    # sum of attributions = z_t(x) - z_t(baseline); the midpoint rule's error falls like 1/steps²
    baseline = torch.full_like(images, 0.2)
    with torch.no_grad():
        gap = cnn(images)[:, 1] - cnn(baseline)[:, 1]  # (B,)
    errors = [(integrated_gradients(cnn, images, 1, baseline=baseline, steps=m).flatten(1).sum(1) - gap).abs().max()
              for m in (4, 64)]
    assert errors[1] < 0.02 * gap.abs().max() + 1e-6
    assert errors[1] <= errors[0] + 1e-9


def test_integrated_gradients_of_a_linear_model_are_exact():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.randn(5, 4)
    ig = integrated_gradients(model, x, 1, steps=2)  # the gradient is constant: any rule is exact
    assert torch.allclose(ig, x * model[1].weight[1].detach(), atol=1e-6)


def test_saliency_share_by_hand():
    s = torch.zeros(2, 1, 3, 3)  # (B, C, H, W)
    s[0, 0, 1, 1], s[0, 0, 0, 0] = 3.0, -1.0  # |3| inside, |-1| outside: 3 / 4
    roi = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    roi[:, :, 1, 1] = True
    share = saliency_in_roi(s, roi)
    assert share[0] == pytest.approx(0.75)
    assert torch.isnan(share[1]), "an all-zero map has no saliency to share"
    assert saliency_in_roi(torch.ones(1, 3, 3, 3), roi[:1]).item() == pytest.approx(1 / 9)  # roi broadcast over C


def test_model_mode_is_restored(cnn, images):
    cnn.train()
    input_gradient(cnn, images, 0)
    integrated_gradients(cnn, images, 0, steps=2)
    assert cnn.training


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda m, x: input_gradient(m, x.long(), 0), TypeError, "`x` must be a float tensor"),
    (lambda m, x: input_gradient(m, x, torch.tensor([0, 1])), ValueError, r"`target` \(shape \(2,\)\)"),
    (lambda m, x: input_gradient(m, x, 5), ValueError, "must index the model's 2 classes"),
    (lambda m, x: integrated_gradients(m, x, 0, steps=1), ValueError, "`steps` must be an int >= 2"),
    (lambda m, x: integrated_gradients(m, x, 0, baseline=torch.zeros(2, 1, 16, 16)), ValueError, "must broadcast"),
    (lambda m, x: saliency_in_roi(x, x[:, :, :8] > 0.5), ValueError, r"`roi` \(shape \(3, 1, 8, 16\)\) must match"),
    (lambda m, x: saliency_in_roi(x, torch.ones_like(x)), ValueError, "must be a boolean mask"),
])
def test_ill_inputs(cnn, images, call, error, match):
    with pytest.raises(error, match=match):
        call(cnn, images)
