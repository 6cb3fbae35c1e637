"""ch04's translator budget (steps) and learning rate, chosen on validation subjects only.

The bias sweep of ch04b (:mod:`course_lib.translation.experiment`) trains CycleGANs and paired L1 translators with
one :class:`~course_lib.translation.cyclegan.TranslatorConfig` (the same steps and lr for both methods: the same
budget in every arm). This script chooses its ``lr`` and ``steps`` without a test slice: it trains both methods
exactly as the sweep does at the ``source_fraction`` target share (50 %: the share both domains have), on the same
training draws, for each seed and each candidate lr, and every ``--every`` steps translates the FLAIR of the
**validation subjects** (``n_val`` slices, the pool that fixes the truth measure's thresholds; no translator trains
on them) and scores it against their true T1:

* **score** (lower is better): the mean |translation - true T1| over whole slices (``image_error``), per method the
  mean over seeds. The truth measure's contrast ``recovered`` inside the true tumours and ``hallucinated`` share of
  the healthy slices (thresholds fitted on the same validation subjects) are printed beside it and choose nothing.

A checkpoint at step ``k`` of a longer run is the translator a ``k``-step run gives (same seed, same batches; Adam
has no schedule), so one run per (method, lr, seed) reads every budget.

The rule (its order was fixed after a first run showed every validation curve still falling at 400 steps, so
that the time limit, not the plateau, bounds the budget; the lr is then chosen at the budget the notebook can
afford, not at one it cannot):

1. **cap**: the notebook's time limit. ch04b took ``--notebook-seconds`` (137 s) with ``--notebook-steps`` (200)
   steps per translator on one thread; its time is taken as proportional to the steps (conservative: the data,
   the referees and the scoring do not grow with them), so only checkpoints with
   ``notebook_seconds * steps / notebook_steps <= --time-limit`` (150 s) are candidates. Those beyond it are
   trained and printed (does the curve level off?) but choose nothing.
2. **lr**: per method, each lr's best score over the candidate checkpoints, divided by that method's best over
   all lrs; the chosen lr has the smallest sum over the two methods of this relative excess (one lr for both, as
   one budget). It must lie inside the grid, not on its edge (the script says so when it does not).
3. **steps**: at that lr, per method the first candidate checkpoint whose score is within ``--tolerance`` (1 %)
   of that method's best candidate; the larger of the two methods' steps (each method reaches its plateau, or the
   cap).

Nothing here reads a test slice (the test pool is not even generated)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/translation_budget.py

It trains 24 translators of 400 steps: 551 s on one thread of a 2-core machine that other jobs shared (1010 s
when they loaded it more).

Prints one row per (method, lr, checkpoint), the rule's steps, and ends with ``translation_lr: <lr>`` and
``translation_steps: <steps>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from course_lib.translation.bias import bias_rates, contrast_recovered, fit_truth_thresholds, truth_calls
from course_lib.translation.cyclegan import train_cyclegan, train_paired, translate
from course_lib.translation.experiment import QUICK, draw_with_fraction, synthetic_pools


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3, 1e-2], help="candidate Adam lrs")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(QUICK.seeds), help="translator seeds (>= 3)")
    parser.add_argument("--max-steps", type=int, default=400, help="longest run")
    parser.add_argument("--every", type=int, default=50, help="checkpoint spacing (steps)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="relative tolerance of the steps rule")
    parser.add_argument("--notebook-seconds", type=float, default=137.0,
                        help="ch04b's measured run time (one thread) at --notebook-steps")
    parser.add_argument("--notebook-steps", type=int, default=200, help="the steps of that measured run")
    parser.add_argument("--time-limit", type=float, default=150.0, help="ch04b's time limit (s)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    s = QUICK
    pools = synthetic_pools(s, roles=("source", "target", "val"))  # no test pool
    val = pools["val"]
    thresholds = fit_truth_thresholds(val.t1, val.mask)
    checkpoints = list(range(args.every, args.max_steps + 1, args.every))
    fraction = s.source_fraction
    # scores[method][lr][seed] = {step: (image_error, recovered, hallucinated)}
    scores: dict = {m: {lr: {} for lr in args.lrs} for m in ("cyclegan", "paired")}
    seconds = {m: 0.0 for m in scores}
    start = time.perf_counter()

    def reader(method: str, lr: float, seed: int):
        out = scores[method][lr].setdefault(seed, {})

        def read(step: int, generator) -> None:
            if (step + 1) % args.every:
                return
            translated = translate(generator, val.flair)
            rates = bias_rates(truth_calls(translated, val.t1, val.mask, thresholds), val.tumour)
            out[step + 1] = (float(np.abs(translated - val.t1).mean()),
                             float(np.nanmean(contrast_recovered(translated, val.t1, val.mask))), rates.hallucinated)
        return read

    for lr in args.lrs:
        cfg = dataclasses.replace(s.translator, lr=lr, steps=args.max_steps)
        for seed in args.seeds:
            for method in ("paired", "cyclegan"):
                # the sweep's draws for this seed and share (BiasSweep.run)
                rng = np.random.default_rng([seed, int(round(1000 * fraction))])
                read = reader(method, lr, seed)
                t0 = time.perf_counter()
                if method == "paired":
                    pairs = draw_with_fraction(pools["source"], s.n_target, fraction, rng)
                    train_paired(pairs.flair, pairs.t1, cfg, seed=seed, callback=lambda k, g, _, read=read: read(k, g))
                else:
                    source = draw_with_fraction(pools["source"], s.n_source, s.source_fraction, rng)
                    target = draw_with_fraction(pools["target"], s.n_target, fraction, rng)
                    train_cyclegan(source.flair, target.t1, cfg, seed=seed,
                                   callback=lambda k, m, _, read=read: read(k, m.g))
                seconds[method] += time.perf_counter() - t0
                final = scores[method][lr][seed][args.max_steps]
                print(f"lr {lr:g} seed {seed} {method:8s} validation image error at {args.max_steps} steps "
                      f"{final[0]:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)

    # the table: mean (sd) over seeds per (method, lr, checkpoint)
    mean = {m: {lr: np.array([[scores[m][lr][sd][k][0] for k in checkpoints] for sd in args.seeds]).mean(0)
                for lr in args.lrs} for m in scores}
    print(f"\nvalidation subjects: {len(val)} slices (half tumour); target share {fraction:.0%}; "
          f"seeds {args.seeds}; {time.perf_counter() - start:.0f} s")
    print(f"{'method':9s} {'lr':>7s} {'steps':>6s} {'image error (mean ± sd)':>24s} {'recovered':>10s} "
          f"{'hallucinated':>13s}")
    for method in scores:
        for lr in args.lrs:
            for k in checkpoints:
                values = np.array([scores[method][lr][sd][k] for sd in args.seeds])  # (seeds, 3)
                print(f"{method:9s} {lr:7.0e} {k:6d} {values[:, 0].mean():15.4f} ± {values[:, 0].std(ddof=1):.4f} "
                      f"{values[:, 1].mean():10.3f} {values[:, 2].mean():13.3f}")

    # 1. cap: the checkpoints the notebook's time limit affords
    cap = max([k for k in checkpoints if args.notebook_seconds * k / args.notebook_steps <= args.time_limit],
              default=checkpoints[0])
    n = checkpoints.index(cap) + 1  # candidates: checkpoints[:n]
    print(f"\nrule 1, cap: {args.notebook_seconds:.0f} s at {args.notebook_steps} steps, limit {args.time_limit:.0f} s "
          f"-> at most {cap} steps")
    for method in scores:
        overall = min(mean[method][v].min() for v in args.lrs)
        within = min(mean[method][v][:n].min() for v in args.lrs)
        print(f"  {method}: best over all {args.max_steps} steps {overall:.4f}, within the cap {within:.4f}")
    # 2. lr: smallest summed relative excess over each method's best, within the cap
    best = {m: min(mean[m][v][:n].min() for v in args.lrs) for m in scores}
    excess = {v: sum(mean[m][v][:n].min() / best[m] - 1 for m in scores) for v in args.lrs}
    lr = min(args.lrs, key=lambda v: excess[v])
    print("rule 2, lr: " + ", ".join(f"{v:g}: relative excess {excess[v]:.3f}" for v in args.lrs)
          + f" -> lr {lr:g}" + (" (on the grid's edge: widen --lrs)" if lr in (min(args.lrs), max(args.lrs)) else ""))
    # 3. steps: first candidate within the tolerance of the method's best candidate, at that lr; the larger
    first = {}
    for method in scores:
        curve = mean[method][lr][:n]
        first[method] = checkpoints[int(np.flatnonzero(curve <= (1 + args.tolerance) * curve.min())[0])]
        print(f"rule 3, steps: {method}: best {curve.min():.4f} at {checkpoints[int(curve.argmin())]} steps; "
              f"first within {args.tolerance:.0%}: {first[method]} steps")
    steps = max(first.values())
    per_step = {m: seconds[m] / (len(args.lrs) * len(args.seeds) * args.max_steps) for m in seconds}
    print("training time per step (with the validation reads): "
          + ", ".join(f"{m} {1000 * v:.1f} ms" for m, v in per_step.items()))
    print(f"translation_lr: {lr:g}")
    print(f"translation_steps: {steps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
