"""Chapter 1's comparisons over several seeds: the lateral gain against a fair control, and missing views.

Two questions of ch01b, each answered on the seed mean with its spread (sample sd over ``settings.seeds``):

1. **Does the lateral view help, finding by finding?** :func:`gain_summary` compares the fusion
   ``settings.gain_fusion`` with PA-only (one network) *and* with its capacity-matched control
   (:data:`~course_lib.chest_xray.experiment.CONTROL`: the same fusion reading the PA twice — two networks, the
   same training, no lateral). A gain over PA-only that the control shares is capacity, not the lateral.
2. **Which fusions survive a missing view, and why?** :func:`robustness_summary` scores every fusion with a view
   removed at test time, trained under *both* view-dropout regimes (none, and ``settings.view_dropout`` for every
   fusion), so that the architecture is not confounded with the training regime.

:func:`run_comparison` trains what both need, seed by seed, on the same studies for every model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from course_lib.chest_xray.experiment import (
    CONTROL,
    FusionSettings,
    lateral_benefit,
    robustness_table,
    run_fusion_experiment,
    settings,
)
from course_lib.results import mean_sd

__all__ = ["FUSIONS", "REGIMES", "run_comparison", "mean_sd", "auroc_summary", "gain_summary", "robustness_summary"]

FUSIONS = ("stacked", "hemis", "dualnet", "auxloss")
REGIMES = ("none", "dropout")  # view dropout 0 for every fusion / settings.view_dropout for every fusion


def run_comparison(s: FusionSettings | None = None, *, seeds: Sequence[int] | None = None, reuse: dict | None = None,
                   into: dict | None = None, device="cpu", progress: bool = False) -> dict:
    """Train, for each seed, what :func:`gain_summary` and :func:`robustness_summary` need.

    Per seed: PA-only, lateral-only, the four fusions and the control without view dropout (regime ``"none"``),
    and the four fusions again with ``s.view_dropout`` (regime ``"dropout"``); the single-view models are shared by
    both regimes (they never drop their view).

    Parameters
    ----------
    s : FusionSettings, optional
        Default :func:`~course_lib.chest_xray.experiment.settings`.
    seeds : sequence of int, optional
        Default ``s.seeds``.
    reuse : dict, optional
        A :func:`~course_lib.chest_xray.experiment.run_fusion_experiment` result for one of the seeds (any regime
        for the single-view models, else regime "none"); its models are not trained again.
    into : dict, optional
        An earlier result of this function (same settings): the new seeds are appended to it, and it is returned
        (a notebook can train one seed per cell).

    Returns
    -------
    dict
        ``{"none": [results per seed], "dropout": [results per seed], "seeds": [...], "settings": s}``; each
        results dict has every model of its regime (single-view models included).
    """
    s = settings() if s is None else s
    seeds = list(s.seeds if seeds is None else seeds)
    if len(seeds) < 1:
        raise ValueError("`seeds` must name at least one seed")
    if into is not None and (into["settings"] != s or set(into["seeds"]) & set(seeds)):
        raise ValueError(f"`into` must have the same settings and none of the seeds {seeds}; has {into['seeds']}")
    out = {"none": [], "dropout": [], "seeds": [], "settings": s} if into is None else into
    for seed in seeds:
        done = reuse if reuse is not None and reuse["seed"] == seed else {"models": {}}
        kept = {n: e for n, e in done["models"].items()
                if n in ("pa", "lateral") or (reuse is not None and reuse.get("view_dropout") == 0)}
        todo = [n for n in ("pa", "lateral", *FUSIONS, CONTROL) if n not in kept]
        none = run_fusion_experiment(todo, s, view_dropout=0.0, seed=seed, device=device, progress=progress,
                                     desc=f"seed {seed} ")
        none["models"] = {n: (kept.get(n) or none["models"][n]) for n in ("pa", "lateral", *FUSIONS, CONTROL)}
        dropout = run_fusion_experiment(FUSIONS, s, view_dropout=s.view_dropout, seed=seed, device=device,
                                        progress=progress, desc=f"seed {seed} dropout ")
        dropout["models"] = {"pa": none["models"]["pa"], "lateral": none["models"]["lateral"], **dropout["models"]}
        out["none"].append(none)
        out["dropout"].append(dropout)
        out["seeds"].append(seed)
    return out


def auroc_summary(runs: list[dict]) -> pd.DataFrame:
    """Models x ``mean``/``sd``/``seed <k>``: the mean test AUROC over findings, per seed and pooled."""
    names = list(runs[0]["models"])
    rows = {}
    for name in names:
        values = [r["models"][name]["test_auroc_mean"] for r in runs]
        mean, sd = mean_sd(values)
        rows[name] = {"mean": mean, "sd": sd, **{f"seed {r['seed']}": v for r, v in zip(runs, values, strict=True)}}
    return pd.DataFrame.from_dict(rows, orient="index")


def gain_summary(runs: list[dict], *, fusion: str | None = None, n_resamples: int = 1000) -> pd.DataFrame:
    """Per finding: the fusion's AUROC gain over PA-only, over the control, and the control's over PA-only.

    Parameters
    ----------
    runs : list of dict
        Regime "none" results, one per seed, each with ``pa``, the fusion and :data:`CONTROL`.
    fusion : str, optional
        Default ``settings.gain_fusion`` of the runs.

    Returns
    -------
    DataFrame
        Index: findings. Columns ``<comparison>_mean``, ``<comparison>_sd`` (over seeds) and
        ``<comparison>_ci_low_min`` (the lowest 95 % paired-bootstrap lower bound over seeds), for the comparisons
        ``fusion_vs_pa``, ``fusion_vs_control``, ``control_vs_pa``.
    """
    fusion = fusion or runs[0]["settings"].gain_fusion
    pairs = {"fusion_vs_pa": (fusion, "pa"), "fusion_vs_control": (fusion, CONTROL), "control_vs_pa": (CONTROL, "pa")}
    per_seed = {key: [] for key in pairs}
    for r in runs:
        for key, (a, b) in pairs.items():
            if a == CONTROL:  # the control is no fusion for lateral_benefit: compare it as one under another name
                r = {**r, "models": {"control": r["models"][CONTROL], "pa": r["models"]["pa"]}}
                a = "control"
            per_seed[key].append(lateral_benefit(r, fusion=a, baseline=b, n_resamples=n_resamples,
                                                 seed=r["seed"])["difference"])
    labels = list(runs[0]["labels"])
    table = {}
    for key, diffs in per_seed.items():
        estimates = np.array([[d[label].estimate for label in labels] for d in diffs])  # (seeds, L)
        table[f"{key}_mean"] = estimates.mean(axis=0)
        table[f"{key}_sd"] = estimates.std(axis=0, ddof=1) if len(diffs) > 1 else np.full(len(labels), np.nan)
        table[f"{key}_ci_low_min"] = np.array([[d[label].low for label in labels] for d in diffs]).min(axis=0)
    return pd.DataFrame(table, index=labels)


def robustness_summary(comparison: dict) -> pd.DataFrame:
    """Mean and sd over seeds of :func:`~course_lib.chest_xray.experiment.robustness_table`, per regime.

    Returns
    -------
    DataFrame
        Index ``(regime, model)``; columns ``<column>_mean`` and ``<column>_sd`` for every column of the
        robustness table (``both``, ``no_lateral``, ``no_pa (lateral findings)``, ...).
    """
    frames = {}
    for regime in REGIMES:
        tables = [robustness_table(r, digits=12) for r in comparison[regime]]
        stacked = np.stack([t.to_numpy(float) for t in tables])  # (seeds, models, columns)
        mean = pd.DataFrame(stacked.mean(axis=0), index=tables[0].index, columns=tables[0].columns)
        sd = pd.DataFrame(stacked.std(axis=0, ddof=1) if len(tables) > 1 else np.nan * stacked[0],
                          index=tables[0].index, columns=tables[0].columns)
        frames[regime] = pd.concat([mean.add_suffix("_mean"), sd.add_suffix("_sd")], axis=1)
    return pd.concat(frames, names=["regime", "model"])
