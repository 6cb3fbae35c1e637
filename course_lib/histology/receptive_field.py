r"""Receptive fields of a stack of convolutions and poolings, and what a fully convolutional pass saves.

Each output of a convolutional network sees a window of the input: its *receptive field*. For a
sequential stack of layers :math:`l = 1..L` with kernel :math:`k_l`, stride :math:`s_l`, padding
:math:`p_l` and dilation :math:`d_l` (square kernels; one axis shown, the others are the same), three
numbers describe where every output of layer :math:`l` looks, in input pixels:

.. math::

    k^{\text{eff}}_l = d_l (k_l - 1) + 1                \qquad \text{(span of a dilated kernel)}

    j_l = j_{l-1}\, s_l                                  \qquad \text{(jump: input pixels between outputs)}

    r_l = r_{l-1} + (k^{\text{eff}}_l - 1)\, j_{l-1}     \qquad \text{(receptive field size)}

    \text{start}_l = \text{start}_{l-1} + \Big(\frac{k^{\text{eff}}_l - 1}{2} - p_l\Big)\, j_{l-1}

starting from the input itself, :math:`r_0 = 1, j_0 = 1, \text{start}_0 = 0`. ``start`` is the centre of
the receptive field of output 0, so output :math:`i` of layer :math:`l` sees the input pixels

.. math::  \text{start}_l + i\, j_l - \frac{r_l - 1}{2} \;\; \dots \;\; \text{start}_l + i\, j_l + \frac{r_l - 1}{2}

(pixels outside ``0 .. n-1`` are padding). Pixel :math:`x` has its centre at coordinate :math:`x`.

The lecture's quiz (:func:`lecture_quiz`): a 1-D net of a kernel-2 then a kernel-3 convolution has a
receptive field of 4 nodes. Applied to every 4-wide patch of a length-5 input independently it
recomputes the first layer's overlapping outputs; one fully convolutional pass over the whole input
computes each of them once and saves 4 multiplications (8 for a length-6 input). That saving, grown to
2-D images and deep nets, is why fully convolutional inference is fast (:mod:`course_lib.histology.fcn`).

References
----------
Araujo, Norris & Sim (2019). Computing receptive fields of convolutional neural networks. Distill.
https://distill.pub/2019/computing-receptive-fields/ (the recurrences and the ``start`` convention).
Long, Shelhamer & Darrell (2015). Fully convolutional networks for semantic segmentation. CVPR.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = [
    "Layer",
    "ReceptiveField",
    "receptive_fields",
    "layers_from_module",
    "MultiplicationCount",
    "count_multiplications",
    "lecture_quiz_network",
    "lecture_quiz",
]


@dataclass(frozen=True)
class Layer:
    """One convolution or pooling, as the receptive-field recurrences see it (same numbers on every axis)."""

    kernel: int  # k: taps per axis
    stride: int = 1  # s: input steps between neighbouring outputs
    padding: int = 0  # p: zeros added on each side of each axis
    dilation: int = 1  # d: step between taps; the kernel spans d * (k - 1) + 1 inputs
    in_channels: int = 1  # only used to count multiplications
    out_channels: int = 1  # only used to count multiplications
    groups: int = 1  # grouped convolution: each output channel sees in_channels / groups inputs
    multiplies: bool = True  # False for pooling: max / average pooling learns no weights to multiply
    name: str = ""  # where it came from, e.g. "features.block1.conv1"

    def __post_init__(self):
        for field, low in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1),
                           ("in_channels", 1), ("out_channels", 1)):
            value = getattr(self, field)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"`{field}` must be an integer >= {low}, got {value!r} (layer {self.name!r})")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"`groups` ({self.groups}) must divide `in_channels` ({self.in_channels}) and "
                             f"`out_channels` ({self.out_channels}) (layer {self.name!r})")

    @property
    def effective_kernel(self) -> int:
        """Input pixels spanned by one (dilated) kernel."""
        return self.dilation * (self.kernel - 1) + 1

    def output_size(self, n: int) -> int:
        """Outputs along one axis of length ``n`` (PyTorch's floor rule); < 1 means the input is too small."""
        return (n + 2 * self.padding - self.effective_kernel) // self.stride + 1

    def multiplications(self, n: int, ndim: int = 1) -> int:
        """Multiplications to compute this layer on an ``n``-long (``n x n`` for ``ndim=2``) input."""
        if not self.multiplies:
            return 0
        per_position = self.kernel**ndim * (self.in_channels // self.groups) * self.out_channels  # all channels
        return self.output_size(n) ** ndim * per_position


@dataclass(frozen=True)
class ReceptiveField:
    """Where the outputs of one layer look, in input pixels (see the module docstring)."""

    name: str
    size: int  # r: input pixels seen by one output, per axis
    jump: int  # j: input pixels between neighbouring outputs (the layer's total stride)
    start: float  # centre of output 0's receptive field; negative or fractional values are normal

    def span(self, i: int) -> tuple[float, float]:
        """First and last input coordinate seen by output ``i`` (may lie in the padding)."""
        centre = self.start + i * self.jump
        return centre - (self.size - 1) / 2, centre + (self.size - 1) / 2


def _check_layers(layers) -> list[Layer]:
    layers = list(layers)
    if not layers:
        raise ValueError("`layers` is empty: give at least one Layer (or a module with a conv/pool layer)")
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"`layers` must hold Layer objects, got {type(layer).__name__}")
    return layers


def receptive_fields(layers) -> list[ReceptiveField]:
    """Receptive field size, jump and start after every layer of a sequential stack.

    Parameters
    ----------
    layers : sequence of Layer
        The stack, input side first (e.g. from :func:`layers_from_module`).

    Returns
    -------
    list of ReceptiveField
        One per layer; the last one describes the network's outputs.

    Examples
    --------
    Two 3x3 convolutions, a 2x2 max pool, and another 3x3 convolution (VGG-style):

    >>> stack = [Layer(3), Layer(3), Layer(2, stride=2, multiplies=False), Layer(3)]
    >>> [(rf.size, rf.jump, rf.start) for rf in receptive_fields(stack)]
    [(3, 1, 1.0), (5, 1, 2.0), (6, 2, 2.5), (10, 2, 4.5)]
    """
    r, j, start = 1, 1, 0.0  # the input pixel itself
    out = []
    for layer in _check_layers(layers):
        k_eff = layer.effective_kernel
        r, start = r + (k_eff - 1) * j, start + ((k_eff - 1) / 2 - layer.padding) * j  # both use j_in
        j = j * layer.stride
        out.append(ReceptiveField(layer.name, r, j, start))
    return out


# Layers that act on each pixel separately: they do not move or widen receptive fields.
_POINTWISE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.Identity,
              nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax,
              nn.Dropout, nn.Dropout1d, nn.Dropout2d)


def _square(value, what: str, name: str) -> int:
    """The one number of an int or an all-equal tuple; ValueError for rectangular kernels/strides."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(set(values)) != 1:
        raise ValueError(f"`{name}` has {what}={value}: only square (equal on every axis) layers are supported")
    return int(values[0])


def _layer_from(name: str, m: nn.Module) -> Layer:
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        k, d = _square(m.kernel_size, "kernel_size", name), _square(m.dilation, "dilation", name)
        if m.padding == "valid":
            p = 0
        elif m.padding == "same":
            if (d * (k - 1)) % 2:
                raise ValueError(f"`{name}` uses padding='same' with an even kernel span: padding is asymmetric")
            p = d * (k - 1) // 2
        else:
            p = _square(m.padding, "padding", name)
        return Layer(k, _square(m.stride, "stride", name), p, d, m.in_channels, m.out_channels, m.groups,
                     name=name)
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
        if m.ceil_mode:
            raise ValueError(f"`{name}` uses ceil_mode=True: only PyTorch's default floor mode is supported")
        k = _square(m.kernel_size, "kernel_size", name)
        s = k if m.stride is None else _square(m.stride, "stride", name)
        d = _square(getattr(m, "dilation", 1), "dilation", name)  # AvgPool has no dilation
        return Layer(k, s, _square(m.padding, "padding", name), d, multiplies=False, name=name)
    hint = " (point at the convolutional part, e.g. `model.features`)" if isinstance(m, (nn.Linear, nn.Flatten)) else ""
    raise ValueError(f"`{name}` ({type(m).__name__}) is not supported: only Conv1d/2d, MaxPool1d/2d, "
                     f"AvgPool1d/2d and pointwise layers (ReLU, BatchNorm, Dropout, ...) are{hint}")


def layers_from_module(module: nn.Module) -> list[Layer]:
    """Read the conv and pool layers of a sequential network, in registration order.

    Pointwise layers (activations, batch norm, dropout) are skipped; containers are walked into.
    The order in which the layers were registered must be the order in which ``forward`` uses them,
    as in any ``nn.Sequential``.

    Parameters
    ----------
    module : nn.Module
        A network made of ``Conv1d``/``Conv2d``, ``MaxPool1d/2d``, ``AvgPool1d/2d`` and pointwise layers.

    Returns
    -------
    list of Layer

    Raises
    ------
    ValueError
        For any other layer (``Linear``, ``ConvTranspose2d``, ``Upsample``, adaptive pooling, ...), for
        non-square kernels, strides or padding, asymmetric ``padding='same'`` and ``ceil_mode=True``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, dilation=2))
    >>> [(layer.name, layer.kernel, layer.stride, layer.dilation) for layer in layers_from_module(net)]
    [('0', 3, 1, 1), ('2', 2, 2, 1), ('3', 3, 1, 2)]
    >>> receptive_fields(layers_from_module(net))[-1].size
    12
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module, got {type(module).__name__}")
    layers = []
    for name, m in module.named_modules():
        if next(m.children(), None) is not None or isinstance(m, _POINTWISE):
            continue  # a container (its children come next) or a layer that keeps the geometry
        layers.append(_layer_from(name or type(m).__name__, m))
    return _check_layers(layers)


@dataclass(frozen=True)
class MultiplicationCount:
    """Multiplications of patch-by-patch evaluation vs one fully convolutional pass."""

    input_size: int  # n: input length (side of an n x n image for ndim=2)
    patch_size: int  # P: side of each independently evaluated patch
    n_patches: int  # patches taken every `jump` pixels: ((n - P) // jump + 1) ** ndim
    patchwise: int  # n_patches * multiplications of one patch
    fully_convolutional: int  # multiplications of one pass over the whole input

    @property
    def saved(self) -> int:
        return self.patchwise - self.fully_convolutional

    @property
    def ratio(self) -> float:
        """How many times fewer multiplications the fully convolutional pass needs."""
        return self.patchwise / self.fully_convolutional


def _stack_multiplications(layers: list[Layer], n: int, ndim: int) -> int:
    total = 0
    for layer in layers:
        if layer.output_size(n) < 1:
            raise ValueError(f"input of size {n} is too small for layer {layer.name!r} "
                             f"(kernel span {layer.effective_kernel}, padding {layer.padding})")
        total += layer.multiplications(n, ndim)
        n = layer.output_size(n)
    return total


def count_multiplications(layers, input_size: int, *, ndim: int = 1, patch_size: int | None = None):
    """Multiplications saved by one fully convolutional pass over evaluating every patch on its own.

    Patch-by-patch: crop a ``patch_size`` patch every ``jump`` pixels (the stack's total stride, so both
    ways give one output per position) and run the stack on each crop. Fully convolutional: run the
    stack once on the whole input; neighbouring patches then share their overlapping intermediate
    outputs instead of recomputing them. Only convolutions multiply (pooling counts 0; biases add).

    Parameters
    ----------
    layers : sequence of Layer
    input_size : int
        Input length (1-D) or image side (2-D).
    ndim : {1, 2}
        1 for sequences, 2 for square images.
    patch_size : int, optional
        Defaults to the receptive field size, the smallest patch with one output. Required when a layer pads:
        a padded stack gives several outputs per receptive-field-sized patch.

    Returns
    -------
    MultiplicationCount
        ``.patchwise``, ``.fully_convolutional``, ``.saved``, ``.ratio``.

    Examples
    --------
    The lecture's net (kernel 2, then kernel 3) on a length-5 input: 2 patches of 4 cost 2 * (3*2 + 1*3) = 18
    multiplications; the whole input costs 4*2 + 2*3 = 14.

    >>> count = count_multiplications([Layer(2), Layer(3)], input_size=5)
    >>> count.patchwise, count.fully_convolutional, count.saved
    (18, 14, 4)
    """
    layers = _check_layers(layers)
    if ndim not in (1, 2):
        raise ValueError(f"`ndim` must be 1 or 2, got {ndim!r}")
    last = receptive_fields(layers)[-1]
    if patch_size is None:
        if any(layer.padding for layer in layers):
            raise ValueError("the stack pads its inputs: pass `patch_size` (the patch the network classifies)")
        patch_size = last.size
    if not 1 <= patch_size <= input_size:
        raise ValueError(f"`patch_size` ({patch_size}) must be between 1 and `input_size` ({input_size})")
    n_patches = ((input_size - patch_size) // last.jump + 1) ** ndim
    return MultiplicationCount(input_size, patch_size, n_patches,
                               n_patches * _stack_multiplications(layers, patch_size, ndim),
                               _stack_multiplications(layers, input_size, ndim))


def lecture_quiz_network() -> nn.Sequential:
    """The lecture's tiny 1-D network: a kernel-2 then a kernel-3 convolution, one channel, stride 1, no padding."""
    return nn.Sequential(nn.Conv1d(1, 1, kernel_size=2, bias=False), nn.Conv1d(1, 1, kernel_size=3, bias=False))


def lecture_quiz() -> dict[str, int]:
    """Answer the lecture's receptive-field quiz, computed from :func:`lecture_quiz_network`.

    Examples
    --------
    >>> lecture_quiz()
    {'receptive_field': 4, 'multiplications_saved': 4, 'multiplications_saved_input_6': 8}
    """
    layers = layers_from_module(lecture_quiz_network())
    return {
        "receptive_field": receptive_fields(layers)[-1].size,  # 1 + (2-1) + (3-1) = 4 nodes
        "multiplications_saved": count_multiplications(layers, input_size=5).saved,  # 18 - 14
        "multiplications_saved_input_6": count_multiplications(layers, input_size=6).saved,  # 3*9 - (5*2 + 3*3)
    }
