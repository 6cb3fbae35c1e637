"""Benchmark: fully convolutional inference vs patch-by-patch classification of a 1024 x 1024 RGB tile, on CPU.

The patch classifier is :class:`course_lib.histology.fcn.PatchClassifier` with random weights (speed does not
depend on training): two blocks of two 3x3 convolutions + batch norm + ReLU + 2x2 max pool, and a ``Linear`` head.
Patches are taken every J = 4 pixels, the network's total stride, so both ways produce the same heat-map.

The baseline is not a strawman:

* crops are classified in batches, and the batch size is the fastest of a small sweep on a strip of the tile
  (small batches stay in cache and often win on CPU);
* both networks get the same inference preparation: batch norm folded into the convolution before it
  (``torch.nn.utils.fusion.fuse_conv_bn_eval``) and channels-last weights, which made both faster here.
  ``--plain`` keeps PyTorch's defaults for both.

The heat-maps must agree before times are compared (asserted, max abs diff printed): the prepared FCN against the
prepared patch-wise run, and against the unprepared FCN (so against the original classifier too). Run::

    .venv/bin/python benchmarks/bench_fcn.py [--threads N] [--patches 32 50] [--plain]

Each timing also records the share of the cores the process actually got (CPU time / (wall time * threads)).
On a machine busy with other work a multi-threaded PyTorch op waits for descheduled threads at every barrier;
small patch batches suffer most, which would inflate the speed-up. A share below 0.75 is flagged.

The headline is the Kaggle IDC patch size (50 x 50); the 32 x 32 row shows how the speed-up grows with the overlap
of neighbouring patches, about (P / J) ** 2 for the convolutions (the head is never shared). The multiplication
ratio (``count_multiplications``) is the speed-up if both ran at the same speed per multiplication; the FCN runs
slower per multiplication, its full-tile activations do not fit in cache.
"""

from __future__ import annotations

import argparse
import copy
import os

import torch
from timing import best_of
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from course_lib.histology.fcn import (
    PatchClassifier,
    predict_fully_convolutional,
    predict_patchwise,
    to_fully_convolutional,
)
from course_lib.histology.receptive_field import count_multiplications, layers_from_module

TILE = 1024
BATCH_SIZES = (32, 64, 128, 256)
TOL = 1e-5


def prepare_for_inference(net: nn.Module) -> nn.Module:
    """A copy with every BatchNorm2d folded into the Conv2d before it (eval mode) and channels-last weights."""
    net = copy.deepcopy(net).eval()
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for conv, bn in zip(names[:-1], names[1:], strict=True):  # (conv, bn) neighbours in one Sequential
            if isinstance(seq._modules[conv], nn.Conv2d) and isinstance(seq._modules[bn], nn.BatchNorm2d):
                seq._modules[conv] = fuse_conv_bn_eval(seq._modules[conv], seq._modules[bn])
                seq._modules[bn] = nn.Identity()
    # a convolution with channels-last weights makes channels-last outputs, whatever the layout of its input
    return net.to(memory_format=torch.channels_last)


def fastest_batch_size(net: nn.Module, tile: torch.Tensor, patch: int, stride: int) -> int:
    """Sweep the patch-wise batch size on a strip of 16 patch rows; return the fastest."""
    strip = tile[:, : patch + 15 * stride]  # (3, P + 15 J, 1024): 16 rows of patches
    predict_patchwise(net, strip, patch, stride)  # warm-up
    timings = {bs: best_of(lambda bs=bs: predict_patchwise(net, strip, patch, stride, batch_size=bs), 2)[0]
               for bs in BATCH_SIZES}
    return min(timings, key=timings.get)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor, what: str) -> float:
    assert a.shape == b.shape, f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}"
    diff = (a - b).abs().max().item()
    assert diff <= TOL, f"{what} disagree: max abs diff {diff:.2e}"
    return diff


def run(patch: int, tile: torch.Tensor, plain: bool) -> dict:
    torch.manual_seed(0)
    original = PatchClassifier(patch_size=patch).eval()
    with torch.no_grad():  # random but non-trivial batch-norm statistics
        for m in original.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    net = original if plain else prepare_for_inference(original)
    fcn = to_fully_convolutional(net)
    stride = fcn.grid.stride
    predict_fully_convolutional(fcn, tile)  # warm-up
    t_fcn, share_fcn, fast = best_of(lambda: predict_fully_convolutional(fcn, tile))
    max_abs_diff(fast, predict_fully_convolutional(to_fully_convolutional(original), tile), "prepared vs original")
    batch = fastest_batch_size(net, tile, patch, stride)
    t_patch, share_patch, slow = best_of(lambda: predict_patchwise(net, tile, patch, stride, batch_size=batch), 1)
    diff = max_abs_diff(fast, slow, "FCN and patch-wise")
    mults = count_multiplications(layers_from_module(nn.Sequential(fcn.features, fcn.head)), TILE, ndim=2,
                                  patch_size=patch)
    return {"patch": patch, "stride": stride, "outputs": tuple(fast.shape[1:]), "batch": batch, "t_fcn": t_fcn,
            "t_patch": t_patch, "diff": diff, "mult_ratio": mults.ratio, "share": min(share_fcn, share_patch)}


def main() -> None:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=available, help=f"torch threads (default: {available})")
    parser.add_argument("--patches", type=int, nargs="+", default=[32, 50], help="patch sides (last: headline)")
    parser.add_argument("--plain", action="store_true", help="no batch-norm folding, default memory layout")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tile = torch.rand(3, TILE, TILE, generator=torch.Generator().manual_seed(0))  # (3, 1024, 1024) RGB in [0, 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"FCN vs patch-by-patch on a {TILE}x{TILE} RGB tile, CPU, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, {'plain' if args.plain else 'batch norm folded, channels-last'}, "
          f"load average before {load:.2f}")
    rows = [run(patch, tile, args.plain) for patch in args.patches]
    print(f"{'patch':>5} {'stride':>6} {'outputs':>10} {'batch':>5} {'fcn s':>7} {'patchwise s':>11} "
          f"{'speedup':>8} {'mults ratio':>11} {'max abs diff':>12} {'cpu share':>9}")
    for r in rows:
        print(f"{r['patch']:>5} {r['stride']:>6} {'x'.join(map(str, r['outputs'])):>10} {r['batch']:>5} "
              f"{r['t_fcn']:>7.3f} {r['t_patch']:>11.2f} {r['t_patch'] / r['t_fcn']:>7.1f}x "
              f"{r['mult_ratio']:>10.1f}x {r['diff']:>12.1e} {r['share']:>9.2f}")
    if min(r["share"] for r in rows) < 0.75:
        print("warning: the process got less than 75% of its cores (other work on the machine): the patch-wise "
              "time, and so the speed-up, is unreliable; rerun on a quiet machine or with --threads 1")
    head = rows[-1]  # by default 50 x 50, the Kaggle IDC patch size
    print(f"fcn_speedup_vs_patchwise: {head['t_patch'] / head['t_fcn']:.1f} x")
    print(f"fcn_max_abs_diff: {head['diff']:.1e}")


if __name__ == "__main__":
    main()
