"""ch03b's lighting augmentation, chosen on a validation microscope: which range helps under a lamp not trained on?

The density net of ch03b trains on ``EASY`` cells under one lamp and is tested, among others, on ``SHIFTED``:
another lamp and stain (a strong illumination fall-off, a high background, dim and out-of-focus cells). A random
lighting augmentation (:class:`course_lib.counting.training_data.Lighting`) should make the net indifferent to the
lamp, but how strong? Choosing it by the SHIFTED test numbers would be choosing on test. This script chooses on a
third microscope, :data:`course_lib.counting.synthetic_cells.OTHER_LAMP` (another lamp, milder fall-off, cells in
focus), used for nothing else: it trains the density net of the experiment (``QUICK`` settings: data, epochs, net)
once per candidate and seed, keeps each run's best epoch on OTHER_LAMP validation images, and prints the kept
validation count MAE per candidate (mean ± sd over the seeds, lower is better).

The rule, fixed before running: the candidate with the lowest mean validation MAE; a stronger candidate replaces a
milder one only if its paired gain over the milder one exceeds the gain's sd over seeds. Nothing here reads a test
image::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lighting_on_validation.py      # about 3 min on one core

The last line is ``lighting_chosen: <name>``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from course_lib import config
from course_lib.counting import experiment as counting
from course_lib.counting.models import DensityFCN
from course_lib.counting.synthetic_cells import EASY, OTHER_LAMP, cell_dataset
from course_lib.counting.training import train_density_model
from course_lib.counting.training_data import Lighting

# from none to strong: exposure x stain (log-uniform), background offset, illumination ramp
CANDIDATES = {
    "none": None,
    "mild": Lighting(gain=(0.8, 1.25), offset=(-0.02, 0.05), gradient=0.15),
    "medium": Lighting(gain=(0.5, 2.0), offset=(-0.05, 0.15), gradient=0.3),
    "strong": Lighting(gain=(0.35, 2.8), offset=(-0.05, 0.25), gradient=0.6),
}


def training_images(s: counting.CountingSettings, seed: int):
    """The experiment's training distribution: EASY cells at each clustering level of ``s.train_clustering``."""
    parts = [cell_dataset(s.n_train // len(s.train_clustering), dataclasses.replace(EASY, clustering=c),
                          seed=10_000 * seed + k) for k, c in enumerate(s.train_clustering)]
    return np.concatenate([p[0] for p in parts]), [d for p in parts for d in p[1]]


def main() -> int:
    s = counting.QUICK
    maes: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    start = time.perf_counter()
    for seed in s.seeds:
        train_images, train_dots = training_images(s, seed)
        val_images, val_dots = cell_dataset(s.n_val, OTHER_LAMP, seed=10_000 * seed + 99)
        for name, lighting in CANDIDATES.items():
            config.seed_everything(seed)
            model = DensityFCN(1, 1, depth=s.depth, width=s.width, normalize_input=s.normalize_input)
            history = train_density_model(model, train_images, train_dots, val_images, val_dots, sigma=s.sigma,
                                          crop=s.crop, lighting=lighting, epochs=s.epochs, batch_size=s.batch_size,
                                          lr=s.lr, seed=seed, device="cpu")
            maes[name].append(float(min(history["val_count_mae"])))
            print(f"seed {seed} {name:7s} OTHER_LAMP validation count MAE {maes[name][-1]:.3f}", flush=True)
    print(f"\n{'candidate':10s} {'validation MAE (mean ± sd, cells)':>36s}   ({time.perf_counter() - start:.0f} s)")
    for name, values in maes.items():
        print(f"{name:10s} {np.mean(values):24.3f} ± {np.std(values, ddof=1):.3f}   per seed {np.round(values, 3)}")
    names = list(CANDIDATES)
    chosen = names[0]
    for name in names[1:]:  # walk from mild to strong: a stronger range must beat the kept one beyond the spread
        gain = np.asarray(maes[chosen]) - np.asarray(maes[name])
        if gain.mean() > gain.std(ddof=1):
            chosen = name
    print(f"lighting_chosen: {chosen}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
