"""Why `make` runs quick mode on one thread per process (OMP_NUM_THREADS=1, see the Makefile).

A small density FCN trains for a fixed number of Adam steps, the size of quick mode's nets, in fresh processes:
alone with torch's default threads (one per core) and with one thread, then two processes side by side (what
`make test` does: two workers, the grader's kernels beside them) with each setting. Prints seconds and ratios.

    python benchmarks/bench_threads.py [--steps 150]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = """
import time, torch
from torch import nn
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                    nn.Conv2d(8, 1, 1))
opt = torch.optim.Adam(net.parameters())
x = torch.rand(8, 1, 64, 64)                       # (B, 1, H, W): a quick-mode batch of crops
start = time.perf_counter()
for _ in range({steps}):
    opt.zero_grad()
    net(x).square().mean().backward()
    opt.step()
print(time.perf_counter() - start)
"""


def run(processes: int, threads: int | None, steps: int) -> float:
    """Slowest training time (s) of `processes` children started together, each with `threads` (None: default)."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    children = [subprocess.Popen([sys.executable, "-c", CHILD.format(steps=steps)], env=env, text=True,
                                 stdout=subprocess.PIPE) for _ in range(processes)]
    return max(float(child.communicate()[0]) for child in children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    cores = os.cpu_count() or 1
    print(f"{cores} cores; {args.steps} Adam steps of a 3-layer FCN on (8, 1, 64, 64) per process")
    started = time.perf_counter()
    alone_default, alone_one = run(1, None, args.steps), run(1, 1, args.steps)
    pair_default, pair_one = run(2, None, args.steps), run(2, 1, args.steps)
    print(f"alone:        default threads {alone_default:6.2f} s   one thread {alone_one:6.2f} s   "
          f"ratio {alone_default / alone_one:5.2f}x")
    print(f"two at once:  default threads {pair_default:6.2f} s   one thread {pair_one:6.2f} s   "
          f"ratio {pair_default / pair_one:5.2f}x")
    print(f"(measured in one run of {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
