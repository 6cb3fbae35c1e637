"""What ``COURSE_CHANNELS_LAST=1`` buys: training the course's convolution nets in ``channels_last`` on a CPU.

Each chapter's quick-mode network trains for a fixed number of Adam steps on random inputs of its quick batch shape,
once with PyTorch's default NCHW weights and once with ``channels_last`` (NHWC) weights, alternating in ONE process on
one thread (what ``make`` runs). Prints the seconds per step of each and their ratio (NCHW / NHWC: above 1 means
``channels_last`` is faster), and the largest difference of the two layouts' outputs at the initial weights (the same
function; only the summation order differs, so the difference is rounding)::

    python benchmarks/bench_memory_format.py [--steps 30] [--repeats 3]

On a CPU without oneDNN (``torch.backends.mkldnn.is_available()`` false) the course keeps NCHW whatever the
variable says. ``ATEN_CPU_CAPABILITY=default`` shows what a processor without AVX2 would see. The speed is one half of
the question; the other is whether every notebook's claim still holds when the summation order changes
(``benchmarks/claims_anywhere.py --settings channels-last``), which is why ``channels_last`` is not the default
(``course_lib.config.memory_format``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.chest_xray.backbones import SmallBackbone
from course_lib.confounders.models import SmallCNN
from course_lib.counting.models import DensityFCN
from course_lib.histology.unet import UNet
from course_lib.translation.models import PatchDiscriminator, ResnetGenerator


def _mse(output: torch.Tensor) -> torch.Tensor:
    return output.square().mean()


class _GeneratorAndCritic(nn.Module):
    """Chapter 4's translator step in one module: generator, then the PatchGAN on its output."""

    def __init__(self):
        super().__init__()
        self.generator, self.critic = ResnetGenerator(width=8, n_blocks=1), PatchDiscriminator(width=8, n_layers=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(self.generator(x))


# name -> (network factory, quick batch shape (B, C, H, W), loss of the output); the sizes are the QUICK settings'
CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int, int], Callable]] = {
    "ch01 small CNN, 64 px, batch 32": (lambda: SmallBackbone(5, width=8), (32, 1, 64, 64), _mse),
    "ch02 U-Net depth 2, 32 px patches, batch 32": (lambda: UNet(1, 1, depth=2, width=8), (32, 1, 32, 32), _mse),
    "ch02 U-Net depth 3, 64 px, batch 8": (lambda: UNet(1, 3, depth=3, width=8), (8, 1, 64, 64), _mse),
    "ch03 density FCN, 64 px crops, batch 8": (lambda: DensityFCN(1, 1, depth=3, width=8), (8, 1, 64, 64), _mse),
    "ch04 CycleGAN generator + PatchGAN, 32 px, batch 4": (_GeneratorAndCritic, (4, 1, 32, 32), _mse),
    "ch05 small CNN, 64 px, batch 32": (lambda: SmallCNN(1, 2, width=8),
                                        (32, 1, 64, 64), lambda out: F.cross_entropy(out, torch.zeros(
                                            len(out), dtype=torch.long))),
}


def seconds_per_step(factory, shape, loss_fn, layout: torch.memory_format, steps: int
                     ) -> tuple[float, torch.Tensor]:
    """Mean seconds of one Adam step (after two warm-up steps) and the output at the initial weights, from seed 0."""
    torch.manual_seed(0)
    model = factory().to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        initial = model(x).contiguous()

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x))
        loss.backward()
        optimizer.step()
        return loss.item()

    step(), step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps, initial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed Adam steps per layout and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of the two layouts (best one kept)")
    args = parser.parse_args()
    if args.steps < 1 or args.repeats < 1:
        parser.error(f"--steps and --repeats must be >= 1, got {args.steps}, {args.repeats}")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, oneDNN "
          f"{'on' if torch.backends.mkldnn.is_available() else 'absent'}, ATEN_CPU_CAPABILITY="
          f"{os.environ.get('ATEN_CPU_CAPABILITY', '(unset)')}; one thread, {args.steps} steps, best of "
          f"{args.repeats}")
    started, ratios = time.perf_counter(), []
    for name, (factory, shape, loss_fn) in CASES.items():
        best = {torch.contiguous_format: float("inf"), torch.channels_last: float("inf")}
        outputs = {}
        for _ in range(args.repeats):
            for layout in best:
                seconds, outputs[layout] = seconds_per_step(factory, shape, loss_fn, layout, args.steps)
                best[layout] = min(best[layout], seconds)
        ratio = best[torch.contiguous_format] / best[torch.channels_last]
        ratios.append(ratio)
        difference = (outputs[torch.contiguous_format] - outputs[torch.channels_last]).abs().max().item()
        print(f"{name:52s} NCHW {1000 * best[torch.contiguous_format]:7.1f} ms  channels_last "
              f"{1000 * best[torch.channels_last]:7.1f} ms  ratio {ratio:4.2f}x  max |output difference| "
              f"{difference:.1e}")
    geometric = float(torch.tensor(ratios).log().mean().exp())
    print(f"(measured in one run of {time.perf_counter() - started:.0f} s)")
    print(f"channels_last_step_speedup_geometric_mean: {geometric:.2f} x")


if __name__ == "__main__":
    main()
