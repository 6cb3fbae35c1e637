"""Tests of course_lib.metrics.dice_loss: the soft Dice loss, against MONAI's ``DiceLoss`` as oracle."""

from __future__ import annotations

import warnings

import pytest
import torch
from monai.losses import DiceLoss

from course_lib.metrics import SoftDiceLoss, soft_dice, soft_dice_loss


def make_inputs(seed: int, shape: tuple, *, label_map: bool):
    """Logits (B, C, *spatial) and a target: label map (B, *spatial) or one-hot (B, C, *spatial)."""
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(shape, generator=g, dtype=torch.float64)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    if label_map:
        return logits, labels
    return logits, torch.nn.functional.one_hot(labels, shape[1]).movedim(-1, 1).double()


def monai_loss(logits, target, *, activation, smooth, batch, include_background, reduction):
    """MONAI's DiceLoss with the same options; a label map is given as (B, 1, *spatial) + to_onehot_y."""
    label_map = target.shape != logits.shape
    if label_map and target.ndim == logits.ndim - 1:
        target = target[:, None]  # (B, *spatial) -> (B, 1, *spatial)
    loss = DiceLoss(
        sigmoid=activation == "sigmoid",
        softmax=activation == "softmax",
        to_onehot_y=label_map,
        include_background=include_background,
        smooth_nr=smooth,
        smooth_dr=smooth,
        batch=batch,
        reduction=reduction,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns about include_background with one channel
        out = loss(logits, target)
    if reduction == "none":  # MONAI keeps singleton spatial axes: (B, C, 1, 1) or (C, 1, 1)
        out = out.reshape(out.shape[: 1 if batch else 2])
    return out


SHAPES = [
    pytest.param((2, 3, 6, 5), id="2d-C3"),
    pytest.param((3, 2, 4, 4, 3), id="3d-C2"),
    pytest.param((2, 4, 17), id="1d-C4"),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("include_background", [True, False], ids=["with-bg", "no-bg"])
@pytest.mark.parametrize("batch", [False, True], ids=["per-sample", "batch"])
@pytest.mark.parametrize("smooth", [1e-5, 1.0], ids=["smooth1e-5", "smooth1"])
@pytest.mark.parametrize("target_kind", ["one-hot", "labels", "labels-B1"])
@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_monai(shape, activation, target_kind, smooth, batch, include_background, reduction):
    logits, target = make_inputs(sum(shape), shape, label_map=target_kind != "one-hot")
    if target_kind == "labels-B1":
        target = target[:, None]  # (B, *spatial) -> (B, 1, *spatial)
    kwargs = dict(activation=activation, smooth=smooth, batch=batch, include_background=include_background,
                  reduction=reduction)
    got = soft_dice_loss(logits, target, **kwargs)
    expected = monai_loss(logits, target, **kwargs)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("batch", [False, True], ids=["per-sample", "batch"])
@pytest.mark.parametrize("seed", [0, 1])
def test_binary_sigmoid_one_channel_matches_monai(seed, batch):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 1, 8, 8, generator=g)  # (B, 1, H, W) binary segmentation
    target = (torch.rand(4, 1, 8, 8, generator=g) < 0.3).float()
    target[0] = 0  # one sample with an empty target
    kwargs = dict(activation="sigmoid", smooth=1e-5, batch=batch, include_background=True, reduction="none")
    torch.testing.assert_close(soft_dice_loss(logits, target, **kwargs), monai_loss(logits, target, **kwargs),
                               atol=1e-6, rtol=0)


def test_probabilities_without_activation_match_monai():
    g = torch.Generator().manual_seed(3)
    probs = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float64)  # soft predictions in [0, 1]
    soft_target = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float64)  # soft labels in [0, 1]
    kwargs = dict(activation=None, smooth=1e-5, batch=False, include_background=True, reduction="none")
    torch.testing.assert_close(soft_dice_loss(probs, soft_target, **kwargs),
                               monai_loss(probs, soft_target, **kwargs), atol=1e-6, rtol=0)


def test_hand_case():
    # (B=1, C=1, N=4) probabilities [0.5, 0.5, 1, 0] against target [1, 0, 1, 0], smooth=0:
    # sum p*t = 0.5 + 1 = 1.5; sum p + sum t = 2 + 2 = 4 -> Dice = 2*1.5/4 = 0.75, loss 0.25
    probs = torch.tensor([[[0.5, 0.5, 1.0, 0.0]]])
    target = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    assert soft_dice_loss(probs, target, activation=None, smooth=0.0).item() == pytest.approx(0.25)
    assert soft_dice(probs, target, smooth=0.0).item() == pytest.approx(0.75)
    # smooth=1: (3 + 1) / (4 + 1) = 0.8 -> loss 0.2
    assert soft_dice_loss(probs, target, activation=None, smooth=1.0).item() == pytest.approx(0.2)


def test_hand_case_batch_sums_before_dividing():
    # (B=2, C=1, N=2), smooth=0. Sample 0: p=[1, 0], t=[1, 0] -> Dice 1. Sample 1: p=[1, 1], t=[0, 1]
    # -> 2*1/(2+1) = 2/3. Per-sample mean loss = (0 + 1/3)/2 = 1/6.
    # batch=True: sum p*t = 1 + 1 = 2, sum p + sum t = 3 + 2 = 5 -> Dice 4/5, loss 1/5.
    probs = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    target = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert soft_dice_loss(probs, target, activation=None, smooth=0.0).item() == pytest.approx(1 / 6)
    assert soft_dice_loss(probs, target, activation=None, smooth=0.0, batch=True).item() == pytest.approx(1 / 5)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_perfect_logits_give_zero_loss(activation):
    labels = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(0))  # (B, H, W)
    onehot = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float()  # (B, C=3, H, W)
    logits = 40.0 * onehot - 20.0  # +20 on the right class, -20 elsewhere
    assert soft_dice_loss(logits, labels, activation=activation).item() == pytest.approx(0.0, abs=1e-6)
    # and confidently wrong logits give a loss near 1
    assert soft_dice_loss(-logits, labels, activation="sigmoid").item() == pytest.approx(1.0, abs=1e-6)


def test_empty_target_and_empty_prediction_give_zero_loss():
    # (B=1, C=1, N=4): nothing to find and nothing predicted -> (0 + smooth)/(0 + smooth) = 1, loss 0
    zeros = torch.zeros(1, 1, 4)
    assert soft_dice_loss(zeros, zeros, activation=None).item() == 0.0
    # with smooth=0 the 0/0 is undefined: the docstring's reason for the smoothing term
    assert torch.isnan(soft_dice_loss(zeros, zeros, activation=None, smooth=0.0))


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 2, 3, 3, 3)], ids=["2d", "3d"])
def test_label_map_equals_one_hot_target(shape, activation):
    logits, labels = make_inputs(1, shape, label_map=True)
    onehot = torch.nn.functional.one_hot(labels, shape[1]).movedim(-1, 1)  # (B, *spatial, C) -> (B, C, ...)
    for reduction in ("none", "mean"):
        from_labels = soft_dice_loss(logits, labels, activation=activation, reduction=reduction)
        for target in (onehot, onehot.float(), onehot.bool(), labels[:, None], labels.float(), labels.int()):
            torch.testing.assert_close(
                soft_dice_loss(logits, target, activation=activation, reduction=reduction), from_labels
            )


@pytest.mark.parametrize(
    "batch, include_background, expected_shape",
    [(False, True, (2, 4)), (True, True, (4,)), (False, False, (2, 3)), (True, False, (3,))],
    ids=["B-C", "C", "B-C-1", "C-1"],
)
def test_reduction_shapes(batch, include_background, expected_shape):
    logits, labels = make_inputs(2, (2, 4, 5, 5), label_map=True)  # (B=2, C=4, H, W)
    kw = dict(activation="softmax", batch=batch, include_background=include_background)
    none = soft_dice_loss(logits, labels, reduction="none", **kw)
    assert none.shape == expected_shape
    assert ((none >= 0) & (none <= 1)).all()
    torch.testing.assert_close(soft_dice_loss(logits, labels, reduction="mean", **kw), none.mean())
    torch.testing.assert_close(soft_dice_loss(logits, labels, reduction="sum", **kw), none.sum())


def test_gradients_are_finite_and_nonzero():
    logits, labels = make_inputs(4, (2, 3, 6, 6), label_map=True)
    logits = logits.float().requires_grad_()
    loss = soft_dice_loss(logits, labels, activation="softmax")
    loss.backward()
    assert logits.grad is not None and logits.grad.shape == logits.shape
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "activation, batch, include_background",
    [("sigmoid", False, True), ("softmax", False, True), ("softmax", True, False), (None, False, True)],
    ids=["sigmoid", "softmax", "softmax-batch-no-bg", "probabilities"],
)
def test_gradcheck(activation, batch, include_background):
    g = torch.Generator().manual_seed(5)
    shape = (2, 3, 4)  # (B, C, N): tiny so the finite differences are cheap
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 0.8 + 0.1
    if activation is not None:
        x = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
    x.requires_grad_()
    target = torch.randint(0, 3, (2, 4), generator=g)
    assert torch.autograd.gradcheck(
        lambda inp: soft_dice_loss(inp, target, activation=activation, batch=batch,
                                   include_background=include_background, reduction="none"),
        (x,),
    )


def test_module_equals_function_and_trains():
    logits, labels = make_inputs(6, (2, 3, 4, 4), label_map=True)
    module = SoftDiceLoss(activation="softmax", include_background=False, reduction="none")
    torch.testing.assert_close(
        module(logits, labels),
        soft_dice_loss(logits, labels, activation="softmax", include_background=False, reduction="none"),
    )
    assert "activation='softmax'" in repr(module) and "include_background=False" in repr(module)
    # gradient descent on the logits lowers the loss
    x = logits.clone().requires_grad_()
    opt = torch.optim.SGD([x], lr=50.0)
    first = SoftDiceLoss(activation="softmax")(x, labels)
    for _ in range(20):
        opt.zero_grad()
        SoftDiceLoss(activation="softmax")(x, labels).backward()
        opt.step()
    assert SoftDiceLoss(activation="softmax")(x, labels).item() < 0.5 * first.item()


# --------------------------------------------------------------------------- ill inputs

LOGITS = torch.zeros(2, 3, 4, 4)  # (B, C, H, W)
LABELS = torch.zeros(2, 4, 4, dtype=torch.long)  # (B, H, W)


@pytest.mark.parametrize(
    "input, target, kwargs, error, pattern",
    [
        pytest.param(LOGITS.numpy(), LABELS, {}, TypeError, r"`input` must be a torch.Tensor, got ndarray",
                     id="numpy-input"),
        pytest.param(LOGITS, LABELS.tolist(), {}, TypeError, r"`target` must be a torch.Tensor, got list",
                     id="list-target"),
        pytest.param(LOGITS.long(), LABELS, {}, TypeError,
                     r"`input` must be a floating point tensor of logits, got dtype torch.int64", id="int-input"),
        pytest.param(torch.zeros(2, 16), LABELS, {}, ValueError,
                     r"`input` must have shape \(B, C, \*spatial\), got \(2, 16\)", id="no-channel-axis"),
        pytest.param(torch.full((2, 3, 4, 4), float("nan")), LABELS, {}, ValueError,
                     r"`input` \(shape \(2, 3, 4, 4\)\) contains NaN", id="nan-input"),
        pytest.param(LOGITS, torch.full((2, 3, 4, 4), float("nan")), {}, ValueError,
                     r"`target` \(shape \(2, 3, 4, 4\)\) contains NaN", id="nan-target"),
        pytest.param(LOGITS, torch.zeros(2, 5, 5, dtype=torch.long), {}, ValueError,
                     r"`target` \(shape \(2, 5, 5\)\) must have the shape of `input` \(2, 3, 4, 4\) or be a "
                     r"label map of shape \(2, 4, 4\)", id="shape-mismatch"),
        pytest.param(LOGITS, torch.zeros(2, 2, 4, 4), {}, ValueError,
                     r"`target` \(shape \(2, 2, 4, 4\)\) must have the shape of `input`", id="wrong-channels"),
        pytest.param(LOGITS, 2 * torch.ones(2, 3, 4, 4), {}, ValueError,
                     r"`target` .*must hold binary / one-hot / soft labels in \[0, 1\]; found values in "
                     r"\[2.0, 2.0\]", id="same-shape-not-binary"),
        pytest.param(LOGITS, torch.full((2, 4, 4), 3), {}, ValueError,
                     r"`target` labels lie in \[3, 3\], outside \[0, 3\) for `input` with 3 channels",
                     id="label-out-of-range"),
        pytest.param(LOGITS, torch.full((2, 4, 4), -1), {}, ValueError, r"`target` labels lie in \[-1, -1\]",
                     id="negative-label"),
        pytest.param(LOGITS, torch.full((2, 4, 4), 0.5), {}, ValueError,
                     r"`target` label map \(shape \(2, 4, 4\)\) must hold integer labels", id="fractional-label"),
        pytest.param(torch.zeros(2, 1, 4, 4), LABELS, {}, ValueError,
                     r"`input` has one channel .*give a binary `target` of the same shape", id="one-channel-labels"),
        pytest.param(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), {"activation": "softmax"}, ValueError,
                     r"`activation='softmax'` on one channel \(input shape \(2, 1, 4, 4\)\)",
                     id="softmax-one-channel"),
        pytest.param(LOGITS, LABELS, {"activation": "relu"}, ValueError,
                     r"`activation` must be one of \('sigmoid', 'softmax', None\), got 'relu'", id="bad-activation"),
        pytest.param(LOGITS, LABELS, {"reduction": "avg"}, ValueError,
                     r"`reduction` must be one of \('mean', 'sum', 'none'\), got 'avg'", id="bad-reduction"),
        pytest.param(LOGITS, LABELS, {"smooth": -1.0}, ValueError, r"`smooth` must be >= 0, got -1.0",
                     id="negative-smooth"),
        pytest.param(LOGITS - 1, LABELS, {"activation": None}, ValueError,
                     r"`activation=None` needs probabilities in \[0, 1\] as `input`", id="logits-without-activation"),
        pytest.param(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), {"include_background": False}, ValueError,
                     r"`include_background=False` needs at least two channels", id="no-bg-one-channel"),
    ],
)
def test_ill_inputs_raise(input, target, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        soft_dice_loss(input, target, **kwargs)
    with pytest.raises(error, match=pattern):
        SoftDiceLoss(**kwargs)(input, target)
