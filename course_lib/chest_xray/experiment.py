"""The chapter 1 experiment: PA-only, lateral-only, the four fusions and a control, trained on the same studies.

:func:`run_fusion_experiment` trains each model on the same two-view studies — synthetic ones
(:mod:`course_lib.chest_xray.synthetic`) by default, or real PA + lateral datasets
(:mod:`course_lib.chest_xray.real_data`) — with :func:`course_lib.training.fit`, keeps the weights of the epoch
with the best mean validation AUROC (selection on validation, never on test), then scores the test split:

* per-label AUROC with bootstrap CIs, all views given;
* robustness: the same test studies with the lateral removed, and with the PA removed (zero image,
  ``present`` False) — which models degrade gracefully when a view is missing?

Every fusion is trained under the *same* view-dropout setting (``view_dropout``: 0 or the HeMIS paper's
regime), so that architectures are compared under one training regime; :mod:`.comparison` runs both regimes
and several seeds. The model ``"pa_twice"`` is the capacity-matched control of the lateral gain: the fusion
``settings.gain_fusion`` given the PA in both inputs (:class:`~course_lib.chest_xray.fusion.SameViewTwice`).

The recipe is CheXNet's: class-weighted binary cross-entropy (weights from the training labels,
:func:`~course_lib.chest_xray.fusion.class_weights`), Adam, the best validation epoch kept; DenseNet-121 starts
from ImageNet weights when ``settings.imagenet`` is set and the weights are already in the torch hub cache
(:func:`imagenet_weights_cached`; nothing is ever downloaded here).

Sizes come from :data:`QUICK` (a CPU) or :data:`FULL` (a GPU) through :func:`settings`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from course_lib import config
from course_lib.chest_xray import MODELS, SameViewTwice, class_weights, make_model, predict_views
from course_lib.chest_xray.evaluation import paired_auroc_difference, per_label_auroc
from course_lib.chest_xray.synthetic import LABELS, VISIBLE_IN, TwoViewConfig, TwoViewDataset
from course_lib.metrics import auroc
from course_lib.training import fit

__all__ = ["FusionSettings", "QUICK", "FULL", "SMOKE", "settings", "CONTROL", "imagenet_weights_cached",
           "synthetic_splits", "run_fusion_experiment", "robustness_table", "lateral_benefit", "mean_auroc"]

CONTROL = "pa_twice"  # the capacity-matched control: settings.gain_fusion reading the PA in both inputs
DENSENET121_FILE = "densenet121-a639ec97.pth"  # torchvision's ImageNet weights, as named in the hub cache


@dataclass(frozen=True)
class FusionSettings:
    """Sizes and recipe of the fusion experiment; each value fixed before any test number was seen."""

    n_train: int = 1200  # synthetic training studies: enough for the lateral findings to be learnt at 64 px
    n_val: int = 300  # validation studies: chooses the epoch (and the F1 thresholds); ~90 positives a finding
    n_test: int = 600  # test studies: ~180 positives a finding, AUROC CIs about +-0.03
    # benchmarks/quick_budgets.py on validation curves: the knee (within 1 % of the best mean validation AUROC) is
    # past 8 epochs, the notebook's time allowance affords 3: a time budget, the models still improve; every model
    # gets the same epochs, the best validation epoch kept
    epochs: int = 3
    size: int = 64  # image side in px: a nodule keeps 2-3 px, a CPU trains a small CNN in seconds
    backbone: str = "small"  # "small" CNN on CPUs; "densenet121" is CheXNet's network (GPUs, real data)
    width: int = 8  # stem channels of the small CNN (~30 k parameters): 3 seeds x 12 models fit the time budget
    batch_size: int = 32  # as CheXNet's order of magnitude; small batches help the small CNN at this data size
    lr: float = 3e-3  # Adam; the small CNN from scratch tolerates a larger step than a pretrained DenseNet
    view_dropout: float = 0.25  # HeMIS's regime (a quarter of complete studies lose one view), for EVERY fusion
    class_weighted: bool = True  # CheXNet's weighted BCE, weights from the training labels' frequencies
    imagenet: bool = False  # DenseNet-121 from ImageNet weights when they are cached; the small CNN has none
    seeds: tuple[int, ...] = (0, 1, 2)  # >= 3 training seeds (data and initial weights) for every comparison
    gain_fusion: str = "auxloss"  # the fusion whose lateral gain is measured against its PA-twice control
    n_resamples: int = 1000  # bootstrap resamples of the per-finding AUROC CIs


QUICK = FusionSettings()
FULL = FusionSettings(n_train=10_000, n_val=1000, n_test=3000, epochs=20, size=128, width=32, batch_size=64,
                      lr=1e-3, imagenet=True, n_resamples=2000)  # a GPU: 8x the data, 2x the side, 4x wider
# COURSE_SMOKE=1 (config.is_smoke): FULL with images (their number and side), epochs and seeds cut, full mode's
# code path in seconds; FULL's network (width, backbone) and recipe kept. At 128 px one seed of ch01b's comparison
# took 25 s of CPU, at 64 px 5 s. Three seeds: ch01b trains the third in a cell of its own; 64 test studies: its
# check of exercise 3 reads studies 40-63; 48 validation studies: positives of every finding for its validation AUROC.
SMOKE = replace(FULL, n_train=16, n_val=48, n_test=64, size=64, epochs=1, seeds=(0, 1, 2), n_resamples=20)


def settings() -> FusionSettings:
    """:data:`QUICK` or :data:`FULL`, by :func:`course_lib.config.mode`."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


def imagenet_weights_cached() -> bool:
    """True when torchvision's DenseNet-121 ImageNet weights are already in the torch hub cache (no download)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / DENSENET121_FILE).is_file()


def synthetic_splits(s: FusionSettings, seed: int = 0, data_config: TwoViewConfig | None = None):
    """Train, validation and test :class:`TwoViewDataset` (seeds ``seed*1000 + 0, 1, 2``), cached.

    The last two (settings' sizes, config, seed) are memoised: both regimes of a seed, and a notebook's later look at
    the same split, reuse the studies instead of drawing them again (seconds per split at quick size). The datasets
    are read-only, so sharing them changes no result.
    """
    data = replace(data_config or TwoViewConfig(), size=s.size)
    return _splits(data, s.n_train, s.n_val, s.n_test, seed)


@lru_cache(maxsize=2)  # a full-mode split holds ~2 GB: keep the current seed (and one more), not every seed
def _splits(data: TwoViewConfig, n_train: int, n_val: int, n_test: int, seed: int):
    sizes = (n_train, n_val, n_test)
    return tuple(TwoViewDataset(n, data, seed=seed * 1000 + k, cache=True) for k, n in enumerate(sizes))


def mean_auroc(scores, labels, mask) -> float:
    """Mean over labels of the AUROC on known entries; labels with a single class are skipped. (N, L) each."""
    values = []
    for j in range(labels.shape[1]):
        keep = np.asarray(mask[:, j]) > 0
        t = np.asarray(labels[keep, j]) > 0.5
        if 0 < t.sum() < t.size:
            values.append(auroc(t, np.asarray(scores[keep, j])))
    return float(np.mean(values)) if values else float("nan")


def _label_table(dataset) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(dataset, "label_table"):
        return dataset.label_table()
    items = [dataset[i] for i in range(len(dataset))]
    return (np.stack([np.asarray(it["labels"]) for it in items]),
            np.stack([np.asarray(it.get("label_mask", np.ones_like(it["labels"]))) for it in items]))


def _build(name: str, s: FusionSettings, num_labels: int, view_dropout: float):
    kwargs = {"width": s.width} if s.backbone == "small" else {}
    if s.backbone == "densenet121" and s.imagenet and imagenet_weights_cached():
        kwargs["weights"] = "imagenet"
    if name == CONTROL:
        return SameViewTwice(make_model(s.gain_fusion, num_labels, s.backbone, view_dropout=view_dropout, **kwargs))
    dropout = None if name in ("pa", "lateral") else view_dropout
    return make_model(name, num_labels, s.backbone, view_dropout=dropout, **kwargs)


def run_fusion_experiment(models: Sequence[str] = MODELS, s: FusionSettings | None = None, *,
                          view_dropout: float | None = None, data=None, data_config: TwoViewConfig | None = None,
                          seed: int = 0, device: str | torch.device | None = "cpu", workers: int = 0,
                          progress: bool = False, desc: str = "") -> dict:
    """Train and score each model on the same two-view studies.

    Parameters
    ----------
    models : sequence of str
        Names for :func:`course_lib.chest_xray.make_model`, or :data:`CONTROL`.
    s : FusionSettings, optional
        Default :func:`settings`.
    view_dropout : float, optional
        Chance that a complete training study loses one view, the same for every fusion (the single-view
        models never drop their view). Default ``s.view_dropout``; 0 trains on complete studies only.
    data : (train, val, test) datasets, optional
        Two-view datasets of sample dicts (``pa, lateral, present, labels, label_mask``) with a ``labels``
        attribute naming the findings, e.g. from :func:`course_lib.chest_xray.real_data.real_pair_splits`.
        Default: synthetic studies drawn from ``s`` and ``data_config`` (:func:`synthetic_splits`).
    data_config : TwoViewConfig, optional
        Generator options for the synthetic default; its ``size`` is replaced by ``s.size``.
    seed : int
        Seeds the synthetic data and every training run (same initial weights for every model).
    device : optional
        Default "cpu"; None picks :func:`course_lib.config.device`.
    workers : int
        DataLoader worker processes (real images: decoding JPEGs/PNGs is the bottleneck).
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        ``labels``, ``visible_in`` (``{}`` for real data), ``settings``, ``seed``, ``view_dropout``, ``y_test``
        and ``mask_test`` ((N, L) arrays), ``present_test`` ((N, 2) bool), and ``models[name]`` with
        ``test_auroc``, ``no_lateral_auroc``, ``no_pa_auroc`` (``{label: CI}``), ``test_auroc_mean``,
        ``val_auroc_mean`` (best epoch), ``scores`` (``{"both"|"no_lateral"|"no_pa": (N, L) probabilities}``),
        ``history``, ``seconds`` and the trained ``model`` (on the CPU).
    """
    s = settings() if s is None else s
    if not isinstance(s, FusionSettings):
        raise TypeError(f"`s` must be FusionSettings, got {type(s).__name__}")
    unknown = set(models) - {*MODELS, CONTROL}
    if unknown:
        raise ValueError(f"`models` has unknown names {sorted(unknown)}; choose from {(*MODELS, CONTROL)}")
    dropout = s.view_dropout if view_dropout is None else float(view_dropout)
    device = torch.device(device) if device is not None else config.device()
    train, val, test = synthetic_splits(s, seed, data_config) if data is None else data
    labels = tuple(getattr(train, "labels", LABELS))
    visible_in = dict(VISIBLE_IN) if data is None else {}
    val_loader = DataLoader(val, batch_size=256, num_workers=workers)
    test_loader = DataLoader(test, batch_size=256, num_workers=workers)
    y_test, mask_test = _label_table(test)
    present_test = np.asarray(test.present if hasattr(test, "present") and not callable(test.present) else
                              torch.cat([b["present"] for b in test_loader]).numpy(), dtype=bool)
    weights = class_weights(*_label_table(train)) if s.class_weighted else None

    def evaluate(model, loader, dev):
        return {"val_auroc": mean_auroc(*(t.numpy() for t in predict_views(model, loader, dev)))}

    results = {"labels": labels, "visible_in": visible_in, "settings": s, "seed": seed, "view_dropout": dropout,
               "y_test": y_test, "mask_test": mask_test, "present_test": present_test, "models": {}}
    for name in models:
        start = time.perf_counter()
        config.seed_everything(seed)  # same initial weights whatever ran before
        model = _build(name, s, len(labels), dropout)
        model.class_weights = weights
        loader = DataLoader(train, batch_size=s.batch_size, shuffle=True, num_workers=workers,
                            generator=torch.Generator().manual_seed(seed))
        history = fit(model, loader, compute_loss=lambda m, batch: m.loss(batch), epochs=s.epochs, lr=s.lr,
                      val_loader=val_loader, evaluate=evaluate, monitor="val_auroc", monitor_mode="max", seed=seed,
                      device=device, progress=progress, desc=f"{desc}{name}")
        entry = {"history": history, "val_auroc_mean": history["val_auroc"][history.best_epoch], "scores": {}}
        for condition, drop in (("both", None), ("no_lateral", "lateral"), ("no_pa", "pa")):
            scores, _, _ = predict_views(model, test_loader, device, drop=drop)
            entry["scores"][condition] = scores.numpy()
            key = "test_auroc" if drop is None else f"{condition}_auroc"
            entry[key] = per_label_auroc(y_test, scores, label_mask=mask_test, labels=labels,
                                         n_resamples=s.n_resamples, seed=seed)
        entry["test_auroc_mean"] = float(np.nanmean([ci.estimate for ci in entry["test_auroc"].values()]))
        entry["model"] = model.cpu()
        entry["seconds"] = time.perf_counter() - start
        results["models"][name] = entry
    return results


def lateral_benefit(results: dict, *, fusion: str | None = None, baseline: str = "pa", n_resamples: int = 2000,
                    seed: int = 0, rows=None) -> dict:
    """Per finding: test AUROC of a fusion minus a baseline's, with a paired bootstrap CI.

    Parameters
    ----------
    results : dict
        From :func:`run_fusion_experiment`.
    fusion : str, optional
        The fusion; default the one with the highest mean *validation* AUROC among the fusions in ``results``
        (choosing on test would flatter it).
    baseline : str
        ``"pa"`` (PA-only) or :data:`CONTROL` (the capacity-matched control).
    rows : (N,) bool array, optional
        Test studies to use (e.g. those with both views); default all.

    Returns
    -------
    dict
        ``model``: the fusion; ``difference``: ``{label: ConfidenceInterval}``; ``helps``: the labels whose CI
        lies above 0.
    """
    fusions = {n: r for n, r in results["models"].items() if n not in ("pa", "lateral", CONTROL)}
    if baseline not in results["models"] or not fusions or (fusion is not None and fusion not in fusions):
        raise ValueError(f"`results` must hold the baseline {baseline!r} and the fusion {fusion or 'any'!r}; "
                         f"has {sorted(results['models'])}")
    best = fusion or max(fusions, key=lambda n: fusions[n]["val_auroc_mean"])
    keep = slice(None) if rows is None else np.asarray(rows, dtype=bool)
    difference = paired_auroc_difference(results["y_test"][keep], fusions[best]["scores"]["both"][keep],
                                         results["models"][baseline]["scores"]["both"][keep],
                                         label_mask=results["mask_test"][keep], labels=results["labels"],
                                         n_resamples=n_resamples, seed=seed)
    return {"model": best, "difference": difference, "helps": [k for k, ci in difference.items() if ci.low > 0]}


def robustness_table(results: dict, *, digits: int = 3) -> pd.DataFrame:
    """Mean test AUROC of each model with both views, without the lateral, and without the PA.

    Columns ``both``, ``no_lateral``, ``no_pa`` average over all findings; ``<condition> (<kind>)`` columns
    average over the findings visible in the PA / the lateral only (``results["visible_in"]``), where the loss
    of a view shows most.
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
