"""The fusion experiment on real PA + lateral studies (CheXpert or PadChest), as ch01b's full mode runs it.

:func:`real_pair_splits` reads a dataset with :func:`~course_lib.chest_xray.datasets.chexpert_pairs` or
:func:`~course_lib.chest_xray.datasets.padchest_pairs`, samples at most ``max_studies`` studies, splits them by
patient (:func:`course_lib.data.splits.patient_split`) and keeps the findings that have enough positives and
negatives in every split. :func:`run_real_experiment` trains PA-only, a fusion and its capacity-matched control
with :func:`course_lib.chest_xray.experiment.run_fusion_experiment` — the same code path as the synthetic
experiment — and scores them on the test studies that have both views.

Studies where one view is missing stay in training and test, as they come. CheXpert's uncertain labels are left
out of the loss (U-Ignore) and its blanks read as negative; PadChest's findings include those that Bertrand et
al. (2019) found the lateral to help.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from course_lib import config
from course_lib.chest_xray.datasets import PairedViewDataset, chexpert_pairs, padchest_pairs
from course_lib.chest_xray.experiment import (
    CONTROL,
    FusionSettings,
    imagenet_weights_cached,
    lateral_benefit,
    mean_auroc,
    run_fusion_experiment,
)

__all__ = ["REAL_LABELS", "RealSettings", "QUICK", "FULL", "SMOKE", "settings", "real_pair_splits",
           "run_real_experiment"]

REAL_LABELS = {"chexpert": ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion"),
               "padchest": ("cardiomegaly", "pleural effusion", "emphysema", "flattened diaphragm", "hiatal hernia",
                            "kyphosis", "nodule", "COPD signs")}


@dataclass(frozen=True)
class RealSettings:
    """The real-data run: data sampling plus the training recipe (a :class:`FusionSettings`)."""

    max_studies: int = 20_000  # studies sampled (the same for every model): 3 DenseNet epochs in ~1 h on one GPU
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train / validation / test, by patient
    min_count: int = 5  # a finding needs this many positives AND negatives in every split, else it is dropped
    models: tuple[str, ...] = ("pa", "auxloss", CONTROL)  # PA-only, the lecture's fusion, its PA-twice control
    workers: int = 4  # DataLoader processes: decoding the images is the bottleneck
    recipe: FusionSettings = FusionSettings(size=224, backbone="densenet121", epochs=3, batch_size=32, lr=1e-4,
                                            view_dropout=0.0, class_weighted=True, imagenet=True, seeds=(0,),
                                            n_resamples=1000)  # CheXNet: 224 px, DenseNet-121, ImageNet start


FULL = RealSettings()
QUICK = RealSettings(max_studies=400, min_count=2, workers=0,  # the CI fixture trees: seconds on a CPU
                     recipe=replace(FULL.recipe, size=32, backbone="small", width=4, epochs=1, batch_size=8,
                                    lr=3e-3, imagenet=False, n_resamples=50))
# COURSE_SMOKE=1 (config.is_smoke): FULL with studies, image size and epochs cut, full mode's code path in seconds;
# no ImageNet start: its weights would be a download
SMOKE = replace(FULL, max_studies=80, min_count=2, workers=0,
                recipe=replace(FULL.recipe, size=64, epochs=1, batch_size=8, imagenet=False, n_resamples=20))


def settings() -> RealSettings:
    """:data:`QUICK` or :data:`FULL`, by :func:`course_lib.config.mode`."""
    return config.pick(QUICK, FULL, smoke=SMOKE)


def real_pair_splits(name: str, root=None, s: RealSettings | None = None, *, labels=None, seed: int = 0):
    """Train / validation / test :class:`PairedViewDataset` of one real dataset, split by patient.

    Parameters
    ----------
    name : {"chexpert", "padchest"}
    root : path, optional
        Dataset folder (default ``COURSE_DATA/<name>``).
    s : RealSettings, optional
        Default :func:`settings`.
    labels : sequence of str, optional
        Findings to read (default :data:`REAL_LABELS`); those with fewer than ``s.min_count`` positives or
        negatives in a split are dropped.
    seed : int
        Seeds the study sample and the patient split.

    Raises
    ------
    ValueError
        ``name`` unknown, or no finding is left.
    """
    from course_lib.data.splits import patient_split

    if name not in REAL_LABELS:
        raise ValueError(f"`name` must be one of {tuple(REAL_LABELS)}, got {name!r}")
    s = settings() if s is None else s
    labels = list(REAL_LABELS[name] if labels is None else labels)
    reader, options = {"chexpert": (chexpert_pairs, {"blank": "zeros"}), "padchest": (padchest_pairs, {})}[name]
    data = reader(root, labels=labels, size=s.recipe.size, skip_missing=True, **options)
    frame = data.frame.sample(min(s.max_studies, len(data.frame)), random_state=seed)
    parts = patient_split(frame, s.fractions, seed=seed)
    kept = [label for label in labels
            if all(p[label].eq(1).sum() >= s.min_count and p[label].eq(0).sum() >= s.min_count for p in parts)]
    if not kept:
        raise ValueError(f"no finding of {labels} has {s.min_count} positives and {s.min_count} negatives in every "
                         f"split of {len(frame)} studies: raise `max_studies`")
    return tuple(PairedViewDataset(p, data.root, kept, s.recipe.size) for p in parts)


def run_real_experiment(name: str, root=None, s: RealSettings | None = None, *, device=None,
                        progress: bool = False) -> dict:
    """Section 6 of ch01b end to end on one real dataset.

    Returns
    -------
    dict
        ``results`` (:func:`~course_lib.chest_xray.experiment.run_fusion_experiment`'s dict), ``sizes``
        (train / val / test studies), ``imagenet`` (whether ImageNet weights were used), and on the test
        studies with both views: ``gain`` and ``gain_vs_control`` (``{label: CI}`` of the fusion minus PA-only /
        minus the control) and ``robust`` (``{model: {condition: mean AUROC}}``).
    """
    s = settings() if s is None else s
    if not isinstance(s, RealSettings):
        raise TypeError(f"`s` must be RealSettings, got {type(s).__name__}")
    splits = real_pair_splits(name, root, s)
    results = run_fusion_experiment(s.models, s.recipe, data=splits, device=device, workers=s.workers,
                                    progress=progress)
    complete = results["present_test"].all(axis=1)  # (N,) test studies with a PA and a lateral
    fusion = next(m for m in s.models if m not in ("pa", "lateral", CONTROL))
    out = {"results": results, "sizes": tuple(len(d) for d in splits), "labels": results["labels"],
           "imagenet": s.recipe.backbone == "densenet121" and s.recipe.imagenet and imagenet_weights_cached(),
           "complete_share": float(complete.mean()), "fusion": fusion}
    out["gain"] = lateral_benefit(results, fusion=fusion, baseline="pa", rows=complete,
                                  n_resamples=s.recipe.n_resamples)["difference"]
    if CONTROL in results["models"]:
        out["gain_vs_control"] = lateral_benefit(results, fusion=fusion, baseline=CONTROL, rows=complete,
                                                 n_resamples=s.recipe.n_resamples)["difference"]
    y, m = results["y_test"][complete], results["mask_test"][complete]
    out["robust"] = {k: {c: mean_auroc(e["scores"][c][complete], y, m) for c in e["scores"]}
                     for k, e in results["models"].items()}
    out["test_auroc_mean"] = {k: float(np.nanmean([ci.estimate for ci in e["test_auroc"].values()]))
                              for k, e in results["models"].items()}
    return out
