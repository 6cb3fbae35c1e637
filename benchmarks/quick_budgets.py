"""Quick-mode epoch budgets, derived from validation curves by one rule, capped by the notebooks' time limits.

Each experiment below trains its notebook's models with the notebook's seeds for a range of epoch budgets and
reads **validation data only** (the experiments also score their test sets internally; nothing here reads those
numbers). For every budget it records the kept validation score, i.e. what the experiment keeps: the best
validation epoch so far for experiments that keep one, the last epoch for those that do not. The rule::

    knee     = the smallest budget whose mean kept validation score (over seeds and the models listed)
               is within TOLERANCE (1 %) of the best mean over the budgets tried
    affords  = the largest budget tried whose predicted notebook time stays within the notebook's allowance
    budget   = min(knee, affords)

The notebook's time at a budget is predicted from one build: ``notebook_s`` (its ``make course`` time at the
current budget, one thread) plus ``training_s`` (the seconds its cells spend in the trainings this budget sets, from
the same build's cell timings) times the relative change of this script's training time between the two budgets (a
ratio, so a busy machine scales both alike). The allowances split ``make course``'s 10 minutes on two cores and keep
every notebook under its 240 s limit with room for a slower processor. Where the cap binds (``budget < knee``), the
models are still improving at the quick budget, and the notebook says so.

Chapter 4's translators (steps and learning rate, on validation subjects) are chosen by the same kind of rule in
``benchmarks/translation_budget.py``.

Experiments whose training has no schedule tied to the number of epochs (constant-rate Adam) are trained once at
the longest budget and read at every shorter one (same seed: same batches, so a shorter run is a prefix of the
longer one); the others (cosine schedule, a ramp over all steps) are trained once per budget.

Run it on an otherwise idle machine: the time predictions are ratios of this script's own training times, which a
busy machine makes noisy. The script exits 1 when a quick setting differs from what the rule gives, so the
settings and this derivation cannot drift apart::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quick_budgets.py             # all, about 25 min on one core
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quick_budgets.py --only ch02b
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from course_lib.chest_xray import experiment as fusion
from course_lib.chest_xray.comparison import FUSIONS
from course_lib.confounders import experiment as confounders
from course_lib.counting import experiment as counting
from course_lib.histology import loss_experiment

TOLERANCE = 0.01  # relative: a budget within 1 % of the best mean validation score is "levelled off"


@dataclass(frozen=True)
class Experiment:
    what: str  # what is trained, as in the notebook
    current: int  # the quick setting's epochs today
    budgets: tuple[int, ...]  # budgets tried (include ``current``)
    # budgets -> ({budget: kept validation score per run}, {budget: training seconds}, the model of each run)
    run: Callable[[tuple[int, ...]], tuple[dict[int, list[float]], dict[int, float], list[str]]]
    higher_is_better: bool
    notebook_s: float  # the notebook's make-course time at ``current`` (one thread, this machine)
    training_s: float  # of which its cells spend this long in the trainings the budget sets
    allowance_s: float  # the notebook's share of make course's time


def _prefix_curves(curves: list[list[float]], budgets, higher: bool) -> dict[int, list[float]]:
    """Kept validation score at each budget: the best of the first ``budget`` epochs, per run (prefix runs)."""
    best = max if higher else min
    return {b: [best(curve[:b]) for curve in curves] for b in budgets}


def fusion_runs(budgets):
    """ch01b: validation AUROC curves of PA-only and the four fusions, 3 seeds, one run at the longest budget."""
    s = dataclasses.replace(fusion.QUICK, epochs=max(budgets))
    curves, models, start = [], [], time.perf_counter()
    for seed in s.seeds:
        run = fusion.run_fusion_experiment(("pa", *FUSIONS), s, view_dropout=0.0, seed=seed, device="cpu")
        curves += [list(entry["history"]["val_auroc"]) for entry in run["models"].values()]
        models += list(run["models"])
    seconds = time.perf_counter() - start
    return _prefix_curves(curves, budgets, True), {b: seconds * b / max(budgets) for b in budgets}, models


def losses_runs(budgets):
    """ch02b: validation Dice curves (best threshold per epoch) of the three losses, 3 seeds, one long run."""
    curves, models, start = [], [], time.perf_counter()
    for seed in loss_experiment.QUICK.seeds:
        s = dataclasses.replace(loss_experiment.QUICK, epochs=max(budgets), seeds=(seed,))
        comparison = loss_experiment.compare_losses(s)
        curves += [list(history["val_dice"]) for history in comparison.histories.values()]
        models += list(comparison.histories)
    seconds = time.perf_counter() - start
    return _prefix_curves(curves, budgets, True), {b: seconds * b / max(budgets) for b in budgets}, models


def counting_runs(budgets):
    """ch03b: the density net's kept validation count MAE, 3 seeds, one run per budget (cosine schedule)."""
    scores, seconds = {}, {}
    for budget in budgets:
        s = dataclasses.replace(counting.QUICK, epochs=budget)
        scores[budget] = []
        for seed in s.seeds:
            run = counting.run_counting_experiment(s, seed=seed)
            scores[budget].append(min(run["histories"]["density"]["val_count_mae"]))
            seconds[budget] = seconds.get(budget, 0.0) + run["seconds"]["density"]
    return scores, seconds, ["density"] * len(counting.QUICK.seeds)


def confounders_runs(budgets):
    """ch05: val_kept AUROC of the methods without a hyper-parameter, 3 seeds, one run per budget (no epoch kept;
    gradient reversal's ramp spans all steps, so every budget is its own run)."""
    scores, seconds = {}, {}
    for budget in budgets:
        s = dataclasses.replace(confounders.QUICK, train=dataclasses.replace(confounders.QUICK.train, epochs=budget))
        start = time.perf_counter()
        table = confounders.run_sweep(s, methods=("baseline", "range_norm", "centred"), progress=False)
        seconds[budget] = time.perf_counter() - start
        kept = table[table["split"] == "val_kept"]
        scores[budget], models = kept["auroc"].tolist(), kept["method"].tolist()
    return scores, seconds, models


EXPERIMENTS = {
    # notebook_s: make course on this machine (AMD EPYC, one thread each, two notebooks at a time), 2026-12-03;
    # training_s: the cells that train with this budget, in a build of the same code (ch01b cells 11 and 26-28; ch02b
    # cell 37; ch03b cell 14, which also tunes the classic pipeline; ch05a cells 22, 37, 39 and ch05b cells 13-15)
    "ch01b": Experiment("fusion: PA-only and the four fusions, 3 seeds", fusion.QUICK.epochs, (2, 3, 4, 6, 8),
                        fusion_runs, True, notebook_s=254, training_s=235, allowance_s=220),
    "ch02b": Experiment("loss comparison: BCE, soft Dice, BCE + Dice, 3 seeds", loss_experiment.QUICK.epochs,
                        (4, 7, 10, 14), losses_runs, True, notebook_s=131, training_s=116, allowance_s=140),
    "ch03b": Experiment("density net, 3 seeds", counting.QUICK.epochs, (10, 20, 30), counting_runs, False,
                        notebook_s=217, training_s=83, allowance_s=220),
    "ch05": Experiment("baseline, range-normalised and site-centred CNNs, 3 seeds (ch05a and ch05b together)",
                       confounders.QUICK.train.epochs, (5, 10, 20), confounders_runs, True,
                       notebook_s=153, training_s=104, allowance_s=170),
}


def mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def derive(exp: Experiment, scores: dict[int, list[float]], seconds: dict[int, float]) -> dict:
    """Apply the rule; returns the knee, the largest affordable budget, the budget and each budget's prediction."""
    means = {b: float(np.mean(v)) for b, v in scores.items()}
    best = max(means.values()) if exp.higher_is_better else min(means.values())
    within = [b for b in sorted(means) if abs(means[b] - best) <= TOLERANCE * abs(best)]
    knee = within[0]
    predicted = {b: exp.notebook_s + exp.training_s * (seconds[b] / seconds[exp.current] - 1) for b in sorted(means)}
    fits = [b for b in sorted(means) if predicted[b] <= exp.allowance_s]
    affords = max(fits) if fits else min(means)
    return {"means": means, "knee": knee, "affords": affords, "budget": min(knee, affords), "predicted": predicted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(EXPERIMENTS), default=sorted(EXPERIMENTS))
    args = parser.parse_args(argv)
    drifted = []
    for key in args.only:
        exp = EXPERIMENTS[key]
        if exp.current not in exp.budgets:
            raise ValueError(f"{key}: the current budget {exp.current} must be among the budgets {exp.budgets}")
        scores, seconds, models = exp.run(exp.budgets)
        result = derive(exp, scores, seconds)
        direction = "higher" if exp.higher_is_better else "lower"
        print(f"\n{key} · {exp.what} · kept validation score ({direction} is better), mean ± sd over runs")
        for b in exp.budgets:
            marks = " ".join(m for m, on in (("knee", b == result["knee"]), ("current", b == exp.current),
                                              ("chosen", b == result["budget"])) if on)
            print(f"  {b:3d} epochs  {mean_sd(scores[b])}   training {seconds[b]:6.1f} s   "
                  f"notebook ≈ {result['predicted'][b]:5.0f} s (allowance {exp.allowance_s:.0f})   {marks}")
            if len(set(models)) > 1:  # each model's own mean, to see who is still improving
                pairs = list(zip(scores[b], models, strict=True))
                per_model = {m: np.mean([v for v, n in pairs if n == m]) for m in dict.fromkeys(models)}
                print("               " + "  ".join(f"{m} {v:.3f}" for m, v in per_model.items()))
        capped = result["budget"] < result["knee"]
        print(f"  rule: knee {result['knee']} (within {TOLERANCE:.0%} of the best mean), affordable "
              f"{result['affords']} -> {result['budget']} epochs"
              + ("; the time cap binds: still improving at this budget" if capped else ""))
        if result["budget"] != exp.current:
            drifted.append(f"{key}: the setting says {exp.current} epochs, the rule {result['budget']}")
    for line in drifted:
        print("DRIFT", line)
    return 1 if drifted else 0


if __name__ == "__main__":
    raise SystemExit(main())
