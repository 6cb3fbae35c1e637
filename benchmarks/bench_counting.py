"""Benchmark: counting cells — the classic pipeline vs density regression, and how fast density targets are made.

1. **Density targets.** :func:`course_lib.counting.density.density_map` (one matrix product of per-dot row and
   column Gaussians) vs ``naive_density_map`` (a Python loop over every pixel for every dot), for a 128 x 128
   field with 50 cells. Both must agree (asserted) before their times are compared.
2. **Counting.** :func:`course_lib.counting.experiment.run_counting_experiment`: the classic threshold-watershed
   pipeline (tuned on ``EASY``, and re-tuned on the density net's own training and validation images) and a density
   U-Net (trained on EASY cells at clustering 0, 0.4 and 0.8 with random lighting whose ranges were set knowing
   ``SHIFTED``; never on ``SHIFTED`` images) count the *same* held-out images of ``EASY``, ``CLUSTERED`` and
   ``SHIFTED``, each condition reported on its own. With ``--full`` (sized for a GPU) the data and net are larger and
   a Count-ception net with the paper's 32 px window is trained too.

The last lines are the headline figures: every MAE as mean ± sd (ddof=1) over the seeds. Each seed draws new data
and a new initialisation; the quick default runs the settings' seeds (0, 1 and 2) and prints every seed's value,
because one small training run on CPU is noisy (the SHIFTED condition most). Run::

    .venv/bin/python benchmarks/bench_counting.py [--full] [--threads N] [--seeds 0 1 2]

Training times depend on how busy the machine is: CPU time is printed beside wall time, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from timing import best_of

from course_lib.counting.density import density_map, naive_density_map
from course_lib.counting.experiment import FULL, QUICK, run_counting_experiment, seed_summary


def bench_density_map() -> dict:
    dots = np.random.default_rng(0).uniform(-0.5, 127.5, size=(50, 2))  # (50, 2) cells anywhere, border included
    fast, slow = density_map(dots, (128, 128), 2.0), naive_density_map(dots, (128, 128), 2.0)
    diff = float(np.abs(fast - slow).max())
    assert diff < 1e-6, f"density_map and the per-pixel loop disagree: max abs diff {diff:.1e}"
    t_fast = best_of(lambda: [density_map(dots, (128, 128), 2.0) for _ in range(100)])[0] / 100
    t_slow = best_of(lambda: naive_density_map(dots, (128, 128), 2.0), repeats=2)[0]
    return {"t_fast": t_fast, "t_slow": t_slow, "diff": diff}


def run_seed(settings, seed: int, device: str) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_counting_experiment(settings, seed=seed, device=device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    table = result["table"]
    print(f"\nseed {seed}: {settings.n_train} training / {settings.n_val} validation images, {settings.n_test} test "
          f"images per condition; best epoch {result['histories']['density'].best_epoch} of {settings.epochs}; "
          f"experiment wall {wall:.1f} s, CPU {cpu:.1f} s")
    for method, seconds in result["seconds"].items():
        what = "training" if method in ("density", "countception") else "counting"
        print(f"  {method:14s} {what} wall time {seconds:7.1f} s")
    print(f"{'condition':10s} {'method':13s} {'MAE':>7s} {'rel. err':>9s} {'bias':>7s} {'loc. F1':>8s}")
    for row in table.itertuples():
        print(f"{row.condition:10s} {row.method:13s} {row.mae:7.2f} {row.relative_error:9.3f} {row.bias:+7.2f} "
              f"{row.localisation_f1:8.3f}")
    return {"table": table, "train_seconds": result["seconds"]["density"]}


def main() -> None:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full-size experiment (for a GPU)")
    parser.add_argument("--threads", type=int, default=min(available, 2), help="torch CPU threads")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="training/data seeds (default: the settings' seeds); headlines are means over seeds")
    parser.add_argument("--device", default=None, help="default: CUDA if available, else CPU")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    settings = FULL if args.full else QUICK
    seeds = args.seeds or list(settings.seeds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"counting benchmark: {'full' if args.full else 'quick'} settings, device {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, load average before {load:.2f}")

    dm = bench_density_map()
    print(f"\ndensity_map 128x128, 50 cells: {dm['t_fast'] * 1e3:.3f} ms ({1 / dm['t_fast']:.0f} maps/s); "
          f"per-pixel loop {dm['t_slow'] * 1e3:.0f} ms; max abs diff {dm['diff']:.1e}")

    runs = [run_seed(settings, seed, device) for seed in seeds]
    summary = seed_summary([r["table"] for r in runs])
    print()
    print(f"density_map_speedup_vs_naive_loop: {dm['t_slow'] / dm['t_fast']:.0f} x")
    for row in summary.itertuples():
        values = [t.loc[(t["condition"] == row.condition) & (t["method"] == row.method), "mae"].item()
                  for t in (r["table"] for r in runs)]
        spread = f" ± {row.mae_sd:.2f} (seeds: {', '.join(f'{v:.2f}' for v in values)})" if len(runs) > 1 else ""
        print(f"{row.method}_mae_{row.condition}: {row.mae_mean:.2f} cells{spread}")
    print(f"density_train_seconds: {np.mean([r['train_seconds'] for r in runs]):.1f} s")


if __name__ == "__main__":
    main()
