"""The chapter 1 experiment: PA-only, lateral-only and four fusions on the same two-view studies.

:func:`run_fusion_experiment` trains each model on the same synthetic studies
(:mod:`course_lib.chest_xray.synthetic`) with :func:`course_lib.training.fit`, keeps the weights of the epoch
with the best mean validation AUROC (selection on validation, never on test), then scores the test split:

* per-label AUROC with bootstrap CIs, all views given;
* robustness: the same test studies with the lateral removed, and with the PA removed (zero image,
  ``present`` False) — which models degrade gracefully when a view is missing?

:func:`lateral_benefit` then asks the lecture's question, per finding: does the lateral view help? It
takes the fusion with the best *validation* AUROC and the paired bootstrap CI of its test AUROC minus
PA-only's. Expected on this data: large gains on the lateral findings (emphysema, retrocardiac opacity),
none on the PA findings — and the fusions close to one another ("all models are about equal given the
right hyperparameters").

Sizes come from :data:`QUICK` (CPU: all six models in about 1 minute at 2 threads, 1.5 minutes at 1 thread,
on an idle machine) or :data:`FULL` (a GPU: 128 px, 8x the data, a 4x wider CNN; ``backbone="densenet121"``
for CheXNet's network) through :func:`course_lib.config.pick`; any argument overrides them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from course_lib import config
from course_lib.chest_xray import MODELS, make_model, predict_views
from course_lib.chest_xray.evaluation import paired_auroc_difference, per_label_auroc
from course_lib.chest_xray.synthetic import LABELS, VISIBLE_IN, TwoViewConfig, TwoViewDataset
from course_lib.metrics import auroc
from course_lib.training import fit

__all__ = ["QUICK", "FULL", "experiment_settings", "run_fusion_experiment", "robustness_table", "lateral_benefit"]

QUICK = {"n_train": 1200, "n_val": 300, "n_test": 600, "epochs": 10, "size": 64, "backbone": "small",
         "width": 12, "batch_size": 32, "lr": 3e-3}
FULL = {"n_train": 10_000, "n_val": 1000, "n_test": 3000, "epochs": 20, "size": 128, "backbone": "small",
        "width": 32, "batch_size": 64, "lr": 1e-3}
DEFAULT_VIEW_DROPOUT = {"hemis": 0.25}  # HeMIS is trained on random subsets of views by design


def experiment_settings(**overrides) -> dict:
    """:data:`QUICK` or :data:`FULL` (by :func:`course_lib.config.mode`), updated with the non-None overrides."""
    settings = dict(config.pick(QUICK, FULL))
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; expected some of {sorted(settings)}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def _mean_auroc(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over labels of the AUROC on known entries; labels with a single class are skipped."""
    values = []
    for j in range(labels.shape[1]):
        keep = mask[:, j] > 0
        t = labels[keep, j].numpy().astype(bool)
        if 0 < t.sum() < t.size:
            values.append(auroc(t, scores[keep, j].numpy()))
    return float(np.mean(values)) if values else float("nan")


def run_fusion_experiment(models: Sequence[str] = MODELS, *, n_train: int | None = None, n_val: int | None = None,
                          n_test: int | None = None, epochs: int | None = None, size: int | None = None,
                          backbone: str | None = None, width: int | None = None, batch_size: int | None = None,
                          lr: float | None = None, view_dropout: dict[str, float] | None = None,
                          data_config: TwoViewConfig | None = None, seed: int = 0, device: str | None = "cpu",
                          n_resamples: int = 1000, progress: bool = False) -> dict:
    """Train and score each model on the same synthetic two-view studies.

    Parameters
    ----------
    models : sequence of str
        Names for :func:`course_lib.chest_xray.make_model`.
    n_train, n_val, n_test, epochs, size, backbone, width, batch_size, lr : optional
        Override :func:`experiment_settings` (``width`` is used by the "small" backbone only).
    view_dropout : dict, optional
        ``{model: probability}`` of dropping one view of a complete study during training; default
        ``{"hemis": 0.25}`` (each model's own default otherwise).
    data_config : TwoViewConfig, optional
        Generator options (missing views, label noise, ...); its ``size`` is replaced by ``size``.
    seed : int
        Seeds the data (splits ``seed*1000 + 0, 1, 2``) and every training run (same initial weights).
    device : str, optional
        Default "cpu"; None picks :func:`course_lib.config.device`.
    n_resamples : int
        Bootstrap resamples of the AUROC CIs.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        ``labels``, ``visible_in``, ``settings``, ``y_test`` and ``mask_test`` ((N, L) arrays), and
        ``models[name]`` with ``test_auroc``, ``no_lateral_auroc``, ``no_pa_auroc`` (``{label: CI}``),
        ``test_auroc_mean``, ``val_auroc_mean`` (best epoch), ``scores`` (``{"both"|"no_lateral"|"no_pa":
        (N, L) probabilities}``), ``history``, ``seconds`` and the trained ``model`` (on the CPU).
    """
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"`models` has unknown names {sorted(unknown)}; choose from {MODELS}")
    settings = experiment_settings(n_train=n_train, n_val=n_val, n_test=n_test, epochs=epochs, size=size,
                                   backbone=backbone, width=width, batch_size=batch_size, lr=lr)
    dropout = DEFAULT_VIEW_DROPOUT if view_dropout is None else view_dropout
    device = device if device is not None else config.device()
    data = replace(data_config or TwoViewConfig(), size=settings["size"])
    train, val, test = (TwoViewDataset(settings[key], data, seed=seed * 1000 + k, cache=True)
                        for k, key in enumerate(("n_train", "n_val", "n_test")))
    val_loader = DataLoader(val, batch_size=256)
    test_loader = DataLoader(test, batch_size=256)
    y_test = torch.cat([batch["labels"] for batch in test_loader])  # (N, L)
    mask_test = torch.cat([batch["label_mask"] for batch in test_loader])
    backbone_kwargs = {"width": settings["width"]} if settings["backbone"] == "small" else {}

    def evaluate(model, loader, dev):
        scores, labels, mask = predict_views(model, loader, dev)
        return {"val_auroc": _mean_auroc(scores, labels, mask)}

    results = {"labels": LABELS, "visible_in": dict(VISIBLE_IN), "settings": settings,
               "y_test": y_test.numpy(), "mask_test": mask_test.numpy(), "models": {}}
    for name in models:
        start = time.perf_counter()
        config.seed_everything(seed)  # same initial weights whatever ran before
        model = make_model(name, len(LABELS), settings["backbone"], view_dropout=dropout.get(name),
                           **backbone_kwargs)
        loader = DataLoader(train, batch_size=settings["batch_size"], shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        history = fit(model, loader, compute_loss=lambda m, batch: m.loss(batch), epochs=settings["epochs"],
                      lr=settings["lr"], val_loader=val_loader, evaluate=evaluate, monitor="val_auroc",
                      monitor_mode="max", seed=seed, device=device, progress=progress, desc=name)
        entry = {"history": history, "val_auroc_mean": history["val_auroc"][history.best_epoch], "scores": {}}
        for condition, drop in (("both", None), ("no_lateral", "lateral"), ("no_pa", "pa")):
            scores, _, _ = predict_views(model, test_loader, device, drop=drop)
            entry["scores"][condition] = scores.numpy()
            key = "test_auroc" if drop is None else f"{condition}_auroc"
            entry[key] = per_label_auroc(y_test, scores, label_mask=mask_test, labels=LABELS,
                                         n_resamples=n_resamples, seed=seed)
        entry["test_auroc_mean"] = float(np.mean([ci.estimate for ci in entry["test_auroc"].values()]))
        entry["model"] = model.cpu()
        entry["seconds"] = time.perf_counter() - start
        results["models"][name] = entry
    return results


def lateral_benefit(results: dict, *, baseline: str = "pa", n_resamples: int = 2000,
                    seed: int = 0) -> dict:
    """Per finding: test AUROC of the best fusion minus the PA-only baseline's, with a paired bootstrap CI.

    The fusion is the one with the highest mean *validation* AUROC among those in ``results`` (choosing on
    test would flatter it).

    Returns
    -------
    dict
        ``model``: the fusion chosen; ``difference``: ``{label: ConfidenceInterval}``; ``helps``: the labels
        whose CI lies above 0.
    """
    fusions = {n: r for n, r in results["models"].items() if n not in ("pa", "lateral")}
    if baseline not in results["models"] or not fusions:
        raise ValueError(f"`results` must hold the baseline {baseline!r} and at least one fusion; "
                         f"has {sorted(results['models'])}")
    best = max(fusions, key=lambda n: fusions[n]["val_auroc_mean"])
    difference = paired_auroc_difference(results["y_test"], fusions[best]["scores"]["both"],
                                         results["models"][baseline]["scores"]["both"],
                                         label_mask=results["mask_test"], labels=results["labels"],
                                         n_resamples=n_resamples, seed=seed)
    return {"model": best, "difference": difference, "helps": [k for k, ci in difference.items() if ci.low > 0]}


def robustness_table(results: dict, *, digits: int = 3) -> pd.DataFrame:
    """Mean test AUROC of each model with both views, without the lateral, and without the PA.

    Columns ``both``, ``no_lateral``, ``no_pa`` average over all findings; ``<condition> (<kind>)`` columns
    average over the findings visible in the PA / the lateral only
    (:data:`~course_lib.chest_xray.synthetic.VISIBLE_IN`),
    where the loss of a view shows most.
    """
    kinds = {kind: [k for k, v in results["visible_in"].items() if v == kind] for kind in ("pa", "lateral")}
    rows = {}
    for name, entry in results["models"].items():
        row = {}
        for condition, key in (("both", "test_auroc"), ("no_lateral", "no_lateral_auroc"), ("no_pa", "no_pa_auroc")):
            row[condition] = np.mean([ci.estimate for ci in entry[key].values()])
            for kind, labels in kinds.items():
                if labels:
                    row[f"{condition} ({kind} findings)"] = np.mean([entry[key][k].estimate for k in labels])
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").round(digits)
