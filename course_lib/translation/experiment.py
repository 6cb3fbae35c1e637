"""The chapter's experiment: does a CycleGAN's FLAIR -> T1 translation keep the tumours? It depends on the target.

Cohen, Luck & Honari (*Distribution Matching Losses Can Hallucinate Features in Medical Image Translation*, MICCAI
2018) trained CycleGANs from FLAIR to T1 on BraTS slices, varying only the share of tumour slices in the T1
training set, and showed that the translations erase tumours when the target domain has few and add tumours when it
has many. :func:`run_bias_sweep` repeats that design:

1. **The measure, against the truth.** Every test slice has its true T1 and tumour mask, so harm is measured on
   the image (:func:`~course_lib.translation.bias.truth_calls`): a tumour slice is **erased** when its translation
   keeps less than half of the true tumour contrast, a healthy slice **hallucinated** when its translation holds a
   tumour-sized dark spot the truth does not. The spot's depth and size thresholds are fixed on the T1 and masks of
   **validation subjects** (``val``: seen by no translator and never the test slices), before any translation.
2. **Translators.** For each target fraction and seed: a CycleGAN from FLAIR (``source_fraction`` = 50 % tumour
   slices) to T1 (``fraction`` tumour slices), unpaired, different subjects in the two domains. The control, at the
   same fraction: a paired L1 translator trained on registered FLAIR/T1 pairs whose tumour share is ``fraction``
   (the same number of T1 slices with the same share as the CycleGAN's target), same generator and budget.
3. **Test.** Held-out FLAIR slices (half tumour, half healthy, subjects seen by no model) are translated and scored:
   erased and hallucinated shares (truth), the mean share of the tumour contrast kept, the mean largest dark spot on
   healthy slices, and the mean absolute **intensity error inside the true tumour**.
4. **Referee (where no truth exists).** One :class:`~course_lib.translation.classifier.TumourClassifier` per seed
   (referee seed = translator seed, so the referees' spread is in the seeds' spread) learns tumour vs healthy on
   *real* T1 slices (its own subjects), epoch chosen on their validation split, and reads every translation too
   (``referee_*`` columns), as one would on data without masks. Its threshold is calibrated on translations, not on
   real T1: the paired translator of that seed at the ``source_fraction`` share (the faithful control) translates
   the validation subjects, and the threshold is the lowest that calls at most ``referee_false_positive_rate`` of
   their healthy slices tumour (:func:`~course_lib.translation.classifier.threshold_at_false_positive_rate`). That
   paired translator is the one the sweep scores as its control at that share (trained once). On the test slices the
   faithful control's ``referee_hallucinated`` then checks the calibration out of sample, and the ``real_t1`` rows
   (one per referee) show what the calibrated referee calls on real T1.

Everything is seeded; a seed changes the translator's initial weights, its batches and its training subjects.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from course_lib import config
from course_lib.translation.bias import (
    TruthThresholds,
    bias_rates,
    contrast_recovered,
    dark_spot_area,
    fit_truth_thresholds,
    truth_calls,
    tumour_intensity_error,
)
from course_lib.translation.classifier import (
    ClassifierResult,
    threshold_at_false_positive_rate,
    train_tumour_classifier,
    tumour_scores,
)
from course_lib.translation.cyclegan import TranslatorConfig, train_cyclegan, train_paired, translate
from course_lib.translation.synthetic_brain import BrainConfig, BrainSlices, brain_slices

__all__ = ["BiasSweepSettings", "QUICK", "FULL", "SMOKE", "settings", "SweepResult", "BiasSweep", "run_bias_sweep",
           "summarise", "draw_with_fraction", "synthetic_pools"]


@dataclass(frozen=True)
class BiasSweepSettings:
    fractions: tuple[float, ...] = (0.0, 0.5, 1.0)  # tumour share of the T1 (target) training set
    seeds: tuple[int, ...] = (0, 1, 2)  # >= 3 translators per fraction: spread, not a single run
    source_fraction: float = 0.5  # tumour share of the FLAIR (source) training set, as in the study
    image_size: int = 32  # px; tumours of 2-4 px core radius, cheap enough for 9 CycleGANs on a CPU
    n_source: int = 300  # FLAIR training slices per translator
    n_target: int = 300  # T1 training slices per translator
    n_classifier_train: int = 400  # real T1 slices the referee learns from (half tumour)
    n_classifier_val: int = 200  # real T1 slices that choose the referee's epoch (and a Youden threshold, unused)
    n_test: int = 200  # held-out slices, half tumour: rates have a binomial sd of at most 0.05 per group
    n_val: int = 200  # validation subjects (half tumour): fix the truth measure's thresholds and the referees'
    # thresholds; no translator trains on them
    classifier_epochs: int = 8  # the referee reaches validation AUROC > 0.99 within 8 epochs
    referee_false_positive_rate: float = 0.05  # the referee calls at most 5 % of the faithful translator's healthy
    # validation translations tumour (its threshold's calibration; a conventional operating point, not tuned)
    translator: TranslatorConfig = field(default_factory=lambda: TranslatorConfig(
        steps=200,  # benchmarks/translation_budget.py, on the validation subjects (50 % share, 3 seeds): the
        # whole-slice error of both methods still falls at 400 steps, so the notebook's time limit (~150 s for 18
        # translators on one thread) bounds the budget: 200 steps, the value it had before the rule; both methods
        batch_size=4,  # 4 slices per domain per step
        n_blocks=1,  # one residual block: the receptive field still spans the slice at 32 px
        d_layers=2,  # 34 px patches: each score judges a whole 32 px slice (a 70 px patch on 128-256 px in the paper)
        lr=3e-3,  # benchmarks/translation_budget.py: of {3e-4, 1e-3, 3e-3, 1e-2}, the lr nearest to each
        # method's best validation whole-slice error within 200 steps (one lr for both methods, in every arm)
        lambda_identity=0.0,  # off: identity assumes shared intensities, but FLAIR and T1 invert WM/GM and tumour
    ))
    n_examples: int = 8  # test slices kept (with every translation) for the figure and the widget
    brain: BrainConfig = BrainConfig()  # synthetic anatomy; only image_size is overridden


QUICK = BiasSweepSettings()
FULL = BiasSweepSettings(
    fractions=tuple(round(0.1 * k, 1) for k in range(11)),  # the study's 0 %, 10 %, ..., 100 %
    seeds=(0, 1, 2),
    image_size=64,
    n_source=2000, n_target=2000, n_classifier_train=2000, n_classifier_val=500, n_test=1000, n_val=500,
    classifier_epochs=15,
    translator=TranslatorConfig(width=32, n_blocks=6, d_width=32, d_layers=3, steps=3000, batch_size=8, lr=2e-4,
                                lambda_identity=0.0),  # the paper's 70 px PatchGAN and lr; sized for a GPU
)
# COURSE_SMOKE=1 (config.is_smoke): FULL with slices (number and side), steps, fractions and seeds cut, full mode's
# code path in seconds; FULL's translator and referee kept. Two seeds, for a spread; 50 % kept: ch04b reads that
# fraction's rows; 32 px: one fraction of both methods took 11 s of CPU at 64 px, 3 s at 32.
SMOKE = replace(FULL, fractions=(0.0, 0.5, 1.0), seeds=(0, 1), image_size=32, n_source=16, n_target=16,
                n_classifier_train=32, n_classifier_val=32, n_test=32, n_val=32, classifier_epochs=1,
                translator=replace(FULL.translator, steps=2))


def settings() -> BiasSweepSettings:
    """``QUICK`` or ``FULL`` by the course mode."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


@dataclass
class SweepResult:
    """What :func:`run_bias_sweep` measured.

    ``runs``: one row per translator (``method`` "cyclegan" or "paired", ``fraction``, ``seed``) with the truth
    measures ``erased``, ``hallucinated`` (shares), ``recovered`` (mean share of the true tumour contrast kept, over
    tumour slices), ``dark_spot`` (mean largest dark spot on healthy slices, px), the referee's ``referee_erased`` and
    ``referee_hallucinated``, ``tumour_error``, ``image_error`` (mean |translation - real T1| over whole slices) and
    ``seconds``; plus one ``method == "real_t1"`` row per seed (the real T1 of the test slices: truth measures 0,
    that seed's referee's error rates).
    ``examples``: ``flair``, ``t1``, ``mask`` (k, S, S) of ``n_examples`` test slices, ``tumour`` (k,), and
    ``translations[(method, fraction)]`` (k, S, S) from each method's first seed.
    ``thresholds``: the truth measure's, fixed on the validation subjects.
    ``referees``: one row per seed: ``val_auroc`` and ``best_epoch`` (real T1 validation), ``real_t1_threshold``
    (Youden's on real T1 validation slices, not used), ``threshold`` (calibrated on the faithful translator's
    validation translations, used), and that translator's validation ``faithful_val_hallucinated`` and
    ``faithful_val_erased`` at the calibrated threshold.
    """

    runs: pd.DataFrame
    examples: dict
    referees: pd.DataFrame
    settings: BiasSweepSettings
    thresholds: TruthThresholds | None = None


def draw_with_fraction(pool: BrainSlices, n: int, fraction: float, rng: np.random.Generator) -> BrainSlices:
    """``n`` slices of ``pool`` of which ``round(n * fraction)`` are tumour slices (without replacement when the
    pool is large enough, with replacement otherwise), shuffled."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"`fraction` must lie in [0, 1], got {fraction}")
    n_tumour = int(round(n * fraction))
    rows = []
    for kind, want, group in (("tumour", n_tumour, np.flatnonzero(pool.tumour)),
                              ("healthy", n - n_tumour, np.flatnonzero(~pool.tumour))):
        if want == 0:
            continue
        if len(group) == 0:
            raise ValueError(f"the pool has no {kind} slices to draw {want} from")
        rows.append(rng.choice(group, want, replace=want > len(group)))
    rows = np.concatenate(rows)
    rng.shuffle(rows)
    return pool.subset(rows)


def synthetic_pools(s: BiasSweepSettings, roles: tuple[str, ...] | None = None) -> dict[str, BrainSlices]:
    """Disjoint subjects per role (distinct seeds), each a 50 % tumour pool large enough to draw any fraction.
    ``roles``: only these (the same slices as in the full set; e.g. without "test" for a choice on validation)."""
    brain = dataclasses.replace(s.brain, size=s.image_size)
    sizes = {"classifier_train": s.n_classifier_train, "classifier_val": s.n_classifier_val, "test": s.n_test,
             "source": 2 * s.n_source, "target": 2 * s.n_target, "val": s.n_val}
    if roles is not None and not set(roles) <= set(sizes):
        raise ValueError(f"unknown roles {sorted(set(roles) - set(sizes))}; known: {list(sizes)}")
    return {role: brain_slices(n, 0.5, config=brain, seed=10_000 + k) for k, (role, n) in enumerate(sizes.items())
            if roles is None or role in roles}


def _pools_from_real(slices: BrainSlices, s: BiasSweepSettings, seed: int = 0) -> dict[str, BrainSlices]:
    """Split real slices by subject into the six roles (shares by the synthetic sizes)."""
    subjects = np.unique(slices.subject)
    rng = np.random.default_rng(seed)
    rng.shuffle(subjects)
    weights = np.array([s.n_classifier_train, s.n_classifier_val, s.n_test, 2 * s.n_source, 2 * s.n_target,
                        s.n_val], float)
    edges = np.round(np.cumsum(weights / weights.sum()) * len(subjects)).astype(int)
    groups = np.split(subjects, edges[:-1])
    roles = ("classifier_train", "classifier_val", "test", "source", "target", "val")
    if any(len(g) == 0 for g in groups):
        raise ValueError(f"{len(subjects)} subjects are too few to split into {roles}")
    return {role: slices.subset(np.isin(slices.subject, g)) for role, g in zip(roles, groups, strict=True)}


class BiasSweep:
    """The sweep, run in parts: build it (data, truth thresholds, and per seed a referee calibrated on its faithful
    paired translator), then :meth:`run` each (method, fraction), then :meth:`result`. A notebook can spread the parts
    over cells; :func:`run_bias_sweep` runs them all.

    Parameters
    ----------
    s : BiasSweepSettings, optional
        Default: :func:`settings`.
    real : BrainSlices, optional
        Real slices (e.g. :func:`~course_lib.translation.real_data.read_msd_brain`) instead of synthetic ones;
        split by subject.
    """

    def __init__(self, s: BiasSweepSettings | None = None, *, real: BrainSlices | None = None):
        self.settings = s = s or settings()
        self.pools = synthetic_pools(s) if real is None else _pools_from_real(real, s)
        ctrain, cval, self.test = self.pools["classifier_train"], self.pools["classifier_val"], self.pools["test"]
        val = self.pools["val"]
        self.thresholds = fit_truth_thresholds(val.t1, val.mask)  # validation subjects only, before any translation
        self.referees: dict[int, ClassifierResult] = {}
        self._faithful: dict[int, tuple] = {}  # seed -> (generator, seconds): the paired control at source_fraction
        referee_rows = []
        for seed in s.seeds:  # one referee per seed, calibrated on that seed's faithful translator (validation only)
            referee = train_tumour_classifier(ctrain.t1, ctrain.tumour, cval.t1, cval.tumour,
                                              epochs=s.classifier_epochs, seed=seed)
            generator, seconds = self._train("paired", s.source_fraction, seed)
            self._faithful[seed] = generator, seconds
            scores = tumour_scores(referee.model, translate(generator, val.flair))
            threshold = threshold_at_false_positive_rate(scores[~val.tumour], s.referee_false_positive_rate)
            self.referees[seed] = dataclasses.replace(referee, threshold=threshold)
            faithful = bias_rates(scores > threshold, val.tumour)
            referee_rows.append({"seed": seed, "val_auroc": referee.val_auroc, "best_epoch": referee.best_epoch,
                                 "real_t1_threshold": referee.threshold, "threshold": threshold,
                                 "faithful_val_hallucinated": faithful.hallucinated,
                                 "faithful_val_erased": faithful.erased})
        self.referee_table = pd.DataFrame(referee_rows)
        test = self.test
        self.rows = [self._score("real_t1", np.nan, seed, test.t1, 0.0) for seed in s.seeds]
        self.keep = np.concatenate([np.flatnonzero(test.tumour)[: (s.n_examples + 1) // 2],
                                    np.flatnonzero(~test.tumour)[: s.n_examples // 2]])
        self.examples = {"flair": test.flair[self.keep], "t1": test.t1[self.keep], "mask": test.mask[self.keep],
                         "tumour": test.tumour[self.keep], "translations": {}}

    def _score(self, method: str, fraction: float, seed: int, translated: np.ndarray, seconds: float) -> dict:
        test = self.test
        truth = bias_rates(truth_calls(translated, test.t1, test.mask, self.thresholds), test.tumour)
        referee = self.referees[seed]
        referee = bias_rates(tumour_scores(referee.model, translated) > referee.threshold, test.tumour)
        healthy = ~test.tumour
        return {"method": method, "fraction": fraction, "seed": seed, "erased": truth.erased,
                "hallucinated": truth.hallucinated,
                "recovered": float(np.nanmean(contrast_recovered(translated, test.t1, test.mask)))
                if test.tumour.any() else np.nan,
                "dark_spot": float(dark_spot_area(translated[healthy], test.t1[healthy],
                                                  delta=self.thresholds.delta).mean()) if healthy.any() else np.nan,
                "referee_erased": referee.erased, "referee_hallucinated": referee.hallucinated,
                "tumour_error": tumour_intensity_error(translated, test.t1, test.mask),
                "image_error": float(np.abs(translated - test.t1).mean()), "seconds": seconds}

    def _train(self, method: str, fraction: float, seed: int) -> tuple:
        """One translator (its generator) and its training seconds; the draws depend on (seed, fraction) only."""
        s = self.settings
        rng = np.random.default_rng([seed, int(round(1000 * fraction))])
        start = time.perf_counter()
        if method == "paired":  # registered pairs of the source subjects, as many T1 as the CycleGAN's target
            pairs = draw_with_fraction(self.pools["source"], s.n_target, fraction, rng)
            generator, _ = train_paired(pairs.flair, pairs.t1, s.translator, seed=seed)
        else:  # unpaired: FLAIR of the source subjects, T1 of the target subjects
            source = draw_with_fraction(self.pools["source"], s.n_source, s.source_fraction, rng)
            target = draw_with_fraction(self.pools["target"], s.n_target, fraction, rng)
            generator = train_cyclegan(source.flair, target.t1, s.translator, seed=seed)[0].g
        return generator, time.perf_counter() - start

    def run(self, method: str, fraction: float, *, progress: bool = True) -> None:
        """Train and score one translator per seed at one target ``fraction``: ``method`` "cyclegan" (FLAIR with
        ``source_fraction``, T1 of other subjects with ``fraction`` tumour slices) or "paired" (registered FLAIR/T1
        pairs of the source subjects, ``fraction`` of them tumour slices). The paired translators at
        ``source_fraction`` were trained with the referees (they calibrate them) and are reused here."""
        from tqdm.auto import tqdm

        if method not in ("cyclegan", "paired"):
            raise ValueError(f"`method` must be 'cyclegan' or 'paired', got {method!r}")
        s = self.settings
        fraction = float(fraction)
        for seed in tqdm(s.seeds, desc=f"{method} {100 * fraction:.0f} %", disable=not progress):
            if method == "paired" and fraction == s.source_fraction and seed in self._faithful:
                generator, seconds = self._faithful[seed]
            else:
                generator, seconds = self._train(method, fraction, seed)
            start = time.perf_counter()
            translated = translate(generator, self.test.flair)
            seconds += time.perf_counter() - start
            self.rows.append(self._score(method, fraction, seed, translated, seconds))
            if seed == s.seeds[0]:
                self.examples["translations"][method, fraction] = translated[self.keep]

    def result(self) -> SweepResult:
        """What has been run so far."""
        return SweepResult(pd.DataFrame(self.rows), self.examples, self.referee_table.copy(), self.settings,
                           self.thresholds)


def run_bias_sweep(s: BiasSweepSettings | None = None, *, real: BrainSlices | None = None,
                   progress: bool = True) -> SweepResult:
    """Fix the thresholds, train and calibrate the referees, then a paired control and a CycleGAN per (fraction,
    seed); score all.

    Parameters
    ----------
    s : BiasSweepSettings, optional
        Default: :func:`settings`.
    real : BrainSlices, optional
        Real slices instead of synthetic ones; split by subject.
    progress : bool
        tqdm bars over the seeds.

    Returns
    -------
    SweepResult
    """
    sweep = BiasSweep(s, real=real)
    for fraction in sweep.settings.fractions:
        sweep.run("paired", fraction, progress=progress)
        sweep.run("cyclegan", fraction, progress=progress)
    return sweep.result()


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of each measure, per (method, fraction): columns ``<measure>_mean``, ``<measure>_sd``,
    and ``n_seeds``. The sd is the sample sd (ddof=1); with one seed it is nan."""
    measures = [m for m in ("erased", "hallucinated", "recovered", "dark_spot", "referee_erased",
                            "referee_hallucinated", "tumour_error", "image_error") if m in runs]  # those measured
    grouped = runs.fillna({"fraction": -1}).groupby(["method", "fraction"], sort=False)[measures]
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{m}_{'sd' if k == 'std' else k}" for m, k in table.columns]
    table["n_seeds"] = grouped.size()
    return table.reset_index().replace({"fraction": {-1: np.nan}})
