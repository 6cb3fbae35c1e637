"""Tests of course_lib.histology.fcn: the converted FCN equals patch-by-patch classification.

Oracle: :func:`predict_patchwise`, the obvious crop-and-classify loop, on random weights with random batch-norm
statistics (a trained net is not needed: the conversion is exact for any weights). The output-to-pixel mapping is
checked by cropping, and by the gradient of one output with respect to the tile.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from course_lib.histology.fcn import (
    FullyConvolutional,
    PatchClassifier,
    predict_fully_convolutional,
    predict_patchwise,
    to_fully_convolutional,
)
from course_lib.histology.receptive_field import layers_from_module, receptive_fields

TOL = 1e-5  # float32


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def random_net(seed: int = 0, **kwargs) -> PatchClassifier:
    """A PatchClassifier with random weights and random (non-trivial) batch-norm running statistics."""
    torch.manual_seed(seed)
    net = PatchClassifier(**kwargs)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


# (kwargs, tile (H, W)); stride is the net's total stride J = 2 ** len(widths)
EQUALITY_CASES = [
    pytest.param({"patch_size": 32}, (32 + 4 * 6 + 3, 32 + 4 * 4), id="P32-J4"),  # extra 3 rows fit no patch
    # 73 -> 71 -> 69 -> 34 -> 32 -> 30 -> 15 features = 7 head positions, but only (73 - 50) // 4 + 1 = 6 patches
    # fit: the classifier ignores its patch's last 2 pixels (floor pooling), the FCN must drop that 7th output
    pytest.param({"patch_size": 50, "widths": (4, 8)}, (50 + 4 * 5 + 3, 50 + 4 * 3 + 2), id="P50-floor-pool"),
    pytest.param({"patch_size": 22, "widths": (4, 8, 8), "convs_per_block": 1}, (22 + 8 * 4, 22 + 8 * 5),
                 id="P22-J8-1conv"),  # 22 -> 20 -> 10 -> 8 -> 4 -> 2 -> 1 = F
    pytest.param({"patch_size": 24, "widths": (6,), "hidden": 16, "batch_norm": False}, (24 + 2 * 7, 24 + 2 * 5),
                 id="P24-J2-hidden-no-bn"),
    pytest.param({"patch_size": 33, "widths": (4, 8), "num_classes": 3, "in_channels": 1}, (33 + 4 * 5, 33 + 4 * 5),
                 id="P33-grey-3class"),
]


@pytest.mark.parametrize(("kwargs", "tile"), EQUALITY_CASES)
def test_fcn_equals_patchwise(kwargs, tile):
    net = random_net(**kwargs)
    fcn = to_fully_convolutional(net)
    J = 2 ** len(kwargs.get("widths", (16, 32)))
    assert fcn.grid.stride == J
    image = torch.rand(kwargs.get("in_channels", 3), *tile)  # (C, H, W)
    slow = predict_patchwise(net, image, net.patch_size, stride=J, batch_size=7)  # odd batch: a partial last batch
    fast = predict_fully_convolutional(fcn, image)
    rows, cols = (tile[0] - net.patch_size) // J + 1, (tile[1] - net.patch_size) // J + 1
    assert slow.shape == fast.shape == (net.head[-1].out_features, rows, cols)
    assert (fast - slow).abs().max().item() <= TOL


@pytest.mark.parametrize("multiple", [2, 3])
def test_patchwise_stride_multiple_of_jump_subsamples_the_fcn(multiple):
    net = random_net(patch_size=20, widths=(4, 8))
    image = torch.rand(3, 61, 57)
    slow = predict_patchwise(net, image, 20, stride=4 * multiple)
    fast = predict_fully_convolutional(to_fully_convolutional(net), image)[:, ::multiple, ::multiple]
    assert slow.shape == fast.shape and (fast - slow).abs().max().item() <= TOL


def test_batched_fcn_input():
    net = random_net(patch_size=20, widths=(4, 8))
    fcn = to_fully_convolutional(net)
    tiles = torch.rand(3, 3, 28, 32)  # (B, C, H, W)
    with torch.no_grad():
        out = fcn(tiles)  # (3, 2, 3, 4)
    for b in range(3):
        assert (out[b] - predict_patchwise(net, tiles[b], 20, 4)).abs().max().item() <= TOL


# --------------------------------------------------------------------------- mapping outputs to pixels


@pytest.mark.parametrize(("kwargs", "index"), [
    pytest.param({"patch_size": 32}, (3, 1), id="P32"),
    pytest.param({"patch_size": 26, "widths": (4, 4, 4), "convs_per_block": 1}, (2, 4), id="P26-J8"),
])
def test_top_left_and_centre_locate_the_patch(kwargs, index):
    net = random_net(**kwargs)
    fcn = to_fully_convolutional(net)
    J, P = fcn.grid.stride, net.patch_size
    i, j = index
    top, left = fcn.grid.top_left(i, j)
    assert (top, left) == (i * J, j * J)  # start - (r - 1) / 2 = 0 without padding
    assert fcn.grid.centre(i, j) == (top + (P - 1) / 2, left + (P - 1) / 2)
    tile = torch.rand(1, 3, P + 5 * J, P + 5 * J)
    with torch.no_grad():
        expected = net(tile[:, :, top:top + P, left:left + P])[0]  # (K,)
        assert (fcn(tile)[0, :, i, j] - expected).abs().max().item() <= TOL


def avg_pooled(net: nn.Module) -> nn.Module:
    """Same geometry with AvgPool instead of MaxPool, positive weights, no batch norm: a dense gradient."""
    net = copy.deepcopy(net)
    for block in net.features:
        block.pool = nn.AvgPool2d(2)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.uniform_(0.1, 1.0)
    return net


@pytest.mark.parametrize("padding", [0, 1])
def test_receptive_field_of_an_output_by_gradient(padding):
    net = avg_pooled(random_net(patch_size=20, widths=(4, 8), padding=padding, batch_norm=False))
    if padding:
        with pytest.warns(UserWarning, match="pads its inputs"):
            fcn = to_fully_convolutional(net)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning without padding
            fcn = to_fully_convolutional(net)
    grid = fcn.grid
    tile = torch.rand(1, 3, 20 + 6 * 4, 20 + 6 * 4, requires_grad=True)  # (1, 3, 44, 44): 7 x 7 outputs
    i, j = 3, 2  # interior: the receptive field stays inside the tile
    fcn(tile)[0, 0, i, j].backward()
    rows = tile.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()  # (3, H, W) -> (H,) rows touched
    cols = tile.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()  # (3, H, W) -> (W,) columns touched
    top, left = grid.top_left(i, j)
    assert (rows[0].item(), cols[0].item()) == (top - grid.halo, left - grid.halo)
    assert rows[-1].item() - rows[0].item() + 1 == grid.receptive_field
    # halo = p * 1 + p * 1 + p * 2 + p * 2 for the convolutions at jumps 1, 1, 2, 2
    assert grid.halo == 6 * padding
    assert grid.receptive_field == (20 if padding == 0 else 20 + 2 * 6)


# --------------------------------------------------------------------------- padding


def test_padded_features_are_aligned_but_see_real_context():
    """With padding the FCN is not the patch classifier: its interior outputs are the *unpadded* network on a
    window ``halo`` pixels larger on every side — real neighbours where the classifier saw zeros."""
    net = random_net(patch_size=16, widths=(4, 8), padding=1)
    with pytest.warns(UserWarning, match="pads its inputs.*use padding=0 for an exact match"):
        fcn = to_fully_convolutional(net)
    grid = fcn.grid
    image = torch.rand(3, 16 + 4 * 8, 16 + 4 * 8)  # (3, 48, 48): 9 x 9 outputs
    slow = predict_patchwise(net, image, 16, 4)
    fast = predict_fully_convolutional(fcn, image)
    assert fast.shape == slow.shape == (2, 9, 9)  # same grid ...
    assert (fast - slow).abs().max().item() > 1e-3  # ... different values: zero padding vs real neighbours
    valid = copy.deepcopy(net)
    for m in valid.features.modules():
        if isinstance(m, nn.Conv2d):
            m.padding = (0, 0)
    size = grid.receptive_field  # 16 + 2 * halo
    assert size == 16 + 2 * grid.halo
    for i, j in [(2, 2), (3, 5), (6, 4)]:  # windows inside the image
        top, left = (t - grid.halo for t in grid.top_left(i, j))
        window = image[None, :, top:top + size, left:left + size]  # (1, 3, r, r)
        with torch.no_grad():
            expected = valid.head(valid.features(window))[0]  # (K,)
        assert (fast[:, i, j] - expected).abs().max().item() <= TOL


# --------------------------------------------------------------------------- conversion details


class CustomClassifier(nn.Module):
    """Not a PatchClassifier: any ``features`` + ``head`` works, here with dropout and a 3-layer head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 5, stride=2), nn.ReLU(), nn.Conv2d(6, 6, 3, dilation=2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 2))

    def forward(self, x):
        return self.head(self.features(x))


def test_custom_classifier_with_explicit_patch_size():
    torch.manual_seed(1)
    net = CustomClassifier()  # no `patch_size` attribute: pass it
    fcn = to_fully_convolutional(net, patch_size=19)  # (19 - 5) // 2 + 1 = 8, then 8 - 2 * (3 - 1) = 4 = F
    assert isinstance(fcn, FullyConvolutional) and not fcn.training
    assert net.training  # the classifier is not modified (predict_patchwise restores its mode too)
    image = torch.rand(3, 19 + 2 * 6, 19 + 2 * 3)
    slow = predict_patchwise(net, image, 19, 2)
    assert net.training
    assert (predict_fully_convolutional(fcn, image) - slow).abs().max().item() <= TOL


def test_fcn_is_a_copy():
    net = random_net(patch_size=20, widths=(4, 8))
    fcn = to_fully_convolutional(net)
    with torch.no_grad():
        fcn.features.block1.conv1.weight.zero_()
    assert net.features.block1.conv1.weight.abs().sum() > 0
    assert layers_from_module(fcn)[-1].kernel == net.feature_side  # the Linear became an F x F convolution


def test_batch_norm_in_train_mode_breaks_the_equality():
    """Why both predictors run in eval mode: train-mode batch norm uses the current batch's statistics."""
    net = random_net(patch_size=20, widths=(4, 8))
    fcn = to_fully_convolutional(net)
    image = torch.rand(3, 40, 40)
    slow = predict_patchwise(net, image, 20, 4)
    assert (predict_fully_convolutional(fcn, image) - slow).abs().max().item() <= TOL  # eval mode
    assert not fcn.training  # and its mode restored
    bn = fcn.features.block1.bn1
    before = bn.running_mean.clone()
    with torch.no_grad():
        train_mode = fcn.train()(image[None])[0]  # normalised with this tile's statistics, not the running ones
    assert (train_mode - slow).abs().max().item() > 1e-3
    assert not torch.equal(bn.running_mean, before)  # and the running statistics moved, even under no_grad


def test_receptive_field_of_default_idc_classifier():
    net = PatchClassifier()  # 50 x 50 Kaggle IDC patches
    rf = receptive_fields(layers_from_module(net.features))[-1]  # one feature: 3, 5, 6, 6 + 2*2, 10 + 2*2, 14 + 2
    assert (net.patch_size, net.feature_side, rf.size, rf.jump) == (50, 9, 16, 4)  # last pool floors 19 -> 9
    grid = to_fully_convolutional(net).grid  # + the 9 x 9 head: 16 + (9 - 1) * 4 = 48 < 50
    assert (grid.receptive_field, grid.stride, grid.halo) == (48, 4, 0)


# --------------------------------------------------------------------------- ill inputs


class NoHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3)


def _head_model(*head: nn.Module, side: int = 8) -> nn.Module:
    model = NoHead()
    model.head = nn.Sequential(*head)
    model.patch_size = side
    return model


def _pool_only() -> nn.Module:
    model = _head_model(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    model.features = nn.MaxPool2d(2)  # (3, 8, 8) -> (3, 4, 4): no layer says how many channels come out
    return model


@pytest.mark.parametrize(("model", "kwargs", "match"), [
    pytest.param(NoHead(), {"patch_size": 8}, "needs a `features` module and a `head` nn.Sequential", id="no-head"),
    pytest.param(_head_model(nn.Flatten(), nn.Linear(4 * 6 * 6, 2)), {"patch_size": 0}, "`patch_size` must be",
                 id="bad-patch-size"),
    pytest.param(_head_model(nn.Flatten(), nn.Linear(99, 2)), {}, r"reads 99 features.*4 x 6 x 6 = 144 of a 8px",
                 id="wrong-in-features"),
    pytest.param(_head_model(nn.Flatten(), nn.Linear(144, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)), {},
                 r"`2` \(BatchNorm1d\) is not supported", id="batchnorm-in-head"),
    pytest.param(_head_model(nn.Flatten(), nn.ReLU()), {}, "no Linear layer", id="no-linear"),
    pytest.param(_head_model(nn.Flatten(), nn.Linear(4, 2), side=2), {}, "too small", id="patch-too-small"),
    pytest.param(_pool_only(), {}, "has no convolution", id="pool-only-features"),
])
def test_to_fully_convolutional_rejects(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        to_fully_convolutional(model, **kwargs)


@pytest.mark.parametrize(("image", "patch", "stride", "match"), [
    pytest.param(torch.rand(1, 3, 40, 40), 20, 4, r"must be a \(C, H, W\) tensor", id="4d-image"),
    pytest.param(torch.rand(3, 40, 19).numpy(), 20, 4, r"must be a \(C, H, W\) tensor", id="numpy"),
    pytest.param(torch.rand(3, 40, 19), 20, 4, r"between 1 and the image's smaller side \(image shape \(3, 40, 19\)",
                 id="patch-larger-than-image"),
    pytest.param(torch.rand(3, 40, 40), 20, 0, "`stride` must be a positive int, got 0", id="zero-stride"),
])
def test_predict_patchwise_rejects(image, patch, stride, match):
    net = random_net(patch_size=20, widths=(4, 8))
    with pytest.raises(ValueError, match=match):
        predict_patchwise(net, image, patch, stride)


def test_predict_patchwise_rejects_batch_size_and_restores_mode_on_error():
    net = random_net(patch_size=20, widths=(4, 8)).train()
    with pytest.raises(ValueError, match="`batch_size` must be a positive int, got 0"):
        predict_patchwise(net, torch.rand(3, 24, 24), 20, 4, batch_size=0)
    with pytest.raises(RuntimeError):  # 2 channels for a 3-channel network: fails inside the forward pass
        predict_patchwise(net, torch.rand(2, 24, 24), 20, 4)
    assert net.training  # mode restored although the forward pass raised


def test_forward_rejects_wrong_sizes():
    net = random_net(patch_size=20, widths=(4, 8))
    with pytest.raises(ValueError, match=r"must be \(B, C, 20, 20\) patches, got \(1, 3, 24, 24\)"):
        net(torch.rand(1, 3, 24, 24))
    with pytest.raises(ValueError, match=r"H, W >= patch_size 20, got \(1, 3, 19, 40\)"):
        to_fully_convolutional(net)(torch.rand(1, 3, 19, 40))
    with pytest.raises(ValueError, match="too small for the feature extractor"):
        PatchClassifier(patch_size=6)
    with pytest.raises(ValueError, match="at least one block"):
        PatchClassifier(widths=())
