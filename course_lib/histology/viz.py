"""Chapter 2's bookkeeping for seeded comparisons: a mean ± sd table, bars with the seeds shown, and the records.

The comparisons of :mod:`course_lib.histology.experiments` and :mod:`~course_lib.histology.sampling_experiment`
return ``{method: {metric: [one value per seed]}}``; these helpers keep the plotting and ``record`` calls out of the
notebooks' way.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_lib.results import mean_sd, record

__all__ = ["mean_sd", "summary_table", "seed_bars", "record_seeds", "record_paired_difference"]

_COLOURS = ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]


def _check(results: dict, metrics: Sequence[str]) -> None:
    for method, scores in results.items():
        missing = [m for m in metrics if m not in scores]
        if missing:
            raise ValueError(f"`results[{method!r}]` has no {missing}; it has {sorted(scores)}")


def summary_table(results: dict[str, dict[str, list[float]]], metrics: Sequence[str]) -> str:
    """A text table: one row per method, ``mean ± sd (n seeds)`` per metric."""
    _check(results, metrics)
    width = max(len(m) for m in results) + 2
    lines = [" " * width + "".join(f"{m:>22s}" for m in metrics)]
    for method, scores in results.items():
        cells = "".join(f"{'{:.3f} ± {:.3f}'.format(*mean_sd(scores[m])):>22s}" for m in metrics)
        lines.append(f"{method:<{width}s}{cells}")
    n = {len(scores[metrics[0]]) for scores in results.values()}
    lines.append(f"(mean ± sd over {', '.join(map(str, sorted(n)))} seeds)")
    return "\n".join(lines)


def seed_bars(results: dict[str, dict[str, list[float]]], metrics: Sequence[str], title: str):
    """One panel per metric: a bar per method at the seed mean, ± 1 sd, and each seed as a dot. Returns the figure."""
    _check(results, metrics)
    names = list(results)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 2.9))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for k, name in enumerate(names):
            values = np.asarray(results[name][metric], dtype=np.float64)
            mean, sd = mean_sd(values)
            ax.bar(k, mean, yerr=sd, color=_COLOURS[k % len(_COLOURS)], alpha=0.7, capsize=3)
            ax.plot(np.full(len(values), k), values, "k.", markersize=4)
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=7)
        ax.set_title(metric, fontsize=9)
    fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()
    return fig


def record_seeds(chapter: int, results: dict[str, dict[str, list[float]]], metrics: Sequence[str], *, name: str,
                 note: str = "", unit: str = "", lower_is_better: Sequence[str] = ()) -> dict[str, float]:
    """Record ``<name>_mean`` and ``<name>_sd`` for every method and metric; ``name`` is a format string.

    Parameters
    ----------
    chapter : int
    results : ``{method: {metric: [one value per seed]}}``
    metrics : the metrics to record
    name : str
        Record name with ``{method}`` and ``{metric}`` fields, e.g. ``"nodule_{metric}_{method}"``.
    note, unit : str
        Passed to :func:`course_lib.results.record` (the number of seeds is appended to the note).
    lower_is_better : metrics for which a lower mean is better (false positives, errors).

    Returns
    -------
    dict of the recorded ``{name: value}``
    """
    _check(results, metrics)
    recorded = {}
    for method, scores in results.items():
        for metric in metrics:
            mean, sd = mean_sd(scores[metric])
            key = name.format(method=method, metric=metric)
            seeds = f"{len(scores[metric])} seeds"
            record(chapter, f"{key}_mean", mean, unit=unit, higher_is_better=metric not in lower_is_better,
                   note=f"{note}; mean over {seeds}" if note else f"mean over {seeds}")
            record(chapter, f"{key}_sd", sd, unit=unit, higher_is_better=False, note=f"sample sd over {seeds}")
            recorded[f"{key}_mean"], recorded[f"{key}_sd"] = mean, sd
    return recorded


def record_paired_difference(chapter: int, results: dict[str, dict[str, list[float]]], better: str, worse: str,
                             metric: str, *, name: str, note: str = "") -> tuple[float, float]:
    """Record the per-seed difference ``better - worse`` of ``metric`` as ``<name>_mean`` and ``<name>_sd``.

    Both arms of a comparison share each seed's data and initial weights, so the seed-wise difference is paired;
    a claim "``better`` beats ``worse``" is then stated as ``<name>_mean > <name>_sd`` (the mean gain exceeds one
    standard deviation of the gain over seeds), not on one draw. ``<name>_ci_low`` and ``<name>_ci_high`` are the
    95 % confidence interval of the mean gain (Student's t with n - 1 degrees of freedom, n >= 2 seeds): a "no
    effect" result is stated as "the interval lies inside (-X, X)", an effect smaller than X, never as
    "the mean is smaller than its sd", which flips sign with the processor's rounding.
    """
    from scipy import stats

    _check(results, [metric])
    a, b = (np.asarray(results[arm][metric], dtype=np.float64) for arm in (better, worse))
    if a.shape != b.shape:
        raise ValueError(f"`{better}` and `{worse}` have {len(a)} and {len(b)} seeds of {metric!r}: not paired")
    if len(a) < 2:
        raise ValueError(f"a paired difference needs >= 2 seeds of {metric!r}, got {len(a)}")
    mean, sd = mean_sd(a - b)
    half_width = float(stats.t.ppf(0.975, len(a) - 1)) * sd / np.sqrt(len(a))
    what = f"{metric}: {better} minus {worse}, paired by seed"
    record(chapter, f"{name}_mean", mean, unit="", note=f"{what}; {note}" if note else what)
    record(chapter, f"{name}_sd", sd, unit="", higher_is_better=False, note=f"sample sd over {len(a)} seeds")
    record(chapter, f"{name}_ci_low", mean - half_width, unit="", note=f"95 % t interval over {len(a)} seeds")
    record(chapter, f"{name}_ci_high", mean + half_width, unit="", note=f"95 % t interval over {len(a)} seeds")
    return mean, sd
