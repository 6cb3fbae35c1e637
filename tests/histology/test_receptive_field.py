"""Tests of course_lib.histology.receptive_field: receptive field size / jump / start, reading layers from
modules, and the multiplications a fully convolutional pass saves.

Oracles: the gradient of one output with respect to the input (its non-zero support is the receptive field),
a bump test for max pooling, a pure-Python convolution that counts its own multiplications, and
``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add of a convolution, biases not counted).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_lib.histology.receptive_field import (
    Layer,
    count_multiplications,
    layers_from_module,
    lecture_quiz,
    lecture_quiz_network,
    receptive_fields,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

# --------------------------------------------------------------------------- recurrences, hand-checked

# (stack, [(r, j, start) after each layer]); r += (k_eff - 1) * j_in, j *= s, start += ((k_eff - 1) / 2 - p) * j_in
HAND_CASES = [
    pytest.param([Layer(2), Layer(3)], [(2, 1, 0.5), (4, 1, 1.5)], id="lecture-quiz"),  # r = 1 + 1 + 2 = 4
    pytest.param([Layer(3, stride=2), Layer(3, stride=2)], [(3, 2, 1.0), (7, 4, 3.0)], id="strided"),  # 3 + 2*2
    pytest.param([Layer(3, dilation=2)], [(5, 1, 2.0)], id="dilated"),  # k_eff = 2 * (3 - 1) + 1 = 5
    pytest.param([Layer(3, padding=1), Layer(3, padding=1)], [(3, 1, 0.0), (5, 1, 0.0)], id="same-padding"),
    pytest.param([Layer(2, stride=2, multiplies=False), Layer(3)], [(2, 2, 0.5), (6, 2, 2.5)], id="pool-conv"),
    pytest.param([Layer(7, stride=2, padding=3), Layer(3, stride=2, padding=1, multiplies=False)],
                 [(7, 2, 0.0), (11, 4, 0.0)], id="resnet-stem"),  # 7 + 2 * 2 = 11, start 0 + (1 - 1) * 2
]


@pytest.mark.parametrize(("stack", "expected"), HAND_CASES)
def test_receptive_fields_hand_checked(stack, expected):
    assert [(rf.size, rf.jump, rf.start) for rf in receptive_fields(stack)] == expected


# --------------------------------------------------------------------------- brute force: gradient support

# 1-D stacks as (kind, kernel, stride, padding, dilation); AvgPool has MaxPool's geometry and a dense gradient.
STACKS = [
    pytest.param([("conv", 2, 1, 0, 1), ("conv", 3, 1, 0, 1)], id="lecture-quiz"),
    pytest.param([("conv", 3, 1, 0, 1), ("pool", 2, 2, 0, 1), ("conv", 3, 1, 0, 1), ("pool", 2, 2, 0, 1)],
                 id="vgg-valid"),
    pytest.param([("conv", 3, 1, 1, 1), ("pool", 2, 2, 0, 1), ("conv", 3, 1, 1, 1)], id="vgg-same"),
    pytest.param([("conv", 3, 2, 1, 1), ("conv", 3, 1, 2, 2), ("conv", 2, 3, 0, 1)], id="strided-dilated"),
    pytest.param([("conv", 5, 2, 2, 1), ("pool", 3, 2, 1, 1), ("conv", 3, 1, 0, 3)], id="stem-pool-dilated"),
]


def build(spec, ndim: int) -> nn.Sequential:
    conv, pool = (nn.Conv1d, nn.AvgPool1d) if ndim == 1 else (nn.Conv2d, nn.AvgPool2d)
    layers = []
    for kind, k, s, p, d in spec:
        if kind == "conv":
            layers.append(conv(1, 1, k, stride=s, padding=p, dilation=d, bias=False))
        else:
            layers.append(pool(k, stride=s, padding=p, count_include_pad=True))
    net = nn.Sequential(*layers).double()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                m.weight.uniform_(0.5, 1.0)  # positive weights: no cancellation can hide a dependence
    return net


def gradient_support(net: nn.Module, n: int, index: tuple[int, ...], ndim: int) -> list[tuple[int, int]]:
    """(first, last) input pixel, per axis, on which output ``index`` depends."""
    x = torch.rand((1, 1) + (n,) * ndim, dtype=torch.float64, requires_grad=True)  # (1, 1, n[, n])
    net(x)[(0, 0, *index)].backward()
    nonzero = x.grad[0, 0].abs() > 0
    spans = []
    for axis in range(ndim):
        other = tuple(a for a in range(ndim) if a != axis)
        hit = np.flatnonzero(nonzero.any(dim=other).numpy() if other else nonzero.numpy())
        spans.append((int(hit[0]), int(hit[-1])))
    return spans


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("spec", STACKS)
def test_receptive_field_equals_gradient_support(spec, ndim):
    net = build(spec, ndim)
    rf = receptive_fields(layers_from_module(net))[-1]
    n = rf.size + 4 * rf.jump + 7  # room for 5+ outputs, some far from the borders
    out_len = net(torch.zeros((1, 1) + (n,) * ndim, dtype=torch.float64)).shape[-1]
    for i in sorted({0, out_len // 2, out_len - 1}):
        first, last = rf.span(i)  # start + i * j -/+ (r - 1) / 2, may lie in the padding
        expected = (max(int(first), 0), min(int(last), n - 1))  # the gradient only sees real pixels
        assert gradient_support(net, n, (i,) * ndim, ndim) == [expected] * ndim, f"output {i}"
    interior = [i for i in range(out_len) if rf.span(i)[0] >= 0 and rf.span(i)[1] <= n - 1]
    assert interior, "test setup: no output has its whole receptive field inside the input"
    first, last = gradient_support(net, n, (interior[0],) * ndim, ndim)[0]
    assert last - first + 1 == rf.size  # the support's extent is r, away from the padding


def test_max_pool_receptive_field_by_bump():
    """Max pooling passes no gradient to non-maximal inputs; instead bump one pixel and watch the output."""
    net = nn.Sequential(nn.Conv1d(1, 1, 3, bias=False), nn.MaxPool1d(3, stride=2), nn.Conv1d(1, 1, 2, bias=False))
    nn.init.constant_(net[0].weight, 1.0)
    nn.init.constant_(net[2].weight, 1.0)
    rf = receptive_fields(layers_from_module(net))[-1]  # r = 3 + 2 * 1 + 1 * 2 = 7, j = 2, start = 3
    assert (rf.size, rf.jump, rf.start) == (7, 2, 3.0)
    x = torch.zeros(1, 1, 21)
    base = net(x)[0, 0, 3].item()  # output 3 sees pixels 3 + 3 * 2 -/+ 3 = 6 .. 12
    seen = [p for p in range(21) if net(x.index_put((torch.tensor([0]), torch.tensor([0]), torch.tensor([p])),
                                                    torch.tensor(100.0)))[0, 0, 3].item() != base]
    assert seen == list(range(6, 13))


# --------------------------------------------------------------------------- layers_from_module


def test_layers_from_module_reads_every_field():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1, dilation=1), nn.Dropout2d(0.1)),
        nn.Conv2d(8, 16, 3, padding="same", dilation=2, groups=4), nn.AvgPool2d(2),
        nn.Conv2d(16, 4, 3, padding="valid"),
    )
    layers = layers_from_module(net)
    assert [(lay.name, lay.kernel, lay.stride, lay.padding, lay.dilation, lay.multiplies) for lay in layers] == [
        ("0", 5, 2, 2, 1, True), ("3.0", 3, 2, 1, 1, False), ("4", 3, 1, 2, 2, True),  # 'same': d * (k - 1) / 2
        ("5", 2, 2, 0, 1, False), ("6", 3, 1, 0, 1, True),  # pool stride defaults to its kernel
    ]
    assert (layers[2].in_channels, layers[2].out_channels, layers[2].groups) == (8, 16, 4)


def test_layers_from_module_on_quiz_network():
    layers = layers_from_module(lecture_quiz_network())
    assert [(lay.kernel, lay.stride, lay.padding, lay.in_channels, lay.out_channels) for lay in layers] == [
        (2, 1, 0, 1, 1), (3, 1, 0, 1, 1)]


@pytest.mark.parametrize(("module", "match"), [
    pytest.param(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 2)), "Flatten.*model.features",
                 id="flatten"),
    pytest.param(nn.Sequential(nn.Linear(8, 2)), "Linear.*not supported", id="linear"),
    pytest.param(nn.Sequential(nn.ConvTranspose2d(3, 3, 2, stride=2)), "ConvTranspose2d", id="transposed"),
    pytest.param(nn.Sequential(nn.AdaptiveAvgPool2d(1)), "AdaptiveAvgPool2d", id="adaptive-pool"),
    pytest.param(nn.Sequential(nn.Conv2d(3, 3, (3, 5))), r"kernel_size=\(3, 5\).*square", id="rectangular-kernel"),
    pytest.param(nn.Sequential(nn.Conv2d(3, 3, 3, stride=(1, 2))), r"stride=\(1, 2\)", id="rectangular-stride"),
    pytest.param(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), "ceil_mode", id="ceil-mode"),
    pytest.param(nn.Sequential(nn.Conv1d(1, 1, 2, padding="same")), "asymmetric", id="same-even-kernel"),
    pytest.param(nn.Sequential(nn.ReLU()), "empty", id="no-geometry"),
])
def test_layers_from_module_rejects(module, match):
    with pytest.raises(ValueError, match=match):
        layers_from_module(module)


def test_layers_from_module_needs_a_module():
    with pytest.raises(TypeError, match="must be a torch.nn.Module, got list"):
        layers_from_module([Layer(3)])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kernel": 0}, "`kernel` must be an integer >= 1, got 0"),
    ({"kernel": 3, "stride": 0}, "`stride` must be an integer >= 1"),
    ({"kernel": 3, "padding": -1}, "`padding` must be an integer >= 0"),
    ({"kernel": 3, "dilation": 1.5}, "`dilation` must be an integer"),
    ({"kernel": 3, "in_channels": 3, "out_channels": 4, "groups": 2}, r"`groups` \(2\) must divide"),
])
def test_layer_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Layer(**kwargs)


def test_receptive_fields_rejects_bad_stacks():
    with pytest.raises(ValueError, match="`layers` is empty"):
        receptive_fields([])
    with pytest.raises(TypeError, match="must hold Layer objects, got int"):
        receptive_fields([3, 3])


# --------------------------------------------------------------------------- the lecture's quiz


def test_lecture_quiz_answers():
    # r = 1 + (2 - 1) + (3 - 1) = 4 nodes; length 5: 2 patches * (3*2 + 1*3) - (4*2 + 2*3) = 18 - 14 = 4;
    # length 6: 3 patches * 9 - (5*2 + 3*3) = 27 - 19 = 8
    assert lecture_quiz() == {"receptive_field": 4, "multiplications_saved": 4, "multiplications_saved_input_6": 8}


# --------------------------------------------------------------------------- multiplications vs brute force


def counting_conv1d(x: list[float], w: list[float], stride: int, dilation: int, counter: list[int]) -> list[float]:
    """A valid 1-D convolution (cross-correlation) in pure Python that counts its multiplications."""
    span = dilation * (len(w) - 1) + 1
    out = []
    for start in range(0, len(x) - span + 1, stride):
        acc = 0.0
        for t, wt in enumerate(w):
            acc += x[start + t * dilation] * wt
            counter[0] += 1
        out.append(acc)
    return out


def run_counting(stack: list[Layer], weights: list[list[float]], x: list[float]) -> tuple[list[float], int]:
    counter = [0]
    for layer, w in zip(stack, weights, strict=True):
        x = counting_conv1d(x, w, layer.stride, layer.dilation, counter)
    return x, counter[0]


# (stack, input length); all single-channel and unpadded so the pure-Python oracle applies
MULT_CASES = [
    pytest.param([Layer(2), Layer(3)], 5, id="quiz-n5"),
    pytest.param([Layer(2), Layer(3)], 6, id="quiz-n6"),
    pytest.param([Layer(2), Layer(3)], 11, id="quiz-n11"),
    pytest.param([Layer(3, stride=2), Layer(2)], 13, id="strided"),
    pytest.param([Layer(2, dilation=2), Layer(3), Layer(2, stride=2)], 16, id="dilated-strided"),
]


@pytest.mark.parametrize(("stack", "n"), MULT_CASES)
def test_multiplications_match_counting_convolution(stack, n):
    rng = np.random.default_rng(n)
    weights = [list(rng.normal(size=layer.kernel)) for layer in stack]
    x = list(rng.normal(size=n))
    rf = receptive_fields(stack)[-1]
    full, full_count = run_counting(stack, weights, x)
    patch_count, patch_outputs = 0, []
    for offset in range(0, n - rf.size + 1, rf.jump):  # every r-wide patch, one per output
        out, count = run_counting(stack, weights, x[offset:offset + rf.size])
        patch_outputs += out
        patch_count += count
    np.testing.assert_allclose(patch_outputs, full[:len(patch_outputs)])  # same answers, fewer multiplications
    count = count_multiplications(stack, n)
    assert (count.patchwise, count.fully_convolutional) == (patch_count, full_count)
    assert count.saved == patch_count - full_count and count.ratio == pytest.approx(patch_count / full_count)


def torch_multiplications(net: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as flops:
        net(x)
    return flops.get_total_flops() // 2  # a convolution's FLOPs = 2 * multiply-adds


# (module, input side, patch side or None for r); multi-channel, grouped, pooled, padded
TORCH_CASES = [
    pytest.param(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 4, 3)), 30, None,
                 id="conv-pool-conv"),
    pytest.param(nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, groups=2), nn.Conv2d(8, 2, 2, dilation=2)), 25, None,
                 id="grouped-dilated"),
    pytest.param(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(4, 2, 3, padding=1)), 24, 8,
                 id="padded-patch-8"),
]


@pytest.mark.parametrize(("net", "n", "patch"), TORCH_CASES)
def test_multiplications_match_flop_counter(net, n, patch):
    layers = layers_from_module(net)
    rf = receptive_fields(layers)[-1]
    patch = patch or rf.size
    channels = layers[0].in_channels
    x = torch.rand(1, channels, n, n)
    corners = range(0, n - patch + 1, rf.jump)
    crops = torch.stack([x[0, :, i:i + patch, j:j + patch] for i in corners for j in corners])  # (N, C, P, P)
    count = count_multiplications(layers, n, ndim=2, patch_size=patch)
    assert count.n_patches == len(crops)
    assert count.patchwise == torch_multiplications(net, crops)  # FLOPs grow linearly with the batch
    assert count.fully_convolutional == torch_multiplications(net, x)


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (([Layer(3, padding=1)], 10), {}, "pads its inputs: pass `patch_size`"),
    (([Layer(3)], 10), {"ndim": 3}, "`ndim` must be 1 or 2, got 3"),
    (([Layer(3)], 10), {"patch_size": 11}, r"`patch_size` \(11\) must be between 1 and `input_size` \(10\)"),
    (([Layer(3), Layer(3)], 4), {}, r"`patch_size` \(5\) must be between"),
    (([Layer(3, stride=2), Layer(3)], 6), {"patch_size": 4}, "input of size 1 is too small for layer"),
])
def test_count_multiplications_rejects(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        count_multiplications(*args, **kwargs)
