"""Each mitigation against an independent computation: range normalisation, subspace alignment (vs scikit-learn's
PCA), gradient reversal (gradcheck), RRR and GradMask (closed forms on a linear softmax model), ActDiff."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from course_lib.confounders.actdiff import actdiff_loss, masked_copy
from course_lib.confounders.gradient_reversal import (
    GradReverse,
    SiteAdversarialModel,
    grad_reverse,
    lambda_schedule,
    site_adversarial_loss,
)
from course_lib.confounders.gradmask import gradmask_loss
from course_lib.confounders.models import MLP, SmallCNN
from course_lib.confounders.range_normalisation import range_normalise
from course_lib.confounders.rrr import rrr_loss
from course_lib.confounders.subspace_alignment import SubspaceAlignment, pca_basis

# ---- range normalisation -------------------------------------------------------------------------------------


def test_range_normalisation_removes_a_gain_exactly():
    rng = np.random.default_rng(0)
    image = rng.random((1, 1, 5, 5)) + 0.1  # (1, C, H, W)
    batch = np.concatenate([image, 3.0 * image])  # the same image from a scanner with gain 3
    out = range_normalise(batch)
    assert np.allclose(out[0], out[1]) and np.allclose(out.reshape(2, -1).max(axis=1), 1.0)
    torch_out = range_normalise(torch.from_numpy(batch))
    assert isinstance(torch_out, torch.Tensor) and torch.allclose(torch_out, torch.from_numpy(out))


def test_range_normalisation_ill_inputs():
    with pytest.raises(ValueError, match=r"image\(s\) \[1\] of `images` have a maximum <= 0"):
        range_normalise(np.stack([np.ones((1, 2, 2)), -np.ones((1, 2, 2))]))
    with pytest.raises(ValueError, match="must be a batch"):
        range_normalise(np.ones(4))


# ---- subspace alignment --------------------------------------------------------------------------------------


def test_pca_basis_matches_scikit_learn():
    x = np.random.default_rng(1).normal(size=(40, 6)) * np.array([5, 4, 3, 2, 1, 0.5])  # (N, D)
    mean, basis = pca_basis(x, 3)
    reference = PCA(n_components=3).fit(x)
    assert np.allclose(mean, reference.mean_)
    for k in range(3):  # same axes up to sign
        assert abs(abs(basis[:, k] @ reference.components_[k]) - 1) < 1e-8


def test_alignment_matrix_is_the_least_squares_fit_of_the_bases():
    rng = np.random.default_rng(2)
    source = rng.normal(size=(200, 5)) * np.array([4.0, 3.0, 2.0, 1.0, 0.5])  # (N, D)
    target = rng.normal(size=(150, 5)) * np.array([1.0, 4.0, 0.5, 3.0, 2.0])
    sa = SubspaceAlignment(dim=3).fit(source, target)
    # M = argmin ||P_s M - P_t||_F, solved independently by least squares
    lstsq = np.linalg.lstsq(sa.basis_source, sa.basis_target, rcond=None)[0]  # (d, d)
    assert np.allclose(sa.alignment, lstsq)
    assert np.allclose(sa.transform(source, "source"), (source - source.mean(0)) @ sa.basis_source @ lstsq)


def test_a_shifted_copy_of_the_target_lands_on_the_target_coordinates():
    # the target cloud mirrored through its mean and shifted: the same principal axes (M = I, centring removes
    # the offset), so every source point lands on the coordinates of its mirror image
    rng = np.random.default_rng(3)
    target = rng.normal(size=(100, 4)) * np.array([4.0, 2.0, 1.0, 0.3])
    source = -target + 7.0
    sa = SubspaceAlignment(dim=2).fit(source, target)
    assert np.allclose(sa.transform(source, "source"), -sa.transform(target, "target"), atol=1e-8)
    assert np.allclose(np.abs(sa.alignment), np.eye(2), atol=1e-8)


def test_subspace_alignment_ill_inputs():
    with pytest.raises(ValueError, match=r"`dim` must be an int in \[1, min\(N, D\)\] = \[1, 3\]"):
        pca_basis(np.ones((5, 3)), 4)
    with pytest.raises(ValueError, match="same number of pixels"):
        SubspaceAlignment(2).fit(np.ones((5, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="call `fit"):
        SubspaceAlignment(2).transform(np.ones((5, 3)), "source")
    with pytest.raises(ValueError, match="`site` must be 'source' or 'target'"):
        SubspaceAlignment(1).fit(np.eye(3), np.eye(3)).transform(np.eye(3), "hospital")


# ---- gradient reversal ---------------------------------------------------------------------------------------


def test_reversal_is_identity_forward_and_minus_lambda_backward():
    x = torch.randn(3, 4, requires_grad=True)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x), "the forward pass must not change the features"
    upstream = torch.randn(3, 4)
    y.backward(upstream)
    assert torch.allclose(x.grad, -0.7 * upstream)


def test_reversal_gradcheck():
    # gradcheck compares the analytic backward with finite differences of the forward. The forward is the
    # identity, whose true Jacobian is I, so the reversed backward (-lambda I) must FAIL gradcheck, and the same
    # layer with lambda = -1 ("reversal of the reversal") must pass: both prove backward = -lambda * upstream.
    x = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: GradReverse.apply(t, -1.0), (x,))
    assert not torch.autograd.gradcheck(lambda t: GradReverse.apply(t, 0.5), (x,), raise_exception=False)
    # and the full layer with a downstream function: d/dx sum(sin(R(x))) = -lambda cos(x)
    grad = torch.autograd.grad(torch.sin(grad_reverse(x, 0.5)).sum(), x)[0]
    assert torch.allclose(grad, -0.5 * torch.cos(x))


def test_lambda_schedule():
    assert lambda_schedule(0.0) == 0.0
    assert lambda_schedule(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)  # 0.99991
    assert lambda_schedule(0.1, lambda_max=0.5) == pytest.approx(0.5 * (2 / (1 + math.exp(-1)) - 1))
    values = [lambda_schedule(p / 10) for p in range(11)]
    assert all(a < b for a, b in zip(values[:-1], values[1:], strict=True)), "the ramp must increase"
    with pytest.raises(ValueError, match=r"`progress` must lie in \[0, 1\]"):
        lambda_schedule(1.5)
    with pytest.raises(ValueError, match="`lambda_` must be a finite number >= 0"):
        grad_reverse(torch.ones(1), -1.0)


def test_site_head_gradient_reaches_the_features_reversed():
    torch.manual_seed(0)
    model = SiteAdversarialModel(MLP(6, 3, hidden=5), n_sites=2, hidden=4)
    x, labels, sites = torch.randn(8, 6), torch.randint(0, 3, (8,)), torch.randint(0, 2, (8,))
    first = model.classifier.features[1].weight
    grads = {}
    for lam in (0.0, 1.0):
        model.zero_grad()
        _, _, site_loss = site_adversarial_loss(model, x, labels, sites, lam)
        site_loss.backward()
        grads[lam] = first.grad.clone()
    assert torch.count_nonzero(grads[0.0]) == 0, "with lambda = 0 the site loss must not reach the features"
    # with lambda = 1 the features receive minus the gradient that would make them better at the site
    features = model.classifier.features(x)
    plain = torch.autograd.grad(F.cross_entropy(model.site_head(features), sites), first)[0]
    assert torch.allclose(grads[1.0], -plain, atol=1e-6)
    with pytest.raises(ValueError, match="must both have shape"):
        site_adversarial_loss(model, x, labels, sites[:4], 1.0)


# ---- RRR and GradMask on a linear softmax model: closed forms ------------------------------------------------


@pytest.fixture
def linear():
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(9, 3)).double()  # logits z = W x + b, K = 3 classes


def _batch(k=2):
    x = torch.rand(k, 1, 3, 3, dtype=torch.double, generator=torch.Generator().manual_seed(4))  # (B, C, H, W)
    roi = torch.zeros(k, 1, 3, 3, dtype=torch.bool)
    roi[:, :, 1, :] = True  # the middle row is the ROI
    return x, torch.tensor([0, 2][:k]), roi


def test_rrr_penalty_closed_form(linear):
    x, y, roi = _batch()
    W = linear[1].weight.detach()  # (K, D)
    p = torch.softmax(linear(x), dim=1).detach()  # (B, K)
    # d/dx sum_k log p_k = sum_k W_k - K * sum_j p_j W_j   (d log p_k/dx = W_k - sum_j p_j W_j)
    grad = W.sum(0) - 3 * p @ W  # (B, D)
    outside = (~roi).flatten(1).double()
    expected = ((outside * grad) ** 2).sum(1).mean()
    total, ce, penalty = rrr_loss(linear, x, y, roi, 2.0)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-10)
    assert ce.item() == pytest.approx(F.cross_entropy(linear(x), y).item())
    assert total.item() == pytest.approx(ce.item() + 2.0 * expected.item())


def test_rrr_penalty_trains_the_weights(linear):
    # create_graph=True: the penalty has a gradient with respect to the weights
    x, y, roi = _batch()
    _, _, penalty = rrr_loss(linear, x, y, roi, 1.0)
    (grad_w,) = torch.autograd.grad(penalty, linear[1].weight)
    assert grad_w.abs().sum() > 0


def test_rrr_penalty_ignores_the_roi(linear):
    x, y, roi = _batch()
    everything = torch.ones_like(roi)
    assert rrr_loss(linear, x, y, everything, 1.0)[2].item() == 0.0
    inverted = rrr_loss(linear, x, y, ~roi, 1.0)[2]
    assert inverted.item() != pytest.approx(rrr_loss(linear, x, y, roi, 1.0)[2].item())


def test_gradmask_penalty_closed_form():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 2)).double()
    x, _, roi = _batch()
    y = torch.tensor([0, 1])
    W = model[1].weight.detach()
    contrast_grad = (W[1] - W[0]).expand(2, 9)  # d(z1 - z0)/dx = W1 - W0 for every image
    expected = (((~roi).flatten(1).double() * contrast_grad) ** 2).sum(1).mean()
    assert gradmask_loss(model, x, y, roi, 1.0)[2].item() == pytest.approx(expected.item(), rel=1e-10)


def test_gradmask_needs_two_classes(linear):
    x, y, roi = _batch()
    with pytest.raises(ValueError, match="needs a two-class model"):
        gradmask_loss(linear, x, y, roi, 1.0)


@pytest.mark.parametrize("loss", [rrr_loss, gradmask_loss, actdiff_loss])
def test_penalty_losses_validate_their_inputs(loss):
    model = SmallCNN(width=2)
    x, y = torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    roi = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(TypeError, match="`roi` must be a bool tensor"):
        loss(model, x, y, roi.float(), 1.0)
    with pytest.raises(ValueError, match=r"`roi` \(shape \(2, 1, 4, 8\)\) must match `x`"):
        loss(model, x, y, roi[:, :, :4], 1.0)
    with pytest.raises(ValueError, match=r"`y` \(shape \(3,\)\)"):
        loss(model, x, torch.tensor([0, 1, 1]), roi, 1.0)
    with pytest.raises(ValueError, match="`lambda_` must be >= 0"):
        loss(model, x, y, roi, -1.0)


# ---- ActDiff ---------------------------------------------------------------------------------------------------


def test_masked_copy_keeps_the_roi_and_replaces_the_outside():
    x = torch.arange(3.0)[:, None, None, None].expand(3, 1, 2, 2).clone()  # image b is all b
    roi = torch.zeros(3, 1, 2, 2, dtype=torch.bool)
    roi[:, :, 0, 0] = True
    shuffled = masked_copy(x, roi, "shuffle")
    assert torch.equal(shuffled[:, 0, 0, 0], torch.tensor([0.0, 1.0, 2.0]))  # the ROI is untouched
    assert torch.equal(shuffled[:, 0, 1, 1], torch.tensor([1.0, 2.0, 0.0]))  # the outside of the next image
    assert masked_copy(x, roi, "zeros")[:, 0, 1, 1].abs().sum() == 0
    assert torch.equal(masked_copy(x, roi, torch.tensor(5.0))[:, 0, 1, 1], torch.full((3,), 5.0))
    with pytest.raises(ValueError, match="`fill` must be 'shuffle', 'zeros' or a tensor"):
        masked_copy(x, roi, "blur")


def test_actdiff_penalty_is_the_feature_distance():
    torch.manual_seed(6)
    model = MLP(4, 2, hidden=3)
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    roi = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    roi[:, :, 0] = True
    _, ce, penalty = actdiff_loss(model, x, y, roi, 1.0, fill="zeros")
    masked = torch.where(roi, x, 0.0)
    expected = (model.features(x) - model.features(masked)).pow(2).sum(1).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6)
    assert ce.item() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)
    assert actdiff_loss(model, x, y, torch.ones_like(roi), 1.0)[2].item() == 0.0, "nothing replaced, no distance"


# ---- per-site centring ---------------------------------------------------------------------------------------


def test_site_means_by_hand():
    from course_lib.confounders.site_centring import site_means

    images = np.array([1.0, 3.0, 10.0, 20.0, 30.0]).reshape(5, 1, 1, 1) * np.ones((5, 1, 2, 2))  # (N, C, H, W)
    means = site_means(images, np.array([0, 0, 1, 1, 1]))
    assert means.shape == (2, 1, 2, 2) and means.dtype == np.float32
    assert np.allclose(means[0], 2.0) and np.allclose(means[1], 20.0)  # (1 + 3) / 2, (10 + 20 + 30) / 3


def test_site_centring_removes_a_constant_site_offset():
    from course_lib.confounders.site_centring import SiteCentred, site_means

    rng = np.random.default_rng(0)
    anatomy = rng.random((6, 1, 8, 8)).astype(np.float32)  # (N, C, H, W), the same images at both sites
    marker = np.zeros((1, 8, 8), dtype=np.float32)
    marker[0, :2, :2] = 3.0  # site 1's marker and background offset, identical in every site-1 image
    images = np.concatenate([anatomy, anatomy + marker + 0.5])
    model = SiteCentred(SmallCNN(width=2), site_means(images, np.repeat([0, 1], 6)))
    with torch.no_grad():
        site0 = model.use_site(0)(torch.from_numpy(images[:6]))
        site1 = model.use_site(1)(torch.from_numpy(images[6:]))
    assert torch.allclose(site0, site1, atol=1e-5), "after centring, a site-1 copy must look like its site-0 image"


def test_site_centring_ill_inputs():
    from course_lib.confounders.site_centring import SiteCentred, site_means

    with pytest.raises(ValueError, match=r"no image of site\(s\) \[1\]"):
        site_means(np.zeros((3, 1, 2, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"`sites` \(shape \(2,\)\) must have shape \(N,\) = \(3,\)"):
        site_means(np.zeros((3, 1, 2, 2)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"`means` must be \(n_sites, C, H, W\)"):
        SiteCentred(SmallCNN(width=2), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"`site` must lie in \[0, 1\]"):
        SiteCentred(SmallCNN(width=2), np.zeros((2, 1, 4, 4))).use_site(2)
