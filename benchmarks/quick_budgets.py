"""Do the quick-mode epoch budgets cost validation accuracy? Quick budget against twice the epochs, validation only.

The quick-mode epoch counts of three experiments were cut to fit a 2-core laptop's time budget (ch01b's fusion
models, ch02b's loss comparison, ch03b's density net). This script checks each cut on **validation data only**:
it trains the same seeds with the quick budget and with twice as many epochs, keeps each run's best validation
epoch as the experiments do, and prints the kept validation metric (mean ± sd over the seeds), the paired
difference of the longer budget (seed by seed: same data, same initial weights) and the training time of each
budget. The experiments also score their test sets internally; nothing here reads those numbers.

Where the longer budget buys more validation metric than the spread over seeds (``paired gain > its sd``), the
models are still improving at the quick budget, and what a notebook compares at that budget says so::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quick_budgets.py            # all three, about 9 min on one core
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quick_budgets.py --only ch02b
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from course_lib.chest_xray import experiment as fusion
from course_lib.counting import experiment as counting
from course_lib.histology import loss_experiment


def fusion_val(epochs: int) -> dict[str, list[float]]:
    """ch01b: kept validation AUROC (mean over findings) of the PA-only model and the measured fusion, per seed."""
    s = dataclasses.replace(fusion.QUICK, epochs=epochs)
    out: dict[str, list[float]] = {}
    for seed in s.seeds:
        run = fusion.run_fusion_experiment(("pa", s.gain_fusion), s, seed=seed, device="cpu")
        for name, entry in run["models"].items():
            out.setdefault(f"{name} val AUROC", []).append(float(entry["val_auroc_mean"]))
    return out


def losses_val(epochs: int) -> dict[str, list[float]]:
    """ch02b: kept validation Dice (at the threshold chosen on validation) of each loss, per seed."""
    s = dataclasses.replace(loss_experiment.QUICK, epochs=epochs)
    comparison = loss_experiment.compare_losses(s)
    return {f"{name} val Dice": list(scores["val_dice"]) for name, scores in comparison.scores.items()}


def counting_val(epochs: int) -> dict[str, list[float]]:
    """ch03b: the density net's kept validation count MAE (cells; lower is better), per seed."""
    s = dataclasses.replace(counting.QUICK, epochs=epochs)
    maes = [min(counting.run_counting_experiment(s, seed=seed)["histories"]["density"]["val_count_mae"])
            for seed in s.seeds]
    return {"density val count MAE (lower is better)": maes}


EXPERIMENTS = {  # notebook: (what is trained, quick epochs, runner)
    "ch01b": ("fusion: PA-only and AuxLoss, 3 seeds", fusion.QUICK.epochs, fusion_val),
    "ch02b": ("loss comparison: BCE, soft Dice, BCE + Dice, 3 seeds", loss_experiment.QUICK.epochs, losses_val),
    "ch03b": ("density net, 3 seeds", counting.QUICK.epochs, counting_val),
}


def mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(EXPERIMENTS), default=sorted(EXPERIMENTS))
    parser.add_argument("--factor", type=int, default=2, help="the longer budget, as a multiple of the quick one")
    args = parser.parse_args(argv)
    if args.factor < 2:
        parser.error("--factor must be >= 2")
    for key in args.only:
        what, quick, runner = EXPERIMENTS[key]
        results, seconds = {}, {}
        for epochs in (quick, args.factor * quick):
            start = time.perf_counter()
            results[epochs] = runner(epochs)
            seconds[epochs] = time.perf_counter() - start
        longer = args.factor * quick
        print(f"{key} · {what}: {quick} epochs ({seconds[quick]:.0f} s) vs {longer} epochs ({seconds[longer]:.0f} s)")
        for metric, short_values in results[quick].items():
            long_values = results[longer][metric]
            gain = np.asarray(long_values) - np.asarray(short_values)
            if "lower is better" in metric:
                gain = -gain
            verdict = ("within the seed spread" if gain.mean() < gain.std(ddof=1)
                       else "beyond the seed spread: still improving at the quick budget")
            print(f"  {metric:44s} {quick:3d} ep {mean_sd(short_values)}   {longer:3d} ep {mean_sd(long_values)}   "
                  f"paired gain of the longer budget {mean_sd(gain)}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
