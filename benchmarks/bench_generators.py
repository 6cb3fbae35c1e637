"""Benchmark: the synthetic data generators are fast enough for quick mode, measured in one run.

Quick mode draws thousands of images per notebook on 2 CPU cores, so each generator has a rate it must reach
(the brief of each module). Printed per generator: the best-of-three rate, the target, and the ratio. Run::

    .venv/bin/python benchmarks/bench_generators.py
"""

from __future__ import annotations

import numpy as np
import torch
from timing import best_of

from course_lib.chest_xray.synthetic import TwoViewConfig, make_studies
from course_lib.counting.density import density_map
from course_lib.counting.synthetic_cells import SHIFTED, cell_dataset
from course_lib.histology.synthetic_tiles import HistologyConfig, make_histology_tile

DOTS = np.random.default_rng(0).uniform(0, 127, (50, 2))  # (50, 2) cells on a 128 x 128 image

# name -> (items per call, work, target items/s, unit)
CASES = {
    "synthetic_cxr_studies_64px": (200, lambda: make_studies(200, TwoViewConfig(size=64), seed=0), 500, "studies/s"),
    "synthetic_cells_shifted_128px": (40, lambda: cell_dataset(40, SHIFTED, seed=0), 200, "images/s"),
    "synthetic_histology_tile_512px": (1, lambda: make_histology_tile(HistologyConfig(size=512), seed=0), 2,
                                       "tiles/s"),
    "density_map_128px_50_dots": (20, lambda: [density_map(DOTS, (128, 128)) for _ in range(20)], 100, "maps/s"),
}


def main() -> None:
    torch.set_num_threads(1)  # the generators are single-threaded NumPy; one thread is what a data worker gets
    rows = []
    for name, (items, work, target, unit) in CASES.items():
        work()  # warm-up: imports, caches
        seconds, share, _ = best_of(work, repeats=3)
        rate = items / seconds
        rows.append((name, rate, target, unit, share))
    print(f"{'generator':34s} {'rate':>10s} {'target':>8s}  unit        core share")
    for name, rate, target, unit, share in rows:
        print(f"{name:34s} {rate:10.0f} {target:8d}  {unit:10s}  {share:.2f}")
    for name, rate, target, _, _ in rows:
        print(f"{name}_rate_vs_target: {rate / target:.2f} x")


if __name__ == "__main__":
    main()
